"""The same comparison on the serial engine and on 2 Ray workers x 1 thread, side by side.

Each engine runs in its own process (TensorFlow's thread pools are fixed once it starts):
`serial` is `compare --workers 1` as it was, one process on every core; `ray` is
`compare --workers 2 --threads-per-worker 1`. Both train the article's `baseline` and
`optimized` CNNs on the same synthetic crops (`bench_training.synthetic_data`: learnable,
600x200 by default), the same runs and seeds, and print:

- wall time per paired run (both configurations) once the models are traced, and the
  25-epoch estimate from the steady epochs: epochs after the first cost about the same, so a
  25-epoch run is the measured run plus (25 - epochs) steady epochs; the article's protocol
  (200 paired runs x 25 epochs on 684 crops) follows;
- training throughput (images per second, all workers together);
- Ray's own costs: `ray.init` and worker start-up (TensorFlow import, model build and trace
  happen in the workers' first run and are reported as set-up), and the time from a run's
  end to its record in the log: the outcome's trip to the driver (the worker's model file,
  Ray's transfer and `ray.wait`), then the driver's writes;
- memory: each worker's resident memory, split into its own (anonymous) memory and the
  object store's shared pages it maps, sampled every 0.2 s, and the extrapolation to 1,700
  crops at 600x200 (the data is in the object store once; a worker's own memory grows by the
  pooled copy and the per-run index copies, proportional to the crops);
- the largest difference of any per-run test metric between the two engines (they differ by
  thread count: float sums in another order; `--parts serial1,ray` compares equal threads);
- with `--ceiling`, the bare training step's scaling on this CPU, the most any engine can
  gain here: `fit` of the article's CNN on pre-pooled random images (bfloat16 where the CPU
  has it, batch 32, no augmentation, no evaluation) in one process with 2 threads, then in 2
  processes with 1 thread each at the same time (the GUIDE's "threads against processes");
  then each configuration's trainer against its own bare step (same model, batch,
  precision, 2 threads): steady training images/s over 8 epochs (10 epochs timed minus 2)
  against `fit` alone on 8 in-memory batches cycled in one epoch of `--steps` steps per round
  (`step_rounds`), ending with the line
  `trainer/step: B baseline, O optimized`.

Usage:
    python benchmarks/bench_engine.py [--crops 684] [--image-size 600 200] [--runs 2]
        [--epochs 3] [--parts serial,ray] [--ceiling]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
PROTOCOL_RUNS, PROTOCOL_EPOCHS, PROTOCOL_CROPS = 200, 25, 684
FULL_CROPS = 1700
PARTS = {"serial": (1, None), "serial1": (1, 1), "ray": (2, 1)}


def task_data(crops: int, image_size: tuple[int, int]) -> SimpleNamespace:
    """`crops` learnable synthetic crops as a `TaskData` stands for one."""
    rng = np.random.default_rng(0)
    y = np.arange(crops) % 2
    images = rng.integers(0, 200, size=(crops, *image_size, 3), dtype=np.uint8)
    stripe = slice(image_size[0] // 3, image_size[0] // 3 + image_size[0] // 10)
    images[y == 1, stripe] = np.minimum(images[y == 1, stripe].astype(np.int16) + 55,
                                        255).astype(np.uint8)
    paths = [Path(f"crop_{index}.png") for index in range(crops)]
    return SimpleNamespace(images=images, y=y, class_names=("cog", "toon"), paths=paths,
                           labels=[("cog", "toon")[index] for index in y])


def memory_of(pid: int) -> tuple[float, float]:
    """(own, shared) resident MiB of a process (RssAnon, RssFile + RssShmem)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "RssShmem"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("RssAnon", 0.0), fields.get("RssFile", 0.0) + fields.get("RssShmem", 0.0)


def run_part(part: str, crops: int, image_size: tuple[int, int], runs: int,
             epochs: int) -> dict:
    """Runs one engine's comparison in this process; returns its figures."""
    from toonvision.model_utils.engine.choose import make_engine
    from toonvision.model_utils.engine.serial import pin_threads

    workers, threads = PARTS[part]
    pin_threads(threads)
    from toonvision.model_utils.comparison.runner import Comparison
    from toonvision.model_utils.comparison.stored_settings import settings_for
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    data = task_data(crops, image_size)
    configs = [BUILTIN_CONFIGS[name].replace(epochs=epochs) for name in ("baseline", "optimized")]
    settings = settings_for(data, "binary", configs, runs, "synthetic")
    engine = make_engine(workers, threads)
    figures: dict = {"part": part, "engine": engine.describe(), "peaks": {}}
    samples: dict[int, tuple[float, float]] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            for info in [{"pid": os.getpid()}, *getattr(engine, "worker_info", [])]:
                try:
                    own, shared = memory_of(info["pid"])
                except OSError:
                    continue
                old = samples.get(info["pid"], (0.0, 0.0))
                samples[info["pid"]] = (max(old[0], own), max(old[1], shared))

    if workers > 1:
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False,
                 log_to_driver=False)
        figures["ray_init_seconds"] = time.perf_counter() - start
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as folder:
        comparison = Comparison.start(Path(folder) / "out", settings)
        # Ray's cost after a run: when training ended (the worker's clock), when the driver
        # got the outcome, when the run's record was in the log (same machine, same clock).
        run_engine, finished, received, latencies = engine.run, {}, {}, []

        def timed_run(*arguments, **options):
            for outcome in run_engine(*arguments, **options):
                run = outcome.task.run
                finished[run] = max(finished.get(run, 0.0), outcome.finished)
                received[run] = time.time()
                latencies.append(("received", received[run] - outcome.finished))
                yield outcome

        engine.run = timed_run
        start = time.perf_counter()
        ends = []
        for update in comparison.run(data, configs, engine=engine):
            ends.append(time.perf_counter() - start)
            now = time.time()
            latencies.append(("logged", now - received[update.run]))
            latencies.append(("end_to_record", now - finished[update.run]))
        records = comparison.records
    stop.set()
    sampler.join()
    figures["driver"] = os.getpid()
    figures["run_ends"] = ends
    figures["latencies"] = latencies
    figures["records"] = [{"run": record.run, "config": record.config,
                           "test": record.test_metrics, "epochs": record.epochs_run,
                           "setup": record.setup_seconds, "train": record.train_seconds,
                           "threads": record.threads, "worker": record.worker,
                           "train_images": record.split_sizes["train"]} for record in records]
    figures["memory"] = {str(pid): value for pid, value in samples.items()}
    return figures


def step_rounds(model, x: np.ndarray, y: np.ndarray, batch: int, steps: int) -> list[float]:
    """Images per second of `steps` training steps of `model`, 3 timed rounds after an untimed
    one (the trace): the batches of (x, y) cycled by `tf.data` in one epoch per round, so that
    neither Keras' per-epoch costs (its iterators) nor a large array's slicing count.

    (Until 2026-12-03 the rounds were eight epochs of 8 batches from arrays, which paid the
    per-epoch iterators: the trainer's endless feed then beat that "bare" step. One epoch over
    2,048 array images was no better: 50 images/s at 600x200 against the trainer's 86.)
    """
    import tensorflow as tf

    dataset = (tf.data.Dataset.from_tensor_slices((x, y))
               .batch(batch, drop_remainder=True).repeat())
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    rounds = []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        rounds.append(batch * steps / (time.perf_counter() - start))
    return rounds


def bare_step(threads: int, image_size: tuple[int, int], steps: int) -> dict:
    """Images per second of `fit` on the article's CNN, pinned to `threads` threads.

    The reference of `--ceiling`: Keras alone, none of the engine (no feed, no evaluation,
    no model transfer), on the pooled input the trainer trains on.
    """
    from toonvision.model_utils.engine.serial import pin_threads

    pin_threads(threads)
    import keras

    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.models import loss_and_metrics, make_model, make_optimizer
    from toonvision.model_utils.training.trainer import training_model_after_first_pooling

    config = BUILTIN_CONFIGS["baseline"]
    model = training_model_after_first_pooling(make_model(config, 2, image_size))
    loss, metrics = loss_and_metrics(config, 2)
    model.compile(optimizer=make_optimizer(config), loss=loss, metrics=metrics)
    rng = np.random.default_rng(threads)
    batch = 32
    x = rng.integers(0, 255, size=(batch * 8, image_size[0] // 2, image_size[1] // 2, 3),
                     dtype=np.uint8)
    y = (np.arange(len(x)) % 2).reshape(-1, 1).astype("float32")
    rounds = step_rounds(model, x, y, batch, steps)
    keras.backend.clear_session()
    return {"threads": threads, "images_per_second": rounds}


def trainer_against_step(config_name: str, crops: int, image_size: tuple[int, int],
                         steps: int, threads: int = 2) -> dict:
    """The trainer's steady training images/s against the bare step of the same model.

    Same model, batch, precision and threads: the bare step is `fit` of the configuration's
    training model on 8 in-memory (pooled) batches, `steps` steps in one epoch
    (`step_rounds`), no feed, no validation; the trainer is
    `Trainer.run` on `crops` synthetic crops (60/20/20), timed at 2 and at 10 epochs, so the
    difference is 8 steady epochs with everything the trainer does around them (the
    augmentation feed, validation each epoch), and no per-run costs.
    """
    from toonvision.model_utils.engine.serial import pin_threads

    pin_threads(threads)
    import keras

    from toonvision.data_processing.splits import stratified_split
    from toonvision.model_utils.training.augment import max_pool_2x2
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.trainer import Trainer, targets_for

    config = BUILTIN_CONFIGS[config_name]
    data = task_data(crops, image_size)
    split = stratified_split(data.y, seed=0)
    timings = {}
    for epochs in (2, 10):
        trainer = Trainer(config.replace(epochs=epochs), 2, image_size)
        trainer.run(data.images[:64], data.y[:64], stratified_split(data.y[:64], seed=1),
                    seed=1)   # build and trace outside the timing
        start = time.perf_counter()
        trainer.run(data.images, data.y, split, seed=0)
        timings[epochs] = time.perf_counter() - start
    trainer_rate = len(split["train"]) * 8 / (timings[10] - timings[2])
    # The bare step of this very training model (pooled input where the trainer pools).
    model = trainer.training_model
    inputs = max_pool_2x2(data.images) if trainer.pools_input else data.images
    chosen = np.asarray(split["train"])[: config.batch_size * 8]
    rounds = step_rounds(model, inputs[chosen], targets_for(np.asarray(data.y)[chosen], 2),
                         config.batch_size, steps)
    keras.backend.clear_session()
    return {"config": config_name, "trainer": trainer_rate,
            "step": statistics.median(rounds), "seconds": timings}


def trainer_line(crops: int, image_size: tuple[int, int], steps: int) -> None:
    """Prints each configuration's trainer and bare step, then the `trainer/step:` line."""
    ratios = {}
    for name in ("baseline", "optimized"):
        child = subprocess.run(
            [sys.executable, __file__, "--trainer-step", name, "--crops", str(crops),
             "--image-size", *map(str, image_size), "--steps", str(steps)],
            capture_output=True, text=True, cwd=REPOSITORY, check=False)
        if child.returncode:
            sys.exit(f"the trainer measurement failed:\n{child.stderr[-3000:]}")
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        ratios[name] = figures["trainer"] / figures["step"]
        print(f"{name}: trainer {figures['trainer']:.0f} training images/s in steady epochs "
              f"(2 epochs {figures['seconds']['2']:.1f} s, 10 epochs "
              f"{figures['seconds']['10']:.1f} s), bare step {figures['step']:.0f} images/s")
    print(f"trainer/step: {ratios['baseline']:.2f} baseline, {ratios['optimized']:.2f} optimized")


def ceiling(image_size: tuple[int, int], steps: int) -> None:
    """Prints the bare step's throughput: 1 process x 2 threads, then 2 x 1 at once."""
    def start(threads: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, __file__, "--step", str(threads), "--image-size",
             *map(str, image_size), "--steps", str(steps)],
            stdout=subprocess.PIPE, text=True, cwd=REPOSITORY)

    def finish(child: subprocess.Popen) -> list[float]:
        output, _ = child.communicate()
        if child.returncode:
            sys.exit("the bare step failed")
        return json.loads(output.strip().splitlines()[-1])["images_per_second"]

    one = finish(start(2))
    pair = [start(1), start(1)]
    both = [sum(values) for values in zip(*(finish(child) for child in pair), strict=True)]
    print(f"bare training step (ceiling), {steps} steps x 3 rounds: 1 process x 2 threads "
          f"{'/'.join(f'{value:.0f}' for value in one)} images/s; 2 processes x 1 thread "
          f"{'/'.join(f'{value:.0f}' for value in both)} images/s together: "
          f"{statistics.median(both) / statistics.median(one):.2f}x")


def summarize(figures: dict, epochs: int, crops: int) -> dict:
    """Steady per-paired-run wall time and throughput of one part."""
    ends, records = figures["run_ends"], figures["records"]
    # Run 0 includes the trace; later runs are steady. Wall per paired run: their mean. With
    # one run (`--runs 1`, e.g. a measured 25-epoch run) that run, its set-up included.
    steady = np.diff(ends) if len(ends) > 1 else np.asarray(ends)
    per_run = float(np.mean(steady))
    images = sum(record["train_images"] * record["epochs"] for record in records
                 if record["run"] > 0 or len(ends) == 1)
    seconds = ends[-1] - ends[0] if len(ends) > 1 else ends[0]
    throughput = images / seconds
    # A 25-epoch paired run: the measured run plus its steady epochs (images / throughput);
    # measured, not extrapolated, when the runs had 25 epochs or more.
    extra = max(0, PROTOCOL_EPOCHS - epochs) * 2 * records[0]["train_images"] / throughput
    per_run_25 = per_run + extra
    protocol = per_run_25 * PROTOCOL_RUNS * (PROTOCOL_CROPS / crops)
    return {"per_run": per_run, "throughput": throughput, "per_run_25": per_run_25,
            "protocol_hours": protocol / 3600,
            "setup": statistics.fmean(record["setup"] for record in records
                                      if record["run"] == 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=PROTOCOL_CROPS)
    parser.add_argument("--image-size", type=int, nargs=2, default=(600, 200))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--parts", default="serial,ray")
    parser.add_argument("--ceiling", action="store_true",
                        help="also measure the bare training step's scaling (the ceiling)")
    parser.add_argument("--steps", type=int, default=64, help="steps per --ceiling round")
    parser.add_argument("--part", help=argparse.SUPPRESS)   # one part, in a child process
    parser.add_argument("--step", type=int, help=argparse.SUPPRESS)   # bare step, in a child
    parser.add_argument("--trainer-step", help=argparse.SUPPRESS)     # trainer vs step, child
    args = parser.parse_args()
    size = tuple(args.image_size)
    if args.step:
        print(json.dumps(bare_step(args.step, size, args.steps)))
        return
    if args.trainer_step:
        print(json.dumps(trainer_against_step(args.trainer_step, args.crops, size,
                                              args.steps)))
        return
    if args.part:
        print(json.dumps(run_part(args.part, args.crops, size, args.runs, args.epochs)))
        return

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"{cpu}, {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start; "
          f"{args.crops} crops at {size[0]}x{size[1]}, {args.runs} paired runs x "
          f"{args.epochs} epochs of baseline + optimized per engine")
    if args.ceiling:
        ceiling(size, args.steps)
        trainer_line(args.crops, size, args.steps)
    results = {}
    for part in filter(None, args.parts.split(",")):
        start = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--part", part, "--crops", str(args.crops),
             "--image-size", *map(str, size), "--runs", str(args.runs),
             "--epochs", str(args.epochs)],
            capture_output=True, text=True, cwd=REPOSITORY, check=False)
        if child.returncode:
            sys.exit(f"{part} failed:\n{child.stderr[-3000:]}")
        results[part] = json.loads(child.stdout.strip().splitlines()[-1])
        results[part]["process_seconds"] = time.perf_counter() - start

    summaries = {}
    for part, figures in results.items():
        summary = summaries[part] = summarize(figures, args.epochs, args.crops)
        print(f"\n{part}: {figures['engine']}")
        print(f"  whole process {figures['process_seconds']:.1f} s (imports, data, Ray, "
              f"trace and {args.runs} runs); first-run set-up (build + trace) "
              f"{summary['setup']:.1f} s per configuration")
        # Where a worker's time goes: each task's own training (fit, evaluation, prediction)
        # against the wall time per run; the rest is scheduling, transfer and the driver.
        trained = {}
        for record in figures["records"]:
            if record["run"] > 0 or args.runs == 1:
                trained.setdefault(record["config"], []).append(record["train"])
        print(f"  per task ({'its only run' if args.runs == 1 else 'after the first run'}): "
              + ", ".join(
            f"{name} {statistics.fmean(values):.1f} s" for name, values in trained.items()))
        spans = {}
        for kind, seconds in figures["latencies"]:
            spans.setdefault(kind, []).append(seconds)
        print("  after a run's training (median / max): outcome in the driver "
              f"{statistics.median(spans['received']):.3f} / {max(spans['received']):.3f} s "
              "(model file, transfer, ray.wait); record in the log after the run's last "
              f"outcome {statistics.median(spans['logged']):.3f} / {max(spans['logged']):.3f} "
              f"s; run end to record {statistics.median(spans['end_to_record']):.3f} / "
              f"{max(spans['end_to_record']):.3f} s (includes waiting for its other "
              "configuration and for earlier runs: the log is in run order)")
        if "ray_init_seconds" in figures:
            print(f"  ray.init {figures['ray_init_seconds']:.1f} s")
        measured = args.epochs >= PROTOCOL_EPOCHS
        print(f"  {'measured' if args.runs == 1 else 'steady'} paired run "
              f"{summary['per_run']:.1f} s; {summary['throughput']:.0f} training images/s; "
              f"25-epoch paired run {'' if measured else '~'}{summary['per_run_25']:.0f} s"
              f"{' (measured)' if measured else ' (extrapolated)'}; "
              f"article protocol (200 x 2 x 25 epochs, 684 crops) ~"
              f"{summary['protocol_hours']:.2f} h")
        memory = {pid: value for pid, value in figures["memory"].items()
                  if part.startswith("serial") or pid != str(figures["driver"])}
        for pid, (own, shared) in memory.items():
            print(f"  memory of {'worker' if part == 'ray' else 'process'} {pid}: {own:.0f} MiB "
                  f"own + {shared:.0f} MiB shared (peak)")
        if part == "ray":
            own, shared = figures["memory"].get(str(figures["driver"]), (0.0, 0.0))
            print(f"  memory of the driver: {own:.0f} MiB own + {shared:.0f} MiB shared (peak)")
        if memory:
            own = max(value[0] for value in memory.values())
            data = args.crops * size[0] * size[1] * 3 / 2**20
            full = FULL_CROPS * size[0] * size[1] * 3 / 2**20
            # The data-dependent part of a worker's own memory: the pooled copy (1/4) and
            # per-run copies of the training part (0.6 pooled, or full size with
            # augmentation): about 0.85x + 0.6x of the data, measured here as what is left
            # above a fixed part; extrapolated in proportion to the crops.
            print(f"  data {data:.0f} MiB here, {full:.0f} MiB for {FULL_CROPS} crops (in the "
                  f"object store once); worker own memory {own:.0f} MiB here, about "
                  f"{own + (full - data) * 0.85:.0f} MiB for {FULL_CROPS} crops "
                  f"(+0.85 MiB per MiB of crops: pooled copy and training-part copies)")
    if "serial" in summaries and "ray" in summaries:
        speedup = summaries["serial"]["per_run"] / summaries["ray"]["per_run"]
        print(f"\nray 2 x 1 against serial: {speedup:.2f}x per steady paired run, "
              f"{summaries['ray']['throughput'] / summaries['serial']['throughput']:.2f}x "
              "throughput")
    names = list(results)
    if len(names) >= 2:
        first, second = (sorted((record["run"], record["config"], record["test"]["accuracy"],
                                 record["test"]["loss"]) for record in results[name]["records"])
                         for name in names[:2])
        difference = max(max(abs(a[2] - b[2]), abs(a[3] - b[3]))
                         for a, b in zip(first, second, strict=True))
        print(f"largest per-run test metric difference, {names[0]} vs {names[1]}: "
              f"{difference:.2e}")


if __name__ == "__main__":
    main()

"""Does a second process pay on this CPU? A short measurement, cached per machine.

Whether N single-thread processes train faster than one process on N threads depends on the
CPU, not on the code: on an Intel AMX machine the article's CNN gained 1.75-1.85x from a
second process, on an AMD EPYC with AVX512-BF16 1.13-1.29x (GUIDE, benchmarks/README.md),
and there Ray's start-up and scheduling ate the gain. So `choose.choose_engine` measures it
once per machine and keeps the figure:

- the bare training step of the article's CNN (`bare_step_rate`: Keras `fit` on the
  2x2-pooled 600x200 input, batch 32, the configuration's precision), first in one process
  on all the workers' threads, then in N single-thread processes at once (they start their
  timed rounds together, after each has imported Keras and traced its step);
- `Calibration.gain` = the N processes' images/s together over the one process's.

Each process imports TensorFlow (~6 s) and traces the step (~3 s); with three rounds of 8
steps the whole measurement takes about 30 s on 2 cores, once: the result is kept in
`CALIBRATION_FILE` under the image cache folder (`$TOONVISION_CACHE`, else
`~/.cache/toonvision`), one entry per CPU model, CPU count, workers, threads and Keras
backend. Delete the file to measure again (after a hardware or TensorFlow change).

Run as a module (`python -m toonvision.model_utils.engine.measurement THREADS`), it is one
measuring process: it pins itself to THREADS threads, traces the step, prints `ready`, waits
for a line on stdin, times its rounds and prints their images/s as JSON.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from toonvision import ToonvisionError
from toonvision.fileio import write_text_atomic

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "engine-calibration.json"
CALIBRATION_VERSION = 1           # entries of another version are measured again
CALIBRATION_IMAGE_SIZE = (600, 200)  # the article's; the model trains on its 2x2-pooled half
CALIBRATION_STEPS = 8             # training steps (batch 32) per timed round
CALIBRATION_ROUNDS = 3            # timed rounds per process; the median counts
CALIBRATION_TIMEOUT = 300         # seconds a measuring process may take


@dataclass(frozen=True)
class Calibration:
    """How fast the bare training step runs in one process and in several at once.

    Attributes:
        machine: the CPU model, as `machine_key` names it.
        cpus: the CPUs of this machine.
        workers: the single-thread (or `threads`-thread) processes measured together.
        threads: the threads of each of those processes.
        one_process: images/s of one process on `workers * threads` threads.
        together: images/s of the `workers` processes together.
        seconds: how long the measurement took.
        measured_at: when (ISO 8601, UTC).
        load: the 1-minute load average just before (0: unknown). Threads of one process
            wait for each other when other programs hold the cores, processes do not: on a
            busy machine the gain comes out too high (2.5x measured at load 9 on 2 cores
            where the idle figure is 1.1-1.3x).
    """

    machine: str
    cpus: int
    workers: int
    threads: int
    one_process: float
    together: float
    seconds: float = 0.0
    measured_at: str = ""
    load: float = 0.0

    @property
    def gain(self) -> float:
        """The workers' throughput together over one process's (1.0: a second one gains
        nothing)."""
        return self.together / self.one_process if self.one_process > 0 else 0.0

    @property
    def busy(self) -> bool:
        """Whether other programs held more than half the CPUs when it was measured."""
        return self.load > self.cpus / 2


def machine_key() -> str:
    """The CPU model of this machine (from /proc/cpuinfo, else `platform`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def calibration_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where calibrations are kept: `CALIBRATION_FILE` in `cache_dir` or the image cache."""
    from toonvision.data_processing.dataset import default_cache_dir

    return Path(cache_dir or default_cache_dir()) / CALIBRATION_FILE


def _entry_key(machine: str, cpus: int, workers: int, threads: int) -> str:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return f"v{CALIBRATION_VERSION}|{machine}|{cpus} cpus|{workers}x{threads}|{backend}"


def _read_entries(path: Path) -> dict[str, dict]:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def cached_calibration(workers: int, threads: int = 1,
                       cache_dir: str | os.PathLike | None = None,
                       cpus: int | None = None) -> Calibration | None:
    """The kept calibration of `workers` x `threads` on this machine, or None.

    An unreadable or foreign file counts as none (it is measured again and rewritten).

    Args:
        workers: the processes measured together.
        threads: the threads of each.
        cache_dir: the folder of `CALIBRATION_FILE` (None: the image cache's).
        cpus: this machine's CPUs (None: `os.cpu_count()`).
    """
    cpus = cpus or os.cpu_count() or 1
    entry = _read_entries(calibration_path(cache_dir)).get(
        _entry_key(machine_key(), cpus, workers, threads))
    try:
        return Calibration(**entry) if entry else None
    except TypeError:
        return None


def store_calibration(calibration: Calibration,
                      cache_dir: str | os.PathLike | None = None) -> Path:
    """Adds `calibration` to the kept ones (an atomic rewrite of the file); returns its path."""
    path = calibration_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = _read_entries(path)
    entries[_entry_key(calibration.machine, calibration.cpus, calibration.workers,
                       calibration.threads)] = asdict(calibration)
    write_text_atomic(path, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return path


def measure_calibration(workers: int, threads: int = 1, steps: int = CALIBRATION_STEPS,
                        rounds: int = CALIBRATION_ROUNDS) -> Calibration:
    """Measures the bare step in one process on `workers * threads` threads, then in
    `workers` processes of `threads` threads at once (see the module's docstring).

    Raises:
        ToonvisionError: when a measuring process fails or takes too long.
    """
    start = time.monotonic()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    one = _measure([workers * threads], steps, rounds)
    together = _measure([threads] * workers, steps, rounds)
    return Calibration(
        machine=machine_key(), cpus=os.cpu_count() or 1, workers=workers, threads=threads,
        one_process=round(statistics.median(one[0]), 1),
        together=round(statistics.median(sum(values) for values in zip(*together,
                                                                         strict=True)), 1),
        seconds=round(time.monotonic() - start, 1),
        measured_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        load=round(load, 2))


def _measure(thread_counts: Sequence[int], steps: int, rounds: int) -> list[list[float]]:
    """Starts one measuring process per entry, lets them time their rounds together, and
    returns each one's images/s per round."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                   "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    children = [subprocess.Popen(
        [sys.executable, "-m", __name__, str(threads), str(steps), str(rounds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment) for threads in thread_counts]
    try:
        for child in children:   # each has imported Keras and traced its step
            if child.stdout.readline().strip() != "ready":
                raise ToonvisionError(f"the engine calibration's process failed: "
                                      f"{child.communicate(timeout=30)[1][-1000:]}")
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            output, errors = child.communicate(timeout=CALIBRATION_TIMEOUT)
            if child.returncode:
                raise ToonvisionError(f"the engine calibration's process failed: "
                                      f"{errors[-1000:]}")
            results.append(json.loads(output.strip().splitlines()[-1]))
        return results
    except subprocess.TimeoutExpired:
        raise ToonvisionError(f"the engine calibration took over {CALIBRATION_TIMEOUT} s "
                              "(a very busy machine?); give --workers to choose") from None
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def bare_step_rate(threads: int, steps: int = CALIBRATION_STEPS,
                   rounds: int = CALIBRATION_ROUNDS,
                   image_size: tuple[int, int] = CALIBRATION_IMAGE_SIZE,
                   ready: object = None) -> list[float]:
    """Images per second of Keras `fit` alone on the article's CNN, in this process pinned
    to `threads` threads: none of the engine (no feed, no evaluation), on the pooled input
    the trainer trains on.

    Args:
        threads: the threads to pin this process to (before TensorFlow starts).
        steps: training steps (batch 32) per round.
        rounds: timed rounds.
        image_size: the model's input (height, width); it trains on the pooled half.
        ready: called (without arguments) after the step is traced, before the rounds.

    Returns:
        The images/s of each round.
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
    batch = 32
    rng = np.random.default_rng(threads)
    x = rng.integers(0, 255, size=(batch * steps, image_size[0] // 2, image_size[1] // 2, 3),
                     dtype=np.uint8)
    y = (np.arange(len(x)) % 2).reshape(-1, 1).astype("float32")
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)       # trace
    if callable(ready):
        ready()
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        rates.append(len(x) / (time.perf_counter() - start))
    keras.backend.clear_session()
    return rates


def _main(arguments: list[str]) -> None:
    """One measuring process: THREADS [STEPS ROUNDS] (see the module's docstring)."""
    threads, steps, rounds = (int(value) for value in (arguments + ["8", "3"])[:3])

    def ready() -> None:
        print("ready", flush=True)
        sys.stdin.readline()

    print(json.dumps(bare_step_rate(threads, steps, rounds, ready=ready)), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])

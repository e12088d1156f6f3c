"""Tests of model_utils.engine: the serial engine and the Ray engine give the same comparison.

The Ray tests start a real local Ray instance with 2 workers. A fake trainer (metrics that
depend only on the configuration and the seed, some runs slow so that they finish out of
order) checks the driver's bookkeeping and a worker killed mid-run; one slow test trains
real models on tiny crops: the same metrics as the serial engine, a worker and then the
driver killed with SIGKILL, and `--resume`.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import (
    CONFIGS,
    TASK_DATA,
    FakeTrainer,
    assert_consistent,
    fake_settings,
    run_fake,
)
from conftest import (
    write_easy_crops as write_crops,
)

import toonvision.model_utils.engine.choose as choose
import toonvision.model_utils.engine.measurement as calibration
import toonvision.model_utils.engine.serial as engine
from toonvision import ToonvisionError
from toonvision.model_utils.comparison.runlog import LOG_FILE, read_log, select_best
from toonvision.model_utils.comparison.runner import Comparison
from toonvision.model_utils.comparison.settings import plan_comparison
from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE
from toonvision.model_utils.engine.choose import make_engine
from toonvision.model_utils.engine.measurement import Calibration
from toonvision.model_utils.engine.ray_engine import RayEngine
from toonvision.model_utils.engine.serial import SerialEngine

needs_ray = pytest.mark.skipif(not choose.ray_available(),
                               reason="Ray is not installed (pip install 'toonvision[parallel]')")
# Metrics of the serial engine and of 1-thread workers are equal; across thread counts the
# float sums are ordered differently: after 1 epoch on tiny crops they agree to this.
THREAD_TOLERANCE = 1e-3


class SlowFakeTrainer(FakeTrainer):
    """FakeTrainer's metrics; some tasks slow (runs finish out of order), one killable.

    With a `marker` file, the optimized run 2 writes its process id there and waits, the
    first time only, so that the test kills its worker in the middle of the run.
    """

    def __init__(self, config, num_classes, image_size, marker: str | None = None):
        super().__init__(config, num_classes, image_size)
        self.marker = marker

    def run(self, images, y, split, seed, epoch_callback=None):
        if self.marker and (self.config.name, seed) == ("optimized", 2):
            if not Path(self.marker).exists():
                Path(self.marker).write_text(str(os.getpid()))
                time.sleep(60)   # killed before it ends
        time.sleep(0.5 if (seed + len(self.config.name)) % 3 == 0 else 0.02)
        return super().run(images, y, split, seed, epoch_callback)


class FailingTrainer(FakeTrainer):
    """Fails on run 1 of baseline, as a bug or bad data would."""

    def run(self, images, y, split, seed, epoch_callback=None):
        if (self.config.name, seed) == ("baseline", 1):
            raise ValueError("bad data in run 1")
        return super().run(images, y, split, seed, epoch_callback)


# ------------------------------------------------------------------------------------------
# Choosing the engine


def test_one_worker_is_the_serial_engine_and_more_need_the_parallel_extra(monkeypatch):
    assert isinstance(make_engine(1), SerialEngine)
    assert make_engine(1, threads_per_worker=1).threads == 1
    monkeypatch.setattr(choose, "ray_available", lambda: False)
    monkeypatch.setitem(sys.modules, "ray", None)          # `import ray` fails
    assert isinstance(make_engine(None), SerialEngine)     # the default falls back
    with pytest.raises(ToonvisionError, match=r"pip install 'toonvision\[parallel\]'"):
        make_engine(2)
    with pytest.raises(ToonvisionError, match="--workers must be at least 1; got 0"):
        make_engine(0)


def _measured(gain: float, workers: int = 2) -> Calibration:
    return Calibration(machine="test CPU", cpus=workers, workers=workers, threads=1,
                       one_process=100.0, together=100.0 * gain)


@pytest.fixture
def two_cpus_with_ray(monkeypatch, tmp_path):
    """A 2-CPU machine with Ray installed, whose calibration is never measured for real."""
    monkeypatch.setattr(choose.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(choose, "ray_available", lambda: True)
    monkeypatch.setenv("TOONVISION_CACHE", str(tmp_path / "cache"))

    def no_measuring(*_args, **_kwargs):
        raise AssertionError("the test measured the CPU")

    monkeypatch.setattr(choose, "measure_calibration", no_measuring)


def test_without_workers_ray_is_chosen_only_where_the_measured_gain_pays(two_cpus_with_ray):
    engine_, reason = choose.choose_engine(None, runs=6, configs=2, calibration=_measured(1.6))
    assert isinstance(engine_, RayEngine) and (engine_.workers, engine_.threads) == (2, 1)
    assert reason == ("2 Ray workers x 1 thread(s): measured 1.60x one process on this CPU "
                      "(160 against 100 images/s)")

    engine_, reason = choose.choose_engine(None, runs=6, configs=2, calibration=_measured(1.1))
    assert isinstance(engine_, SerialEngine) and engine_.threads is None   # all the cores
    assert reason.startswith("training in this process: 2 1-thread processes measured 1.10x")
    assert "under 1.25x" in reason
    # Measured while other programs held the cores: the line says so, and how to redo it.
    busy = Calibration(machine="test CPU", cpus=2, workers=2, threads=1, one_process=12.2,
                       together=30.3, load=9.0)
    reason = choose.choose_engine(None, runs=6, configs=2, calibration=busy)[1]
    assert reason.endswith("(30 against 12 images/s; measured at load 9: delete "
                           f"{calibration.calibration_path()} on an idle machine to "
                           "measure again)")


def test_too_few_runs_train_in_this_process_whatever_the_gain(two_cpus_with_ray):
    engine_, reason = choose.choose_engine(None, runs=1, configs=2, calibration=_measured(1.9))
    assert isinstance(engine_, SerialEngine)
    assert reason == ("training in this process: 1 run x 2 configurations are too few tasks "
                      "to pay for starting 2 Ray workers")
    # 5 tasks on 2 workers: the last round leaves one idle, 1.3 x 5/6 is under 1.25.
    engine_, _ = choose.choose_engine(None, runs=5, configs=1, calibration=_measured(1.3))
    assert isinstance(engine_, SerialEngine)
    engine_, _ = choose.choose_engine(None, runs=6, configs=1, calibration=_measured(1.3))
    assert isinstance(engine_, RayEngine)


def test_the_calibration_is_measured_once_then_read_from_the_cache(two_cpus_with_ray,
                                                                    monkeypatch, tmp_path):
    measured, told = [], []

    def measure(workers, threads):
        measured.append((workers, threads))
        return Calibration(machine=calibration.machine_key(), cpus=2, workers=workers,
                           threads=threads, one_process=200.0, together=340.0)

    monkeypatch.setattr(choose, "measure_calibration", measure)
    first = choose.choose_engine(None, runs=20, configs=2, on_measure=lambda: told.append(1))
    second = choose.choose_engine(None, runs=20, configs=2, on_measure=lambda: told.append(1))
    assert measured == [(2, 1)] and told == [1]
    assert first[1] == second[1] == ("2 Ray workers x 1 thread(s): measured 1.70x one process "
                                     "on this CPU (340 against 200 images/s)")
    assert calibration.cached_calibration(2, 1).gain == pytest.approx(1.7)
    assert calibration.calibration_path() == tmp_path / "cache" / calibration.CALIBRATION_FILE
    calibration.calibration_path().write_text("not json")     # a broken file: measured again
    choose.choose_engine(None, runs=20, configs=2)
    assert measured == [(2, 1), (2, 1)]


def test_a_short_comparison_never_waits_for_a_first_measurement(two_cpus_with_ray):
    # 6 paired runs of 2 configurations: 12 tasks, under RAY_MEASURE_MIN_TASKS; no
    # measurement is kept, so it trains in this process at once (the fixture forbids measuring).
    engine_, reason = choose.choose_engine(None, runs=6, configs=2)
    assert isinstance(engine_, SerialEngine)
    assert reason == ("training in this process: no engine measurement is kept for this CPU "
                      "yet, and 12 tasks are too few to pay for one (about 30 s); --workers N "
                      "chooses Ray")


def test_the_choice_explains_itself_when_nothing_is_measured(two_cpus_with_ray, monkeypatch):
    assert choose.choose_engine(1, runs=200, configs=2)[1] == (
        "training in this process (--workers 1)")
    engine_, reason = choose.choose_engine(2, runs=1, configs=1)
    assert isinstance(engine_, RayEngine) and engine_.workers == 2
    assert reason == ("training on Ray, 2 worker(s) x 1 thread(s) on a local Ray instance "
                      "(--workers 2)")
    engine_, reason = choose.choose_engine(None, address="127.0.0.1:6379", runs=1, configs=1)
    assert isinstance(engine_, RayEngine) and reason.endswith("(--address 127.0.0.1:6379)")
    monkeypatch.setattr(choose.os, "cpu_count", lambda: 1)
    assert choose.choose_engine(None, runs=200, configs=2)[1] == (
        "training in this process: 1 CPU(s) leave no room for a second 1-thread worker")
    monkeypatch.setattr(choose, "ray_available", lambda: False)
    assert choose.choose_engine(None, runs=200, configs=2)[1] == (
        "training in this process: Ray is not installed (pip install 'toonvision[parallel]' "
        "to train runs side by side)")
    with pytest.raises(ToonvisionError, match="--threads-per-worker must be at least 1"):
        choose.choose_engine(None, 0, runs=2, configs=2)


def test_the_default_is_one_single_thread_worker_per_cpu():
    assert engine.default_workers(2, 1) == 2
    assert engine.default_workers(16, 4) == 4
    assert engine.default_workers(1, 2) == 1


def test_engine_settings_are_checked_and_stay_out_of_comparison_json(tmp_path):
    plan = plan_comparison({"workers": 2, "threads_per_worker": 1, "address": "auto",
                            "gpus_per_worker": 0.5})
    assert (plan.workers, plan.threads_per_worker, plan.address, plan.gpus_per_worker) == (
        2, 1, "auto", 0.5)
    for key, value in (("workers", 0), ("threads_per_worker", 1.5), ("address", ""),
                       ("gpus_per_worker", -1)):
        with pytest.raises(ToonvisionError, match=key):
            plan_comparison({key: value})
    run_fake(tmp_path / "out", runs=1)
    assert "workers" not in json.loads((tmp_path / "out" / SETTINGS_FILE).read_text())


def test_a_record_without_placement_reads_and_writes_back_unchanged(tmp_path):
    run_fake(tmp_path / "out", runs=1)
    line = json.loads((tmp_path / "out" / LOG_FILE).read_text().splitlines()[0])
    old = {key: value for key, value in line.items() if key not in ("host", "worker",
                                                                     "threads")}
    from toonvision.model_utils.comparison.runlog import RunRecord

    assert RunRecord.from_dict(old).to_dict() == old
    assert RunRecord.from_dict(line).to_dict() == line


# ------------------------------------------------------------------------------------------
# The Ray engine, with a fake trainer


@needs_ray
def test_ray_workers_finish_out_of_order_and_a_killed_worker_is_retried(tmp_path, local_ray):
    runs = 6
    reference = read_log(run_fake(tmp_path / "reference", runs=runs).log_path)[0]
    marker = tmp_path / "kill.pid"
    killed = []

    def kill_when_marked() -> None:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if marker.exists():
            time.sleep(0.2)
            pid = int(marker.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_when_marked, daemon=True)
    killer.start()
    comparison = Comparison.start(tmp_path / "out", fake_settings(runs))
    trainer_factory = functools.partial(SlowFakeTrainer, marker=str(marker))
    updates = list(comparison.run(TASK_DATA, CONFIGS, trainer_factory=trainer_factory,
                                  engine=RayEngine(workers=2, threads_per_worker=1)))
    killer.join(timeout=5)
    assert killed, "the optimized run 2 never started"
    assert [update.run for update in updates] == list(range(runs))
    assert_consistent(tmp_path / "out", runs, reference)   # exactly the serial log
    records, _ = read_log(tmp_path / "out" / LOG_FILE)
    assert {record.worker for record in records} == {"0", "1"}
    assert {record.threads for record in records} == {1}
    assert all(record.host for record in records)


QUIET_DRIVER = """
import sys
from pathlib import Path
from conftest import CONFIGS, TASK_DATA, FakeTrainer, fake_settings
from toonvision.model_utils.comparison.runner import Comparison
from toonvision.model_utils.engine.ray_engine import RAY_LOG_FILE, RayEngine

out = Path(sys.argv[1])
comparison = Comparison.start(out, fake_settings(4))
engine = RayEngine(workers=2, log_file=out / RAY_LOG_FILE)
print(sum(1 for _ in comparison.run(TASK_DATA, CONFIGS, trainer_factory=FakeTrainer,
                                    engine=engine)))
"""


@needs_ray
def test_ray_says_nothing_on_the_terminal_and_its_notices_go_to_the_run_folder(tmp_path):
    # Its own process and its own local Ray: the lines Ray writes when it starts, from
    # Python and from C++, reach the file descriptors this test reads.
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("RAY_AUTH")}   # Ray's default: token auth, noticed
    environment["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])
    done = subprocess.run([sys.executable, "-c", QUIET_DRIVER, str(tmp_path / "out")],
                          env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (done.stdout, done.stderr) == ("4\n", "")
    ray_log = (tmp_path / "out" / "ray.log").read_text()
    assert "Token authentication is enabled" in ray_log
    assert "core_worker" not in ray_log and "53727" not in ray_log
    assert len(read_log(tmp_path / "out" / LOG_FILE)[0]) == 8


@needs_ray
def test_a_run_that_fails_on_a_worker_stops_cleanly_with_the_log_before_it(tmp_path,
                                                                          local_ray):
    comparison = Comparison.start(tmp_path / "out", fake_settings(4))
    with pytest.raises(engine.WorkerError, match=r"run 1 of baseline failed on worker \d: "
                                                 r"ValueError\('bad data in run 1'\)"):
        for _ in comparison.run(TASK_DATA, CONFIGS, trainer_factory=FailingTrainer,
                                engine=RayEngine(workers=2)):
            pass
    records, torn = read_log(tmp_path / "out" / LOG_FILE)
    assert torn == 0 and sorted({record.run for record in records}) in ([], [0])
    resumed = run_fake(tmp_path / "out", runs=4, resume=True)
    assert sorted((record.run, record.config) for record in resumed.records) == sorted(
        (run, config.name) for run in range(4) for config in CONFIGS)


# ------------------------------------------------------------------------------------------
# Real training


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` (Ray's, when `pid` started a local Ray)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


def _metrics(records) -> list[tuple]:
    return [(record.run, record.config, record.split_seed, record.seed, record.history,
             record.validation_metrics, record.test_metrics, record.test_confusion)
            for record in sorted(records, key=lambda item: (item.run, item.config))]


@pytest.mark.slow
@needs_ray
def test_ray_engine_trains_exactly_as_serial_and_survives_a_killed_worker_and_driver(tmp_path):
    from toonvision.cli import main

    write_crops(tmp_path / "data", per_class=10)
    common = ["compare", "--data-dir", str(tmp_path / "data"), "--image-size", "48", "48",
              "--runs", "4", "--epochs", "1", "--cache-dir", str(tmp_path / "cache"),
              "--no-tracking", "--threads-per-worker", "1"]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    errors = tmp_path / "stderr.txt"

    # The serial engine in its own process, pinned to 1 thread: the reference.
    serial = subprocess.run([sys.executable, "-m", "toonvision", *common, "--workers", "1",
                             "--out", str(tmp_path / "serial")], env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            timeout=300)
    assert serial.returncode == 0, serial.stderr[-2000:]
    reference = read_log(tmp_path / "serial" / LOG_FILE)[0]
    assert {record.threads for record in reference} == {1}

    # 2 Ray workers: kill one mid-run after run 0 is logged, then the driver after run 1.
    # A run starts at most 2 runs after the oldest unfinished one (the engine's window).
    out_dir = tmp_path / "ray"
    arguments = [*common, "--workers", "2", "--out", str(out_dir)]
    log = out_dir / LOG_FILE
    with open(errors, "w") as error_file:
        driver = subprocess.Popen([sys.executable, "-m", "toonvision", *arguments],
                                  env=environment, stdout=subprocess.DEVNULL,
                                  stderr=error_file)
    ray_processes: list[int] = []
    killed_worker = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            lines = len(log.read_text().splitlines()) if log.is_file() else 0
            ray_processes = sorted(set(ray_processes) | set(_descendants(driver.pid)))
            if killed_worker is None and lines >= 2:
                busy = [pid for pid in ray_processes if _title(pid).startswith("ray::_Worker")]
                if busy:
                    killed_worker = busy[0]
                    os.kill(killed_worker, signal.SIGKILL)
            if killed_worker is not None and lines >= 4:
                break
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait()
        time.sleep(1)
        for pid in set(ray_processes) | set(_descendants(driver.pid)):
            try:          # Ray's agents outlive a killed driver: end the ones it started
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert killed_worker is not None, f"no worker to kill: {errors.read_text()[-2000:]}"
    assert driver.returncode == -signal.SIGKILL, (
        f"the comparison ended before the kill: {errors.read_text()[-2000:]}")
    records, _ = read_log(log)
    # Runs 0 and 1 logged (1 after the worker's death), maybe 2; run 3 waited for run 1.
    assert len(records) in (4, 6)

    # Resumed in this process, on Ray again: exactly the serial engine's comparison.
    assert main([*arguments, "--resume"]) == 0
    records, torn = read_log(log)
    assert torn == 0
    assert _metrics(records) == _metrics(reference)
    assert {record.worker for record in records} <= {"0", "1"}
    best = select_best(records)
    for name in ("baseline", "optimized"):
        stored = json.loads((out_dir / f"best_{name}.json").read_text())
        assert stored["run"] == best[name].run
        sidecar = json.loads((out_dir / f"best_{name}.keras.json").read_text())
        assert sidecar["extra"]["run"] == best[name].run
    from toonvision.model_utils.training.model_io import load_model

    model, _ = load_model(out_dir / "best_optimized.keras")
    assert model.inputs[0].shape[1:] == (48, 48, 3)

    # In this process, on its own threads (all cores): equal within float rounding.
    from toonvision.cli import build_parser
    from toonvision.commands._common import task_data_from_args
    from toonvision.model_utils.comparison.run_splits import split_for_run
    from toonvision.model_utils.engine.serial import RunTask
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.trainer import Trainer

    args = build_parser().parse_args(common)
    args.task, args.image_size = "binary", [48, 48]   # the options' defaults, as `run` does
    task_data = task_data_from_args(args, show_progress=False)
    settings = Comparison.load(tmp_path / "serial").settings
    expected = next(record for record in reference
                    if (record.run, record.config) == (2, "optimized"))
    _, split, _ = split_for_run(settings, task_data.y, 2)
    trainer = Trainer(BUILTIN_CONFIGS["optimized"].replace(epochs=1), 2, (48, 48))
    outcome = next(SerialEngine().run(
        [RunTask(run=2, config="optimized", seed=expected.seed, split=split)],
        engine.EngineJob(task_data.images, task_data.y, [trainer.config],
                         lambda *_: trainer, 2, (48, 48))))
    assert outcome.threads != 1 or os.cpu_count() == 1
    for key, value in expected.test_metrics.items():
        assert outcome.result.test_metrics[key] == pytest.approx(value, abs=THREAD_TOLERANCE)

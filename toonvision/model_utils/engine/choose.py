"""Which engine trains a comparison's runs, and why: `choose_engine` (and `make_engine`).

`--workers N` forces it: serial (this process) for 1, Ray otherwise. Without it,
`choose_engine` takes Ray only where it pays on this machine:

1. Ray is installed, and the CPUs hold at least two workers (`serial.default_workers`);
2. there are enough tasks (runs x configurations) to keep every worker busy
   (`defaults.RAY_MIN_TASKS_PER_WORKER` each), so that Ray's start-up (~10 s) and the last
   round's idle workers do not eat the gain;
3. the workers, measured together on this CPU, train at least `defaults.RAY_MIN_GAIN` times
   as fast as one process on all the cores (`calibration`: a ~30 s measurement, once per
   machine, then read from its cache).

Otherwise the runs train in this process. The reason is one line for people, which the
command prints first. Ray itself is not imported here: `ray_available` looks for it without
importing it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from toonvision import ToonvisionError, defaults
from toonvision.model_utils.engine.measurement import (
    Calibration,
    cached_calibration,
    calibration_path,
    measure_calibration,
    store_calibration,
)
from toonvision.model_utils.engine.ray_engine import RAY_LOG_FILE, RayEngine
from toonvision.model_utils.engine.serial import (
    RAY_EXTRA,
    SerialEngine,
    default_workers,
    import_ray,
)


def ray_available() -> bool:
    """Whether Ray can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _check(workers: int | None, threads_per_worker: int | None) -> None:
    if workers is not None and workers < 1:
        raise ToonvisionError(f"--workers must be at least 1; got {workers}")
    if threads_per_worker is not None and threads_per_worker < 1:
        raise ToonvisionError(f"--threads-per-worker must be at least 1; got "
                              f"{threads_per_worker}")


def make_engine(workers: int | None, threads_per_worker: int | None = None,
                address: str | None = None, gpus_per_worker: float = 0.0,
                log_dir: str | os.PathLike | None = None,
                ) -> SerialEngine | RayEngine:
    """The engine of `--workers N` (compare, optimizers, ablate, search): serial for 1, Ray
    otherwise, with no measurement (`choose_engine` decides the default by measuring).

    Args:
        workers: 1 for the serial engine; more for Ray; None: the rule of before
            (`default_workers` over this machine's CPUs, or the cluster's with `address`),
            serial when Ray is not installed.
        threads_per_worker: threads of each worker (None: 1 for Ray workers, the process's
            own for the serial engine).
        address: join this Ray cluster (`auto` or `HOST:PORT`).
        gpus_per_worker: GPU share of each Ray worker.
        log_dir: where Ray's own log lines go (`RAY_LOG_FILE` there) instead of the
            terminal; None: where Ray sends them.

    Raises:
        ToonvisionError: for a bad count, or when Ray is needed and not installed.
    """
    _check(workers, threads_per_worker)
    remote = address is not None or bool(gpus_per_worker)
    if workers is None and not remote:
        if not ray_available():
            return SerialEngine(threads_per_worker)
        workers = default_workers(os.cpu_count() or 1, threads_per_worker or 1)
    if workers == 1 and not remote:
        return SerialEngine(threads_per_worker)
    import_ray()
    return RayEngine(workers, threads_per_worker or 1, address, gpus_per_worker,
                     log_file=None if log_dir is None else Path(log_dir) / RAY_LOG_FILE)


def choose_engine(workers: int | None, threads_per_worker: int | None = None,
                  address: str | None = None, gpus_per_worker: float = 0.0, *,
                  runs: int, configs: int | Sequence[Any],
                  log_dir: str | os.PathLike | None = None,
                  calibration: Calibration | None = None,
                  on_measure: Callable[[], None] | None = None,
                  ) -> tuple[SerialEngine | RayEngine, str]:
    """The engine for a comparison of `runs` x `configs`, and the one line that says why.

    `--workers`, `--address` and `--gpus-per-worker` decide when given (as `make_engine`);
    without them Ray is chosen only where it pays here (the module's docstring).

    Args:
        workers: `--workers` (None: choose).
        threads_per_worker: `--threads-per-worker` (None: 1 on Ray workers, all cores
            serially).
        address: `--address`: a Ray cluster to join.
        gpus_per_worker: `--gpus-per-worker`.
        runs: the runs to train (with `--until-decided`, the most).
        configs: the configurations trained in every run (or their number).
        log_dir: the run folder: Ray's own log lines go to `RAY_LOG_FILE` there instead of
            the terminal; None: where Ray sends them (`-v`).
        calibration: the measurement to decide by; None: the kept one of this machine, or
            a new one (measured now, ~30 s, and kept).
        on_measure: called just before a new measurement starts (to tell the user why
            nothing happens for half a minute).

    Returns:
        (engine, reason), e.g. `(SerialEngine, "training in this process: ...")`.

    Raises:
        ToonvisionError: for a bad count, Ray needed and not installed, or a failed
            measurement.

    Example:
        >>> engine, reason = choose_engine(None, runs=200, configs=2)   # doctest: +SKIP
        >>> reason                                                      # doctest: +SKIP
        '2 Ray workers x 1 thread: measured 1.62x one process on this CPU'
    """
    _check(workers, threads_per_worker)
    engine = make_engine(workers, threads_per_worker, address, gpus_per_worker, log_dir) \
        if workers is not None or address is not None or gpus_per_worker else None
    if isinstance(engine, SerialEngine):
        return engine, "training in this process (--workers 1)"
    if engine is not None:
        given = [f"--{name} {value:g}" if isinstance(value, float) else f"--{name} {value}"
                 for name, value in (("workers", workers), ("address", address),
                                     ("gpus-per-worker", gpus_per_worker)) if value]
        return engine, f"training on Ray, {engine.describe()} ({', '.join(given)})"

    def serial(why: str) -> tuple[SerialEngine, str]:
        return SerialEngine(threads_per_worker), f"training in this process: {why}"

    if not ray_available():
        return serial(f"Ray is not installed (pip install '{RAY_EXTRA}' to train runs "
                      "side by side)")
    threads, cpus = threads_per_worker or 1, os.cpu_count() or 1
    count = default_workers(cpus, threads)
    if count < 2:
        return serial(f"{cpus} CPU(s) leave no room for a second "
                      f"{threads}-thread worker")
    tasks = runs * (configs if isinstance(configs, int) else len(configs))
    if tasks < defaults.RAY_MIN_TASKS_PER_WORKER * count:
        return serial(f"{_plural(runs, 'run')} x {_plural(tasks // max(1, runs), 'configuration')}"
                      f" are too few tasks to pay for starting {count} Ray workers")
    if calibration is None:
        calibration = cached_calibration(count, threads, cpus=cpus)
    if calibration is None and tasks < defaults.RAY_MEASURE_MIN_TASKS:
        return serial(f"no engine measurement is kept for this CPU yet, and {tasks} tasks are "
                      "too few to pay for one (about 30 s); --workers N chooses Ray")
    if calibration is None:
        if on_measure is not None:
            on_measure()
        calibration = measure_calibration(count, threads)
        store_calibration(calibration)
    gain = calibration.gain
    # The last round of tasks may leave workers idle: the gain over the whole comparison.
    effective = gain * tasks / (count * math.ceil(tasks / count))
    measured = (f"measured {gain:.2f}x one process on this CPU "
                f"({calibration.together:.0f} against {calibration.one_process:.0f} "
                f"images/s{_busy_note(calibration)})")
    if effective < defaults.RAY_MIN_GAIN:
        return serial(f"{count} {threads}-thread processes {measured}; under "
                      f"{defaults.RAY_MIN_GAIN:g}x Ray's start-up and scheduling eat the gain")
    return (RayEngine(count, threads, log_file=None if log_dir is None
                      else Path(log_dir) / RAY_LOG_FILE),
            f"{count} Ray workers x {threads} thread(s): {measured}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _busy_note(calibration: Calibration) -> str:
    if not calibration.busy:
        return ""
    return (f"; measured at load {calibration.load:g}: delete {calibration_path()} on an "
            "idle machine to measure again")

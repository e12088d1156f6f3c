"""Which engine trains a comparison's runs: `make_engine` for `--workers N`.

Serial (this process) for one worker; Ray otherwise (`ray_engine.RayEngine`). Ray itself is
not imported here: `ray_available` looks for it without importing it.
"""

from __future__ import annotations

import os

from toonvision import ToonvisionError
from toonvision.model_utils.engine.ray_engine import RayEngine
from toonvision.model_utils.engine.serial import SerialEngine, default_workers, import_ray


def ray_available() -> bool:
    """Whether Ray can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None



def make_engine(workers: int | None, threads_per_worker: int | None = None,
                address: str | None = None, gpus_per_worker: float = 0.0,
                ) -> SerialEngine | RayEngine:
    """The engine of `--workers N` (compare, optimizers, ablate, search): serial for 1, Ray
    otherwise.

    Args:
        workers: 1 for the serial engine; more for Ray; None: the default rule
            (`default_workers` over this machine's CPUs, or the cluster's with `address`),
            serial when Ray is not installed.
        threads_per_worker: threads of each worker (None: 1 for Ray workers, the process's
            own for the serial engine).
        address: join this Ray cluster (`auto` or `HOST:PORT`).
        gpus_per_worker: GPU share of each Ray worker.

    Raises:
        ToonvisionError: for a bad count, or when Ray is needed and not installed.
    """
    if workers is not None and workers < 1:
        raise ToonvisionError(f"--workers must be at least 1; got {workers}")
    if threads_per_worker is not None and threads_per_worker < 1:
        raise ToonvisionError(f"--threads-per-worker must be at least 1; got "
                              f"{threads_per_worker}")
    remote = address is not None or bool(gpus_per_worker)
    if workers is None and not remote:
        if not ray_available():
            return SerialEngine(threads_per_worker)
        workers = default_workers(os.cpu_count() or 1, threads_per_worker or 1)
    if workers == 1 and not remote:
        return SerialEngine(threads_per_worker)
    import_ray()
    return RayEngine(workers, threads_per_worker or 1, address, gpus_per_worker)

"""The Ray engine of `compare --workers N`: runs trained at once on Ray actors.

See `engine` for the contract every engine keeps and docs/parallel.md for its use. Ray is
imported only when `RayEngine.run` starts, so importing this module is cheap.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toonvision import ToonvisionError
from toonvision.model_utils.engine import (
    EngineJob,
    RunOutcome,
    RunTask,
    WorkerError,
    default_workers,
    import_ray,
    pin_threads,
    process_threads,
    thread_environment,
    train_task,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3            # a task is tried at most this often when its worker dies
RESTART_SECONDS = 300       # how long a dead worker may take to be restarted by Ray


class ModelFile:
    """A saved model's file as bytes; `save(path)` writes it (what `save_model_atomic` calls)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model file to `path`."""
        Path(path).write_bytes(self.data)


class _Worker:
    """A Ray actor: holds the data and one trainer per configuration, trains task after task."""

    def __init__(self, index: int, images: np.ndarray, y: np.ndarray, configs: Sequence[Any],
                 trainer_factory: Callable, num_classes: int, image_size: tuple[int, int],
                 threads: int) -> None:
        # The arrays come from the object store: read-only, shared by the machine's workers.
        self.index, self.images, self.y = index, images, y
        self.configs = {config.name: config for config in configs}
        self.trainer_factory, self.num_classes = trainer_factory, num_classes
        self.image_size, self.threads = tuple(image_size), threads
        self.trainers: dict[str, Any] = {}
        pin_threads(threads)

    def describe(self) -> dict[str, Any]:
        """Host, process id and threads of this worker."""
        return {"host": socket.gethostname(), "pid": os.getpid(), "threads": self.threads}

    def train(self, task: RunTask) -> dict[str, Any]:
        """Trains one task; returns its result, confusion matrix, probabilities and model bytes."""
        if task.config not in self.trainers:
            trainer = self.trainer_factory(self.configs[task.config], self.num_classes,
                                           self.image_size)
            pin_threads(self.threads)   # the trainer's imports are in now, no op has run yet
            self.trainers[task.config] = trainer
        trainer = self.trainers[task.config]
        result, confusion, probabilities = train_task(trainer, self.images, self.y, task,
                                                      self.num_classes)
        with tempfile.TemporaryDirectory(prefix="toonvision-model-") as folder:
            path = Path(folder) / f"{task.config}.keras"
            trainer.model.save(str(path))
            model_bytes = path.read_bytes()
        return {"result": result, "confusion": confusion, "probabilities": probabilities,
                "model": model_bytes,
                "host": socket.gethostname(), "pid": os.getpid(),
                "threads": process_threads(self.threads)}


class RayEngine:
    """Trains the tasks on Ray actors, several at once (`compare --workers N`).

    Args:
        workers: the number of workers (actors); None: `default_workers` of the cluster's CPUs.
        threads_per_worker: CPUs (and TensorFlow intra-op threads) of each worker.
        address: an existing Ray cluster to join (`auto`, or `HOST:PORT`); None: start a
            local Ray instance sized to this machine, stopped at the end.
        gpus_per_worker: the share of a GPU each worker asks Ray for (0: none).
        max_attempts: tries of a task whose worker dies under it.

    Example:
        >>> comparison.run(task_data, configs, engine=RayEngine(workers=2))  # doctest: +SKIP
    """

    def __init__(self, workers: int | None = None, threads_per_worker: int = 1,
                 address: str | None = None, gpus_per_worker: float = 0.0,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        if workers is not None and workers < 1:
            raise ToonvisionError(f"workers must be at least 1; got {workers}")
        if threads_per_worker < 1:
            raise ToonvisionError(f"threads per worker must be at least 1; got "
                                  f"{threads_per_worker}")
        if gpus_per_worker < 0:
            raise ToonvisionError(f"GPUs per worker must be 0 or more; got {gpus_per_worker}")
        self.workers = workers
        self.threads = threads_per_worker
        self.address = address
        self.gpus = gpus_per_worker
        self.max_attempts = max_attempts
        self.actors: list[Any] = []
        self.worker_info: list[dict[str, Any]] = []
        self.started = 0   # workers started by the last `run`
        self._data: tuple = ()

    def describe(self) -> str:
        """One line for people: where the runs are trained."""
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        workers = ("one worker per CPU" if self.workers is None
                   else f"{self.workers} worker(s)")
        gpus = f", {self.gpus:g} GPU each" if self.gpus else ""
        return f"{workers} x {self.threads} thread(s){gpus} on {where}"

    def _connect(self, ray: Any) -> bool:
        """Joins or starts Ray; returns whether this engine started it (and must stop it)."""
        if ray.is_initialized():
            return False
        options = {"configure_logging": False, "log_to_driver": False}
        if self.address:
            ray.init(address=self.address, **options)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **options)
        return True

    def run(self, tasks: Iterable[RunTask], job: EngineJob,
            epoch_callback: Callable[[str, int, int, dict[str, float]], None] | None = None,
            ) -> Iterator[RunOutcome]:
        """Trains `tasks` on the workers, yielding each outcome as soon as it is trained.

        Tasks are taken from `tasks` lazily, one per free worker, and none more than
        `max(2, workers)` runs after the oldest unfinished one, so outcomes come out of order
        by a few runs at most. `epoch_callback` is not called (the
        epochs happen in other processes).

        Raises:
            WorkerError: when a task raised on its worker, or lost its worker
                `max_attempts` times.
        """
        ray = import_ray()
        started = self._connect(ray)
        try:
            yield from self._run(ray, iter(tasks), job)
        finally:
            for actor in self.actors:
                ray.kill(actor, no_restart=True)
            self.actors, self._data = [], ()
            if started:
                ray.shutdown()

    def _start_workers(self, ray: Any, job: EngineJob) -> None:
        count = self.workers
        if count is None:
            count = default_workers(ray.cluster_resources().get("CPU", 1), self.threads)
        environment = {**thread_environment(self.threads),
                       "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
                       "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        if self.address is None:   # a local Ray: workers import what this process imports
            environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        actor_class = ray.remote(_Worker).options(
            num_cpus=self.threads, num_gpus=self.gpus, max_restarts=self.max_attempts,
            max_task_retries=0, runtime_env={"env_vars": environment})
        # Kept referenced while the actors live: a restarted actor reads them again.
        self._data = images, y = ray.put(np.asarray(job.images)), ray.put(np.asarray(job.y))
        self.actors = [actor_class.remote(index, images, y, list(job.configs),
                                          job.trainer_factory, job.num_classes,
                                          tuple(job.image_size), self.threads)
                       for index in range(count)]
        self.worker_info = ray.get([actor.describe.remote() for actor in self.actors])
        self.started = count
        logger.info("started %d Ray workers: %s", count, self.worker_info)

    def _run(self, ray: Any, tasks: Iterator[RunTask], job: EngineJob) -> Iterator[RunOutcome]:
        from ray.exceptions import RayActorError, RayTaskError

        self._start_workers(ray, job)
        idle = collections.deque(range(len(self.actors)))
        retries: collections.deque[RunTask] = collections.deque()
        # A task in flight, or (task None) a ping of a worker Ray is restarting.
        in_flight: dict[Any, tuple[int, RunTask | None]] = {}
        waiting_since: dict[int, float] = {}
        # Tasks not yet yielded, per run: a task starts at most `window` runs after the
        # oldest of them, which bounds the outcomes the comparison holds back for run order.
        unfinished: collections.Counter[int] = collections.Counter()
        window = max(2, len(self.actors))
        upcoming: RunTask | None = None
        more = True
        while True:
            while idle and (retries or more):
                if retries:
                    task = retries.popleft()
                    worker = next((index for index in idle if index != task.avoid), idle[0])
                    idle.remove(worker)
                else:
                    upcoming = upcoming or next(tasks, None)
                    if upcoming is None:
                        more = False
                        break
                    if unfinished and upcoming.run >= min(unfinished) + window:
                        break
                    task, upcoming = upcoming, None
                    unfinished[task.run] += 1
                    worker = idle.popleft()
                in_flight[self.actors[worker].train.remote(task)] = (worker, task)
            if not in_flight:
                if retries:
                    raise WorkerError(f"no worker is left for run {retries[0].run} of "
                                      f"{retries[0].config}")
                return
            (reference,), _ = ray.wait(list(in_flight), num_returns=1)
            worker, task = in_flight.pop(reference)
            try:
                payload = ray.get(reference)
            except RayTaskError as error:
                raise WorkerError(f"run {task.run} of {task.config} failed on worker "
                                  f"{worker}: {error.cause!r}") from None
            except RayActorError as error:
                if task is not None:
                    if task.attempt + 1 >= self.max_attempts:
                        raise WorkerError(f"run {task.run} of {task.config} lost its worker "
                                          f"{self.max_attempts} times; last: {error}") from None
                    logger.warning("worker %d died during run %d of %s; retrying the run",
                                   worker, task.run, task.config)
                    retries.append(dataclasses.replace(task, attempt=task.attempt + 1,
                                                       avoid=worker))
                    waiting_since[worker] = time.monotonic()
                elif time.monotonic() - waiting_since[worker] > RESTART_SECONDS:
                    logger.warning("worker %d did not come back; going on without it", worker)
                    continue
                else:
                    time.sleep(0.25)
                # Back in `idle` once Ray has restarted it (its constructor ran again).
                in_flight[self.actors[worker].describe.remote()] = (worker, None)
                continue
            idle.append(worker)
            if task is None:
                logger.info("worker %d is back: %s", worker, payload)
                continue
            unfinished[task.run] -= 1
            if not unfinished[task.run]:
                del unfinished[task.run]
            yield RunOutcome(task, payload["result"], payload["confusion"],
                             payload["probabilities"], ModelFile(payload["model"]),
                             payload["host"], str(worker), int(payload["threads"]))

"""The Ray engine of `--workers N` (compare, optimizers, ablate, search): runs trained at once
on Ray actors.

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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toonvision import ToonvisionError
from toonvision.model_utils.engine.serial import (
    EngineJob,
    RunOutcome,
    RunTask,
    WorkerActivity,
    WorkerError,
    default_workers,
    import_ray,
    pin_threads,
    process_threads,
    thread_environment,
    train_task,
)
from toonvision.model_utils.engine.trainer_cache import Trainers

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3            # a task is tried at most this often when its worker dies
RESTART_SECONDS = 300       # how long a dead worker may take to be restarted by Ray
RAY_LOG_FILE = "ray.log"    # Ray's own log lines, in the run folder (`RayEngine(log_file=)`)


class ModelFile:
    """A saved model's file as bytes; `save(path)` writes it (what `save_model_atomic` calls)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model file to `path`."""
        Path(path).write_bytes(self.data)


class _Worker:
    """A Ray actor: holds the data and the trainers of the configurations it trained last
    (`Trainers`), trains task after task; each task brings its configuration (`spec`).

    The data comes with every task as the object references of the images and labels (in a
    list, so Ray does not resolve them), and is read from the object store on the first
    task only. Constructor arguments in the object store would make Ray print an error line
    for every restartable actor (ray-project/ray#53727, #57733), though nothing is wrong.
    """

    def __init__(self, index: int, trainer_factory: Callable, num_classes: int,
                 image_size: tuple[int, int], threads: int, keep_trainers: int) -> None:
        self.index = index
        self.images: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.num_classes, self.threads = num_classes, threads
        # Pinned again once a trainer is built: its imports are in then, no op has run yet.
        self.trainers = Trainers(trainer_factory, num_classes, image_size, keep_trainers,
                                 on_build=lambda: pin_threads(threads))
        pin_threads(threads)

    def describe(self) -> dict[str, Any]:
        """Host, process id and threads of this worker."""
        return {"host": socket.gethostname(), "pid": os.getpid(), "threads": self.threads}

    def train(self, task: RunTask, data: list[Any]) -> dict[str, Any]:
        """Trains one task; returns its result, confusion matrix, probabilities and model bytes
        (None when the task does not keep its model).

        Args:
            task: the task.
            data: the object references of the images and the labels; read once. The
                arrays come from the object store: read-only, shared by the machine's
                workers.
        """
        if self.images is None:
            import ray

            self.images, self.y = ray.get(data)
        trainer = self.trainers.get(task.spec)
        result, confusion, probabilities = train_task(trainer, self.images, self.y, task,
                                                      self.num_classes)
        finished = time.time()   # the model file below is the engine's cost, not the run's
        model_bytes = None
        if task.keep_model:
            with tempfile.TemporaryDirectory(prefix="toonvision-model-") as folder:
                path = Path(folder) / f"{task.config}.keras"
                trainer.model.save(str(path))
                model_bytes = path.read_bytes()
        return {"result": result, "confusion": confusion, "probabilities": probabilities,
                "model": model_bytes,
                "host": socket.gethostname(), "pid": os.getpid(),
                "threads": process_threads(self.threads), "finished": finished}


class RayEngine:
    """Trains the tasks on Ray actors, several at once (`compare --workers N`).

    A `run` starts Ray (unless it is running already) and the workers, and stops them when
    it ends. Inside `with engine:` they are kept from one `run` to the next, as long as the
    jobs share their data (`EngineJob.same_setting`; else the workers are started again),
    and stopped at the end of the outermost block: a search's trials then cost no start-up
    (~10 s) each. Every task brings its configuration (`RunTask.spec`), so kept workers train new
    configurations; each keeps the trainers it used last (`EngineJob.trainer_limit`).

    Args:
        workers: the number of workers (actors); None: `default_workers` of the cluster's CPUs.
        threads_per_worker: CPUs (and TensorFlow intra-op threads) of each worker.
        address: an existing Ray cluster to join (`auto`, or `HOST:PORT`); None: start a
            local Ray instance sized to this machine, stopped at the end.
        gpus_per_worker: the share of a GPU each worker asks Ray for (0: none).
        max_attempts: tries of a task whose worker dies under it.
        log_file: where Ray's own log lines in this process go (its notices, warnings; a
            run folder's `RAY_LOG_FILE`), appended, instead of the terminal; None: where
            Ray sends them. The workers' output never reaches the terminal (it stays in
            Ray's session logs, `/tmp/ray/session_latest/logs`).

    Example:
        >>> comparison.run(task_data, configs, engine=RayEngine(workers=2))  # doctest: +SKIP
        >>> with RayEngine(workers=2) as engine:                             # doctest: +SKIP
        ...     for trial in trials:
        ...         list(trial.comparison.run(task_data, trial.configs, engine=engine))
    """

    def __init__(self, workers: int | None = None, threads_per_worker: int = 1,
                 address: str | None = None, gpus_per_worker: float = 0.0,
                 max_attempts: int = MAX_ATTEMPTS,
                 log_file: str | os.PathLike | None = None) -> None:
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
        self.log_file = None if log_file is None else Path(log_file)
        self._restore_logging: Callable[[], None] | None = None
        self.actors: list[Any] = []
        self.worker_info: list[dict[str, Any]] = []
        self.started = 0   # workers started by the last `run`
        self._data: tuple = ()
        self._held = 0   # open `with` blocks: while any, Ray and the workers outlive a run
        self._owns_ray: bool | None = None  # None: not connected; else whether we started it
        self._job: EngineJob | None = None  # the job the workers were started for
        self._busy: dict[int, WorkerActivity] = {}   # worker index -> its task in flight

    def activity(self) -> list[WorkerActivity]:
        """What each worker is doing now; safe to call from another thread than `run`'s."""
        busy = dict(self._busy)
        return [busy.get(index, WorkerActivity(str(index))) for index in range(len(self.actors))]

    def describe(self) -> str:
        """One line for people: where the runs are trained."""
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        workers = ("one worker per CPU" if self.workers is None
                   else f"{self.workers} worker(s)")
        gpus = f", {self.gpus:g} GPU each" if self.gpus else ""
        return f"{workers} x {self.threads} thread(s){gpus} on {where}"

    def __enter__(self) -> RayEngine:
        self._held += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._held -= 1
        if not self._held and self._owns_ray is not None:
            self._stop(import_ray())

    def _stop(self, ray: Any) -> None:
        """Stops the workers, and Ray when this engine started it."""
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors, self._data, self._job = [], (), None
        if self._owns_ray:
            ray.shutdown()
        self._owns_ray = None
        if self._restore_logging is not None:
            self._restore_logging()
            self._restore_logging = None

    def _connect(self, ray: Any) -> bool:
        """Joins or starts Ray; returns whether this engine started it (and must stop it)."""
        if self.log_file is not None and self._restore_logging is None:
            self._restore_logging = divert_ray_logging(self.log_file)
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
        epochs happen in other processes). Inside `with engine:` a run closed early (a
        pruned trial) leaves its tasks in flight to finish on their workers, unused.

        Raises:
            WorkerError: when a task raised on its worker, or lost its worker
                `max_attempts` times.
        """
        ray = import_ray()
        if self._owns_ray is None:
            self._owns_ray = self._connect(ray)
        # Each task brings its configuration: workers kept from an earlier job lack it.
        tasks = (task if task.spec is not None
                 else dataclasses.replace(task, spec=job.by_name[task.config]) for task in tasks)
        try:
            yield from self._run(ray, tasks, job)
        finally:
            if not self._held:
                self._stop(ray)

    def _start_workers(self, ray: Any, job: EngineJob) -> None:
        if self.actors and job.same_setting(self._job):
            return   # kept from an earlier run inside `with`: they hold this job's data
        for actor in self.actors:   # started for other data
            ray.kill(actor, no_restart=True)
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
        # Sent with every task and kept referenced while the actors live: a restarted actor
        # reads them again.
        self._data = (ray.put(np.asarray(job.images)), ray.put(np.asarray(job.y)))
        self.actors = [actor_class.remote(index, job.trainer_factory, job.num_classes,
                                          tuple(job.image_size), self.threads,
                                          job.trainer_limit)
                       for index in range(count)]
        self._job = job
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
        self._busy.clear()
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
                in_flight[self.actors[worker].train.remote(task, list(self._data))] = (
                    worker, task)
                self._busy[worker] = WorkerActivity(
                    str(worker), task.run, task.config, time.monotonic(),
                    epochs=getattr(job.config_for(task), "epochs", None))
            if not in_flight:
                if retries:
                    raise WorkerError(f"no worker is left for run {retries[0].run} of "
                                      f"{retries[0].config}")
                return
            (reference,), _ = ray.wait(list(in_flight), num_returns=1)
            worker, task = in_flight.pop(reference)
            self._busy.pop(worker, None)
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
                             payload["probabilities"],
                             None if payload["model"] is None else ModelFile(payload["model"]),
                             payload["host"], str(worker), int(payload["threads"]),
                             payload["finished"])


class _RayRecords(logging.Handler):
    """Sends the records of Ray's loggers to `target` and every other to `fallback`."""

    def __init__(self, target: logging.Handler, fallback: logging.Handler | None) -> None:
        super().__init__()
        self.target, self.fallback = target, fallback

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "ray" or record.name.startswith("ray."):
            self.target.handle(record)
        elif self.fallback is not None and record.levelno >= self.fallback.level:
            self.fallback.handle(record)


def divert_ray_logging(path: str | os.PathLike) -> Callable[[], None]:
    """Sends the log records of Ray's Python loggers in this process to the file `path`
    (appended) instead of the terminal; returns the function that undoes it.

    Ray's logger "ray" does not pass its records on to the root logger. `ray.init(
    configure_logging=False)` removes its handlers and then warns (`Token authentication is
    enabled ...`), so the record would reach Python's handler of last resort (the terminal):
    the file is that handler too, for Ray's records only, and the handler of "ray".
    """
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ray_logger = logging.getLogger("ray")
    saved = (ray_logger.handlers[:], ray_logger.propagate, logging.lastResort)
    ray_logger.handlers, ray_logger.propagate = [handler], False
    logging.lastResort = _RayRecords(handler, saved[2])

    def undo() -> None:
        ray_logger.handlers, ray_logger.propagate, logging.lastResort = saved
        handler.close()

    return undo

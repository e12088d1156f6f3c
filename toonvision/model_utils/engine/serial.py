"""Where a comparison's (or a study's) runs are trained: in this process, or at once on Ray
workers.

`Comparison.run` turns every missing run into one `RunTask` per configuration and hands them,
in run order, to an engine; the engine trains them and yields one `RunOutcome` per task as it
finishes. The comparison alone writes the log and the files (`compare.py`), in run order, so
the engine decides only where and when a task is trained, never what is logged.

- `SerialEngine` (`compare --workers 1`): today's engine, in this process, one task after
  another; Ray is not imported.
- `ray_engine.RayEngine` (`compare --workers N`): N Ray actors (worker processes, on this
  machine or on a cluster), each with its share of the CPUs (and GPUs). An actor builds and
  traces each configuration's trainer once and then takes tasks one after another,
  re-initialising the model per run, as the serial engine does. The images and labels go
  into Ray's object store once (`ray.put`); every actor on a machine maps the same memory
  (numpy arrays backed by the object store, read-only, no copy). An actor returns the
  `RunResult`, the test confusion matrix and the trained model as the bytes of its `.keras`
  file, so the comparison can keep it as the best model exactly as the serial engine would
  (`ray_engine.ModelFile`).

The optimizer study, the ablation and every trial of a search run on the same engines: they
build `RunTask`s and an `EngineJob` too, score the outcomes' probabilities, and put the
outcomes back in their tasks' order (`in_task_order`). Both engines are context managers:
inside `with engine:` they keep their trainers (the Ray engine its workers) from one `run` to
the next, which a search's trials need.

A task's seeds come from the task (`RunTask.seed`, the split), never from the engine or the
worker, so a run trains the same on any worker; with the same threads per worker the metrics
are equal to the serial engine's, across thread counts they agree to float rounding
(docs/parallel.md).

Faults: a worker that dies mid-task (killed, out of memory, its machine gone) is restarted by
Ray (`max_restarts`), and the driver resubmits its task, preferably to another worker, up to
`ray_engine.MAX_ATTEMPTS` times. A task that raises (bad data, a bug) stops the comparison with a
`WorkerError` naming the run and the configuration; runs already logged stay as they are.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from toonvision import ToonvisionError
from toonvision.model_utils.engine.trainer_cache import TRAINER_CACHE, Trainers

logger = logging.getLogger(__name__)

RAY_EXTRA = "toonvision[parallel]"
LOCAL_WORKER = "local"      # the worker name of the serial engine's records


class WorkerError(ToonvisionError):
    """A run failed on a worker (its error is in the message), or kept losing its worker."""


@dataclass(frozen=True)
class RunTask:
    """One configuration to train in one run.

    Attributes:
        run: the run's number (from 0).
        config: the configuration's name.
        seed: the seed of the weights, shuffling and augmentation.
        split: index arrays "train", "validate", "test".
        attempt: how often the task was tried before (a worker died under it).
        avoid: the worker a retried task should not go back to, when another is free.
        spec: the `TrainingConfig` to train; None: the job's configuration of that name
            (`EngineJob.config_for`). The Ray engine sends it with every task, so that
            workers kept from an earlier job (a search's earlier trial) train configurations
            they were not started with.
        keep_model: whether the outcome needs the trained model (a comparison keeps the
            best; the studies score probabilities only): without it a Ray worker saves and
            sends no model file.
    """

    run: int
    config: str
    seed: int
    split: dict[str, np.ndarray]
    attempt: int = 0
    avoid: int | None = None
    spec: Any = None
    keep_model: bool = True

    @property
    def key(self) -> tuple[int, str]:
        """(run, config): what identifies the task, whatever its attempt."""
        return self.run, self.config


@dataclass
class RunOutcome:
    """What a trained task gives the comparison.

    Attributes:
        task: the task.
        result: the trainer's `RunResult`.
        confusion: the test confusion matrix (rows true, columns predicted).
        probabilities: per out-of-sample part (validate, test), the class probabilities of
            its images in the split's order (`models.predict_parts`), for the store
            the dataset doctor reads.
        model: the trained model, or anything with `save(path)` that writes it
            (`ray_engine.ModelFile` from a worker); None from a Ray worker when the task
            did not keep it (`RunTask.keep_model`).
        host: the machine that trained it.
        worker: which worker of the engine (`local` for the serial engine, else its index).
        threads: the intra-op threads it trained with.
        finished: when its training ended (`time.time()` on the machine that trained
            it), for measuring what follows (`benchmarks/bench_engine.py`).
    """

    task: RunTask
    result: Any
    confusion: list[list[int]]
    probabilities: dict[str, np.ndarray]
    model: Any
    host: str
    worker: str
    threads: int
    finished: float = 0.0


@dataclass(frozen=True)
class WorkerActivity:
    """What one worker is doing now, for a progress display (`engine.activity()`).

    Read by another thread than the one that trains, so an engine replaces a worker's
    activity as a whole and never changes one in place.

    Attributes:
        worker: the worker's name (`local`, or the Ray worker's index).
        run: the run it trains (from 0), or None when it is idle.
        config: the configuration it trains, or None.
        since: when it started the task (`time.monotonic()`), or None.
        epoch: the epochs it finished, when the engine hears of them (the serial engine).
        epochs: the configuration's epochs, or None.
    """

    worker: str
    run: int | None = None
    config: str | None = None
    since: float | None = None
    epoch: int | None = None
    epochs: int | None = None


@dataclass
class EngineJob:
    """What every task of a comparison shares: the data, the configurations, the trainer.

    Attributes:
        images: (N, height, width, 3) uint8 images.
        y: (N,) class indices.
        configs: the `TrainingConfig` of every configuration.
        trainer_factory: builds a trainer from (config, number of classes, image size); for
            the Ray engine it must be importable by name (a class or a module-level function).
        num_classes: the number of classes.
        image_size: (height, width).
        keep_trainers: trainers an engine (each Ray worker) keeps (`Trainers`); None: every
            configuration's, at least `TRAINER_CACHE` (a comparison trains each in every
            run). A study that trains its configurations one after another keeps 1.
    """

    images: np.ndarray
    y: np.ndarray
    configs: Sequence[Any]
    trainer_factory: Callable[[Any, int, tuple[int, int]], Any]
    num_classes: int
    image_size: tuple[int, int]
    keep_trainers: int | None = None
    by_name: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {config.name: config for config in self.configs}

    def config_for(self, task: RunTask) -> Any:
        """The configuration `task` trains: its own `spec`, else the job's of its name."""
        return task.spec if task.spec is not None else self.by_name[task.config]

    @property
    def trainer_limit(self) -> int:
        """How many trainers are kept (`keep_trainers`, or its default)."""
        if self.keep_trainers is not None:
            return max(1, self.keep_trainers)
        return max(TRAINER_CACHE, len(self.configs))

    def same_setting(self, other: EngineJob | None) -> bool:
        """Whether trainers (and Ray workers) made for `other` serve this job too.

        They do when both hold the same image and label arrays (the same objects: a cheap
        test that cannot mistake other data for these, as the kept job holds them), trainer
        factory, number of classes, image size and trainers kept; the configurations may
        differ (`RunTask.spec` carries them).
        """
        return (other is not None and self.images is other.images and self.y is other.y
                and self.trainer_factory == other.trainer_factory
                and self.num_classes == other.num_classes
                and tuple(self.image_size) == tuple(other.image_size)
                and self.trainer_limit == other.trainer_limit)


def pin_threads(threads: int | None) -> None:
    """Keeps this process's training within `threads` cores (None: leave everything as is).

    Sets TensorFlow's intra-op threads to `threads` and inter-op threads to 1 (possible only
    before TensorFlow ran its first operation; later it is logged and left), OpenCV's threads
    and the augmentation feed's workers (`augment.AUGMENTATION_WORKERS`). Modules not yet
    imported are not imported: the environment (`TF_NUM_INTRAOP_THREADS`, ...) covers them.
    """
    if threads is None:
        return
    if "tensorflow" not in sys.modules:   # read when TensorFlow starts
        os.environ.update(thread_environment(threads))
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)
    augment = sys.modules.get("toonvision.model_utils.training.augment")
    if augment is not None:
        augment.AUGMENTATION_WORKERS = threads
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None:
        threading = tensorflow.config.threading
        if (threading.get_intra_op_parallelism_threads(),
                threading.get_inter_op_parallelism_threads()) != (threads, 1):
            try:
                threading.set_intra_op_parallelism_threads(threads)
                threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:   # TensorFlow already ran: its pools are made
                logger.warning("TensorFlow is already initialised: cannot pin it to %d "
                               "thread(s) in this process", threads)


def thread_environment(threads: int) -> dict[str, str]:
    """The environment variables that pin TensorFlow and OpenMP to `threads` threads."""
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": str(threads)}


def process_threads(pinned: int | None) -> int:
    """The intra-op threads this process trains with: TensorFlow's setting, or its
    environment variable, or (before TensorFlow is loaded) `pinned`, else all the CPUs."""
    tensorflow = sys.modules.get("tensorflow")
    threads = tensorflow.config.threading.get_intra_op_parallelism_threads() if tensorflow else 0
    if not threads and "TF_NUM_INTRAOP_THREADS" in os.environ:
        threads = int(os.environ["TF_NUM_INTRAOP_THREADS"])
    if not threads and tensorflow is None:
        threads = pinned or 0
    return int(threads or os.cpu_count() or 1)


def train_task(trainer: Any, images: np.ndarray, y: np.ndarray, task: RunTask,
               num_classes: int,
               epoch_callback: Callable[[int, dict[str, float]], None] | None = None,
               ) -> tuple[Any, list[list[int]], dict[str, np.ndarray]]:
    """Trains one task with `trainer`.

    Returns:
        Its `RunResult`, the test confusion matrix, and the validate and test probabilities
        (one prediction pass over the out-of-sample images serves both). The result's
        validation and test metrics gain `ece` and `brier` (`calibration.calibration_scores`
        of those probabilities: no other pass).
    """
    from toonvision.model_utils.statistics.calibration import calibration_scores
    from toonvision.model_utils.training.models import predict_parts

    result = trainer.run(images, y, task.split, seed=task.seed, epoch_callback=epoch_callback)
    probabilities = predict_parts(trainer.model, images, task.split)
    for part, metrics in (("validate", result.validation_metrics),
                          ("test", result.test_metrics)):
        if part in probabilities:
            indices = np.asarray(task.split[part], dtype=np.int64)
            metrics.update(calibration_scores(probabilities[part], np.asarray(y)[indices]))
    test = np.asarray(task.split["test"], dtype=np.int64)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    if len(test):
        np.add.at(confusion, (np.asarray(y)[test], probabilities["test"].argmax(axis=1)), 1)
    return result, confusion.tolist(), probabilities


def in_task_order(outcomes: Generator[RunOutcome, None, None],
                  tasks: Sequence[RunTask]) -> Iterator[RunOutcome]:
    """The outcomes in the order of `tasks`, each as soon as it and all before it are in.

    An engine yields outcomes as tasks finish (on Ray, out of order by a few); a study that
    reports its results in this order gives the same results on every engine.
    """
    keys = [task.key for task in tasks]
    waiting: dict[tuple[int, str], RunOutcome] = {}
    try:
        for outcome in outcomes:
            waiting[outcome.task.key] = outcome
            while keys and keys[0] in waiting:
                yield waiting.pop(keys.pop(0))
    finally:
        outcomes.close()   # stops the engine's tasks when the caller stops early


class SerialEngine:
    """Trains the tasks in this process, one after another (`compare --workers 1`).

    One trainer per configuration is built on first use and reused for every run
    (`Trainers`: the last `EngineJob.trainer_limit` used). Inside `with engine:` the
    trainers are kept from one `run` to the next (a search's trials reuse the reference's),
    as the Ray engine keeps its workers; a `run` outside builds its own. The outcome's model
    is the trainer's live model: the comparison saves it before it asks for the next outcome.

    Args:
        threads: pin this process to that many threads (`pin_threads`); None: as it is.

    Example:
        >>> with SerialEngine(threads=1) as engine:               # doctest: +SKIP
        ...     outcomes = list(engine.run(tasks, job))
    """

    started = 1   # workers that train side by side

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self._held = 0   # `with` blocks entered (nested ones too): trainers outlive a `run`
        self._kept: tuple[EngineJob, Trainers] | None = None   # and the job they serve
        self._activity = WorkerActivity(LOCAL_WORKER)

    def activity(self) -> list[WorkerActivity]:
        """What the one worker (this process) is doing now; safe to call from any thread."""
        return [self._activity]

    def describe(self) -> str:
        """One line for people: where the runs are trained."""
        return f"in this process ({process_threads(self.threads)} thread(s))"

    def __enter__(self) -> SerialEngine:
        self._held += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._held -= 1
        if not self._held:   # the outermost block: a search inside a caller's keeps them
            self._kept = None

    def run(self, tasks: Iterable[RunTask], job: EngineJob,
            epoch_callback: Callable[[str, int, int, dict[str, float]], None] | None = None,
            ) -> Iterator[RunOutcome]:
        """Trains `tasks` in order, yielding each outcome when it is trained."""
        pin_threads(self.threads)
        if self._held and self._kept is not None and job.same_setting(self._kept[0]):
            trainers = self._kept[1]
        else:
            trainers = Trainers(job.trainer_factory, job.num_classes, job.image_size,
                                job.trainer_limit)
            self._kept = (job, trainers) if self._held else None
        host = socket.gethostname()
        for task in tasks:
            trainer = trainers.get(job.config_for(task))
            self._activity = WorkerActivity(LOCAL_WORKER, task.run, task.config,
                                            time.monotonic(), 0,
                                            getattr(job.config_for(task), "epochs", None))

            def callback(epoch: int, logs: dict, task: RunTask = task) -> None:
                self._activity = replace(self._activity, epoch=epoch + 1)
                if epoch_callback is not None:
                    epoch_callback(task.config, task.run, epoch, logs)
            try:
                result, confusion, probabilities = train_task(
                    trainer, job.images, job.y, task, job.num_classes, callback)
            finally:
                self._activity = WorkerActivity(LOCAL_WORKER)
            yield RunOutcome(task, result, confusion, probabilities, trainer.model, host,
                             LOCAL_WORKER, process_threads(self.threads), time.time())


def import_ray() -> Any:
    """Imports Ray, or says how to install it.

    Raises:
        ToonvisionError: when Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise ToonvisionError(
            f"running runs on several workers needs Ray: pip install '{RAY_EXTRA}' (or run "
            "with --workers 1, in this process)") from None
    return ray


def default_workers(cpus: int, threads_per_worker: int) -> int:
    """The default number of workers: one per `threads_per_worker` CPUs, at least 1.

    Measured (benchmarks/README.md): the article's CNN does not scale over threads, but
    independent runs do, so the default is as many one-thread workers as there are CPUs.
    """
    return max(1, int(cpus) // max(1, int(threads_per_worker)))

"""Where a comparison's runs are trained: in this process, or at once on Ray workers.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toonvision import ToonvisionError

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
    """

    run: int
    config: str
    seed: int
    split: dict[str, np.ndarray]
    attempt: int = 0
    avoid: int | None = None

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
            its images in the split's order (`predictions.predict_parts`), for the store
            the dataset doctor reads.
        model: the trained model, or anything with `save(path)` that writes it
            (`ray_engine.ModelFile` from a worker).
        host: the machine that trained it.
        worker: which worker of the engine (`local` for the serial engine, else its index).
        threads: the intra-op threads it trained with.
    """

    task: RunTask
    result: Any
    confusion: list[list[int]]
    probabilities: dict[str, np.ndarray]
    model: Any
    host: str
    worker: str
    threads: int


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
    """

    images: np.ndarray
    y: np.ndarray
    configs: Sequence[Any]
    trainer_factory: Callable[[Any, int, tuple[int, int]], Any]
    num_classes: int
    image_size: tuple[int, int]
    by_name: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {config.name: config for config in self.configs}


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
    augment = sys.modules.get("toonvision.model_utils.augment")
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
        (one prediction pass over the out-of-sample images serves both).
    """
    from toonvision.model_utils.predictions import predict_parts

    result = trainer.run(images, y, task.split, seed=task.seed, epoch_callback=epoch_callback)
    probabilities = predict_parts(trainer.model, images, task.split)
    test = np.asarray(task.split["test"], dtype=np.int64)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    if len(test):
        np.add.at(confusion, (np.asarray(y)[test], probabilities["test"].argmax(axis=1)), 1)
    return result, confusion.tolist(), probabilities


class SerialEngine:
    """Trains the tasks in this process, one after another (`compare --workers 1`).

    One trainer per configuration is built on first use and reused for every run. The
    outcome's model is the trainer's live model: the comparison saves it before it asks for
    the next outcome.

    Args:
        threads: pin this process to that many threads (`pin_threads`); None: as it is.
    """

    started = 1   # workers that train side by side

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def describe(self) -> str:
        """One line for people: where the runs are trained."""
        return f"in this process ({process_threads(self.threads)} thread(s))"

    def run(self, tasks: Iterable[RunTask], job: EngineJob,
            epoch_callback: Callable[[str, int, int, dict[str, float]], None] | None = None,
            ) -> Iterator[RunOutcome]:
        """Trains `tasks` in order, yielding each outcome when it is trained."""
        pin_threads(self.threads)
        trainers: dict[str, Any] = {}
        host = socket.gethostname()
        for task in tasks:
            if task.config not in trainers:
                trainers[task.config] = job.trainer_factory(job.by_name[task.config],
                                                            job.num_classes, job.image_size)
            trainer = trainers[task.config]
            callback = None
            if epoch_callback is not None:
                def callback(epoch: int, logs: dict, task: RunTask = task) -> None:
                    epoch_callback(task.config, task.run, epoch, logs)
            result, confusion, probabilities = train_task(trainer, job.images, job.y, task,
                                                          job.num_classes, callback)
            yield RunOutcome(task, result, confusion, probabilities, trainer.model, host,
                             LOCAL_WORKER, process_threads(self.threads))


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


def ray_available() -> bool:
    """Whether Ray can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def default_workers(cpus: int, threads_per_worker: int) -> int:
    """The default number of workers: one per `threads_per_worker` CPUs, at least 1.

    Measured (benchmarks/README.md): the article's CNN does not scale over threads, but
    independent runs do, so the default is as many one-thread workers as there are CPUs.
    """
    return max(1, int(cpus) // max(1, int(threads_per_worker)))


def make_engine(workers: int | None, threads_per_worker: int | None = None,
                address: str | None = None, gpus_per_worker: float = 0.0,
                ) -> Any:
    """The engine for `compare --workers N`: serial for 1, Ray otherwise.

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
    from toonvision.model_utils.ray_engine import RayEngine

    return RayEngine(workers, threads_per_worker or 1, address, gpus_per_worker)

"""What a comparison asks of an engine, a trainer and a tracker, as typed protocols.

`comparison.runner.Comparison.run`, `comparison.run.run_comparison` and the studies are typed
against these instead of `Any`: `serial.SerialEngine` and `ray_engine.RayEngine` are engines,
`training.trainer.Trainer` is a trainer factory (its class builds one trainer per
configuration), `tracking.RunTracker` is a tracker. A test's fake needs only these methods
(the fakes in `tests/conftest.py` follow them).

Example:
    >>> from toonvision.model_utils.engine.serial import SerialEngine
    >>> isinstance(SerialEngine(), Engine)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from toonvision.model_utils.engine.serial import (
        EngineJob,
        RunOutcome,
        RunTask,
        WorkerActivity,
    )

# (config name, run, epoch, logs): what an engine reports after every epoch (serially).
EpochCallback = Callable[[str, int, int, dict[str, float]], None]


@runtime_checkable
class Engine(Protocol):
    """Trains run tasks and yields their outcomes (`SerialEngine`, `RayEngine`).

    Attributes:
        started: the workers that train side by side (1 serially; Ray: started by the last
            `run`), which divides the runs' training time into wall time.
    """

    started: int

    def run(self, tasks: Iterable[RunTask], job: EngineJob,
            epoch_callback: EpochCallback | None = None) -> Iterator[RunOutcome]:
        """Trains `tasks` of `job`, yielding each outcome when it is trained (any order)."""
        ...

    def describe(self) -> str:
        """One line for people: where the runs are trained."""
        ...

    def activity(self) -> list[WorkerActivity]:
        """What each worker is doing now (safe to call from another thread)."""
        ...

    def __enter__(self) -> Engine:
        ...

    def __exit__(self, *exc_info: object) -> None:
        ...


class Trainer(Protocol):
    """Trains one configuration's model on one split (`training.trainer.Trainer`).

    Attributes:
        model: the model of the last `run` (saved by the comparison when it is the best).
    """

    model: Any

    def run(self, images: np.ndarray, y: np.ndarray, split: Mapping[str, np.ndarray],
            seed: int, epoch_callback: Callable[[int, dict], None] | None = None) -> Any:
        """Trains from fresh weights; returns a `training.trainer.RunResult`-like object."""
        ...


class TrainerFactory(Protocol):
    """Builds a trainer from (config, number of classes, image size): `Trainer` itself.

    On Ray it must be importable by name (a class or a module-level function).
    """

    def __call__(self, config: Any, num_classes: int, image_size: tuple[int, int]) -> Trainer:
        ...


@runtime_checkable
class Tracker(Protocol):
    """Records every trained run (`tracking.RunTracker`: a JSONL file, MLflow when installed).

    Attributes:
        records_path: the file the runs are recorded in.
    """

    records_path: Path

    def log_run(self, name: str, params: Mapping[str, Any],
                history: Mapping[str, Sequence[float]], metrics: Mapping[str, float],
                artifacts: Sequence[Path] = ()) -> None:
        """Records one run: its parameters, per-epoch history, final metrics and files."""
        ...

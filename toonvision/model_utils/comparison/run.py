"""A whole comparison from a plan and a data source: what `toonvision compare` does, as a library.

`start_comparison` does everything before training: it checks the output folder, loads the
data and its groups, resolves the stored settings, checks that every configuration can train
on the data and on the engine (before anything is written), and begins or resumes the
comparison folder, with a tracker. The `ComparisonSession` it returns trains the missing runs
(`ComparisonSession.run`, one `runner.RunUpdate` per run, for a progress display) and ends
with `ComparisonSession.finish`: the stopping rule's record, `summary.csv`, `per_class.csv`
and the kept best models, as a `ComparisonResult`. `run_comparison` is the three in one call.
Figures are drawn by `data_visualization.comparison_figures` from the result's comparison.

Example:
    >>> plan = plan_comparison({"runs": 3, "epochs": 2, "image_size": [64, 64]})  # doctest: +SKIP
    >>> result = run_comparison(plan, DataSource(Path("data")), Path("runs/try"))  # doctest: +SKIP
    >>> print(format_summary(result.summary))                                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import re
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toonvision import ToonvisionError, defaults
from toonvision.model_utils.comparison.data_source import DataSource
from toonvision.model_utils.comparison.runlog import read_stop
from toonvision.model_utils.comparison.runner import Comparison, RunUpdate
from toonvision.model_utils.comparison.settings import ComparisonPlan
from toonvision.model_utils.comparison.stored_settings import (
    ComparisonSettings,
    check_out_dir,
    settings_from_plan,
)
from toonvision.model_utils.comparison.summary import PER_CLASS_FILE, Summary

if TYPE_CHECKING:
    from toonvision.data_processing.dataset import TaskData
    from toonvision.model_utils.comparison.runlog import RunRecord
    from toonvision.model_utils.engine.protocols import Engine, Tracker, TrainerFactory


@dataclass
class ComparisonResult:
    """What a finished (or stopped) comparison gives.

    Attributes:
        comparison: the comparison folder (its log, settings and best models).
        summary: the statistics of its runs (`summary.summarize`).
        best: the kept best run record per configuration.
        stop: with `until_decided`, why and when it stopped (`stopped.json`), else None.
        files: the summary files written (`summary.csv`, `per_class.csv`).
        seconds_per_run: the mean wall time of one run of every configuration on this
            engine (its training time over the workers that trained side by side).
    """

    comparison: Comparison
    summary: Summary
    best: dict[str, RunRecord]
    stop: dict[str, Any] | None
    files: list[Path] = field(default_factory=list)
    seconds_per_run: float = 0.0


@dataclass
class ComparisonSession:
    """A comparison ready to train (`start_comparison`): its data, settings and engine.

    Attributes:
        plan: what was asked for.
        task_data: the loaded images, classes and groups.
        settings: what `comparison.json` keeps.
        comparison: the comparison folder, with the runs already done.
        engine: where the runs train.
        tracker: where every run is recorded, or None.
        trainer_factory: builds a trainer per configuration.
        done: runs already in the log when the session began.
        engine_reason: which engine trains and why, in one line.
    """

    plan: ComparisonPlan
    task_data: TaskData
    settings: ComparisonSettings
    comparison: Comparison
    engine: Engine
    tracker: Tracker | None
    trainer_factory: TrainerFactory
    done: int
    engine_reason: str = ""

    @property
    def out_dir(self) -> Path:
        """The comparison's folder."""
        return self.comparison.out_dir

    def run(self) -> Iterator[RunUpdate]:
        """Trains every missing run (`Comparison.run`), yielding after each is logged."""
        yield from self.comparison.run(self.task_data, list(self.plan.configs),
                                       trainer_factory=self.trainer_factory,
                                       tracker=self.tracker, engine=self.engine)

    def finish(self) -> ComparisonResult:
        """Writes the summary files from the log and returns what the comparison gives.

        One finished run is a result: its summary says that intervals and verdicts need at
        least two runs (`summary.ONE_RUN_NOTE`).

        Raises:
            ToonvisionError: if no run is logged.
        """
        comparison = self.comparison
        summary = comparison.write_summary()
        files = [path for path in (comparison.summary_path, self.out_dir / PER_CLASS_FILE)
                 if path.is_file()]
        return ComparisonResult(comparison, summary, comparison.best_records(),
                                read_stop(comparison.stop_path), files,
                                seconds_per_run(comparison.records) / max(1, self.engine.started))


def default_out_dir(task: str, config_names: Sequence[str]) -> Path:
    """`runs/<task>-<configs>-<UTC timestamp>`, with characters unsafe in names replaced."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{task}-{'-'.join(config_names)}")[:80]
    return defaults.RUNS_DIR / f"{name}-{stamp}"


def prepare_engine(workers: int | None, threads_per_worker: int | None, address: str | None,
                   gpus_per_worker: float, configs: Sequence[Any], num_classes: int,
                   image_size: Sequence[int], engine: Engine | None = None, *,
                   runs: int | None = None, log_dir: Path | None = None,
                   on_measure: Callable[[], None] | None = None) -> tuple[Engine, str]:
    """The engine for these runs, with the reason it was chosen, and `configs` checked first.

    Without `workers` (and without a cluster address or GPUs) the engine chooses itself
    (`engine.choose.choose_engine`): Ray workers only where a second process was measured
    to pay on this CPU and there are enough runs to keep them busy; otherwise this process.
    The serial engine pins this process's threads first (TensorFlow takes its thread counts
    when it runs its first operation). Every configuration's model is then built once, so a
    configuration that cannot train on this data (an image too small for its pooling, say)
    fails here, not after a folder was made or hours of other runs.

    Args:
        workers, threads_per_worker, address, gpus_per_worker: the engine settings.
        configs: the `TrainingConfig`s that will train.
        num_classes: the number of classes.
        image_size: (height, width).
        engine: an engine to use instead of the one the values name (still checked).
        runs: the runs to train (the choice weighs them; None: many).
        log_dir: where Ray's own log lines go (`ray.log`); None: to the terminal.
        on_measure: called before this machine's one-time engine measurement (~30 s).

    Returns:
        (engine, the one line that says which engine and why).

    Raises:
        ToonvisionError: for a bad engine setting, Ray missing, or a configuration that
            cannot be built.
    """
    from toonvision.model_utils.engine.choose import choose_engine
    from toonvision.model_utils.engine.serial import SerialEngine, pin_threads
    from toonvision.model_utils.training.models import make_model

    if engine is None:
        engine, reason = choose_engine(workers, threads_per_worker, address, gpus_per_worker,
                                       runs=runs or defaults.RUNS, configs=configs,
                                       log_dir=log_dir, on_measure=on_measure)
    else:
        reason = f"training {engine.describe()} (the engine given)"
    if isinstance(engine, SerialEngine):
        pin_threads(engine.threads)
    for config in configs:
        make_model(config, num_classes, tuple(image_size))
    return engine, reason


def start_comparison(plan: ComparisonPlan, source: DataSource, out_dir: Path | None = None, *,
                     resume: bool = False, tracking: bool | Tracker = True,
                     engine: Engine | None = None,
                     trainer_factory: TrainerFactory | None = None,
                     decode_progress: Callable[[int, int], None] | None = None,
                     ray_log: bool = True,
                     on_measure: Callable[[], None] | None = None,
                     ) -> ComparisonSession:
    """Everything before training: folder, data, groups, settings, engine, tracker.

    Args:
        plan: the comparison (`settings.plan_comparison`).
        source: the data set.
        out_dir: the comparison's folder, new or empty unless `resume` (default:
            `default_out_dir`).
        resume: continue the comparison in `out_dir` (the same settings; `runs` may grow).
        tracking: record every run (`tracking.RunTracker` in `out_dir`), or a tracker to use.
        engine: where the runs train (default: the plan's engine settings).
        trainer_factory: builds trainers (default: `training.trainer.Trainer`).
        decode_progress: called as `(done, total)` while images are decoded.
        ray_log: send Ray's own log lines to `ray.log` in `out_dir` (False: the terminal).
        on_measure: called before this machine's one-time engine measurement (~30 s).

    Returns:
        The session, its comparison holding the runs already done.

    Raises:
        ExistingFileError: if `out_dir` is not empty and `resume` is off.
        ResumeError: if resuming with other settings, or fewer runs than done.
        ToonvisionError: for bad data, a grouping the data cannot give, or a configuration
            that cannot train on it; nothing is written then.
    """
    if resume and out_dir is None:
        raise ToonvisionError("resuming needs the folder of the comparison to continue (--out)")
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(plan.task,
                                                                          plan.config_names)
    check_out_dir(out_dir, resume)   # before the images are decoded, which may take minutes
    task_data = source.load(plan.task, plan.image_size, decode_progress, plan.resize)
    task_data.groups = source.groups(plan.group_by, task_data.paths)
    settings = settings_from_plan(plan, task_data, source.describe(), task_data.groups,
                                  source.csv_columns())
    # Checked before anything is written: a configuration that cannot train on this data
    # fails here, not after the folder was created. Trainers are built and traced when they
    # first train (one per configuration, kept for every run), so tracing is spread over the
    # runs and TensorFlow's retracing warning does not mistake the builds for a loop.
    engine, engine_reason = prepare_engine(
        plan.workers, plan.threads_per_worker, plan.address, plan.gpus_per_worker,
        plan.configs, len(task_data.class_names), settings.image_size, engine,
        runs=settings.run_count, log_dir=out_dir if ray_log else None, on_measure=on_measure)
    comparison = Comparison.start(out_dir, settings, resume=resume)
    if trainer_factory is None:
        from toonvision.model_utils.training.trainer import Trainer as trainer_factory
    return ComparisonSession(plan, task_data, settings, comparison, engine,
                             make_tracker(out_dir, tracking, f"compare-{out_dir.name}"),
                             trainer_factory,
                             len(comparison.completed_runs()), engine_reason)


def run_comparison(plan: ComparisonPlan, source: DataSource, out_dir: Path | None = None, *,
                   on_update: Callable[[RunUpdate], None] | None = None,
                   **options: Any) -> ComparisonResult:
    """A whole comparison in one call: `start_comparison`, its runs, then `finish`.

    Args:
        plan, source, out_dir: as in `start_comparison`.
        on_update: called with every finished run's `RunUpdate`.
        **options: the keyword arguments of `start_comparison`.
    """
    session = start_comparison(plan, source, out_dir, **options)
    for update in session.run():
        if on_update is not None:
            on_update(update)
    return session.finish()


def seconds_per_run(records: Sequence[RunRecord]) -> float:
    """Mean set-up plus training time of one run of every configuration, from the log."""
    per_run: dict[int, float] = {}
    for record in records:
        per_run[record.run] = per_run.get(record.run, 0.0) + record.total_seconds
    return statistics.fmean(per_run.values()) if per_run else 0.0


def make_tracker(out_dir: Path, tracking: bool | Tracker, experiment: str) -> Tracker | None:
    """The tracker of a study in `out_dir`: None when `tracking` is False, a
    `tracking.RunTracker` of `experiment` when True, else `tracking` itself."""
    if tracking is False:
        return None
    if tracking is True:
        from toonvision.model_utils.tracking import RunTracker

        return RunTracker(out_dir, experiment=experiment)
    return tracking

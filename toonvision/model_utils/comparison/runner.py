"""N paired training runs of several configurations, with a crash-safe log and the best models.

The ToonVision article's protocol: train every configuration (baseline, optimized, ...) many
times, each run on a freshly drawn stratified split, keep the best-evaluated model of each, and
show with averaged learning curves, box plots and summary statistics which configuration is
really better. Run `r` uses the split of seed `seed + r` for every configuration, so the
configurations are compared on the same images (a paired comparison).

Everything lives in one folder per comparison (`runs/NAME/`):

- `comparison.json`: the settings (`stored_settings.ComparisonSettings`: data, task, classes, image
  size, ratios, seed, configurations, number of runs, selection rule, balancing), written
  first; `resume` refuses to continue with different settings.
- `runs.jsonl`: one `runlog.RunRecord` per configuration and finished run, appended when the
  whole run is finished, synced before the next run starts.
- `best_<config>.keras` (with its `ModelInfo` sidecar `best_<config>.keras.json` and its
  confidence rule `best_<config>.keras.confidence.npz`) and
  `best_<config>.json` (the run record of that model), kept in step with the log by
  `best_models.BestModels`.
- `epochs/<config>_run<NNNN>.csv`: the per-epoch history of every run.
- `summary.csv` and `per_class.csv`, written by `Comparison.write_summary` from the log alone
  (`comparison_summary`), and `learning_curves.png`, `best_run_curves.png`, `boxplots.png`,
  `forest.png`, drawn by `data_visualization.comparison_figures.write_comparison_figures`.
- `stopped.json`: with `until_decided`, why and when the comparison stopped. Run r is looked
  at every `look_every` runs and at the cap (`settings.runs`): the paired difference of test
  accuracy, the second configuration minus the first (`comparison_summary.stopping_decision`).
  The decision is a function of the log, so a resume recomputes it: a comparison killed
  between its last run and this file stops at the same look, with the same reason.

A kill at any moment loses at most the run in progress. A new best model is first saved under
`.pending/`; it replaces `best_<config>.*` only after its run's records are in the log. On
resume, records of a run that is not complete (not every configuration logged, or a line torn
by the kill) are dropped by rewriting the log atomically, the best models are reconciled with
the log (`best_models`), and the run is trained again. So the finished log always holds
exactly N runs per configuration, none twice, and `best_<config>.*` is always the model of the
best run in the log.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision import MissingFileError, ToonvisionError
from toonvision.data_processing.dataset import crop_ids
from toonvision.fileio import write_text_atomic
from toonvision.model_utils.comparison.best_models import BestModels
from toonvision.model_utils.comparison.predictions import PredictionStore
from toonvision.model_utils.comparison.run_splits import split_for_run
from toonvision.model_utils.comparison.runlog import (
    LOG_FILE,
    STOP_FILE,
    RunRecord,
    append_records,
    complete_runs,
    is_better,
    read_log,
    select_best,
    track_records,
    write_log,
    write_stop,
)
from toonvision.model_utils.comparison.stored_settings import (  # noqa: F401
    SETTINGS_FILE,
    ComparisonSettings,
    ResumeError,
    check_out_dir,
)
from toonvision.model_utils.comparison.summary import (
    PRIMARY_METRIC,
    SUMMARY_FILE,
    Summary,
    history_table,
    stopping_decision,
    summarize,
    summary_options,
    write_summary_files,
)
from toonvision.model_utils.statistics.sequential import Decision, is_look

if TYPE_CHECKING:
    from toonvision.model_utils.engine.protocols import (
        Engine,
        EpochCallback,
        Tracker,
        TrainerFactory,
    )

logger = logging.getLogger(__name__)

EPOCHS_FOLDER = "epochs"


@dataclass
class RunUpdate:
    """What one finished run changed; yielded by `Comparison.run`.

    Attributes:
        run: the run's number (from 0).
        completed: runs in the log now.
        total: runs to reach.
        records: this run's record per configuration.
        seconds: wall time of this run.
        new_best: the configurations whose best model this run replaced.
        decision: with `until_decided`, the decision of the look after this run (None when
            it was not a look); when it `stopped`, this was the last run.
    """

    run: int
    completed: int
    total: int
    records: list[RunRecord]
    seconds: float
    new_best: list[str] = field(default_factory=list)
    decision: Decision | None = None


class Comparison:
    """One comparison folder: its settings, its log of finished runs and its best models.

    Use `Comparison.start` to begin or resume one, `run` to train what is missing, and
    `write_summary` for the statistics (`comparison_figures.write_comparison_figures` draws
    the figures). `Comparison.load` opens a folder read-only.
    """

    def __init__(self, out_dir: str | os.PathLike, settings: ComparisonSettings,
                 records: Sequence[RunRecord]) -> None:
        self.out_dir = Path(out_dir)
        self.settings = settings
        self.records = list(records)
        self.best_models = BestModels(out_dir)
        self.predictions = PredictionStore(out_dir)
        self._paths: list[Path] = []
        self._y = np.zeros(0, dtype=np.int64)
        self._images: np.ndarray | None = None   # for the kept models' confidence rules
        self._ids: np.ndarray | None = None

    def _crop_ids(self) -> np.ndarray | None:
        """The stable id of every image trained on (hashed once); None when a file is gone.

        The predictions are for the dataset doctor; a comparison goes on without them.
        """
        if self._paths and (self._ids is None or len(self._ids) != len(self._paths)):
            try:
                self._ids = crop_ids(self._paths)
            except MissingFileError as error:
                logger.warning("per-crop predictions are not stored: %s", error)
                self._paths = []
        return self._ids if self._paths else None

    @property
    def log_path(self) -> Path:
        """The run log, `runs.jsonl`."""
        return self.out_dir / LOG_FILE

    @property
    def summary_path(self) -> Path:
        """The summary table, `summary.csv`."""
        return self.out_dir / SUMMARY_FILE

    @property
    def stop_path(self) -> Path:
        """Why and when a comparison run until decided stopped, `stopped.json`."""
        return self.out_dir / STOP_FILE

    def decision(self) -> Decision | None:
        """The stopping rule's decision on the logged runs, when they end at a look.

        Returns:
            None unless the settings ask to run until decided and the number of complete
            runs is one the plan looks at.
        """
        settings, done = self.settings, len(self.completed_runs())
        if not settings.until_decided or not is_look(done, settings.look_every, settings.runs):
            return None
        return stopping_decision(self.records, settings)

    def best_model_path(self, config_name: str) -> Path:
        """Where the best model of a configuration is kept."""
        return self.best_models.model_path(config_name)

    def best_record_path(self, config_name: str) -> Path:
        """Where the run record of that model is kept."""
        return self.best_models.record_path(config_name)

    def best_records(self) -> dict[str, RunRecord]:
        """The best record per configuration among the logged runs, under the settings' rule."""
        return select_best(self.records, self.settings.select)

    def completed_runs(self) -> list[int]:
        """The numbers of the runs in the log."""
        return sorted({int(record.run) for record in self.records})

    def missing_runs(self) -> list[int]:
        """The numbers of the runs still to train."""
        done = set(self.completed_runs())
        return [run for run in range(self.settings.run_count) if run not in done]

    @classmethod
    def load(cls, out_dir: str | os.PathLike) -> Comparison:
        """Opens a comparison folder read-only: its settings and its complete runs.

        Raises:
            FileNotFoundError: if the folder has no `comparison.json`.
        """
        out_dir = Path(out_dir)
        settings_path = out_dir / SETTINGS_FILE
        if not settings_path.is_file():
            raise MissingFileError(f"{out_dir} is not a comparison folder (no {SETTINGS_FILE})")
        settings = ComparisonSettings.from_json(settings_path.read_text(encoding="utf-8"))
        records, _ = read_log(out_dir / LOG_FILE)
        return cls(out_dir, settings, complete_runs(records, settings.config_names))

    @classmethod
    def start(cls, out_dir: str | os.PathLike, settings: ComparisonSettings,
              resume: bool = False) -> Comparison:
        """Begins a comparison in `out_dir`, or resumes the one there.

        Args:
            out_dir: the comparison's folder.
            settings: what to run.
            resume: continue the comparison in `out_dir` (it must have the same settings; the
                number of runs may grow). Without it, `out_dir` must be absent or empty.

        Returns:
            The comparison, with the records of the runs already complete.

        Raises:
            ExistingFileError: if `out_dir` is not empty and `resume` is off.
            ResumeError: if resuming with different settings, or with fewer runs than done.
            ToonvisionError: if the folder is not a comparison's or is inconsistent.
        """
        out_dir = Path(out_dir)
        settings_path = out_dir / SETTINGS_FILE
        non_empty = check_out_dir(out_dir, resume)
        if not settings_path.is_file():
            if non_empty:
                raise ToonvisionError(f"cannot resume in {out_dir}: it is not empty but has no "
                                      f"{SETTINGS_FILE}, so it is not a comparison folder")
            out_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(settings_path, settings.to_json())
            return cls(out_dir, settings, [])

        stored = ComparisonSettings.from_json(settings_path.read_text(encoding="utf-8"))
        differences = settings.differences(stored)
        if settings.until_decided and stored.runs != settings.runs:
            differences.append(f"runs: {stored.runs} there, {settings.runs} now (the cap of a "
                               "comparison run until decided: its looks' boundaries depend "
                               "on it)")
        if differences:
            raise ResumeError(
                f"cannot resume {out_dir}: it was started with other settings ("
                + "; ".join(differences)
                + f"). Use the settings it was started with (its {SETTINGS_FILE}), or choose "
                "another folder",
                differences,
            )
        records, torn = read_log(out_dir / LOG_FILE)
        complete = complete_runs(records, settings.config_names)
        done = len({record.run for record in complete})
        if done > settings.run_count:
            raise ResumeError(f"cannot resume {out_dir} for {settings.run_count} runs: it "
                              f"already has {done} complete runs")
        if torn or len(complete) != len(records):
            logger.info("dropping %d records of unfinished runs from %s",
                        len(records) - len(complete) + torn, out_dir / LOG_FILE)
            write_log(out_dir / LOG_FILE, complete)
        if (stored.runs, stored.source, stored.csv_columns) != (
                settings.runs, settings.source, settings.csv_columns):
            write_text_atomic(settings_path, settings.to_json())
        comparison = cls(out_dir, settings, complete)
        comparison.best_models.reconcile(comparison.best_records(), settings.config_names)
        comparison.predictions.keep_runs(comparison.completed_runs())
        return comparison

    def run(
        self,
        task_data: Any,
        configs: Sequence[Any],
        trainer_factory: TrainerFactory | None = None,
        tracker: Tracker | None = None,
        epoch_callback: EpochCallback | None = None,
        engine: Engine | None = None,
    ) -> Iterator[RunUpdate]:
        """Trains every missing run, yielding after each one is safely logged.

        The engine trains the runs (`engine.SerialEngine` here, `engine.RayEngine` on
        workers) and may finish them out of order; this method alone writes the log, the
        epochs files and the best models, always in run order and a whole run at a time, so
        the folder is the same whichever engine trained it.

        Args:
            task_data: the `dataset.TaskData` the settings were made from; with its `paths`,
                every run's validate and test predictions per crop are stored for the
                dataset doctor (`predictions.PredictionStore`).
            configs: the `model_utils.TrainingConfig` of every configuration, in the settings'
                order.
            trainer_factory: builds a trainer from (config, number of classes, image size);
                default `model_utils.Trainer`. One trainer per configuration (per worker) is
                reused for every run.
            tracker: records every configuration of every run (`protocols.Tracker`, e.g.
                `tracking.RunTracker`); or None.
            epoch_callback: called as `(config name, run, epoch, logs)` after every epoch
                (by the serial engine; Ray workers do not report epochs).
            engine: where the runs are trained (`engine.make_engine`); default
                `engine.SerialEngine()`, in this process.

        Yields:
            One `RunUpdate` per finished run, after its records are in the log. With
            `until_decided` the runs end at the first look that stops (`RunUpdate.decision`),
            recorded in `stopped.json`; a comparison that already stopped trains nothing.

        Raises:
            engine.WorkerError: when a run fails on a worker; the log keeps the runs before.
        """
        from toonvision.model_utils.engine.serial import EngineJob, RunTask, SerialEngine

        names = [config.name for config in configs]
        if names != self.settings.config_names:
            raise ToonvisionError(f"configs {names} are not the comparison's "
                                  f"{self.settings.config_names}")
        if trainer_factory is None:
            from toonvision.model_utils.training.trainer import Trainer as trainer_factory
        engine = engine if engine is not None else SerialEngine()
        best = self.best_records()
        (self.out_dir / EPOCHS_FOLDER).mkdir(parents=True, exist_ok=True)
        decision = self.decision()
        if decision is not None and decision.stopped:
            self._record_stop(decision, overwrite=False)
            return
        # Per-crop predictions need the crops' files for their ids; arrays alone go without.
        self._paths = list(getattr(task_data, "paths", None) or [])
        self._y = np.asarray(task_data.y)
        self._images = task_data.images
        job = EngineJob(images=task_data.images, y=task_data.y, configs=list(configs),
                        trainer_factory=trainer_factory,
                        num_classes=len(self.settings.class_names),
                        image_size=tuple(self.settings.image_size))
        order = self.missing_runs()
        if not order:
            return
        splits: dict[int, tuple[int, dict[str, np.ndarray], dict[str, int]]] = {}

        def tasks() -> Iterator[RunTask]:
            for run in list(order):
                splits[run] = split_for_run(self.settings, task_data.y, run,
                                            getattr(task_data, "groups", None))
                for name in names:
                    yield RunTask(run=run, config=name, seed=self.settings.seed + run,
                                  split=splits[run][1])

        finished: dict[int, dict[str, Any]] = {}
        started = time.perf_counter()
        outcomes = engine.run(tasks(), job, epoch_callback)
        try:
            for outcome in outcomes:
                finished.setdefault(outcome.task.run, {}).setdefault(outcome.task.config,
                                                                      outcome)
                # Runs are logged in run order, each once all its configurations are in.
                while order and len(finished.get(order[0], ())) == len(names):
                    run = order.pop(0)
                    by_config = finished.pop(run)
                    update = self._log_run(run, [by_config[name] for name in names],
                                           splits.pop(run), best, started, tracker, configs)
                    started = time.perf_counter()
                    yield update
                    if update.decision is not None and update.decision.stopped:
                        return
        finally:
            outcomes.close()

    def _log_run(self, run: int, outcomes: Sequence[Any],
                 split: tuple[int, dict[str, np.ndarray], dict[str, int]],
                 best: dict[str, RunRecord], started: float, tracker: Tracker | None,
                 configs: Sequence[Any]) -> RunUpdate:
        """Logs one finished run (its outcome per configuration) and keeps its best models."""
        split_seed, parts, folds = split
        run_records, new_best = [], []
        for outcome in outcomes:
            record = RunRecord.from_result(outcome.result, outcome.task.config, run,
                                           split_seed, parts, outcome.confusion, **folds)
            record.host, record.worker, record.threads = (outcome.host, outcome.worker,
                                                          outcome.threads)
            if is_better(record, best.get(record.config), self.settings.select):
                self.best_models.save_pending(
                    outcome.model, record, self.settings,
                    None if self._images is None else (self._images, self._y, parts))
                new_best.append(record.config)
            _write_epochs_csv(self._epochs_path(record.config, run), record.history)
            run_records.append(record)
        # Predictions first: every run in the log has its per-crop predictions (the doctor's).
        ids = self._crop_ids()
        for outcome in outcomes:
            if ids is not None and outcome.probabilities:
                self.predictions.append(outcome.task.config, run, ids, self._y, parts,
                                        outcome.probabilities)
        append_records(self.log_path, run_records)
        for name in new_best:
            self.best_models.promote(name)
        self.best_models.clear_pending()
        for record in run_records:
            if record.config in new_best:
                best[record.config] = record
        self.records.extend(run_records)
        if tracker is not None:
            track_records(self.out_dir.name, self.settings, self._epochs_path, tracker,
                          configs, run_records)
        decision = self.decision()
        if decision is not None and decision.stopped:
            self._record_stop(decision)
        return RunUpdate(run, len(self.completed_runs()), self.settings.run_count, run_records,
                         time.perf_counter() - started, new_best, decision)

    def _record_stop(self, decision: Decision, overwrite: bool = True) -> None:
        if overwrite or not self.stop_path.is_file():
            write_stop(self.stop_path, decision, self.settings.config_names[:2], PRIMARY_METRIC)

    def _epochs_path(self, config_name: str, run: int) -> Path:
        return self.out_dir / EPOCHS_FOLDER / f"{config_name}_run{run:04d}.csv"

    def write_summary(self) -> Summary:
        """Writes `summary.csv` (and `per_class.csv`) from the log; returns the `Summary`.

        With one finished run the summary holds its metrics and says that intervals and
        verdicts need at least two runs (`summary.ONE_RUN_NOTE`).

        Raises:
            ToonvisionError: if no run is logged.
        """
        if not self.completed_runs():
            raise ToonvisionError(f"{self.out_dir}: a summary needs a finished run; none is "
                                  "logged")
        summary = summarize(self.records, self.settings.config_names,
                            **summary_options(self.settings))
        write_summary_files(self.out_dir, summary)
        return summary


def _write_epochs_csv(path: Path, history: dict[str, list[float]]) -> None:
    write_text_atomic(path, history_table(history).to_csv(index=False))

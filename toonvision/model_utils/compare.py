"""N paired training runs of several configurations, with a crash-safe log and the best models.

The ToonVision article's protocol: train every configuration (baseline, optimized, ...) many
times, each run on a freshly drawn stratified split, keep the best-evaluated model of each, and
show with averaged learning curves, box plots and summary statistics which configuration is
really better. Run `r` uses the split of seed `seed + r` for every configuration, so the
configurations are compared on the same images (a paired comparison).

Everything lives in one folder per comparison (`runs/NAME/`):

- `comparison.json`: the settings (`settings.ComparisonSettings`: data, task, classes, image
  size, ratios, seed, configurations, number of runs, selection rule, balancing), written
  first; `resume` refuses to continue with different settings.
- `runs.jsonl`: one `runlog.RunRecord` per configuration and finished run, appended when the
  whole run is finished, synced before the next run starts.
- `best_<config>.keras` (with its `ModelInfo` sidecar `best_<config>.keras.json`) and
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

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toonvision import ExistingFileError, MissingFileError, ToonvisionError
from toonvision.data_processing.splits import stratified_split
from toonvision.fileio import write_text_atomic
from toonvision.model_utils.best_models import BestModels
from toonvision.model_utils.comparison_summary import (
    PRIMARY_METRIC,
    Summary,
    history_table,
    stopping_decision,
    summarize,
    summary_options,
)
from toonvision.model_utils.runlog import (
    LOG_FILE,
    STOP_FILE,
    RunRecord,
    append_records,
    complete_runs,
    is_better,
    read_log,
    select_best,
    write_log,
    write_stop,
)
from toonvision.model_utils.sequential import Decision, is_look
from toonvision.model_utils.settings import SETTINGS_FILE, ComparisonSettings

logger = logging.getLogger(__name__)

EPOCHS_FOLDER = "epochs"
SUMMARY_FILE = "summary.csv"
PER_CLASS_FILE = "per_class.csv"


class ResumeError(ToonvisionError):
    """A comparison folder cannot be resumed as asked (other settings, or fewer runs).

    Attributes:
        differences: each setting that differs from the folder's (empty when only the
            number of runs is too small).
    """

    def __init__(self, message: str, differences: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.differences = list(differences)


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
        return [run for run in range(self.settings.runs) if run not in done]

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
        if done > settings.runs:
            raise ResumeError(f"cannot resume {out_dir} for {settings.runs} runs: it already "
                              f"has {done} complete runs")
        if torn or len(complete) != len(records):
            logger.info("dropping %d records of unfinished runs from %s",
                        len(records) - len(complete) + torn, out_dir / LOG_FILE)
            write_log(out_dir / LOG_FILE, complete)
        if stored.runs != settings.runs or stored.source != settings.source:
            write_text_atomic(settings_path, settings.to_json())
        comparison = cls(out_dir, settings, complete)
        comparison.best_models.reconcile(comparison.best_records(), settings.config_names)
        return comparison

    def run(
        self,
        task_data: Any,
        configs: Sequence[Any],
        trainer_factory: Callable[[Any, int, tuple[int, int]], Any] | None = None,
        tracker: Any = None,
        epoch_callback: Callable[[str, int, int, dict[str, float]], None] | None = None,
    ) -> Iterator[RunUpdate]:
        """Trains every missing run, yielding after each one is safely logged.

        Args:
            task_data: the `dataset.TaskData` the settings were made from.
            configs: the `model_utils.TrainingConfig` of every configuration, in the settings'
                order.
            trainer_factory: builds a trainer from (config, number of classes, image size);
                default `model_utils.Trainer`. One trainer per configuration is reused for
                every run.
            tracker: an object with `log_run(name, params, history, metrics, artifacts)`
                (`tracking.RunTracker`), called for every configuration of every run; or None.
            epoch_callback: called as `(config name, run, epoch, logs)` after every epoch.

        Yields:
            One `RunUpdate` per finished run, after its records are in the log. With
            `until_decided` the runs end at the first look that stops (`RunUpdate.decision`),
            recorded in `stopped.json`; a comparison that already stopped trains nothing.
        """
        names = [config.name for config in configs]
        if names != self.settings.config_names:
            raise ToonvisionError(f"configs {names} are not the comparison's "
                                  f"{self.settings.config_names}")
        if trainer_factory is None:
            from toonvision.model_utils.trainer import Trainer as trainer_factory
        trainers: dict[str, Any] = {}
        best = self.best_records()
        image_size = tuple(self.settings.image_size)
        num_classes = len(self.settings.class_names)
        (self.out_dir / EPOCHS_FOLDER).mkdir(parents=True, exist_ok=True)
        decision = self.decision()
        if decision is not None and decision.stopped:
            self._record_stop(decision, overwrite=False)
            return
        for run in self.missing_runs():
            started = time.perf_counter()
            split_seed = self.settings.seed + run
            split = self._split(task_data.y, split_seed)
            run_records, new_best = [], []
            for config in configs:
                if config.name not in trainers:
                    trainers[config.name] = trainer_factory(config, num_classes, image_size)
                trainer = trainers[config.name]
                callback = None
                if epoch_callback is not None:
                    def callback(epoch: int, logs: dict, name: str = config.name,
                                 run: int = run) -> None:
                        epoch_callback(name, run, epoch, logs)
                result = trainer.run(task_data.images, task_data.y, split, seed=split_seed,
                                     epoch_callback=callback)
                confusion = test_confusion(trainer.model, task_data.images, task_data.y,
                                           split["test"], num_classes)
                record = RunRecord.from_result(result, config.name, run, split_seed, split,
                                               confusion)
                if is_better(record, best.get(config.name), self.settings.select):
                    self.best_models.save_pending(trainer.model, record, self.settings)
                    new_best.append(config.name)
                _write_epochs_csv(self._epochs_path(config.name, run), record.history)
                run_records.append(record)
            append_records(self.log_path, run_records)
            for name in new_best:
                self.best_models.promote(name)
            self.best_models.clear_pending()
            for record in run_records:
                if record.config in new_best:
                    best[record.config] = record
            self.records.extend(run_records)
            if tracker is not None:
                self._track(tracker, configs, run_records)
            decision = self.decision()
            if decision is not None and decision.stopped:
                self._record_stop(decision)
            yield RunUpdate(run, len(self.completed_runs()), self.settings.runs, run_records,
                            time.perf_counter() - started, new_best, decision)
            if decision is not None and decision.stopped:
                return

    def _record_stop(self, decision: Decision, overwrite: bool = True) -> None:
        if overwrite or not self.stop_path.is_file():
            write_stop(self.stop_path, decision, self.settings.config_names[:2], PRIMARY_METRIC)

    def _split(self, y: np.ndarray, split_seed: int) -> dict[str, np.ndarray]:
        from toonvision.data_processing.splits import balance_indices

        split = stratified_split(y, self.settings.ratios, seed=split_seed)
        if self.settings.balance != "none":
            split["train"] = balance_indices(split["train"], y, self.settings.balance,
                                             seed=split_seed)
        return split

    def _epochs_path(self, config_name: str, run: int) -> Path:
        return self.out_dir / EPOCHS_FOLDER / f"{config_name}_run{run:04d}.csv"

    def _track(self, tracker: Any, configs: Sequence[Any],
               run_records: Sequence[RunRecord]) -> None:
        fields = {config.name: dataclasses.asdict(config) for config in configs}
        for record in run_records:
            params = {
                **fields[record.config],
                "run": record.run, "split_seed": record.split_seed,
                "task": self.settings.task, "image_size": self.settings.image_size,
                "balance": self.settings.balance, "comparison": self.out_dir.name,
            }
            metrics = {f"test_{key}": value for key, value in record.test_metrics.items()}
            metrics.update({f"validation_{key}": value
                            for key, value in record.validation_metrics.items()})
            metrics["epochs_run"] = record.epochs_run
            try:
                tracker.log_run(f"{record.config}-run{record.run:04d}", params,
                                record.history, metrics,
                                [self._epochs_path(record.config, record.run)])
            except Exception as error:  # tracking must never stop a long comparison
                logger.warning("experiment tracking failed for run %s of %s: %s",
                               record.run, record.config, error)

    def write_summary(self) -> Summary:
        """Writes `summary.csv` (and `per_class.csv`) from the log; returns the `Summary`.

        Raises:
            ToonvisionError: if fewer than 2 runs are logged.
        """
        if len(self.completed_runs()) < 2:
            raise ToonvisionError(f"{self.out_dir}: a summary needs at least 2 finished runs")
        summary = summarize(self.records, self.settings.config_names,
                            **summary_options(self.settings))
        write_summary_files(self.out_dir, summary)
        return summary


def write_summary_files(out_dir: str | os.PathLike, summary: Summary) -> list[Path]:
    """Writes `summary.csv` and, when there are per-class metrics, `per_class.csv`."""
    paths = [Path(out_dir) / SUMMARY_FILE]
    write_text_atomic(paths[0], summary.table.to_csv(index=False))
    if summary.per_class is not None:
        paths.append(Path(out_dir) / PER_CLASS_FILE)
        write_text_atomic(paths[1], summary.per_class.to_csv(index=False))
    return paths


def test_confusion(model: Any, images: np.ndarray, y: np.ndarray, indices: np.ndarray,
                   num_classes: int) -> list[list[int]]:
    """The confusion matrix of `model` on the test images (rows true, columns predicted)."""
    from toonvision.model_utils.models import predict_probabilities

    indices = np.asarray(indices, dtype=np.int64)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    if len(indices):
        predicted = predict_probabilities(model, images[indices]).argmax(axis=1)
        np.add.at(matrix, (np.asarray(y)[indices], predicted), 1)
    return matrix.tolist()


def check_out_dir(out_dir: str | os.PathLike, resume: bool) -> bool:
    """Checks that a comparison may be written to `out_dir`; returns whether it is non-empty.

    Raises:
        ToonvisionError: if `out_dir` is a file.
        ExistingFileError: if it is a non-empty folder and `resume` is off.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ToonvisionError(f"{out_dir} is a file, not a folder")
    non_empty = out_dir.is_dir() and any(out_dir.iterdir())
    if non_empty and not resume:
        raise ExistingFileError(
            f"{out_dir} already exists and is not empty; resume the comparison there, or "
            "choose another folder (nothing was changed)"
        )
    return non_empty


def _write_epochs_csv(path: Path, history: dict[str, list[float]]) -> None:
    write_text_atomic(path, history_table(history).to_csv(index=False))

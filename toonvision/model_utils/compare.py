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
  `best_<config>.json` (the run record of that model).
- `epochs/<config>_run<NNNN>.csv`: the per-epoch history of every run.
- `summary.csv`, written by `Comparison.write_summary` from the log alone
  (`comparison_summary`), and `learning_curves.png`, `best_run_curves.png`, `boxplots.png`,
  drawn from the log by `data_visualization.comparison_figures.write_comparison_figures`.

A kill at any moment loses at most the run in progress. A new best model is first saved under
`.pending/`; it replaces `best_<config>.*` only after its run's records are in the log. On
resume, records of a run that is not complete (not every configuration logged, or a line torn
by the kill) are dropped by rewriting the log atomically, a pending model whose run made it
into the log is moved into place, any other pending file is deleted, and the run is trained
again. So the finished log always holds exactly N runs per configuration, none twice, and
`best_<config>.*` is always the model of the best run in the log.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toonvision import ExistingFileError, MissingFileError, ToonvisionError
from toonvision.data_processing.splits import stratified_split
from toonvision.fileio import write_text_atomic
from toonvision.model_utils.comparison_summary import history_table, summarize
from toonvision.model_utils.runlog import (
    LOG_FILE,
    RunRecord,
    append_records,
    complete_runs,
    is_better,
    read_log,
    select_best,
    write_log,
)
from toonvision.model_utils.settings import SETTINGS_FILE, ComparisonSettings

logger = logging.getLogger(__name__)

PENDING_FOLDER = ".pending"
EPOCHS_FOLDER = "epochs"
SUMMARY_FILE = "summary.csv"


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
    """

    run: int
    completed: int
    total: int
    records: list[RunRecord]
    seconds: float
    new_best: list[str] = field(default_factory=list)


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

    @property
    def log_path(self) -> Path:
        """The run log, `runs.jsonl`."""
        return self.out_dir / LOG_FILE

    @property
    def summary_path(self) -> Path:
        """The summary table, `summary.csv`."""
        return self.out_dir / SUMMARY_FILE

    def best_model_path(self, config_name: str) -> Path:
        """Where the best model of a configuration is kept."""
        return self.out_dir / f"best_{config_name}.keras"

    def best_record_path(self, config_name: str) -> Path:
        """Where the run record of that model is kept."""
        return self.out_dir / f"best_{config_name}.json"

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
        comparison._reconcile_best_models()
        return comparison

    def _pending_paths(self, config_name: str) -> tuple[Path, Path, Path]:
        pending = self.out_dir / PENDING_FOLDER
        model = pending / f"best_{config_name}.keras"
        return model, _sidecar(model), pending / f"best_{config_name}.json"

    def _final_paths(self, config_name: str) -> tuple[Path, Path, Path]:
        model = self.best_model_path(config_name)
        return model, _sidecar(model), self.best_record_path(config_name)

    def _promote(self, config_name: str) -> None:
        """Moves a pending best model into place; the record file, moved last, marks the end."""
        for pending, final in zip(self._pending_paths(config_name),
                                  self._final_paths(config_name), strict=True):
            if pending.exists():
                os.replace(pending, final)

    def _reconcile_best_models(self) -> None:
        """Makes `best_<config>.*` match the best records of the log (see the module notes)."""
        best = self.best_records()
        for name in self.settings.config_names:
            expected = best.get(name)
            pending_record = self._pending_paths(name)[2]
            if expected is not None and pending_record.is_file():
                if json.loads(pending_record.read_text(encoding="utf-8"))["run"] == \
                        expected.run:
                    self._promote(name)
            final_model, final_sidecar, final_record = self._final_paths(name)
            if expected is None:
                continue
            problem = _best_files_problem(final_model, final_sidecar, final_record,
                                          expected.run)
            if problem:
                raise ToonvisionError(
                    f"cannot resume {self.out_dir}: the best model of {name!r} should be run "
                    f"{expected.run} of the log, but {problem}. The folder was changed "
                    "outside toonvision; restore it or start a new comparison"
                )
        shutil.rmtree(self.out_dir / PENDING_FOLDER, ignore_errors=True)

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
            One `RunUpdate` per finished run, after its records are in the log.
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
                record = RunRecord.from_result(result, config.name, run, split_seed, split)
                if is_better(record, best.get(config.name), self.settings.select):
                    self._save_pending(trainer.model, record)
                    new_best.append(config.name)
                _write_epochs_csv(self._epochs_path(config.name, run), record.history)
                run_records.append(record)
            append_records(self.log_path, run_records)
            for name in new_best:
                self._promote(name)
            shutil.rmtree(self.out_dir / PENDING_FOLDER, ignore_errors=True)
            for record in run_records:
                if record.config in new_best:
                    best[record.config] = record
            self.records.extend(run_records)
            if tracker is not None:
                self._track(tracker, configs, run_records)
            yield RunUpdate(run, len(self.completed_runs()), self.settings.runs, run_records,
                            time.perf_counter() - started, new_best)

    def _split(self, y: np.ndarray, split_seed: int) -> dict[str, np.ndarray]:
        from toonvision.data_processing.splits import balance_indices

        split = stratified_split(y, self.settings.ratios, seed=split_seed)
        if self.settings.balance != "none":
            split["train"] = balance_indices(split["train"], y, self.settings.balance,
                                             seed=split_seed)
        return split

    def _epochs_path(self, config_name: str, run: int) -> Path:
        return self.out_dir / EPOCHS_FOLDER / f"{config_name}_run{run:04d}.csv"

    def _save_pending(self, model: Any, record: RunRecord) -> None:
        from toonvision.model_utils.model_io import ModelInfo, save_model_atomic

        model_path, _, record_path = self._pending_paths(record.config)
        info = ModelInfo(
            class_names=tuple(self.settings.class_names),
            image_size=tuple(self.settings.image_size),
            task=self.settings.task,
            config=record.config,
            split_seed=record.split_seed,
            ratios=tuple(self.settings.ratios),
            extra={"run": record.run, "validation_metrics": record.validation_metrics,
                   "test_metrics": record.test_metrics, "comparison": str(self.out_dir)},
        )
        save_model_atomic(model, model_path, info)
        write_text_atomic(record_path, json.dumps(record.to_dict(), indent=2))

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

    def write_summary(self) -> Any:
        """Writes `summary.csv` from the log; returns the table (a pandas DataFrame).

        Raises:
            ToonvisionError: if no run is logged yet.
        """
        if not self.records:
            raise ToonvisionError(f"{self.out_dir}: no finished run to summarise yet")
        summary = summarize(self.records, self.settings.config_names)
        write_text_atomic(self.summary_path, summary.to_csv(index=False))
        return summary


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


def _sidecar(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def _best_files_problem(model: Path, sidecar: Path, record: Path, run: int) -> str:
    """Says what is wrong with the best-model files of one configuration, or ''."""
    for path in (model, sidecar, record):
        if not path.is_file():
            return f"{path.name} is missing"
    record_run = json.loads(record.read_text(encoding="utf-8")).get("run")
    if record_run != run:
        return f"{record.name} holds run {record_run}"
    sidecar_run = json.loads(sidecar.read_text(encoding="utf-8")).get("extra", {}).get("run")
    if sidecar_run != run:
        return f"{sidecar.name} describes run {sidecar_run}"
    return ""


def _write_epochs_csv(path: Path, history: dict[str, list[float]]) -> None:
    write_text_atomic(path, history_table(history).to_csv(index=False))

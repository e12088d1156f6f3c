"""A comparison's run log, `runs.jsonl`: one typed record per configuration and finished run.

`RunRecord` is the one shape of a logged run; `to_dict` gives exactly the JSON object of a
`runs.jsonl` line (and of `best_<config>.json`), `from_dict` reads one back, so folders written
before the record was typed still resume and summarise. The log is read and appended through
`fileio.read_jsonl` / `fileio.append_jsonl`: a kill can tear only the last line, which the
reader drops; any other damage is an error naming the line.

The best-model rules live here too, since they are replayed over the log: `is_better` decides
whether a run replaces a configuration's best, `select_best` replays it in run order.

Two more records close the picture: `stopped.json`, why and when a comparison run until
decided stopped (`write_stop`, `read_stop`), and `evaluation_records`, which turns results
logged elsewhere (the article's `evaluations_all.json`) into run records that summarise alike.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toonvision import ToonvisionError, unknown_name_error
from toonvision.fileio import append_jsonl, read_jsonl, write_text_atomic

logger = logging.getLogger(__name__)

LOG_FILE = "runs.jsonl"
STOP_FILE = "stopped.json"
SELECTION_RULES: tuple[str, ...] = ("test", "val_loss")
# Where a run was trained (`model_utils.engine`): not part of its science.
_PLACEMENT_FIELDS: tuple[str, ...] = ("host", "worker", "threads")


@dataclass(kw_only=True)
class RunRecord:
    """One configuration trained in one run of a comparison (a line of `runs.jsonl`).

    The fields are in the order of the JSON keys on disk.

    Attributes:
        config: the configuration's name.
        run: the run's number (from 0).
        seed: the seed of the weights, shuffling and augmentation.
        split_seed: the seed of the run's split.
        split_sizes: images per split part (`train`, `validate`, `test`).
        history: per-epoch metrics (`loss`, `accuracy`, `val_loss`, `val_accuracy`, ...).
        validation_metrics: the final model's metrics on the validation part.
        test_metrics: the final model's metrics on the test part.
        test_confusion: the final model's confusion matrix on the test part, rows the true
            classes, columns the predicted ones (empty in logs written before it was kept).
        epochs_run: epochs trained (early stopping may stop sooner).
        setup_seconds: time spent re-initialising the model.
        train_seconds: time spent training and evaluating.
        finished_at: when the run finished (UTC, ISO 8601).
        repetition: with cross-validation (`compare --cv K`), the repetition this run is a
            fold of (None otherwise, and in logs written before cross-validation).
        fold: with cross-validation, the fold that was the test set (0..K-1), else None.
        host: the machine that trained the run (None in logs written before it was kept).
        worker: the engine's worker that trained it (`local` in this process, else the Ray
            worker's index; None in older logs).
        threads: the intra-op threads it trained with (None in older logs).

    Example:
        >>> record = RunRecord.from_dict(line)                         # doctest: +SKIP
        >>> record.test_metrics["accuracy"], record.to_dict() == line  # doctest: +SKIP
    """

    config: str
    run: int
    seed: int
    split_seed: int
    split_sizes: dict[str, int] = field(default_factory=dict)
    history: dict[str, list[float]]
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    test_confusion: list[list[int]] = field(default_factory=list)
    epochs_run: int
    setup_seconds: float
    train_seconds: float
    finished_at: str = ""
    repetition: int | None = None
    fold: int | None = None
    host: str | None = None
    worker: str | None = None
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON object of its `runs.jsonl` line.

        `repetition` and `fold` are left out when None, so a comparison without
        cross-validation writes the lines it wrote before they existed.
        """
        data = dataclasses.asdict(self)
        for name in ("repetition", "fold"):
            if data[name] is None:
                del data[name]
        for name in _PLACEMENT_FIELDS:   # left out when unknown, as in logs written before
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Reads a record from its JSON object; unknown keys are ignored.

        Raises:
            ToonvisionError: if a key every record has is missing.
        """
        fields = {item.name: item for item in dataclasses.fields(cls)}
        missing = [name for name, item in fields.items() if name not in data
                   and item.default is dataclasses.MISSING
                   and item.default_factory is dataclasses.MISSING]
        if missing:
            raise ToonvisionError(f"not a run record: no {', '.join(missing)}")
        return cls(**{name: data[name] for name in fields if name in data})

    @classmethod
    def from_result(cls, result: Any, config_name: str, run: int, split_seed: int,
                    split: Mapping[str, Sequence[int]],
                    test_confusion: Sequence[Sequence[int]] = (),
                    repetition: int | None = None, fold: int | None = None) -> RunRecord:
        """The record of a trainer's `RunResult` (plain Python numbers, stamped now)."""
        return cls(
            config=config_name,
            run=run,
            seed=int(result.seed),
            split_seed=split_seed,
            split_sizes={name: int(len(indices)) for name, indices in split.items()},
            history={key: [float(value) for value in values]
                     for key, values in result.history.items()},
            validation_metrics={key: float(value)
                                for key, value in result.validation_metrics.items()},
            test_metrics={key: float(value) for key, value in result.test_metrics.items()},
            test_confusion=[[int(count) for count in row] for row in test_confusion],
            epochs_run=int(result.epochs_run),
            setup_seconds=float(result.setup_seconds),
            train_seconds=float(result.train_seconds),
            finished_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            repetition=repetition,
            fold=fold,
        )

    @property
    def total_seconds(self) -> float:
        """Set-up plus training time."""
        return self.setup_seconds + self.train_seconds


def read_log(path: str | os.PathLike) -> tuple[list[RunRecord], int]:
    """Reads a `runs.jsonl` log (a missing file is an empty log).

    Returns:
        The records, and the number of torn lines dropped: only the last line may be torn
        (by a kill in the middle of a write).

    Raises:
        ToonvisionError: if a line other than the last is damaged, or any line is not a run
            record (the message names the line).
    """
    lines, dropped = read_jsonl(path)
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(RunRecord.from_dict(line))
        except ToonvisionError as error:
            raise ToonvisionError(f"{path}: record {number}: {error}") from None
    return records, dropped


def append_records(path: str | os.PathLike, records: Sequence[RunRecord]) -> None:
    """Appends the records of one run to the log in a single synced write."""
    append_jsonl(path, [record.to_dict() for record in records])


def write_log(path: str | os.PathLike, records: Sequence[RunRecord]) -> None:
    """Replaces the log by `records`, atomically (used to drop the records of unfinished runs)."""
    write_text_atomic(path, "".join(json.dumps(record.to_dict()) + "\n" for record in records))


def complete_runs(records: Sequence[RunRecord], config_names: Sequence[str]) -> list[RunRecord]:
    """Keeps the records of runs logged for every configuration, once each, in run order."""
    by_run: dict[int, dict[str, RunRecord]] = {}
    for record in records:
        if record.config in config_names:
            by_run.setdefault(int(record.run), {}).setdefault(record.config, record)
    return [
        by_run[run][name]
        for run in sorted(by_run)
        if len(by_run[run]) == len(config_names)
        for name in config_names
    ]


def check_rule(rule: str) -> str:
    """Returns `rule` if it is one of `SELECTION_RULES`.

    Raises:
        ToonvisionError: naming the closest rule and all of them.
    """
    if rule not in SELECTION_RULES:
        raise unknown_name_error("selection rule", rule, SELECTION_RULES)
    return rule


def is_better(candidate: RunRecord, best: RunRecord | None, rule: str = "test") -> bool:
    """Whether the run record `candidate` replaces `best` under `rule`.

    Args:
        candidate: a run record.
        best: the current best record of the same configuration, or None.
        rule: `test`, the article's rule: the test loss is lower AND the test accuracy is
            higher; `val_loss`: the validation loss is lower (never looks at the test set).

    Returns:
        True if `candidate` becomes the best (always when there is no best yet).
    """
    check_rule(rule)
    if best is None:
        return True
    if rule == "test":
        return (candidate.test_metrics["loss"] < best.test_metrics["loss"]
                and candidate.test_metrics["accuracy"] > best.test_metrics["accuracy"])
    return candidate.validation_metrics["loss"] < best.validation_metrics["loss"]


def select_best(records: Sequence[RunRecord], rule: str = "test") -> dict[str, RunRecord]:
    """Replays the selection over `records` in run order; returns the best record per config."""
    best: dict[str, RunRecord] = {}
    for record in sorted(records, key=lambda item: item.run):
        if is_better(record, best.get(record.config), rule):
            best[record.config] = record
    return best


def evaluation_records(evaluations: Mapping[str, Mapping[str, Sequence[float]]],
                       split_sizes: Mapping[str, int]) -> list[RunRecord]:
    """Run records of results logged elsewhere, e.g. the article's `evaluations_all.json`.

    Args:
        evaluations: per configuration, per test metric, one value per run; runs are paired
            by index (`verdict.read_evaluations` reads the article's file this way).
        split_sizes: images per split part of every run (`train`, `validate`, `test`).

    Returns:
        One record per configuration and run, in run order, with only test metrics and split
        sizes (no history, no timings): enough for the summary, the box plots and the
        article's best-model rule.
    """
    records = []
    names = list(evaluations)
    runs = min((len(values) for metrics in evaluations.values() for values in metrics.values()),
               default=0)
    for run in range(runs):
        for name in names:
            records.append(RunRecord(
                config=name, run=run, seed=run, split_seed=run, split_sizes=dict(split_sizes),
                history={}, validation_metrics={},
                test_metrics={key: float(values[run]) for key, values in evaluations[name].items()},
                epochs_run=0, setup_seconds=0.0, train_seconds=0.0))
    return records


def write_stop(path: str | os.PathLike, decision: Any, pair: Sequence[str], metric: str) -> None:
    """Records why and when a run-until-decided comparison stopped (its `stopped.json`).

    Args:
        path: the file to write (atomically).
        decision: the `sequential.Decision` that stopped it.
        pair: the configurations compared, A then B (B - A was looked at).
        metric: the test metric looked at.
    """
    record = {"state": decision.state, "reason": decision.reason, "runs": decision.runs,
              "look": decision.look, "looks": decision.looks, "pair": list(pair),
              "metric": metric, "interval": [decision.interval.low, decision.interval.high],
              "critical": decision.critical,
              "stopped_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    write_text_atomic(path, json.dumps(record, indent=2))


def read_stop(path: str | os.PathLike) -> dict[str, Any] | None:
    """The stop record `write_stop` wrote, or None when the comparison has not stopped early."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise ToonvisionError(f"{path}: damaged stop record: {error}") from None


def track_records(comparison: str, settings: Any, epochs_path: Callable[[str, int], Path],
                  tracker: Any, configs: Sequence[Any],
                  run_records: Sequence[RunRecord]) -> None:
    """Sends a finished run's records to an experiment tracker (`tracking.RunTracker`).

    Tracking must never stop a long comparison: a tracker that fails is logged as a warning.

    Args:
        comparison: the comparison's name (its folder's).
        settings: its `ComparisonSettings` (task, image size, resize mode, balancing).
        epochs_path: where a run's per-epoch CSV is, by configuration name and run.
        tracker: the tracker (`engine.protocols.Tracker`).
        configs: the `TrainingConfig`s, whose fields become the run's parameters.
        run_records: the run's records, one per configuration.
    """
    fields = {config.name: dataclasses.asdict(config) for config in configs}
    for record in run_records:
        params = {
            **fields[record.config],
            "run": record.run, "split_seed": record.split_seed,
            "task": settings.task, "image_size": settings.image_size,
            "resize": settings.resize, "balance": settings.balance, "comparison": comparison,
        }
        metrics = {f"test_{key}": value for key, value in record.test_metrics.items()}
        metrics.update({f"validation_{key}": value
                        for key, value in record.validation_metrics.items()})
        metrics["epochs_run"] = record.epochs_run
        try:
            tracker.log_run(f"{record.config}-run{record.run:04d}", params, record.history,
                            metrics, [epochs_path(record.config, record.run)])
        except Exception as error:  # tracking must never stop a long comparison
            logger.warning("experiment tracking failed for run %s of %s: %s",
                           record.run, record.config, error)


def split_sizes(records: Sequence[RunRecord]) -> tuple[int, int]:
    """`(n_test, n_train)`: the median test and training split sizes of the records.

    Raises:
        ToonvisionError: if no record holds its split sizes.
    """
    sizes = [record.split_sizes for record in records
             if record.split_sizes.get("test") and record.split_sizes.get("train")]
    if not sizes:
        raise ToonvisionError("the run records hold no split sizes, which the corrected "
                              "intervals need: give them (train, validate and test images "
                              "per run)")
    return (int(statistics.median([size["test"] for size in sizes])),
            int(statistics.median([size["train"] for size in sizes])))

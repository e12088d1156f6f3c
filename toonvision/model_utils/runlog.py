"""A comparison's run log, `runs.jsonl`: one typed record per configuration and finished run.

`RunRecord` is the one shape of a logged run; `to_dict` gives exactly the JSON object of a
`runs.jsonl` line (and of `best_<config>.json`), `from_dict` reads one back, so folders written
before the record was typed still resume and summarise. The log is read and appended through
`fileio.read_jsonl` / `fileio.append_jsonl`: a kill can tear only the last line, which the
reader drops; any other damage is an error naming the line.

The best-model rules live here too, since they are replayed over the log: `is_better` decides
whether a run replaces a configuration's best, `select_best` replays it in run order.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toonvision import ToonvisionError, unknown_name_error
from toonvision.fileio import append_jsonl, read_jsonl, write_text_atomic

LOG_FILE = "runs.jsonl"
SELECTION_RULES: tuple[str, ...] = ("test", "val_loss")


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
        epochs_run: epochs trained (early stopping may stop sooner).
        setup_seconds: time spent re-initialising the model.
        train_seconds: time spent training and evaluating.
        finished_at: when the run finished (UTC, ISO 8601).

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
    epochs_run: int
    setup_seconds: float
    train_seconds: float
    finished_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON object of its `runs.jsonl` line."""
        return dataclasses.asdict(self)

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
                    split: Mapping[str, Sequence[int]]) -> RunRecord:
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
            epochs_run=int(result.epochs_run),
            setup_seconds=float(result.setup_seconds),
            train_seconds=float(result.train_seconds),
            finished_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
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

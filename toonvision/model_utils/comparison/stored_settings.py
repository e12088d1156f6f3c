"""What a comparison stores in `comparison.json`: its settings resolved against the data.

`settings.plan_comparison` says what the user asked for; `settings_from_plan` resolves that
plan against the loaded data (class names, a fingerprint of the images) into a
`ComparisonSettings`, which a comparison folder keeps so that `resume` can refuse to go on
with anything else (`ComparisonSettings.differences`). Its settings are the plan's stored
ones (`settings.STORED_KEYS`), checked by the same `checks`; its JSON keys are those of every
earlier version, so old folders still load and resume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toonvision import ExistingFileError, ToonvisionError, defaults
from toonvision.model_utils.comparison import checks
from toonvision.model_utils.comparison.settings import SETTINGS, STORED_KEYS, ComparisonPlan

SETTINGS_FILE = "comparison.json"
SETTINGS_VERSION = 1
# Fields that may change between a comparison's start and its resumption.
_RESUMABLE_CHANGES = ("runs", "source", "csv_columns")
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class ComparisonSettings:
    """What a comparison trains on and how; stored in `comparison.json`.

    Attributes:
        source: where the data came from (shown to people; not compared on resume, the
            fingerprint is).
        task: the task's spec (`binary`, `suit`, `king,queen`, ...).
        class_names: the task's classes in index order.
        image_size: (height, width) of the model input.
        resize: how crops became inputs, `stretch` or `letterbox` (`images.resize`); a
            folder written before it existed stretched.
        ratios: train, validate and test shares of every split.
        seed: run `r` splits with seed `seed + r`.
        configs: every configuration's fields (`dataclasses.asdict` of a `TrainingConfig`).
        runs: the number of runs.
        select: the best-model rule, one of `runlog.SELECTION_RULES`.
        balance: how the training split is balanced, one of `splits.BALANCE_METHODS`.
        until_decided: stop at the first look that decides; `runs` is then the cap, which a
            resume may not change (the looks' boundaries depend on it).
        look_every: paired runs between two looks.
        equivalence: the practical-difference margin in test accuracy (0: none).
        cv: K-fold cross-validation, `runs` repetitions of K folds, run `r` being fold
            `r % K` of repetition `r // K` (None: a fresh split per run).
        group_by: what every split keeps whole (`splits.check_grouping`): `none`,
            `screenshot`, `duplicates` or `column:NAME`.
        groups_fingerprint: a hash of every image's group, in order (empty: ungrouped); a
            resume whose manifest or grouping changed is refused on it.
        data_fingerprint: a hash of the images' names, labels and classes, in order.
        csv_columns: for a flat set, the CSV columns read as ids and labels when they were not
            the first and second (`id_column`, `label_column`; `DataSource.csv_columns`), so
            that the doctor reads the CSV as the comparison did; empty for a data folder and in
            folders written before 2026-12-03 (not compared on resume: the fingerprint is).
        num_images: the number of images.
        version: the layout version of this file.
    """

    source: str
    task: str
    class_names: list[str]
    image_size: list[int]
    ratios: list[float]
    seed: int
    configs: list[dict[str, Any]]
    runs: int
    select: str = defaults.SELECT
    resize: str = defaults.RESIZE
    balance: str = defaults.BALANCE
    until_decided: bool = defaults.UNTIL_DECIDED
    look_every: int = defaults.LOOK_EVERY
    equivalence: float = defaults.EQUIVALENCE
    cv: int | None = defaults.CV
    group_by: str = defaults.GROUP_BY
    groups_fingerprint: str = ""
    data_fingerprint: str = ""
    csv_columns: dict[str, str] = dataclasses.field(default_factory=dict)
    num_images: int = 0
    version: int = SETTINGS_VERSION

    def __post_init__(self) -> None:
        if not self.configs:
            raise ToonvisionError("a comparison needs at least one configuration")
        for item in SETTINGS:   # the plan's checks of every stored setting
            if item.name in STORED_KEYS and item.name != "configs" and item.metadata["check"]:
                item.metadata["check"](getattr(self, item.name))
        checks.check_sequential(self.until_decided, self.look_every, self.equivalence,
                                self.runs, len(self.configs))
        checks.check_cv(self.cv, self.until_decided)
        names = self.config_names
        if len(set(names)) != len(names):
            raise ToonvisionError(f"configuration names must differ; got {', '.join(names)}")
        for name in names:
            if not _CONFIG_NAME.match(name):
                raise ToonvisionError(
                    f"configuration name {name!r} cannot name a file: use letters, digits, "
                    "'_', '-' and '.'"
                )
        # Stored as JSON: keep lists, not tuples, so that a reloaded copy compares equal.
        self.configs = json.loads(json.dumps(self.configs, default=list))
        self.class_names = [str(name) for name in self.class_names]
        self.image_size = [int(size) for size in self.image_size]
        self.ratios = [float(ratio) for ratio in self.ratios]
        self.equivalence = float(self.equivalence)

    @property
    def config_names(self) -> list[str]:
        """The configurations' names, in comparison order."""
        return [config["name"] for config in self.configs]

    @property
    def run_count(self) -> int:
        """Paired runs in the finished log: `runs`, times the folds with cross-validation."""
        return self.runs * (self.cv or 1)

    def to_json(self) -> str:
        """The settings as the JSON text of `comparison.json`."""
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ComparisonSettings:
        """Reads `comparison.json` text; unknown keys are ignored, missing ones defaulted."""
        data = json.loads(text)
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def differences(self, other: ComparisonSettings) -> list[str]:
        """Describes every setting that differs from `other`, except those a resume may change."""
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        differences = []
        for name in mine:
            if name in _RESUMABLE_CHANGES or mine[name] == theirs[name]:
                continue
            if name == "look_every" and not (self.until_decided or other.until_decided):
                continue   # no looks are taken: the default may change between versions
            if name == "configs" and self.config_names == other.config_names:
                # A field that a folder written before the field existed lacks had its default.
                unset = _config_field_defaults()
                for new, old in zip(self.configs, other.configs, strict=True):
                    new, old = {**unset, **_plain(new)}, {**unset, **_plain(old)}
                    differences.extend(
                        f"configs.{new['name']}.{key}: {_short(old.get(key))} there, "
                        f"{_short(new.get(key))} now"
                        for key in sorted(set(new) | set(old)) if new.get(key) != old.get(key)
                    )
                continue
            differences.append(f"{name}: {_short(theirs[name])} there, {_short(mine[name])} now")
        return differences


def _plain(value: Any) -> Any:
    """`value` as JSON gives it back (tuples become lists), so stored and new values compare."""
    return json.loads(json.dumps(value))


def _config_field_defaults() -> dict[str, Any]:
    """Every TrainingConfig field that has a default, with it (as JSON gives it back)."""
    from toonvision.model_utils.training.configs import TrainingConfig

    return _plain({field.name: field.default for field in dataclasses.fields(TrainingConfig)
                   if field.default is not dataclasses.MISSING})


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def data_fingerprint(paths: Sequence[Path], labels: Sequence[str], y: np.ndarray,
                     class_names: Sequence[str]) -> str:
    """A hash of the images' file names, labels and classes, in order (the split depends on it)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update("\t".join(class_names).encode())
    for path, label, class_index in zip(paths, labels, y, strict=True):
        digest.update(f"\n{Path(path).name}\t{label}\t{int(class_index)}".encode())
    return digest.hexdigest()


def groups_fingerprint(groups: Sequence[object] | np.ndarray | None) -> str:
    """A hash of every image's group, in order ("" for None): the grouped splits depend on it."""
    if groups is None:
        return ""
    digest = hashlib.blake2b(digest_size=16)
    for group in groups:
        digest.update(f"{group}\n".encode())
    return digest.hexdigest()


def settings_from_plan(plan: ComparisonPlan, task_data: Any, source: str,
                       groups: Sequence[object] | np.ndarray | None = None,
                       csv_columns: dict[str, str] | None = None) -> ComparisonSettings:
    """The settings `comparison.json` keeps for `plan` run on `task_data` (a `TaskData`).

    The plan's stored settings (`settings.STORED_KEYS`) are copied; the image size is read
    from the loaded images, so it is always the one really trained on; `groups` (one per
    image, `splits.split_groups(plan.group_by, ...)`; None when `group_by` is `none`) are
    recorded by their fingerprint; `csv_columns` see `ComparisonSettings`.

    Raises:
        ToonvisionError: if `groups` and `group_by` disagree (groups without a grouping, a
            grouping without groups, or not one group per image).
    """
    if (plan.group_by == "none") != (groups is None):
        needs = "the group of every image" if groups is None else "no groups, but some were given"
        raise ToonvisionError(f"group_by {plan.group_by!r} needs {needs}")
    if groups is not None and len(groups) != len(task_data.y):
        raise ToonvisionError(f"need one group per image: {len(task_data.y)} images but "
                              f"{len(groups)} groups")
    values = {key: getattr(plan, key) for key in STORED_KEYS}
    values.update(
        configs=[dataclasses.asdict(config) for config in plan.configs],
        image_size=list(task_data.images.shape[1:3]),
        source=source,
        class_names=list(task_data.class_names),
        groups_fingerprint=groups_fingerprint(groups),
        data_fingerprint=data_fingerprint(task_data.paths, task_data.labels, task_data.y,
                                          task_data.class_names),
        num_images=len(task_data.y),
        csv_columns=dict(csv_columns or {}),
    )
    return ComparisonSettings(**values)


def settings_for(task_data: Any, task_spec: str, configs: Sequence[Any], runs: int,
                 source: str, ratios: Sequence[float] = defaults.RATIOS,
                 seed: int = defaults.SEED, select: str = defaults.SELECT,
                 balance: str = defaults.BALANCE, *,
                 groups: Sequence[object] | np.ndarray | None = None,
                 **settings: Any) -> ComparisonSettings:
    """`settings_from_plan` of the plan these values make (`TrainingConfig`s in `configs`).

    A shorthand for scripts and tests; `settings` are further keys of `settings.SETTING_KEYS`
    (`until_decided`, `cv`, `group_by`, ...).
    """
    plan = ComparisonPlan(task=task_spec, configs=tuple(configs), runs=runs,
                          ratios=tuple(ratios), seed=seed, select=select, balance=balance,
                          **settings)
    return settings_from_plan(plan, task_data, source, groups)


class ResumeError(ToonvisionError):
    """A comparison folder cannot be resumed as asked (other settings, or fewer runs).

    Attributes:
        differences: each setting that differs from the folder's (empty when only the
            number of runs is too small).
    """

    def __init__(self, message: str, differences: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.differences = list(differences)


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

"""A comparison's settings as data: a TOML file (or an earlier `comparison.json`), then flags.

Two structures, one before the data is loaded and one after:

- `ComparisonPlan`: what the user asks for (task, configurations, runs, image size, ratios,
  seed, selection rule, balancing, grouping, stopping rule). `plan_comparison` builds it from
  three layers: the defaults of `toonvision.defaults`, then a settings file, then explicit
  overrides (the flags the user typed); a later layer wins.
- `stored_settings.ComparisonSettings`: the plan resolved against the loaded data (class
  names, a fingerprint of the images), stored as `comparison.json` in the comparison's
  folder. `resume` refuses to continue with different settings.

A settings file holds the keys of `SETTING_KEYS`, for example:

    task = "binary"
    configs = ["baseline", "optimized"]     # names, or tables of TrainingConfig fields
    runs = 200
    epochs = 25
    image_size = [600, 200]
    ratios = [0.6, 0.2, 0.2]
    seed = 0
    select = "test"
    balance = "none"
    until_decided = false                   # true: stop at a look that decides; runs = the cap
    look_every = 10
    equivalence = 0.0                       # practical-difference margin in accuracy
    cv = 5                                  # K-fold cross-validation, `runs` repetitions
    group_by = "screenshot"                 # keep groups whole: none, screenshot, duplicates,
                                            # or "column:NAME" (a CSV set's column)
    workers = 2                             # runs at once (1: in this process, no Ray)
    threads_per_worker = 1
    address = "auto"                        # join this Ray cluster (none: a local one)
    gpus_per_worker = 0.0

The engine keys (`ENGINE_KEYS`: workers, threads_per_worker, address, gpus_per_worker) say
where the runs are trained, not what is trained: they are in the plan but not in
`comparison.json`, and a comparison may resume with other ones.

A file named `*.json` is read as JSON: so `comparison.json` is a settings file, and any
earlier comparison can be run again from its folder. Its keys that describe the data
(`RECORD_KEYS`) are accepted and not used. An unknown key is an error with a did-you-mean.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toonvision import MissingFileError, ToonvisionError, defaults, unknown_name_error
from toonvision.data_processing.splits import BALANCE_METHODS, check_grouping, check_ratios
from toonvision.model_utils.comparison.runlog import check_rule

if TYPE_CHECKING:
    from toonvision.model_utils.training.configs import TrainingConfig

# What a settings file may set, and the default of each (None: each configuration's own).
SETTING_DEFAULTS: dict[str, Any] = {
    "task": defaults.TASK,
    "configs": list(defaults.CONFIGS),   # names, or tables of TrainingConfig fields
    "config_file": None,                 # a TOML file of [configs.NAME] tables
    "runs": defaults.RUNS,
    "epochs": None,                      # epochs of every configuration
    "early_stopping": None,              # early-stopping patience of every configuration
    "image_size": list(defaults.IMAGE_SIZE),
    "ratios": list(defaults.RATIOS),
    "seed": defaults.SEED,
    "select": defaults.SELECT,
    "balance": defaults.BALANCE,
    "until_decided": defaults.UNTIL_DECIDED,  # stop when a look decides; `runs` is the cap
    "look_every": defaults.LOOK_EVERY,      # paired runs between two looks
    "equivalence": defaults.EQUIVALENCE,    # practical-difference margin in accuracy (0: none)
    "cv": defaults.CV,                      # K-fold cross-validation, `runs` repetitions
    "group_by": defaults.GROUP_BY,          # what every split keeps whole (column:NAME: CSV)
    "workers": defaults.WORKERS,            # runs at once; None: one per CPU (with Ray)
    "threads_per_worker": defaults.THREADS_PER_WORKER,  # None: 1 on Ray, all serially
    "address": defaults.RAY_ADDRESS,        # a Ray cluster to join; None: a local Ray
    "gpus_per_worker": defaults.GPUS_PER_WORKER,  # GPU share each Ray worker asks for
}
# Where the runs are trained (`model_utils.engine`), not what: not kept in comparison.json.
ENGINE_KEYS: tuple[str, ...] = ("workers", "threads_per_worker", "address", "gpus_per_worker")
SETTING_KEYS: tuple[str, ...] = tuple(SETTING_DEFAULTS)
# Keys of comparison.json that record the data it ran on: accepted in a file, not used.
RECORD_KEYS: tuple[str, ...] = ("source", "class_names", "data_fingerprint", "num_images",
                                "groups_fingerprint", "version")


def _check_runs(runs: Any) -> int:
    if not _is_int(runs) or runs < 1:
        raise ToonvisionError(f"the number of runs must be a whole number of at least 1; "
                              f"got {runs!r}")
    return runs


def _check_sequential(until_decided: Any, look_every: Any, equivalence: Any, runs: int,
                      configs: int) -> None:
    """Checks the plan of a comparison run until decided (`sequential.sequential_decision`)."""
    if not isinstance(until_decided, bool):
        raise ToonvisionError(f"until_decided must be true or false; got {until_decided!r}")
    if not _is_int(look_every) or look_every < 1:
        raise ToonvisionError(f"look_every must be a whole number of at least 1; got "
                              f"{look_every!r}")
    if (not isinstance(equivalence, (int, float)) or isinstance(equivalence, bool)
            or not 0 <= equivalence < 1):
        raise ToonvisionError(f"equivalence must be a number from 0 to 1 (a margin in "
                              f"accuracy: 0.02 is 2 points); got {equivalence!r}")
    if until_decided and configs < 2:
        raise ToonvisionError("a comparison run until decided needs at least two "
                              "configurations: it looks at the second against the first")
    if until_decided and runs < 2:
        raise ToonvisionError(f"a comparison run until decided needs a cap of at least 2 "
                              f"runs; got {runs}")


def _check_cv(cv: Any, until_decided: bool) -> None:
    """Checks the number of cross-validation folds (None: a fresh split per run)."""
    if cv is None:
        return
    if not _is_int(cv) or cv < 2:
        raise ToonvisionError(f"cv must be a whole number of folds of at least 2; got {cv!r}")
    if until_decided:
        raise ToonvisionError("cv and until_decided do not go together: the stopping rule "
                              "looks at independent re-split runs, not at folds")


def _check_engine(workers: Any, threads_per_worker: Any, address: Any,
                  gpus_per_worker: Any) -> None:
    """Checks the engine keys (`ENGINE_KEYS`); None means the default rule for each."""
    for key, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
        if value is not None and (not _is_int(value) or value < 1):
            raise ToonvisionError(f"{key} must be a whole number of at least 1; got {value!r}")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ToonvisionError(f"address must be 'auto' or HOST:PORT of a Ray cluster; got "
                              f"{address!r}")
    if (not isinstance(gpus_per_worker, (int, float)) or isinstance(gpus_per_worker, bool)
            or gpus_per_worker < 0):
        raise ToonvisionError(f"gpus_per_worker must be a number of at least 0; got "
                              f"{gpus_per_worker!r}")


def _check_balance(balance: Any) -> str:
    if balance not in BALANCE_METHODS:
        raise unknown_name_error("balance method", str(balance), BALANCE_METHODS)
    return balance


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_tuple(key: str, value: Any) -> tuple:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ToonvisionError(f"{key} must be a list; got {value!r}")
    return tuple(value)


# ----------------------------------------------------------------------------------------------
# Before the data: the plan


@dataclass(frozen=True)
class ComparisonPlan:
    """What a comparison will run, before its data is loaded (see `plan_comparison`).

    Attributes:
        task: the task's spec (`binary`, `suit`, `king,queen`, ...).
        configs: the configurations, in comparison order.
        runs: the number of runs.
        image_size: (height, width) the images are resized to.
        ratios: train, validate and test shares of every split.
        seed: run `r` splits with seed `seed + r`.
        select: the best-model rule, one of `runlog.SELECTION_RULES`.
        balance: how the training split is balanced, one of `splits.BALANCE_METHODS`.
        until_decided: stop at the first look that decides (then `runs` is the cap).
        look_every: paired runs between two looks.
        equivalence: the practical-difference margin in test accuracy (0: none).
        cv: K-fold cross-validation with `runs` repetitions (None: a fresh split per run).
        group_by: what every split keeps whole (`splits.check_grouping`): `none`,
            `screenshot`, `duplicates`, or `column:NAME` for a CSV set.
        workers: runs trained at once (1: in this process; None: one per CPU when Ray is
            installed, `engine.make_engine`).
        threads_per_worker: threads of each worker (None: 1 on Ray; the process's own
            serially).
        address: a Ray cluster to join (`auto` or HOST:PORT; None: a local Ray instance).
        gpus_per_worker: the GPU share each Ray worker asks for.
    """

    task: str
    configs: tuple[TrainingConfig, ...]
    runs: int
    image_size: tuple[int, int]
    ratios: tuple[float, float, float]
    seed: int
    select: str
    balance: str
    until_decided: bool = defaults.UNTIL_DECIDED
    look_every: int = defaults.LOOK_EVERY
    equivalence: float = defaults.EQUIVALENCE
    cv: int | None = defaults.CV
    group_by: str = defaults.GROUP_BY
    workers: int | None = defaults.WORKERS
    threads_per_worker: int | None = defaults.THREADS_PER_WORKER
    address: str | None = defaults.RAY_ADDRESS
    gpus_per_worker: float = defaults.GPUS_PER_WORKER

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task.strip():
            raise ToonvisionError(f"task must be a non-empty text; got {self.task!r}")
        _check_runs(self.runs)
        size = self.image_size
        if len(size) != 2 or not all(_is_int(side) and side > 0 for side in size):
            raise ToonvisionError(f"image_size must be two positive whole numbers (height, "
                                  f"width); got {list(size)!r}")
        if not all(isinstance(ratio, (int, float)) and not isinstance(ratio, bool)
                   for ratio in self.ratios):
            raise ToonvisionError(f"ratios must be three numbers; got {list(self.ratios)!r}")
        check_ratios(self.ratios)
        if not _is_int(self.seed):
            raise ToonvisionError(f"seed must be a whole number; got {self.seed!r}")
        check_rule(self.select)
        _check_balance(self.balance)
        _check_sequential(self.until_decided, self.look_every, self.equivalence, self.runs,
                          len(self.configs))
        _check_cv(self.cv, self.until_decided)
        check_grouping(self.group_by)
        _check_engine(self.workers, self.threads_per_worker, self.address,
                      self.gpus_per_worker)

    @property
    def config_names(self) -> list[str]:
        """The configurations' names, in comparison order."""
        return [config.name for config in self.configs]


def load_settings_file(path: str | Path) -> dict[str, Any]:
    """Reads a settings file: TOML, or JSON when its name ends in `.json` (`comparison.json`).

    Returns:
        The settings it sets (keys of `SETTING_KEYS`); `config_file` made relative to the
        settings file's folder. The keys of `RECORD_KEYS` are left out.

    Raises:
        MissingFileError: if the file does not exist.
        ToonvisionError: if it cannot be parsed, or names an unknown key (with the closest
            known one); the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"settings file {path} not found")
    text = path.read_text(encoding="utf-8")
    is_json = path.suffix.lower() == ".json"
    try:
        document = json.loads(text) if is_json else tomllib.loads(text)
    except ValueError as error:  # JSONDecodeError and TOMLDecodeError
        raise ToonvisionError(f"{path}: not valid {'JSON' if is_json else 'TOML'}: "
                              f"{error}") from None
    if not isinstance(document, dict):
        raise ToonvisionError(f"{path}: the settings must be a table of keys and values")
    for key in document:
        if key not in SETTING_KEYS and key not in RECORD_KEYS:
            raise ToonvisionError(f"{path}: {unknown_name_error('setting', key, SETTING_KEYS)}")
    values = {key: value for key, value in document.items() if key in SETTING_KEYS}
    if values.get("config_file") is not None:
        values["config_file"] = path.parent / values["config_file"]
    return values


def plan_comparison(overrides: Mapping[str, Any] | None = None,
                    settings_file: str | Path | None = None) -> ComparisonPlan:
    """Builds a comparison's plan: the defaults, then `settings_file`, then `overrides`.

    Args:
        overrides: settings that win over the file (on the command line: the flags the user
            typed), keys of `SETTING_KEYS`. `configs` may hold names or tables.
        settings_file: a TOML settings file, or a `comparison.json` (see the module notes).

    Returns:
        The plan, its configurations resolved (built-in names, `config_file` names, tables)
        and `epochs` / `early_stopping` applied to every one of them.

    Raises:
        ToonvisionError: for an unknown key or name (with a did-you-mean) or a bad value; a
            fault of the file's values is reported with the file's name.

    Example:
        >>> plan = plan_comparison({"runs": 10}, "runs/article/comparison.json")  # doctest: +SKIP
        >>> plan.runs, plan.config_names                                         # doctest: +SKIP
        (10, ['baseline', 'optimized'])
    """
    overrides = dict(overrides or {})
    for key in overrides:
        if key not in SETTING_KEYS:
            raise unknown_name_error("setting", key, SETTING_KEYS)
    values = dict(SETTING_DEFAULTS)
    if settings_file is not None:
        values.update(load_settings_file(settings_file))
        try:   # the file's own values must make a valid plan, whatever overrides them
            _plan_from(values)
        except ToonvisionError as error:
            raise ToonvisionError(f"{settings_file}: {error}") from None
    values.update(overrides)
    return _plan_from(values)


def _plan_from(values: Mapping[str, Any]) -> ComparisonPlan:
    """Resolves the configurations of `values` and builds the plan."""
    from toonvision.model_utils.training.configs import (
        BUILTIN_CONFIGS,
        config_from_table,
        load_config_file,
    )

    known = dict(BUILTIN_CONFIGS)
    if values["config_file"] is not None:
        known.update(load_config_file(values["config_file"]))
    entries = values["configs"]
    if isinstance(entries, str) or not isinstance(entries, Sequence) or not entries:
        raise ToonvisionError(f"configs must be a non-empty list of configuration names or "
                              f"tables; got {entries!r}")
    configs = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            if entry not in known:
                raise unknown_name_error("configuration", entry, known)
            configs.append(known[entry])
        elif isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            table = {key: value for key, value in entry.items() if key != "name"}
            configs.append(config_from_table(entry["name"], table, known,
                                             f"configs[{index}]"))
        else:
            raise ToonvisionError(f"configs[{index}] must be a name or a table with a name; "
                                  f"got {entry!r}")
    changes = {}
    for key, field_name, least in (("epochs", "epochs", 1),
                                   ("early_stopping", "early_stopping_patience", 0)):
        value = values[key]
        if value is not None:
            if not _is_int(value) or value < least:
                raise ToonvisionError(f"{key} must be a whole number of at least {least}; "
                                      f"got {value!r}")
            changes[field_name] = value
    return ComparisonPlan(
        task=values["task"],
        configs=tuple(config.replace(**changes) for config in configs),
        runs=values["runs"],
        image_size=_as_tuple("image_size", values["image_size"]),
        ratios=_as_tuple("ratios", values["ratios"]),
        seed=values["seed"],
        select=values["select"],
        balance=values["balance"],
        until_decided=values["until_decided"],
        look_every=values["look_every"],
        equivalence=values["equivalence"],
        cv=values["cv"],
        group_by=values["group_by"],
        workers=values["workers"],
        threads_per_worker=values["threads_per_worker"],
        address=values["address"],
        gpus_per_worker=values["gpus_per_worker"],
    )

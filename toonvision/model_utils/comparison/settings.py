"""A comparison's settings as data: a TOML file (or an earlier `comparison.json`), then flags.

Two structures, one before the data is loaded and one after:

- `ComparisonPlan`: what the user asks for (task, configurations, runs, image size and
  resize mode, ratios, seed, selection rule, balancing, grouping, stopping rule).
  `plan_comparison` builds it from three layers: the defaults of `toonvision.defaults`, then
  a settings file, then explicit overrides (the flags the user typed); a later layer wins.
- `stored_settings.ComparisonSettings`: the plan resolved against the loaded data (class
  names, a fingerprint of the images), stored as `comparison.json` in the comparison's
  folder. `resume` refuses to continue with different settings.

`ComparisonPlan` is the one schema of a comparison's settings: each field carries its
default, its help text, its check (`checks`), its command-line flag and whether it is kept in
`comparison.json` (`setting`). The flags of `compare` (`add_setting_options`), the keys of a
settings file (`SETTING_KEYS`), the stored settings and their resume check
(`stored_settings.settings_from_plan`), and the `--help` text are derived from it: adding a
setting is one field (and, when it is stored, its key in `ComparisonSettings`, the file
format). Flags are added with `argparse.SUPPRESS` defaults, so only the flags the user typed
are in the parsed namespace (`typed_settings`), and only they override a settings file.

A settings file holds the keys of `SETTING_KEYS`, for example:

    task = "binary"
    configs = ["baseline", "optimized"]     # names, or tables of TrainingConfig fields
    runs = 200
    epochs = 25
    image_size = [600, 200]
    resize = "stretch"                      # or "letterbox": keep the aspect ratio, pad black
    ratios = [0.6, 0.2, 0.2]
    seed = 0
    select = "test"
    balance = "none"
    until_decided = false                   # true: stop at a look that decides; runs = the cap
    look_every = 5
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

import argparse
import dataclasses
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toonvision import MissingFileError, ToonvisionError, defaults, unknown_name_error
from toonvision.data_processing.placement import RESIZE_MODES
from toonvision.data_processing.splits import BALANCE_METHODS, GROUPINGS
from toonvision.model_utils.comparison import checks
from toonvision.model_utils.comparison.runlog import SELECTION_RULES

if TYPE_CHECKING:
    from toonvision.model_utils.training.configs import TrainingConfig

AUTO_RUNS = "auto"  # --runs auto: --until-decided with the default cap
TASK_HELP = (
    "what to classify: binary (cog/toon), suit (4 cog suits), name (32 cog names), animal "
    "(11 toon animals), label (every label as its own class), or a class list such as "
    "'king,queen,jack' or 'king=face,queen=face,ace=number'"
)
ENGINE_GROUP = "engine (where the runs train; docs/parallel.md)"


def setting(default: Any, help: str, *, check: Callable[[Any], Any] | None = None,
            flag: str | None = None, stored: bool = True, default_text: str | None = None,
            engine: bool = False, **argparse_options: Any) -> Any:
    """A field of `ComparisonPlan`: one setting with everything said about it.

    Args:
        default: the value when neither a file nor a flag sets it.
        help: what it means, for `--help` (plain text; the default is added).
        check: `checks` function that refuses a bad value and returns the canonical one.
        flag: its command-line flag (default: `--` and the name with dashes).
        stored: whether `comparison.json` keeps it (the resume check compares it).
        default_text: the default as `--help` says it (default: the value itself).
        engine: whether it says where the runs train (`ENGINE_KEYS`), not what.
        **argparse_options: `type`, `nargs`, `metavar`, `choices` or `action` of the flag.
    """
    return field(default=default, metadata={
        "help": help, "check": check, "flag": flag, "stored": stored and not engine,
        "default_text": default_text, "engine": engine, "argparse": argparse_options})


def _runs(text: str) -> int | str:
    """The value of --runs: a whole number, or `auto`."""
    if text == AUTO_RUNS:
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number or 'auto'; got {text!r}") from None


def _names(text: str) -> list[str]:
    """The value of --configs: comma-separated names."""
    return [name.strip() for name in text.split(",") if name.strip()]


@dataclass(frozen=True)
class ComparisonPlan:
    """What a comparison will run, before its data is loaded (see `plan_comparison`).

    Each field is one setting (`setting`): its metadata holds its help text, check and flag,
    and `--help` shows that text. After construction `configs` holds `TrainingConfig`s in
    comparison order (names and tables resolved, with `config_file`), with `epochs` and
    `early_stopping` applied to every one; every value is checked (`checks`).

    Example:
        >>> plan = ComparisonPlan(configs=("baseline", "optimized"), runs=1)  # doctest: +SKIP
        >>> plan.config_names                                                # doctest: +SKIP
        ['baseline', 'optimized']
    """

    task: str = setting(defaults.TASK, TASK_HELP, check=checks.check_task)
    configs: tuple[TrainingConfig, ...] = setting(
        tuple(defaults.CONFIGS),
        "comma-separated configurations to compare: built-in ones (baseline, optimized, "
        "optimized_1e-4, optimized_1e-5, mlp) or names from --config-file; in a settings "
        "file a list of names or tables of TrainingConfig fields",
        check=checks.check_configs, default_text=",".join(defaults.CONFIGS), type=_names)
    config_file: Path | None = setting(
        None, "a TOML file of [configs.NAME] tables defining more configurations, each may "
        'start from another with base = "optimized"', stored=False, default_text="none",
        type=Path, metavar="FILE")
    runs: int = setting(
        defaults.RUNS, "number of runs, each on a new split; with --until-decided the most "
        "runs; 'auto' is --until-decided with the default cap", check=checks.check_runs,
        type=_runs)
    epochs: int | None = setting(
        None, "epochs per run for every configuration", stored=False,
        check=checks.whole_number("epochs", 1),
        default_text="each configuration's own, 25 for the article's", type=int)
    early_stopping: int | None = setting(
        None, "stop a run after PATIENCE epochs without a lower validation loss and restore "
        "the best weights, for every configuration", stored=False,
        check=checks.whole_number("early_stopping", 0),
        default_text="each configuration's own; off for the article's, as in the article",
        type=int, metavar="PATIENCE")
    image_size: tuple[int, int] = setting(
        tuple(defaults.IMAGE_SIZE), "size the images are resized to, height then width (the "
        "article's is 600 200)", check=checks.check_image_size, type=int, nargs=2,
        metavar=("HEIGHT", "WIDTH"))
    resize: str = setting(
        defaults.RESIZE, "how a crop becomes the model's input: 'stretch' each side to the "
        "image size (the article's; changes the aspect ratio) or 'letterbox' (scale to fit "
        "with the aspect ratio kept, centred, the rest black); the kept models record it and "
        "predict, report and doctor resize the same way", check=checks.check_resize,
        choices=RESIZE_MODES)
    ratios: tuple[float, float, float] = setting(
        tuple(defaults.RATIOS), "shares of each split", check=checks.check_ratio_values,
        flag="--ratio", type=float, nargs=3, metavar=("TRAIN", "VALIDATE", "TEST"))
    seed: int = setting(defaults.SEED, "run r splits and initialises with seed SEED + r",
                        check=checks.check_seed, type=int)
    select: str = setting(
        defaults.SELECT, "best-model rule: 'test' (the article's: a run replaces the best "
        "when its test loss is lower AND its test accuracy higher) or 'val_loss' (lowest "
        "validation loss; never looks at the test set)", check=checks.check_select,
        choices=SELECTION_RULES)
    balance: str = setting(
        defaults.BALANCE, "balance the classes of each run's training split (never "
        "validation or test): undersample to the rarest class or oversample to the most "
        "common", check=checks.check_balance, choices=BALANCE_METHODS)
    until_decided: bool = setting(
        defaults.UNTIL_DECIDED, "look at test accuracy (the second configuration against the "
        "first) every --look-every runs and stop when the answer is known: decided, "
        "equivalent, or undecidable at this data size (a group-sequential rule that keeps "
        "its 5% error rate over all looks)", check=checks.check_until_decided,
        action="store_true")
    look_every: int = setting(
        defaults.LOOK_EVERY, "with --until-decided: paired runs between two looks",
        check=checks.whole_number("look_every", 1, optional=False), type=int, metavar="K")
    equivalence: float = setting(
        defaults.EQUIVALENCE, "practical-difference margin in test accuracy (0.04 = 4 "
        "points): a corrected interval inside +-DELTA decides 'no practical difference'",
        check=checks.check_equivalence, default_text=f"{defaults.EQUIVALENCE}, none",
        type=float, metavar="DELTA")
    cv: int | None = setting(
        defaults.CV, "stratified K-fold cross-validation instead of a fresh split per run, "
        "repeated --runs times with new seeds (R x K paired runs): each fold is the test set "
        "once, validation is drawn from the other folds with the validate share of --ratio",
        default_text="none", type=int, metavar="K")
    group_by: str = setting(
        defaults.GROUP_BY, "keep groups whole: every crop of one screenshot (from "
        "DATA_DIR/manifest.csv), or of one near-duplicate cluster, goes to the same split",
        check=checks.check_group_by, choices=GROUPINGS)
    workers: int | None = setting(
        defaults.WORKERS, "runs trained at once, on Ray workers; 1: in this process, without "
        "Ray", check=checks.whole_number("workers", 1), engine=True,
        default_text="one per CPU / --threads-per-worker when Ray is installed, else 1",
        type=int, metavar="N")
    threads_per_worker: int | None = setting(
        defaults.THREADS_PER_WORKER, "TensorFlow intra-op threads (and CPUs asked of Ray) per "
        "worker; inter-op threads are 1", check=checks.whole_number("threads_per_worker", 1),
        engine=True, default_text="1 on Ray workers; all cores with --workers 1", type=int,
        metavar="T")
    address: str | None = setting(
        defaults.RAY_ADDRESS, "join this Ray cluster ('auto': the one started on this machine "
        "with `ray start --head`) instead of starting a local Ray instance",
        check=checks.check_address, engine=True, default_text="a local one",
        metavar="auto|HOST:PORT")
    gpus_per_worker: float = setting(
        defaults.GPUS_PER_WORKER, "GPU share each Ray worker asks for, e.g. 0.5 puts two "
        "workers on a GPU", check=checks.check_gpus_per_worker, engine=True, type=float,
        metavar="G")

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            check = item.metadata["check"]
            if check is not None:
                object.__setattr__(self, item.name, check(getattr(self, item.name)))
        object.__setattr__(self, "configs", _resolve_configs(
            self.configs, self.config_file, self.epochs, self.early_stopping))
        checks.check_sequential(self.until_decided, self.look_every, self.equivalence,
                                self.runs, len(self.configs))
        checks.check_cv(self.cv, self.until_decided)

    @property
    def config_names(self) -> list[str]:
        """The configurations' names, in comparison order."""
        return [config.name for config in self.configs]


SETTINGS: tuple[dataclasses.Field, ...] = dataclasses.fields(ComparisonPlan)
# What a settings file may set, and the default of each (None: each configuration's own).
SETTING_DEFAULTS: dict[str, Any] = {item.name: item.default for item in SETTINGS}
SETTING_KEYS: tuple[str, ...] = tuple(SETTING_DEFAULTS)
# Where the runs are trained (`model_utils.engine`), not what: not kept in comparison.json.
ENGINE_KEYS: tuple[str, ...] = tuple(item.name for item in SETTINGS if item.metadata["engine"])
# The settings comparison.json keeps (`stored_settings.ComparisonSettings`).
STORED_KEYS: tuple[str, ...] = tuple(item.name for item in SETTINGS if item.metadata["stored"])
# Keys of comparison.json that record the data it ran on: accepted in a file, not used.
RECORD_KEYS: tuple[str, ...] = ("source", "class_names", "data_fingerprint", "num_images",
                                "groups_fingerprint", "csv_columns", "version")


# ----------------------------------------------------------------------------------------------
# The command line, from the schema


def option(name: str, typed_only: bool = True) -> tuple[str, dict[str, Any]]:
    """The flag of setting `name` and its `add_argument` keywords (dest: the name).

    Args:
        name: a key of `SETTING_KEYS`.
        typed_only: default `argparse.SUPPRESS`, so that the parsed namespace holds the
            setting only when the user typed it (`typed_settings`); else the default.
    """
    item = next(item for item in SETTINGS if item.name == name)
    meta = item.metadata
    shown = meta["default_text"]
    if shown is None:
        default = item.default
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else str(default)
    help_text = meta["help"].replace("%", "%%")
    if meta["argparse"].get("action") != "store_true":
        help_text += f" (default: {shown})"
    keywords = {"dest": name, "help": help_text, **meta["argparse"],
                "default": argparse.SUPPRESS if typed_only else item.default}
    return meta["flag"] or "--" + name.replace("_", "-"), keywords


def add_setting_options(container: argparse._ActionsContainer, names: Iterable[str],
                        typed_only: bool = True) -> None:
    """Adds the flags of the settings `names` to a parser or argument group (`option`)."""
    for name in names:
        flag, keywords = option(name, typed_only)
        container.add_argument(flag, **keywords)


def typed_settings(values: Mapping[str, Any] | argparse.Namespace) -> dict[str, Any]:
    """The settings among parsed flags (`add_setting_options`): those the user typed.

    `--runs auto` becomes `until_decided = true` with the default cap.
    """
    values = vars(values) if isinstance(values, argparse.Namespace) else values
    typed = {key: values[key] for key in SETTING_KEYS if key in values}
    if typed.get("runs") == AUTO_RUNS:
        del typed["runs"]
        typed["until_decided"] = True
    return typed


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
            ComparisonPlan(**values)
        except ToonvisionError as error:
            raise ToonvisionError(f"{settings_file}: {error}") from None
    values.update(overrides)
    return ComparisonPlan(**values)


def _resolve_configs(entries: Iterable[Any], config_file: Path | None, epochs: int | None,
                     early_stopping: int | None) -> tuple[TrainingConfig, ...]:
    """The configurations of `entries` (names, tables or `TrainingConfig`s), with `epochs`
    and `early_stopping` (when not None) applied to every one."""
    from toonvision.model_utils.training.configs import (
        BUILTIN_CONFIGS,
        TrainingConfig,
        config_from_table,
        load_config_file,
    )

    known = dict(BUILTIN_CONFIGS)
    if config_file is not None:
        known.update(load_config_file(config_file))
    configs = []
    for index, entry in enumerate(entries):
        if isinstance(entry, TrainingConfig):
            configs.append(entry)
        elif isinstance(entry, str):
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
    changes = {key: value for key, value in (("epochs", epochs),
                                             ("early_stopping_patience", early_stopping))
               if value is not None}
    return tuple(config.replace(**changes) for config in configs)

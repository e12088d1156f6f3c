"""A hyperparameter search where every trial is a fair, paired comparison (`toonvision search`).

A search space is data, a TOML file:

    base = "optimized"          # the configuration every trial changes
    reference = "optimized"     # what every trial is compared with
    trials = 20                 # trials to finish (complete or pruned); or timeout = "2h"
    runs_per_trial = 5          # paired runs of a trial against the reference
    epochs = 15                 # any comparison setting: task, epochs, image_size, ratios, ...

    [space]                     # any TrainingConfig field, the architecture's included
    dropout = {low = 0.0, high = 0.9}
    learning_rate = {low = 1e-4, high = 1e-2, log = true}
    padding = ["valid", "same"]
    conv_filters = [[16, 32, 32], [32, 64, 64]]

The sampler is Optuna's TPE (`optuna.samplers.TPESampler`), which does well on a budget of tens
of trials and handles choices and conditional ranges. Every trial is a normal comparison
(`compare.Comparison`) of the reference against the trial's configuration, on the reference's
splits (run `r` uses seed `seed + r` in every trial), in its own folder `trials/trial_N/`, so
`toonvision summarize` and `report --run-dir` open it like any comparison. Its score is the
mean paired difference in test accuracy, trial minus reference, stored with its corrected
interval (`paired.paired_difference`) as the trial's user attributes. After each paired run the
running mean is reported to Optuna's `MedianPruner`, which stops a trial whose running mean is
below the median of earlier trials at the same run.

A trial's runs train on the engine of `compare` (`engine.make_engine`: serially, or several
at once on Ray workers, kept for the whole search); the trials themselves run one at a time,
so the sampler and the pruner see every finished trial and run as they would serially.

The study lives in `study.db`, a local SQLite file (`optuna-dashboard sqlite:///study.db`
reads it). A killed search resumes with the same command and `resume=True`: finished trials
are kept, a trial left RUNNING by the kill is marked failed and its parameters are queued
again (once), so no trial is lost but the one in progress and none runs twice. At the end:
`trials.csv` (every trial), `best_configs.toml` (the best trials as `[configs.trial_N]`
tables, for `compare --config-file`); the command draws `trials.png`
(`search_figures.trials_figure`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision import ToonvisionError, defaults, unknown_name_error
from toonvision.fileio import write_text_atomic
from toonvision.model_utils.comparison.runner import Comparison
from toonvision.model_utils.comparison.settings import (
    SETTING_KEYS,
    ComparisonPlan,
    plan_comparison,
)
from toonvision.model_utils.comparison.stored_settings import check_out_dir, settings_for
from toonvision.model_utils.comparison.summary import PRIMARY_METRIC, metric_values
from toonvision.model_utils.studies.search_results import (
    best_trials,
    requeue_interrupted,
    write_results,
)
from toonvision.model_utils.training.configs import TrainingConfig

if TYPE_CHECKING:
    import optuna

    from toonvision.model_utils.engine.protocols import Engine, TrainerFactory

STUDY_FILE = "study.db"
STUDY_NAME = "toonvision-search"
SPEC_FILE = "search.json"
TRIALS_FOLDER = "trials"
# Keys of a search file besides [space]; and the comparison settings it may set.
SEARCH_KEYS: tuple[str, ...] = ("space", "base", "reference", "trials", "timeout",
                                "runs_per_trial", "sampler_seed", "best")
COMPARISON_KEYS: tuple[str, ...] = tuple(key for key in SETTING_KEYS
                                         if key not in ("configs", "runs", "until_decided",
                                                        "look_every", "equivalence",
                                                        "group_by", "groups_fingerprint"))
# What may change when a search is resumed: the budget and how many best trials are written.
_RESUMABLE = ("trials", "timeout", "best")
_CONFIG_FIELDS = tuple(item.name for item in dataclasses.fields(TrainingConfig)
                       if item.name != "name")


@dataclass(frozen=True)
class Dimension:
    """One field of the search space: a range (`low`..`high`) or a list of `choices`."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value of this field (choices that are lists travel as JSON text)."""
        if self.choices:
            encoded = [_encode(choice) for choice in self.choices]
            return _decode(trial.suggest_categorical(self.name, encoded))
        if isinstance(self.low, int) and isinstance(self.high, int) and not self.log:
            return trial.suggest_int(self.name, self.low, self.high, step=int(self.step or 1))
        return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)

    def examples(self) -> list[Any]:
        """Values to check against the base configuration before the search starts."""
        return list(self.choices) if self.choices else [self.low, self.high]


@dataclass(frozen=True)
class SearchSpec:
    """A search: its space, base, reference, budget and the comparison settings of each trial.

    Attributes:
        space: the fields searched.
        base: the configuration a trial starts from.
        reference: the configuration every trial is compared with.
        trials: trials to finish (complete or pruned), or None for as many as `timeout` allows.
        timeout: wall seconds of this invocation, or None.
        runs_per_trial: paired runs per trial (at least 2, for an interval).
        sampler_seed: seed of the TPE sampler.
        best: how many best trials `best_configs.toml` holds.
        comparison: comparison settings of every trial (keys of `COMPARISON_KEYS`).
    """

    space: tuple[Dimension, ...]
    base: str = defaults.SEARCH_BASE
    reference: str = defaults.SEARCH_REFERENCE
    trials: int | None = defaults.SEARCH_TRIALS
    timeout: float | None = None
    runs_per_trial: int = defaults.SEARCH_RUNS_PER_TRIAL
    sampler_seed: int = defaults.SEED
    best: int = defaults.SEARCH_BEST
    comparison: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data (what `search.json` stores)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


@dataclass
class SearchProgress:
    """Where a search stands; passed to the progress callback after every paired run."""

    finished: int
    total: int | None
    trial: int | None
    run: int
    runs: int
    best_trial: int | None
    best_value: float | None


def parse_duration(value: Any) -> float:
    """Seconds of `7200`, `"2h"`, `"90m"`, `"1h30m"` or `"45s"`.

    Raises:
        ToonvisionError: for anything else.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    number = r"(\d+(?:\.\d+)?)"
    match = re.fullmatch(rf"\s*(?:{number}h)?\s*(?:{number}m)?\s*(?:{number}s)?\s*", str(value))
    if not match or not any(match.groups()):
        raise ToonvisionError(f"timeout must be seconds or a duration like '2h', '90m', "
                              f"'1h30m'; got {value!r}")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def load_search_file(path: str | os.PathLike,
                     overrides: Mapping[str, Any] | None = None) -> SearchSpec:
    """Reads a search file (see the module notes); `overrides` (typed flags) win over it.

    Raises:
        ToonvisionError: for an unknown key or field (with a did-you-mean), or a bad value.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToonvisionError(f"search file {path} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ToonvisionError(f"{path}: not valid TOML: {error}") from None
    document.update(overrides or {})
    known = (*SEARCH_KEYS, *COMPARISON_KEYS)
    for key in document:
        if key not in known:
            raise ToonvisionError(f"{path}: {unknown_name_error('search key', key, known)}")
    space = document.get("space")
    if not isinstance(space, dict) or not space:
        raise ToonvisionError(f"{path}: a search needs a [space] table of TrainingConfig fields")
    comparison = {key: document[key] for key in COMPARISON_KEYS if key in document}
    if comparison.get("config_file") is not None:
        comparison["config_file"] = str(path.parent / comparison["config_file"])
    timeout = document.get("timeout")
    trials = document.get("trials", None if timeout is not None else defaults.SEARCH_TRIALS)
    for key, value, least in (("trials", trials, 1), ("best", document.get("best", 1), 1),
                              ("runs_per_trial", document.get("runs_per_trial", 2), 2)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < least):
            raise ToonvisionError(f"{path}: {key} must be a whole number of at least {least}; "
                                  f"got {value!r}")
    return SearchSpec(
        space=tuple(_dimension(path, name, value) for name, value in space.items()),
        base=document.get("base", defaults.SEARCH_BASE),
        reference=document.get("reference", defaults.SEARCH_REFERENCE),
        trials=trials, timeout=None if timeout is None else parse_duration(timeout),
        runs_per_trial=document.get("runs_per_trial", defaults.SEARCH_RUNS_PER_TRIAL),
        sampler_seed=document.get("sampler_seed", defaults.SEED),
        best=document.get("best", defaults.SEARCH_BEST), comparison=comparison)


def _dimension(path: Path, name: str, value: Any) -> Dimension:
    if name not in _CONFIG_FIELDS:
        raise ToonvisionError(f"{path}: space: "
                              f"{unknown_name_error('TrainingConfig field', name, _CONFIG_FIELDS)}")
    if isinstance(value, list) and value:
        return Dimension(name, choices=tuple(_tuples(choice) for choice in value))
    if isinstance(value, dict) and {"low", "high"} <= set(value) <= {"low", "high", "log",
                                                                     "step"}:
        low, high = value["low"], value["high"]
        if not all(isinstance(item, (int, float)) and not isinstance(item, bool)
                   for item in (low, high)) or low >= high:
            raise ToonvisionError(f"{path}: space.{name}: low must be a number below high; "
                                  f"got {value!r}")
        return Dimension(name, low, high, bool(value.get("log", False)), value.get("step"))
    raise ToonvisionError(f"{path}: space.{name} must be a list of choices or a table "
                          f"{{low = ..., high = ...}} (with log = true or step = ... if "
                          f"wanted); got {value!r}")


def _tuples(value: Any) -> Any:
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def _encode(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (tuple, list)) else value


def _decode(value: Any) -> Any:
    return _tuples(json.loads(value)) if isinstance(value, str) and value[:1] == "[" else value


def plan_trials(spec: SearchSpec) -> ComparisonPlan:
    """The comparison every trial runs (`settings.ComparisonPlan`): its configurations are
    the reference and the base, the trial's configuration being the base changed."""
    return plan_comparison({**spec.comparison, "configs": [spec.reference, spec.base],
                            "runs": spec.runs_per_trial})


def run_search(out_dir: str | os.PathLike, spec: SearchSpec, task_data: Any, source: str, *,
               resume: bool = False, trainer_factory: TrainerFactory | None = None,
               progress: Callable[[SearchProgress], None] | None = None,
               engine: Engine | None = None) -> optuna.Study:
    """Runs (or resumes) a search in `out_dir`; returns the Optuna study.

    The trials run one at a time; a trial's paired runs train on `engine`, on Ray several at
    once. The engine is held for the whole search (`with engine:`), so its trainers (the
    reference's) and Ray workers serve every trial. The pruner sees the running mean after
    every run, as the comparison logs them in run order whatever the engine; on Ray, the runs
    in flight when a trial is pruned are dropped (they are not logged).

    Args:
        out_dir: the search's folder (new or empty unless `resume`).
        spec: the search (`load_search_file`).
        task_data: the `dataset.TaskData` every trial trains on.
        source: a description of the data, stored with every trial's comparison.
        resume: continue the search in `out_dir` (the same spec but its budget).
        trainer_factory: as in `Comparison.run` (default `model_utils.Trainer`).
        progress: called with a `SearchProgress` after every paired run and trial.
        engine: where the runs train (`engine.make_engine`); default `engine.SerialEngine()`,
            in this process.

    Raises:
        ToonvisionError: for a space value the base configuration refuses, or a resume with
            another spec or data.
    """
    import optuna

    from toonvision.model_utils.engine.serial import SerialEngine

    out_dir = Path(out_dir)
    engine = engine if engine is not None else SerialEngine()
    plan = plan_trials(spec)
    reference, base = plan.configs
    for dimension in spec.space:
        for example in dimension.examples():
            base.replace(**{dimension.name: example})
    _check_spec(out_dir, spec, task_data, resume)
    storage = f"sqlite:///{(out_dir / STUDY_FILE).resolve()}"
    known = optuna.study.get_all_study_names(storage) if resume else []
    existing = (len(optuna.load_study(study_name=STUDY_NAME, storage=storage).trials)
                if STUDY_NAME in known else 0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage, study_name=STUDY_NAME, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=spec.sampler_seed + existing),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=defaults.SEARCH_STARTUP_TRIALS,
                                           n_warmup_steps=defaults.SEARCH_WARMUP_RUNS))
    requeue_interrupted(study)
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def report(trial: int | None, run: int) -> None:
        if progress is not None:
            best = best_trials(study, 1)
            progress(SearchProgress(len(study.get_trials(states=finished_states)), spec.trials,
                                    trial, run, spec.runs_per_trial,
                                    best[0].number if best else None,
                                    best[0].value if best else None))

    def objective(trial: optuna.Trial) -> float:
        values = {dimension.name: dimension.suggest(trial) for dimension in spec.space}
        name = f"trial_{trial.number}"
        candidate = base.replace(name=name, **values)
        settings = settings_for(task_data, plan.task, [reference, candidate], plan.runs, source,
                                plan.ratios, plan.seed, plan.select, plan.balance, cv=plan.cv)
        comparison = Comparison.start(out_dir / TRIALS_FOLDER / name, settings, resume=True)
        trial.set_user_attr("run_dir", f"{TRIALS_FOLDER}/{name}")
        trial.set_user_attr("config", _changed_fields(candidate))
        for update in comparison.run(task_data, [reference, candidate], trainer_factory,
                                     engine=engine):
            mean = float(np.mean(_differences(comparison)))
            trial.report(mean, update.completed)
            report(trial.number, update.completed)
            if trial.should_prune():
                _score(trial, comparison)
                raise optuna.TrialPruned()
        return _score(trial, comparison)

    remaining = None if spec.trials is None else spec.trials - len(
        study.get_trials(states=finished_states))
    if remaining is None or remaining > 0:
        with engine:   # one trial at a time; its runs spread over the engine's workers
            study.optimize(objective, n_trials=remaining, timeout=spec.timeout,
                           callbacks=[lambda study, trial: report(None, 0)],
                           gc_after_trial=True)
    write_results(out_dir, study, spec.best)
    return study


def _changed_fields(config: TrainingConfig) -> dict[str, Any]:
    """The fields of `config` that differ from the defaults, as JSON gives them back."""
    default = dataclasses.asdict(TrainingConfig(name=config.name))
    mine = dataclasses.asdict(config)
    return json.loads(json.dumps({key: value for key, value in mine.items()
                                  if key != "name" and value != default[key]}))


def _differences(comparison: Comparison) -> np.ndarray:
    """Per run, the trial's test accuracy minus the reference's."""
    reference, candidate = comparison.settings.config_names
    a = metric_values(comparison.records, reference, PRIMARY_METRIC)
    b = metric_values(comparison.records, candidate, PRIMARY_METRIC)
    return np.array([b[run] - a[run] for run in sorted(a) if run in b])


def _score(trial: optuna.Trial, comparison: Comparison) -> float:
    """Records the trial's runs and corrected interval in its user attributes; the mean."""
    from toonvision.model_utils.comparison.runlog import split_sizes
    from toonvision.model_utils.statistics.paired import paired_difference

    differences = _differences(comparison)
    trial.set_user_attr("runs", len(differences))
    if len(differences) >= 2:
        comparison.write_summary()
        n_test, n_train = split_sizes(comparison.records)
        result = paired_difference(np.zeros(len(differences)), differences, n_test, n_train)
        trial.set_user_attr("ci_low", float(result.corrected.low))
        trial.set_user_attr("ci_high", float(result.corrected.high))
    return float(differences.mean())


def _check_spec(out_dir: Path, spec: SearchSpec, task_data: Any, resume: bool) -> None:
    """Writes `search.json`, or on resume checks that the spec and data are the same."""
    from toonvision.model_utils.comparison.stored_settings import data_fingerprint

    non_empty = check_out_dir(out_dir, resume)
    stored = {**spec.to_dict(), "data_fingerprint": data_fingerprint(
        task_data.paths, task_data.labels, task_data.y, task_data.class_names)}
    path = out_dir / SPEC_FILE
    if not path.is_file():
        if non_empty:
            raise ToonvisionError(f"cannot resume in {out_dir}: it has no {SPEC_FILE}, so it "
                                  "is not a search folder")
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(stored, indent=2))
        return
    there = json.loads(path.read_text(encoding="utf-8"))
    differences = [key for key in sorted(set(there) | set(stored))
                   if key not in _RESUMABLE and there.get(key) != stored.get(key)]
    if differences:
        raise ToonvisionError(f"cannot resume {out_dir}: it was started with other "
                              f"{', '.join(differences)} (see its {SPEC_FILE}); only "
                              f"{', '.join(_RESUMABLE)} may change")
    write_text_atomic(path, json.dumps(stored, indent=2))

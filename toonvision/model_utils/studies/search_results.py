"""The files and storage of a search's study: requeued trials, the best ones, the results.

What `search.run_search` does around its trials with Optuna's study (the trials themselves,
each a paired comparison, are in `search`): a trial left RUNNING by a kill is queued again,
and at the end `trials.csv` and `best_configs.toml` are written (the command draws
`trials.png`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toonvision.fileio import write_text_atomic

if TYPE_CHECKING:
    import optuna

TRIALS_CSV = "trials.csv"
BEST_CONFIGS_FILE = "best_configs.toml"


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Marks trials left RUNNING by a kill as failed and queues failed trials' params again.

    A failed trial is queued once: not when a trial with the same parameters is already
    queued, running or finished.

    Returns:
        The numbers of the trials queued again.
    """
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    taken = [trial.params for trial in trials if trial.state != TrialState.FAIL]
    taken += [trial.system_attrs.get("fixed_params") for trial in trials
              if trial.state == TrialState.WAITING]
    queued = []
    for trial in trials:
        if trial.state == TrialState.FAIL and trial.params and trial.params not in taken:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            taken.append(trial.params)
            queued.append(trial.number)
    return queued


def best_trials(study: optuna.Study, count: int) -> list[optuna.trial.FrozenTrial]:
    """The complete trials with the highest scores, best first."""
    from optuna.trial import TrialState

    complete = [trial for trial in study.get_trials(states=(TrialState.COMPLETE,))
                if trial.value is not None and math.isfinite(trial.value)]
    return sorted(complete, key=lambda trial: (-trial.value, trial.number))[:count]


def write_results(out_dir: str | os.PathLike, study: optuna.Study, best: int) -> list[Path]:
    """Writes `trials.csv` and `best_configs.toml`; returns their paths.

    The figure (`trials.png`) is drawn by the command (`data_visualization.search_figures`):
    nothing in model_utils draws.
    """
    out_dir = Path(out_dir)
    paths = [out_dir / TRIALS_CSV, out_dir / BEST_CONFIGS_FILE]
    write_text_atomic(paths[0], study.trials_dataframe().to_csv(index=False))
    write_text_atomic(paths[1], best_configs_toml(best_trials(study, best)))
    return paths


def best_configs_toml(trials: Sequence[optuna.trial.FrozenTrial]) -> str:
    """The trials' configurations as `[configs.trial_N]` tables for `compare --config-file`."""
    lines = ["# The best trials of a toonvision search, best first: each table is the trial's",
             "# configuration (the fields that differ from TrainingConfig's defaults).", ""]
    for trial in trials:
        attrs = trial.user_attrs
        low, high = attrs.get("ci_low", math.nan), attrs.get("ci_high", math.nan)
        lines.append(f"# score {trial.value:+.4f} (mean paired difference in test accuracy "
                     f"against the reference), corrected 95% interval {low:+.4f}..{high:+.4f}"
                     f", {attrs.get('runs')} runs, in {attrs.get('run_dir')}")
        lines.append(f"[configs.trial_{trial.number}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in attrs["config"].items()]
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if value is None:
        return "false"   # config_from_table reads false as None (early_stopping_patience)
    return json.dumps(value)

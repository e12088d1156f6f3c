"""The figure of a search: each trial's score against the fields that matter most.

One panel per searched field (the most important first, by Optuna's fANOVA importance when it
can be computed, else in the space's order, at most `MAX_PANELS`): the trial's value of the
field on x, its score (mean paired difference in test accuracy against the reference) on y
with its corrected 95% interval as an error bar; pruned trials are grey and show their last
running mean. A dashed line marks zero, the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

if TYPE_CHECKING:
    import optuna

MAX_PANELS = 4


def field_order(study: optuna.Study) -> list[str]:
    """The searched fields, the most important first (fANOVA when possible)."""
    from optuna.trial import TrialState

    names: list[str] = []
    for trial in study.get_trials(deepcopy=False):
        names += [name for name in trial.params if name not in names]
    try:
        import optuna

        importances = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return names   # too few complete trials, or a field with one value only
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if complete < 2:
        return names
    return [*importances, *(name for name in names if name not in importances)]


def trials_figure(study: optuna.Study) -> Figure | None:
    """Score against each of the most important fields; None when no trial has a score.

    Example:
        >>> save_figure(trials_figure(study), "runs/search/trials.png")  # doctest: +SKIP
    """
    from optuna.trial import TrialState

    points = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            points.append((trial, trial.value, False))
        elif trial.state == TrialState.PRUNED and trial.intermediate_values:
            last = max(trial.intermediate_values)
            points.append((trial, trial.intermediate_values[last], True))
    names = field_order(study)[:MAX_PANELS]
    if not points or not names:
        return None
    figure = Figure(figsize=(4 * len(names), 3.6))
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for axis, name in zip(axes, names, strict=True):
        values = [trial.params.get(name) for trial, _, _ in points]
        categorical = any(isinstance(value, str) or isinstance(value, bool) for value in values
                          if value is not None)
        labels = sorted({str(value) for value in values}) if categorical else []
        for (trial, score, pruned), value in zip(points, values, strict=True):
            if value is None:
                continue
            x: Any = labels.index(str(value)) if categorical else value
            low, high = trial.user_attrs.get("ci_low"), trial.user_attrs.get("ci_high")
            error = ([[score - low], [high - score]] if low is not None and not pruned
                     else None)
            axis.errorbar(x, score, yerr=error, fmt="o", capsize=3, alpha=0.85,
                          color="0.6" if pruned else "tab:blue")
            axis.annotate(str(trial.number), (x, score), textcoords="offset points",
                          xytext=(4, 4), fontsize=7)
        if categorical:
            axis.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
        axis.axhline(0.0, color="0.3", linestyle="--", linewidth=0.8)
        axis.set_xlabel(name)
        axis.set_title(name, fontsize=10)
    axes[0].set_ylabel("test accuracy minus reference")
    figure.suptitle("search trials (blue: complete, with corrected 95% interval; grey: pruned)",
                    fontsize=10)
    figure.tight_layout()
    return figure

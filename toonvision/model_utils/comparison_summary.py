"""The statistics and figures of a comparison's run log: summary table, learning curves, box plots.

Everything here reads run records (the dictionaries of `runs.jsonl`, see `toonvision.compare`)
and returns a pandas DataFrame or a matplotlib Figure; nothing is written to disk and no
pyplot state is used (figures are saved by `data_visualization.save_figure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SUMMARY_METRICS: tuple[str, ...] = ("accuracy", "loss", "macro_f1")
CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 10_000


def history_table(history: dict[str, list[float]]) -> Any:
    """A history as a DataFrame: `epoch` (from 1), loss, accuracy, val_loss, val_accuracy, then
    the other metrics in alphabetical order."""
    import pandas as pd

    first = [key for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in history]
    keys = first + sorted(set(history) - set(first))
    table = pd.DataFrame({key: pd.Series(history[key], dtype=float) for key in keys})
    table.insert(0, "epoch", np.arange(1, len(table) + 1))
    return table


# ----------------------------------------------------------------------------------------------
# Statistics


def metric_values(records: Sequence[dict], config_name: str, metric: str,
                  split: str = "test_metrics") -> dict[int, float]:
    """`{run: value}` of one metric of one configuration."""
    return {int(record["run"]): float(record[split][metric])
            for record in records
            if record["config"] == config_name and metric in record[split]}


def describe(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, float]:
    """Median, quartiles, min, max, mean and a t confidence interval of the mean."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) > 1 and values.std() > 0:
        low, high = stats.t.interval(confidence, len(values) - 1, loc=mean,
                                     scale=stats.sem(values))
    elif len(values) > 1:
        low = high = mean
    else:
        low = high = float("nan")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"n": len(values), "median": float(median), "q1": float(q1), "q3": float(q3),
            "min": float(values.min()), "max": float(values.max()), "mean": mean,
            "ci_low": float(low), "ci_high": float(high)}


def bootstrap_mean_interval(values: Sequence[float], confidence: float = CONFIDENCE,
                            samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
                            ) -> tuple[float, float]:
    """A percentile bootstrap confidence interval of the mean of `values` (seeded; scipy).

    A single value has no interval: (nan, nan).
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    interval = stats.bootstrap((values,), np.mean, confidence_level=confidence,
                               n_resamples=samples, method="percentile",
                               rng=np.random.default_rng(seed)).confidence_interval
    return float(interval.low), float(interval.high)


def summarize(records: Sequence[dict], config_names: Sequence[str],
              confidence: float = CONFIDENCE, samples: int = BOOTSTRAP_SAMPLES) -> Any:
    """The summary table of test metrics, per configuration and per pair of configurations.

    Per configuration and metric: n, median, quartiles (q1, q3), min, max, mean and a
    `confidence` t interval of the mean. Per pair `B - A` (A listed before B) and metric: the
    same figures of the per-run differences (paired on the run, hence on the split), with a
    percentile bootstrap interval of the mean difference, and how often B beat A.

    Returns:
        A pandas DataFrame with columns `metric, config, n, median, q1, q3, min, max, mean,
        ci_low, ci_high, ci_method, b_better` (`b_better`: fraction of runs where B did better
        than A, empty for single configurations).
    """
    import pandas as pd

    rows = []
    metrics = [metric for metric in SUMMARY_METRICS
               if all(metric_values(records, name, metric) for name in config_names)]
    for metric in metrics:
        values = {name: metric_values(records, name, metric) for name in config_names}
        for name in config_names:
            rows.append({"metric": metric, "config": name,
                         **describe(list(values[name].values()), confidence),
                         "ci_method": "t", "b_better": float("nan")})
        for index, first in enumerate(config_names):
            for second in config_names[index + 1:]:
                runs = sorted(set(values[first]) & set(values[second]))
                if not runs:
                    continue
                differences = np.array([values[second][run] - values[first][run]
                                        for run in runs])
                statistics = describe(differences, confidence)
                low, high = bootstrap_mean_interval(differences, confidence, samples)
                statistics.update(ci_low=low, ci_high=high)
                better = differences < 0 if metric == "loss" else differences > 0
                rows.append({"metric": metric, "config": f"{second} - {first}", **statistics,
                             "ci_method": "paired bootstrap",
                             "b_better": float(better.mean())})
    return pd.DataFrame(rows, columns=["metric", "config", "n", "median", "q1", "q3", "min",
                                       "max", "mean", "ci_low", "ci_high", "ci_method",
                                       "b_better"])


def format_summary(summary: Any) -> str:
    """The summary table as aligned text for a terminal."""
    shown = summary.drop(columns=["ci_method"]).rename(columns={"b_better": "B better"})
    return shown.to_string(index=False, float_format=lambda value: f"{value:.4f}",
                           na_rep="")


# ----------------------------------------------------------------------------------------------
# Figures (matplotlib Figure objects, no pyplot state; saved by data_visualization.save_figure)

CURVES = (("accuracy", "training accuracy"), ("val_accuracy", "validation accuracy"),
           ("loss", "training loss"), ("val_loss", "validation loss"))


def _padded(histories: Sequence[Sequence[float]]) -> np.ndarray:
    """Stacks histories of different lengths (early stopping), padding with NaN."""
    length = max(len(history) for history in histories)
    matrix = np.full((len(histories), length), np.nan)
    for row, history in enumerate(histories):
        matrix[row, : len(history)] = history
    return matrix


def new_figure(rows: int, columns: int, width: float, height: float) -> tuple[Any, np.ndarray]:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure, axes


def learning_curves_figure(records: Sequence[dict], config_names: Sequence[str]) -> Any:
    """The article's figure: per epoch, the mean over runs with a band of one standard deviation,
    for training and validation accuracy and loss, one line per configuration."""
    figure, axes = new_figure(2, 2, 11, 8)
    for axis, (key, title) in zip(axes.flat, CURVES, strict=True):
        for name in config_names:
            histories = [record["history"][key] for record in records
                         if record["config"] == name and record["history"].get(key)]
            if not histories:
                continue
            matrix = _padded(histories)
            mean = np.nanmean(matrix, axis=0)
            deviation = np.nanstd(matrix, axis=0)
            epochs = np.arange(1, len(mean) + 1)
            line, = axis.plot(epochs, mean, label=f"{name} (n={len(histories)})")
            axis.fill_between(epochs, mean - deviation, mean + deviation,
                              color=line.get_color(), alpha=0.2)
        axis.set_title(f"{title}: mean ± 1 sd")
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    return figure


def best_run_curves_figure(best: dict[str, dict], config_names: Sequence[str]) -> Any:
    """Training (solid) and validation (dashed) curves of each configuration's best run."""
    figure, axes = new_figure(1, 2, 11, 4.5)
    for axis, metric in zip(axes.flat, ("accuracy", "loss"), strict=True):
        for name in config_names:
            record = best.get(name)
            if record is None:
                continue
            history = record["history"]
            test = record["test_metrics"]
            label = (f"{name} run {record['run']} (test acc {test['accuracy']:.3f}, "
                     f"loss {test['loss']:.3f})")
            epochs = np.arange(1, len(history.get(metric, [])) + 1)
            line, = axis.plot(epochs, history.get(metric, []), label=f"{label} train")
            axis.plot(np.arange(1, len(history.get(f"val_{metric}", [])) + 1),
                      history.get(f"val_{metric}", []), linestyle="--",
                      color=line.get_color(), label=f"{name} validation")
        axis.set_title(f"best runs: {metric}")
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="x-small")
    return figure


def boxplots_figure(records: Sequence[dict], config_names: Sequence[str]) -> Any:
    """Box plots of the test accuracy and test loss of every run, per configuration."""
    figure, axes = new_figure(1, 2, 10, 4.5)
    for axis, metric in zip(axes.flat, ("accuracy", "loss"), strict=True):
        data = [list(metric_values(records, name, metric).values()) for name in config_names]
        axis.boxplot(data, tick_labels=list(config_names))
        counts = ", ".join(f"{name}: {len(values)}"
                           for name, values in zip(config_names, data, strict=True))
        axis.set_title(f"test {metric} per run ({counts})", fontsize="medium")
        axis.grid(alpha=0.3, axis="y")
    return figure

"""The figures of a comparison and of the optimizer study, drawn from their records.

A comparison's figures (`learning_curves.png`, `best_run_curves.png`, `boxplots.png`, and
`forest.png`, the paired differences with both intervals) are drawn from its run log alone
(`runlog.RunRecord`s) and its summary table, so any comparison folder can be drawn again
without training; `write_comparison_figures` saves them beside the log (`write_run_figures`
for records from elsewhere, such as the article's results). Every figure is a
`matplotlib.figure.Figure` (no pyplot state), saved by `figures.save_figure`.

Example:
    >>> from toonvision.model_utils.comparison.runner import Comparison
    >>> write_comparison_figures(Comparison.load("runs/article"))     # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision.data_visualization.figures import save_figure
from toonvision.model_utils.comparison.summary import metric_values, summarize, summary_options

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from toonvision.model_utils.comparison.runlog import RunRecord
    from toonvision.model_utils.comparison.runner import Comparison
    from toonvision.model_utils.comparison.summary import Summary

LEARNING_CURVES_FILE = "learning_curves.png"
BEST_RUN_CURVES_FILE = "best_run_curves.png"
BOXPLOTS_FILE = "boxplots.png"
FOREST_FILE = "forest.png"
_POINTS = {"accuracy": (100.0, "accuracy points"), "macro_f1": (100.0, "macro-F1 points"),
           "loss": (1.0, "loss")}
CURVES = (("accuracy", "training accuracy"), ("val_accuracy", "validation accuracy"),
          ("loss", "training loss"), ("val_loss", "validation loss"))


def new_figure(rows: int, columns: int, width: float, height: float
               ) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure of `rows` x `columns` axes with whole-number x ticks."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure, axes


def _padded(histories: Sequence[Sequence[float]]) -> np.ndarray:
    """Stacks histories of different lengths (early stopping), padding with NaN."""
    length = max(len(history) for history in histories)
    matrix = np.full((len(histories), length), np.nan)
    for row, history in enumerate(histories):
        matrix[row, : len(history)] = history
    return matrix


def learning_curves_figure(records: Sequence[RunRecord], config_names: Sequence[str]) -> Figure:
    """The article's figure: per epoch, the mean over runs with a band of one standard deviation,
    for training and validation accuracy and loss, one line per configuration."""
    figure, axes = new_figure(2, 2, 11, 8)
    for axis, (key, title) in zip(axes.flat, CURVES, strict=True):
        for name in config_names:
            histories = [record.history[key] for record in records
                         if record.config == name and record.history.get(key)]
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


def best_run_curves_figure(best: Mapping[str, RunRecord], config_names: Sequence[str]
                           ) -> Figure:
    """Training (solid) and validation (dashed) curves of each configuration's best run."""
    figure, axes = new_figure(1, 2, 11, 4.5)
    for axis, metric in zip(axes.flat, ("accuracy", "loss"), strict=True):
        for name in config_names:
            record = best.get(name)
            if record is None:
                continue
            history = record.history
            test = record.test_metrics
            label = (f"{name} run {record.run} (test acc {test['accuracy']:.3f}, "
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


def boxplots_figure(records: Sequence[RunRecord], config_names: Sequence[str]) -> Figure:
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


def forest_figure(table: Any) -> Figure:
    """The paired differences B - A with both intervals, one line per pair and metric.

    Each metric has its own panel (accuracy and macro F1 in points, loss as it is). A thick
    line is the corrected interval, the one to draw conclusions from; the thin line below it
    the re-split interval, the spread over re-splits of this one data set; the dot the mean.

    Args:
        table: a summary table (`comparison_summary.Summary.table`, or `summary.csv` read
            back): its pair rows (`config` "B - A") are drawn.
    """
    from matplotlib.figure import Figure

    pairs = table[table["config"].astype(str).str.contains(" - ", regex=False)]
    metrics = list(dict.fromkeys(pairs["metric"]))
    rows = max(1, len(pairs) // max(1, len(metrics)))
    figure = Figure(figsize=(4.2 * max(1, len(metrics)), 1.2 + 0.55 * rows),
                    layout="constrained")
    axes = figure.subplots(1, max(1, len(metrics)), squeeze=False)[0]
    for axis, metric in zip(axes, metrics, strict=False):
        scale, unit = _POINTS.get(metric, (1.0, metric))
        shown = pairs[pairs["metric"] == metric].reset_index(drop=True)
        positions = -np.arange(len(shown), dtype=float)
        for position, row in zip(positions, shown.itertuples(), strict=True):
            axis.plot([row.ci_low * scale, row.ci_high * scale], [position] * 2, color="C0",
                      linewidth=4, solid_capstyle="butt",
                      label="corrected 95% CI" if position == 0 else None)
            axis.plot([row.resplit_ci_low * scale, row.resplit_ci_high * scale],
                      [position - 0.22] * 2, color="C1", linewidth=1.5,
                      label="re-split CI (this data set only)" if position == 0 else None)
            axis.plot([row.mean * scale], [position], "o", color="black", markersize=4)
        axis.axvline(0.0, color="grey", linewidth=1, linestyle="--")
        axis.set_yticks(positions, list(shown["config"]))
        axis.set_ylim(positions.min() - 0.6 if len(positions) else -1, 0.5)
        axis.set_title(f"test {metric}: B - A", fontsize="medium")
        axis.set_xlabel(unit)
        axis.grid(alpha=0.3, axis="x")
    if metrics:
        axes[0].legend(fontsize="x-small", loc="lower left")
    else:
        axes[0].text(0.5, 0.5, "no pair of configurations", ha="center", va="center")
        axes[0].set_axis_off()
    return figure


def write_run_figures(out_dir: str | os.PathLike, records: Sequence[RunRecord],
                      config_names: Sequence[str], best: Mapping[str, RunRecord],
                      table: Any) -> list[Path]:
    """Draws the figures of paired runs and saves them in `out_dir`.

    The learning curves and best-run curves need the records' histories: records without
    any (the article's results) get only the box plots and the forest plot.

    Returns:
        The paths written.
    """
    figures = {}
    if any(record.history for record in records):
        figures[LEARNING_CURVES_FILE] = learning_curves_figure(records, config_names)
        figures[BEST_RUN_CURVES_FILE] = best_run_curves_figure(best, config_names)
    figures[BOXPLOTS_FILE] = boxplots_figure(records, config_names)
    figures[FOREST_FILE] = forest_figure(table)
    paths = []
    for file_name, figure in figures.items():
        save_figure(figure, Path(out_dir) / file_name)
        paths.append(Path(out_dir) / file_name)
    return paths


def write_comparison_figures(comparison: Comparison, summary: Summary | None = None
                             ) -> list[Path]:
    """Draws a comparison's figures from its log and saves them in its folder.

    Args:
        comparison: the comparison.
        summary: its summary, when already computed (`Comparison.write_summary`).

    Returns:
        The paths written: learning curves, best-run curves, box plots, forest plot.
    """
    names = comparison.settings.config_names
    if summary is None:
        summary = summarize(comparison.records, names, **summary_options(comparison.settings))
    return write_run_figures(comparison.out_dir, comparison.records, names,
                             comparison.best_records(), summary.table)


def optimizers_figure(results: Mapping[str, Any]) -> Figure:
    """Loss and accuracy curves (training and validation) of every optimizer.

    Args:
        results: optimizer name -> its `RunResult` (from `optimizers.compare_optimizers`).
    """
    figure, axes = new_figure(2, 2, 11, 8)
    for axis, (key, title) in zip(axes.flat, CURVES, strict=True):
        for optimizer, result in results.items():
            values = result.history.get(key, [])
            axis.plot(np.arange(1, len(values) + 1), values, label=optimizer)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small", ncols=2)
    return figure

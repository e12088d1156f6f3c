"""The figures of a comparison and of the optimizer study, drawn from their records.

A comparison's three figures (`learning_curves.png`, `best_run_curves.png`, `boxplots.png`)
are drawn from its run log alone (`runlog.RunRecord`s), so any comparison folder can be drawn
again without training; `write_comparison_figures` saves them beside the log. Every figure is
a `matplotlib.figure.Figure` (no pyplot state), saved by `figures.save_figure`.

Example:
    >>> from toonvision.model_utils.compare import Comparison
    >>> write_comparison_figures(Comparison.load("runs/article"))     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision.data_visualization.figures import save_figure
from toonvision.model_utils.comparison_summary import metric_values

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from toonvision.model_utils.compare import Comparison
    from toonvision.model_utils.runlog import RunRecord

LEARNING_CURVES_FILE = "learning_curves.png"
BEST_RUN_CURVES_FILE = "best_run_curves.png"
BOXPLOTS_FILE = "boxplots.png"
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


def write_comparison_figures(comparison: Comparison) -> list[Path]:
    """Draws a comparison's three figures from its log and saves them in its folder.

    Returns:
        The paths written: learning curves, best-run curves, box plots.
    """
    names = comparison.settings.config_names
    figures = {
        LEARNING_CURVES_FILE: learning_curves_figure(comparison.records, names),
        BEST_RUN_CURVES_FILE: best_run_curves_figure(comparison.best_records(), names),
        BOXPLOTS_FILE: boxplots_figure(comparison.records, names),
    }
    paths = []
    for file_name, figure in figures.items():
        save_figure(figure, comparison.out_dir / file_name)
        paths.append(comparison.out_dir / file_name)
    return paths


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

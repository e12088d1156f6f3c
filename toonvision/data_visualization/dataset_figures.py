"""Figures of a dataset before training: balance, a first look, and the preprocessing steps.

Each figure is drawn from what `data_processing` computed (`balance.split_counts` and
`taxonomy_counts`, an `explore.Exploration`, `preprocess.steps_examples`), so computing and
drawing stay apart: a notebook can print the same numbers or draw them its own way. The
functions return `matplotlib.figure.Figure` objects (no pyplot state); the `write_*` helpers
save them with `figures.save_figure` under the file names the commands have always used.

Example:
    >>> from toonvision.data_processing.balance import split_counts
    >>> figure = split_balance_figure(split_counts(classes, y, split))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from toonvision.data_processing.balance import taxonomy_counts
from toonvision.data_processing.explore import Exploration, choose_samples
from toonvision.data_processing.images import read_image
from toonvision.data_processing.splits import SPLIT_NAMES
from toonvision.data_visualization.figures import save_figure

if TYPE_CHECKING:
    from toonvision.data_processing.preprocess import StepsExample

SPLIT_BALANCE_FILE = "split_balance.png"
TAXONOMY_FILE = "taxonomy.png"
CLASS_SHARES_FILE = "class_shares.png"
PIE_FILE = "label_counts_pie.png"
BAR_FILE = "label_counts_bar.png"
SAMPLES_FILE = "samples.png"
SUIT_COLOURS = ("#8b5a2b", "#1f4e9c", "#2e8b57", "#800020")


def split_balance_figure(table: pd.DataFrame) -> Figure:
    """Draws the class counts of each split with the desired marks and the average line.

    A class's "desired" count in a split is that split's share of the class's images (e.g.
    60% for train): a bar that misses its mark shows a split that is not stratified. The
    average line is the mean count per class: bars far from it show class imbalance.

    Args:
        table: the output of `data_processing.balance.split_counts`.
    """
    classes = table.drop(index="all")
    totals = classes["total"].to_numpy(dtype=float)
    figure = Figure(figsize=(5 * len(SPLIT_NAMES), 4 + 0.1 * len(classes)))
    axes = figure.subplots(1, len(SPLIT_NAMES), squeeze=False)
    for axis, name in zip(axes[0], SPLIT_NAMES, strict=True):
        counts = classes[name].to_numpy(dtype=float)
        share = counts.sum() / max(totals.sum(), 1)
        positions = np.arange(len(counts))
        axis.bar(positions, counts, color="tab:blue", label="images")
        axis.scatter(positions, totals * share, marker="_", s=900, color="tab:green",
                     zorder=3, label=f"desired ({share:.0%} of the class)")
        axis.axhline(counts.mean(), color="tab:red", linestyle=":",
                     label=f"average per class: {counts.mean():.1f}")
        axis.set_xticks(positions, classes.index, rotation=60, ha="right")
        axis.set_title(f"{name}: {int(counts.sum())} images")
        axis.set_ylabel("images")
        axis.legend(fontsize="small")
    figure.suptitle("Images per class in each split")
    figure.tight_layout()
    return figure


def taxonomy_figure(suits: Mapping[str, int], animals: Mapping[str, int]) -> Figure:
    """Draws the counts per Cog suit and per Toon animal (from `balance.taxonomy_counts`)."""
    figure = Figure(figsize=(12, 4))
    suit_axis, animal_axis = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2.5]})
    suit_axis.bar(list(suits), list(suits.values()), color=list(SUIT_COLOURS))
    suit_axis.set_title(f"Cogs per suit ({sum(suits.values())})")
    animal_axis.bar(list(animals), list(animals.values()), color="tab:orange")
    animal_axis.set_title(f"Toons per animal ({sum(animals.values())})")
    animal_axis.tick_params(axis="x", rotation=45)
    for axis in (suit_axis, animal_axis):
        axis.set_ylabel("crops")
    figure.tight_layout()
    return figure


def class_shares_figure(counts: Mapping[str, int]) -> Figure:
    """Draws a pie chart of each class's share of the images, with percentages."""
    figure = Figure(figsize=(6, 6))
    axis = figure.subplots()
    axis.pie(list(counts.values()), labels=list(counts), autopct="%1.1f%%", startangle=90,
             counterclock=False)
    axis.set_title(f"Class shares ({sum(counts.values())} images)")
    figure.tight_layout()
    return figure


def write_balance_figures(
    table: pd.DataFrame, labels: Sequence[str], out_dir: str | os.PathLike
) -> list[Path]:
    """Writes `split_balance.png`, `taxonomy.png` and `class_shares.png` into `out_dir`.

    Args:
        table: the output of `balance.split_counts`.
        labels: the raw labels of the images, for the suit and animal counts; the taxonomy
            figure is left out when none of them is a ToonTown label.
        out_dir: the folder (created if needed).

    Returns:
        The written files, in that order.
    """
    out_dir = Path(out_dir)
    written = [save_figure(split_balance_figure(table), out_dir / SPLIT_BALANCE_FILE)]
    suits, animals = taxonomy_counts(labels)
    if any(suits.values()) or any(animals.values()):
        written.append(save_figure(taxonomy_figure(suits, animals), out_dir / TAXONOMY_FILE))
    shares = table["total"].drop(index="all").to_dict()
    written.append(save_figure(class_shares_figure(shares), out_dir / CLASS_SHARES_FILE))
    return written


def label_pie_figure(counts: Mapping[str, int]) -> Figure:
    """Draws the share of each label as a pie chart with percentages."""
    figure = Figure(figsize=(7, 7))
    axis = figure.subplots()
    axis.pie(
        list(counts.values()), labels=list(counts), autopct="%1.1f%%", startangle=90,
        counterclock=False, pctdistance=0.8,
    )
    axis.set_title(f"Images per label ({sum(counts.values())} images)")
    axis.axis("equal")
    return figure


def label_bars_figure(counts: Mapping[str, int]) -> Figure:
    """Draws the count of each label as bars, with the balanced count as a line."""
    figure = Figure(figsize=(max(6, 0.6 * len(counts) + 2), 4.5))
    axis = figure.subplots()
    bars = axis.bar(list(counts), list(counts.values()), color="tab:blue")
    axis.bar_label(bars)
    if counts:
        axis.axhline(
            np.mean(list(counts.values())), color="tab:orange", linestyle="--",
            label="balanced (mean)",
        )
        axis.legend()
    axis.set_ylabel("images")
    axis.set_title("Images per label")
    axis.tick_params(axis="x", labelrotation=45)
    figure.tight_layout()
    return figure


def sample_grid_figure(
    samples: Mapping[str, Sequence[tuple[str, np.ndarray]]], columns: int
) -> Figure:
    """Draws sample images, one row per label.

    Args:
        samples: label -> `(title, RGB image)` pairs, at most `columns` of them.
        columns: tiles per row.
    """
    rows = max(len(samples), 1)
    figure = Figure(figsize=(1.5 * columns, 1.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for row, (label, tiles) in enumerate(samples.items()):
        for column, (title, image) in enumerate(tiles):
            axes[row][column].imshow(image)
            axes[row][column].set_title(title, fontsize=7)
        axes[row][0].axis("on")
        axes[row][0].set_xticks([])
        axes[row][0].set_yticks([])
        axes[row][0].set_ylabel(label, fontsize=9)
    figure.tight_layout()
    return figure


def write_exploration_figures(
    exploration: Exploration, out_dir: str | os.PathLike, samples_per_label: int
) -> list[Path]:
    """Writes `label_counts_pie.png`, `label_counts_bar.png` and `samples.png` into `out_dir`.

    The samples are up to `samples_per_label` random images per label (seed 0), transparent
    pixels shown on black, as the models see them. Nothing is written for an exploration
    without a readable image.

    Returns:
        The written files, in that order.
    """
    if not exploration.counts:
        return []
    out_dir = Path(out_dir)
    samples = {
        label: [(info.path.stem[:14], read_image(info.path)) for info in chosen]
        for label, chosen in choose_samples(exploration.infos, samples_per_label).items()
    }
    return [
        save_figure(label_pie_figure(exploration.counts), out_dir / PIE_FILE),
        save_figure(label_bars_figure(exploration.counts), out_dir / BAR_FILE),
        save_figure(sample_grid_figure(samples, samples_per_label), out_dir / SAMPLES_FILE),
    ]


def preprocess_steps_figure(columns: Sequence[str], examples: Sequence[StepsExample]) -> Figure:
    """Draws each preprocessing step on a few examples, one row per example.

    Args:
        columns: the column titles (`preprocess.steps_columns`).
        examples: the rows (`preprocess.steps_examples`), each with one panel per column.
    """
    figure = Figure(figsize=(1.6 * len(columns), 1.7 * len(examples)))
    axes = figure.subplots(len(examples), len(columns), squeeze=False)
    for row, example in enumerate(examples):
        for column, (axis, panel) in enumerate(zip(axes[row], example.panels, strict=True)):
            axis.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=255,
                        interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(columns[column], fontsize=8)
        axes[row][0].set_ylabel(example.name, fontsize=8)
    figure.tight_layout()
    return figure

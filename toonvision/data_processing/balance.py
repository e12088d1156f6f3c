"""Dataset balance: counts per class and split, and the article's balance figures.

The ToonVision article checks balance before training: how many images each class has in
each split against the count a perfectly balanced split would have ("desired") and the mean
over classes ("average"), plus the share of each suit and each animal. These figures are
made from labels alone; no image is decoded.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from toonvision.data_processing.splits import SPLIT_NAMES
from toonvision.labels import SUITS, TOON_ANIMALS, is_taxonomy_label


def split_counts(
    class_names: Sequence[str], y: np.ndarray, split: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Returns a table of image counts: one row per class, one column per split, and a total.

    The last row, `all`, sums each column.
    """
    table = pd.DataFrame(
        {
            name: np.bincount(y[split[name]], minlength=len(class_names)) for name in SPLIT_NAMES
        },
        index=pd.Index(list(class_names), name="class"),
    )
    table["total"] = table[list(SPLIT_NAMES)].sum(axis=1)
    table.loc["all"] = table.sum(axis=0)
    return table


def taxonomy_counts(labels: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Returns the counts of Cog crops per suit and of Toon crops per animal.

    Every suit and animal is listed, with 0 where there is no crop, so gaps show.
    """
    suits = Counter(
        SUITS[label.split("_")[1]] for label in labels
        if is_taxonomy_label(label) and label.startswith("cog_")
    )
    animals = Counter(
        label.split("_", 1)[1] for label in labels
        if is_taxonomy_label(label) and label.startswith("toon_")
    )
    return (
        {suit: suits.get(suit, 0) for suit in SUITS.values()},
        {animal: animals.get(animal, 0) for animal in TOON_ANIMALS},
    )


def plot_split_balance(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Draws the class counts of each split with the desired marks and the average line.

    A class's "desired" count in a split is that split's share of the class's images (e.g.
    60% for train): a bar that misses its mark shows a split that is not stratified. The
    average line is the mean count per class: bars far from it show class imbalance.

    Args:
        table: the output of `split_counts`.
        path: the PNG to write.
    """
    import matplotlib.pyplot as plt

    classes = table.drop(index="all")
    totals = classes["total"].to_numpy(dtype=float)
    figure, axes = plt.subplots(
        1, len(SPLIT_NAMES), figsize=(5 * len(SPLIT_NAMES), 4 + 0.1 * len(classes)),
        squeeze=False,
    )
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
    return _save(figure, path)


def plot_taxonomy_bars(labels: Sequence[str], path: str | os.PathLike) -> Path | None:
    """Draws the counts per Cog suit and per Toon animal; None when no label is in the taxonomy."""
    import matplotlib.pyplot as plt

    suits, animals = taxonomy_counts(labels)
    if not any(suits.values()) and not any(animals.values()):
        return None
    figure, (suit_axis, animal_axis) = plt.subplots(
        1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 2.5]}
    )
    suit_colours = ["#8b5a2b", "#1f4e9c", "#2e8b57", "#800020"]
    suit_axis.bar(list(suits), list(suits.values()), color=suit_colours)
    suit_axis.set_title(f"Cogs per suit ({sum(suits.values())})")
    animal_axis.bar(list(animals), list(animals.values()), color="tab:orange")
    animal_axis.set_title(f"Toons per animal ({sum(animals.values())})")
    animal_axis.tick_params(axis="x", rotation=45)
    for axis in (suit_axis, animal_axis):
        axis.set_ylabel("crops")
    return _save(figure, path)


def plot_class_shares(counts: dict[str, int], path: str | os.PathLike) -> Path:
    """Draws a pie chart of each class's share of the images, with percentages."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 6))
    axis.pie(list(counts.values()), labels=list(counts), autopct="%1.1f%%", startangle=90,
             counterclock=False)
    axis.set_title(f"Class shares ({sum(counts.values())} images)")
    return _save(figure, path)


def _save(figure, path: str | os.PathLike) -> Path:
    """Saves a figure through a temporary file and a rename, and closes it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    figure.tight_layout()
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)
    return path

"""Dataset balance: counts per class and split, per Cog suit and per Toon animal.

The ToonVision article checks balance before training: how many images each class has in
each split against the count a perfectly balanced split would have ("desired") and the mean
over classes ("average"), plus the share of each suit and each animal. These counts come from
labels alone; no image is decoded. `data_visualization.dataset_figures` draws them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from toonvision.data_processing.splits import SPLIT_NAMES
from toonvision.labels import SUITS, TOON_ANIMALS, taxonomy_parts


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
    parts = [taxonomy_parts(label) for label in labels]
    suits = Counter(part["suit"] for part in parts if "suit" in part)
    animals = Counter(part["animal"] for part in parts if "animal" in part)
    return (
        {suit: suits.get(suit, 0) for suit in SUITS.values()},
        {animal: animals.get(animal, 0) for animal in TOON_ANIMALS},
    )

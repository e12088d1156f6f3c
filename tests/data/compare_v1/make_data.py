"""Writes the tiny crops `compare_v1/` was trained on (see README.md): 24 crops of 48x16.

Run from the repository root: `python tests/data/compare_v1/make_data.py OUT_DIR`. The crops
are `tests/conftest.py`'s `crop_image` (cogs dark, toons bright, Gaussian noise), seed 0.
"""

import sys
from pathlib import Path

import numpy as np

from toonvision.data_processing.images import write_image_atomic
from toonvision.labels import label_prefix

LABELS = ["cog_bb_flunky", "cog_sb_telemarketer", "toon_dog", "toon_cat"] * 6
SIZE = (48, 16)


def main(out: Path) -> None:
    generator = np.random.default_rng(0)
    for index, label in enumerate(LABELS):
        brightness = 60 if label.startswith("cog_") else 190
        image = generator.normal(brightness, 30, (*SIZE, 3)).clip(0, 255).astype(np.uint8)
        write_image_atomic(out / "unsorted" / label_prefix(label) / f"{label}_{index}.png", image)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""A first look at a flat labelled image set, before any training.

The Pokemon challenge team started by looking: how many images and labels, whether some images
are the same picture twice, what sizes and colour modes the files really have (a folder of
"PNGs" can mix RGBA, palette and RGB files), and how unbalanced the labels are, as a table and
as a pie chart with percentages (their choice: imbalance shows at a glance) and a bar chart.
A grid of sample images per label shows what the classes look like.

Everything here returns values or writes tables; `data_visualization.dataset_figures` draws
the figures and the `explore` command prints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from toonvision.data_processing.dataset import Dataset
from toonvision.data_processing.images import ImageReadError, read_image
from toonvision.fileio import write_text_atomic

logger = logging.getLogger(__name__)

SAMPLES_PER_LABEL = 6
SUMMARY_FILE = "summary.json"
COUNTS_FILE = "label_counts.csv"
DUPLICATES_FILE = "duplicates.csv"


@dataclass
class ImageInfo:
    """What one image file really holds.

    Attributes:
        path: the file.
        label: its label.
        format: the format read from the content (`PNG`, `JPEG`, ...), not the extension.
        mode: the colour mode as Pillow names it (`RGBA`, `P` = palette, `RGB`, `L`, ...).
        width: width in pixels.
        height: height in pixels.
        digest: a hash of the decoded pixels (RGBA), equal for the same picture.
        error: why the file could not be read, or None.
    """

    path: Path
    label: str
    format: str = ""
    mode: str = ""
    width: int = 0
    height: int = 0
    digest: str = ""
    error: str | None = None


def inspect_image(path: Path, label: str) -> ImageInfo:
    """Reads the format, mode and size of `path` and hashes its pixels; never raises."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image_format, mode = image.format or "", image.mode
        pixels = read_image(path, keep_alpha=True)
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, ImageReadError,
            Image.DecompressionBombError) as error:
        return ImageInfo(path, label, error=str(error).replace("\n", " "))
    digest = hashlib.blake2b(pixels.tobytes(), digest_size=16)
    digest.update(str(pixels.shape).encode())
    return ImageInfo(
        path, label, image_format, mode, pixels.shape[1], pixels.shape[0], digest.hexdigest()
    )


def inspect_images(dataset: Dataset) -> Iterator[ImageInfo]:
    """Yields an `ImageInfo` per image of `dataset`, in order (one at a time, for progress)."""
    for path, label in zip(dataset.paths, dataset.labels, strict=True):
        yield inspect_image(Path(path), label)


@dataclass
class Exploration:
    """The findings about a dataset.

    Attributes:
        source: the dataset's description.
        counts: images per label, most common first (readable images only).
        sizes: images per `WIDTHxHEIGHT`.
        modes: images per `FORMAT MODE`, e.g. `PNG RGBA`, `PNG P`, `JPEG RGB`.
        duplicates: groups of files holding the same pixels (each group 2+ paths).
        unreadable: one message per file that could not be read.
        skipped: the dataset's own skipped rows and files.
        infos: the per-image findings.
    """

    source: str
    counts: dict[str, int]
    sizes: dict[str, int]
    modes: dict[str, int]
    duplicates: list[list[Path]]
    unreadable: list[str]
    skipped: list[str] = field(default_factory=list)
    infos: list[ImageInfo] = field(default_factory=list)

    @property
    def image_count(self) -> int:
        """The number of readable images."""
        return sum(self.counts.values())

    def counts_table(self) -> pd.DataFrame:
        """Returns the count and percentage per label, plus a `total` row."""
        total = max(self.image_count, 1)
        table = pd.DataFrame(
            {
                "count": list(self.counts.values()),
                "percent": [round(100 * count / total, 1) for count in self.counts.values()],
            },
            index=pd.Index(list(self.counts), name="label"),
        )
        table.loc["total"] = [self.image_count, 100.0 if self.counts else 0.0]
        table["count"] = table["count"].astype(int)
        return table

    def summary(self) -> dict:
        """Returns the findings as plain JSON-ready data."""
        return {
            "source": self.source,
            "images": self.image_count,
            "labels": len(self.counts),
            "counts": self.counts,
            "imbalance_ratio": (
                round(max(self.counts.values()) / min(self.counts.values()), 2)
                if self.counts else None
            ),
            "sizes": self.sizes,
            "modes": self.modes,
            "duplicate_groups": [[str(path) for path in group] for group in self.duplicates],
            "duplicate_images": sum(len(group) - 1 for group in self.duplicates),
            "unreadable": self.unreadable,
            "skipped": self.skipped,
        }


def explore(dataset: Dataset, infos: Sequence[ImageInfo] | None = None) -> Exploration:
    """Gathers counts, sizes, modes and duplicates of `dataset`.

    Args:
        dataset: the images and labels.
        infos: the `inspect_images(dataset)` results, if already gathered (e.g. with progress).

    Returns:
        The findings.
    """
    infos = list(inspect_images(dataset)) if infos is None else list(infos)
    readable = [info for info in infos if info.error is None]
    by_digest: dict[str, list[Path]] = {}
    for info in readable:
        by_digest.setdefault(info.digest, []).append(info.path)
    return Exploration(
        source=dataset.source,
        counts=dict(Counter(info.label for info in readable).most_common()),
        sizes=dict(Counter(f"{info.width}x{info.height}" for info in readable).most_common()),
        modes=dict(Counter(f"{info.format} {info.mode}" for info in readable).most_common()),
        duplicates=[group for group in by_digest.values() if len(group) > 1],
        unreadable=[f"{info.path}: {info.error}" for info in infos if info.error is not None],
        skipped=list(dataset.skipped),
        infos=infos,
    )


def choose_samples(
    infos: Sequence[ImageInfo], per_label: int = SAMPLES_PER_LABEL, seed: int = 0
) -> dict[str, list[ImageInfo]]:
    """Picks up to `per_label` random readable images of each label, for the samples figure.

    Returns:
        Label -> its chosen images in file order, labels sorted; the same seed gives the
        same choice.
    """
    by_label: dict[str, list[ImageInfo]] = {}
    for info in infos:
        if info.error is None:
            by_label.setdefault(info.label, []).append(info)
    generator = np.random.default_rng(seed)
    chosen = {}
    for label in sorted(by_label):
        members = by_label[label]
        picked = generator.choice(len(members), size=min(per_label, len(members)), replace=False)
        chosen[label] = [members[index] for index in sorted(picked)]
    return chosen


def write_exploration(exploration: Exploration, out_dir: str | os.PathLike) -> list[Path]:
    """Writes the summary JSON, the counts CSV and the duplicates CSV.

    The figures are drawn by `data_visualization.dataset_figures.write_exploration_figures`.

    Returns:
        The written files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    summary_path = out_dir / SUMMARY_FILE
    write_text_atomic(summary_path, json.dumps(exploration.summary(), indent=2) + "\n")
    written.append(summary_path)
    counts_path = out_dir / COUNTS_FILE
    write_text_atomic(counts_path, exploration.counts_table().to_csv())
    written.append(counts_path)
    duplicates_path = out_dir / DUPLICATES_FILE
    rows = [
        {"group": number, "path": str(path)}
        for number, group in enumerate(exploration.duplicates, start=1) for path in group
    ]
    write_text_atomic(
        duplicates_path, pd.DataFrame(rows, columns=["group", "path"]).to_csv(index=False)
    )
    written.append(duplicates_path)
    return written

"""Stratified train/validate/test splits as data, and class balancing of the training part.

A split is three arrays of indices into a `TaskData`, made from a seed: nothing is ever moved,
so a new split for each of 200 runs costs microseconds and cannot lose a file. The article's
folder layout is still available for users who want it (`materialize`), built as hard links
in a temporary folder and renamed into place.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toonvision import ExistingFileError, ToonvisionError, defaults
from toonvision.fileio import write_text_atomic

SPLIT_NAMES: tuple[str, ...] = ("train", "validate", "test")
BALANCE_METHODS: tuple[str, ...] = ("none", "undersample", "oversample")


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Returns `ratios` as three floats, normalised to sum to 1.

    Raises:
        ValueError: unless there are exactly three non-negative ratios with a positive train
            ratio.
    """
    values = tuple(float(ratio) for ratio in ratios)
    if len(values) != 3 or min(values) < 0 or values[0] <= 0 or sum(values) <= 0:
        raise ToonvisionError(
            f"ratios must be three non-negative numbers (train validate test) with train > 0; "
            f"got {list(ratios)}"
        )
    total = sum(values)
    return values[0] / total, values[1] / total, values[2] / total


def stratified_split(
    y: Sequence[int] | np.ndarray,
    ratios: Sequence[float] = defaults.RATIOS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Splits indices 0..N-1 into train, validate and test, class by class.

    Each class is shuffled with the seed and cut by the ratios, with the remainders given
    out so that the split sizes match the overall ratios as closely as possible. A class too
    small to reach every split goes to train first, then test, then validate.

    Args:
        y: the class index of every item.
        ratios: the train, validate and test shares (normalised to sum to 1).
        seed: the seed; the same seed and labels always give the same split.

    Returns:
        `{"train": indices, "validate": indices, "test": indices}`, each sorted.
    """
    y = np.asarray(y)
    ratios = check_ratios(ratios)
    generator = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    for class_index in np.unique(y):
        members = generator.permutation(np.flatnonzero(y == class_index))
        counts = _allocate(len(members), ratios)
        start = 0
        for name, count in zip(SPLIT_NAMES, counts, strict=True):
            parts[name].append(members[start:start + count])
            start += count
    return {
        name: np.sort(np.concatenate(chunks)) if chunks else np.empty(0, dtype=np.int64)
        for name, chunks in parts.items()
    }


def _allocate(size: int, ratios: tuple[float, float, float]) -> list[int]:
    """Divides `size` items by `ratios` (largest remainder), filling train, test, then validate."""
    exact = [size * ratio for ratio in ratios]
    counts = [int(np.floor(value)) for value in exact]
    order = sorted(range(3), key=lambda index: (exact[index] - counts[index], -index), reverse=True)
    for index in order[: size - sum(counts)]:
        counts[index] += 1
    if size >= 1 and counts[0] == 0:
        donor = max(range(1, 3), key=lambda index: counts[index])
        counts[donor] -= 1
        counts[0] += 1
    return counts


def balance_indices(
    indices: Sequence[int] | np.ndarray,
    y: Sequence[int] | np.ndarray,
    method: str = "undersample",
    seed: int = 0,
) -> np.ndarray:
    """Balances the classes among `indices` (meant for the training split only).

    Args:
        indices: positions into `y`, e.g. a split's train indices.
        y: the class index of every item of the whole data.
        method: `undersample` (every class cut to the rarest, the Pokemon deck's choice),
            `oversample` (every class repeated up to the most common) or `none`.
        seed: the seed for which items are kept or repeated.

    Returns:
        The balanced indices, sorted; with `oversample` some appear more than once.

    Raises:
        ValueError: for an unknown method.
    """
    if method not in BALANCE_METHODS:
        raise ToonvisionError(f"unknown balance method {method!r}; use one of {BALANCE_METHODS}")
    indices = np.asarray(indices, dtype=np.int64)
    if method == "none" or len(indices) == 0:
        return np.sort(indices)
    labels = np.asarray(y)[indices]
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.min() if method == "undersample" else counts.max()
    generator = np.random.default_rng(seed)
    chosen = []
    for class_index, count in zip(classes, counts, strict=True):
        members = indices[labels == class_index]
        if count >= target:
            chosen.append(generator.choice(members, size=target, replace=False))
        else:
            extra = generator.choice(members, size=target - count, replace=True)
            chosen.append(np.concatenate([members, extra]))
    return np.sort(np.concatenate(chosen))


def split_table(
    paths: Sequence[Path], labels: Sequence[str], class_names: Sequence[str],
    y: Sequence[int], split: dict[str, np.ndarray], root: Path | None = None,
) -> str:
    """Renders a split as CSV text: `path,label,class,split`, one row per image."""
    assignment = np.empty(len(y), dtype=object)
    for name, indices in split.items():
        assignment[indices] = name
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "label", "class", "split"])
    for path, label, class_index, name in zip(paths, labels, y, assignment, strict=True):
        shown = os.path.relpath(path, root) if root is not None else str(path)
        writer.writerow([shown, label, class_names[class_index], name or ""])
    return buffer.getvalue()


def write_split_manifest(path: str | os.PathLike, table: str) -> Path:
    """Writes a split table atomically and returns its path."""
    path = Path(path)
    write_text_atomic(path, table)
    return path


def materialize(
    out_dir: str | os.PathLike,
    paths: Sequence[Path],
    class_names: Sequence[str],
    y: Sequence[int],
    split: dict[str, np.ndarray],
) -> Path:
    """Writes the article's layout `out_dir/{train,validate,test}/<class>/<file>`.

    Files are hard links where the file system allows, else copies. The tree is built in a
    temporary folder beside `out_dir` and renamed into place, so a crash leaves no half tree.

    Raises:
        FileExistsError: if `out_dir` already exists (it is never overwritten).
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ExistingFileError(
            f"{out_dir} already exists; choose a new folder (nothing was changed)"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        for name, indices in split.items():
            for index in indices:
                source = Path(paths[index])
                target = building / name / class_names[y[index]] / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    target = target.with_name(f"{source.parent.name}_{source.name}")
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copy2(source, target)
        os.rename(building, out_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return out_dir

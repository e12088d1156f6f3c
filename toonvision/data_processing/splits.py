"""Stratified train/validate/test splits as data, and class balancing of the training part.

A split is three arrays of indices into a `TaskData`, made from a seed: nothing is ever moved,
so a new split for each of 200 runs costs microseconds and cannot lose a file. The article's
folder layout is still available for users who want it (`materialize`), built as hard links
in a temporary folder and renamed into place.

Splits that do not leak keep groups whole (`grouped_stratified_split`): every crop of one
screenshot (`screenshot_groups`, from the extraction manifest), of one near-duplicate cluster
(`duplicates.duplicate_groups`), or of one value of a CSV column (`column_groups`) goes to
the same part, while each part stays as close to the class shares of the ratios as the
groups allow. `split_groups` picks the grouping by name (`none`, `screenshot`, `duplicates`,
or `column:NAME`), as `split --group-by` and `compare --group-by` do. Cross-validation folds
are in `folds`.
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

from toonvision import ExistingFileError, MissingFileError, ToonvisionError, defaults
from toonvision.fileio import write_text_atomic

SPLIT_NAMES: tuple[str, ...] = ("train", "validate", "test")
BALANCE_METHODS: tuple[str, ...] = ("none", "undersample", "oversample")
GROUPINGS: tuple[str, ...] = ("none", "screenshot", "duplicates")
# A grouping `column:NAME` keeps the images of each value of a CSV set's column NAME together.
COLUMN_GROUPING = "column:"


def describe_groups(grouping: str, groups: Sequence[object]) -> str:
    """`grouped by screenshot: 40 groups` (or `by column scene`), for a command's output."""
    how = grouping.replace(COLUMN_GROUPING, "column ", 1)
    return f"grouped by {how}: {len(set(groups))} groups"


def check_grouping(grouping: object) -> str:
    """Returns `grouping` if it names a grouping: one of `GROUPINGS`, or `column:NAME`.

    Raises:
        ToonvisionError: for anything else, with the closest known name.
    """
    if isinstance(grouping, str) and (grouping in GROUPINGS or (
            grouping.startswith(COLUMN_GROUPING) and grouping[len(COLUMN_GROUPING):].strip())):
        return grouping
    from toonvision import unknown_name_error

    raise unknown_name_error("grouping", str(grouping), [*GROUPINGS, f"{COLUMN_GROUPING}NAME"])


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


def grouped_stratified_split(
    y: Sequence[int] | np.ndarray,
    groups: Sequence[object] | np.ndarray | None,
    ratios: Sequence[float] = defaults.RATIOS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Splits indices 0..N-1 into train, validate and test, keeping each group in one part.

    Groups are placed one at a time, largest first (groups of equal size in an order drawn
    from the seed), each into the part where it brings the class counts closest to their
    targets (ratio x class total), measured as the squared shortfall or excess relative to
    each class's total so that rare classes count as much as common ones. This is the greedy
    rule of scikit-learn's `StratifiedGroupKFold`, for unequal parts: `StratifiedGroupKFold`
    only makes equal folds, and 60/20/20 or 70/15/15 are not.

    Args:
        y: the class index of every item.
        groups: the group of every item (any hashable values); None: no grouping, exactly
            `stratified_split`.
        ratios: the train, validate and test shares (normalised to sum to 1).
        seed: the seed; the same seed, labels and groups always give the same split.

    Returns:
        `{"train": indices, "validate": indices, "test": indices}`, each sorted.

    Raises:
        ToonvisionError: if `groups` does not have one value per item, or for bad ratios.

    Example:
        >>> split = grouped_stratified_split(task_data.y, groups, (0.6, 0.2, 0.2), seed=3)
        ...                                                               # doctest: +SKIP
    """
    if groups is None:
        return stratified_split(y, ratios, seed)
    y = np.asarray(y)
    ratios = check_ratios(ratios)
    groups = np.asarray(groups)
    if groups.shape != y.shape:
        raise ToonvisionError(f"need one group per item: {len(y)} items but groups of shape "
                              f"{groups.shape}")
    if len(y) == 0:
        return {name: np.empty(0, dtype=np.int64) for name in SPLIT_NAMES}
    _, group_of = np.unique(groups.astype(str), return_inverse=True)
    _, class_of = np.unique(y, return_inverse=True)
    counts = np.zeros((group_of.max() + 1, class_of.max() + 1))
    np.add.at(counts, (group_of, class_of), 1)
    weights = 1.0 / counts.sum(axis=0)
    target = np.outer(ratios, counts.sum(axis=0))
    placed = np.zeros_like(target)
    generator = np.random.default_rng(seed)
    order = generator.permutation(len(counts))
    order = order[np.argsort(-counts.sum(axis=1)[order], kind="stable")]
    part_of_group = np.empty(len(counts), dtype=np.int64)
    for group in order:
        before = ((placed - target) * weights) ** 2
        after = ((placed + counts[group] - target) * weights) ** 2
        increase = (after - before).sum(axis=1)
        increase[np.asarray(ratios) == 0] = np.inf
        part = int(np.argmin(increase))
        part_of_group[group] = part
        placed[part] += counts[group]
    part_of_item = part_of_group[group_of]
    return {name: np.flatnonzero(part_of_item == index).astype(np.int64)
            for index, name in enumerate(SPLIT_NAMES)}


def screenshot_groups(paths: Sequence[Path], data_dir: str | os.PathLike) -> np.ndarray:
    """The screenshot of every crop, from the extraction manifest (`source_sha256`).

    A crop that the manifest does not list (copied in by hand) is a group of its own.

    Args:
        paths: crops below `data_dir` (as `dataset.from_crops` lists them).
        data_dir: the data folder holding `manifest.csv`.

    Returns:
        (N,) group names: the screenshot's SHA-256, or `crop:<path>` for an unlisted crop.

    Raises:
        MissingFileError: if the data folder has no manifest.
    """
    from toonvision.data_processing.manifest import MANIFEST_NAME, read_manifest

    data_dir = Path(data_dir)
    manifest = data_dir / MANIFEST_NAME
    if not manifest.is_file():
        raise MissingFileError(f"{manifest} does not exist: grouping by screenshot needs the "
                               "manifest that 'toonvision extract' writes")
    source_of = {record.crop: record.source_sha256 for record in read_manifest(manifest)}
    groups = []
    for path in paths:
        relative = Path(os.path.relpath(path, data_dir)).as_posix()
        groups.append(source_of.get(relative) or f"crop:{relative}")
    return np.asarray(groups, dtype=object)


def column_groups(labels_csv: str | os.PathLike, paths: Sequence[Path], group_column: str,
                  id_column: str | None = None) -> np.ndarray:
    """The value of a CSV column for every image of a flat set (`split --group-column`).

    Args:
        labels_csv: the set's CSV.
        paths: the images, as `dataset.from_csv` found them (file = id + extension).
        group_column: the column naming each row's group (e.g. a scene or an individual).
        id_column: the column with the file stem; default: the first column.

    Returns:
        (N,) group values; an image whose row has an empty value is a group of its own.

    Raises:
        ToonvisionError: if the column is missing (naming the CSV and its columns).
    """
    import pandas as pd

    table = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    columns = list(table.columns)
    id_column = id_column or columns[0]
    for name in (id_column, group_column):
        if name not in columns:
            raise ToonvisionError(f"{labels_csv}: no column {name!r}; columns are {columns}")
    group_of = {str(image_id).strip(): str(group).strip()
                for image_id, group in zip(table[id_column], table[group_column], strict=True)}
    groups = []
    for path in paths:
        value = group_of.get(path.stem, group_of.get(path.name, ""))
        groups.append(f"{group_column}:{value}" if value else f"image:{path.name}")
    return np.asarray(groups, dtype=object)


def split_groups(grouping: str, paths: Sequence[Path], data_dir: str | os.PathLike | None = None,
                 max_distance: int | None = None, labels_csv: str | os.PathLike | None = None,
                 id_column: str | None = None) -> np.ndarray | None:
    """The groups of a grouping by name: `none` (None), `screenshot`, `duplicates`, `column:NAME`.

    Args:
        grouping: one of `GROUPINGS`, or `column:NAME` (`check_grouping`).
        paths: the images.
        data_dir: the data folder (for `screenshot`).
        max_distance: the near-duplicate distance (for `duplicates`); default
            `duplicates.MAX_DISTANCE`.
        labels_csv: a flat set's CSV (for `column:NAME`).
        id_column: that CSV's id column; default: its first.

    Raises:
        ToonvisionError: for an unknown grouping, `screenshot` without a data folder, or a
            column without a CSV.
    """
    check_grouping(grouping)
    if grouping == "none":
        return None
    if grouping == "screenshot":
        if data_dir is None:
            raise ToonvisionError("grouping by screenshot needs extracted crops and their "
                                  "manifest (--data-dir); a CSV set can name a --group-column")
        return screenshot_groups(paths, data_dir)
    if grouping.startswith(COLUMN_GROUPING):
        if labels_csv is None:
            raise ToonvisionError(f"grouping by a CSV column ({grouping}, --group-column) needs "
                                  "a flat set (--labels CSV --images DIR); extracted crops "
                                  "group by screenshot or duplicates")
        return column_groups(labels_csv, paths, grouping[len(COLUMN_GROUPING):], id_column)
    from toonvision.data_processing.duplicates import MAX_DISTANCE, duplicate_groups

    return duplicate_groups(paths, MAX_DISTANCE if max_distance is None else max_distance)


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
    groups: Sequence[object] | None = None,
) -> str:
    """Renders a split as CSV text: `path,label,class,split`, one row per image.

    With `groups`, a fifth column `group` records each image's group, so that anyone can
    check that no group straddles two parts.
    """
    assignment = np.empty(len(y), dtype=object)
    for name, indices in split.items():
        assignment[indices] = name
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "label", "class", "split"] + ([] if groups is None else ["group"]))
    group_values = [None] * len(y) if groups is None else list(groups)
    for path, label, class_index, name, group in zip(paths, labels, y, assignment,
                                                     group_values, strict=True):
        shown = os.path.relpath(path, root) if root is not None else str(path)
        row = [shown, label, class_names[class_index], name or ""]
        writer.writerow(row if groups is None else row + [group])
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

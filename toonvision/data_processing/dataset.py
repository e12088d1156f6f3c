"""One dataset abstraction for every source, and a cached loader of its images.

A `Dataset` is just image paths and their raw labels. It comes from extracted crops
(`from_crops`) or from a CSV of labels beside a folder of images (`from_csv`). Everything
after that works on the same object: `load_task_data` picks the images a task covers, decodes
each once, resizes it, and caches the whole array on disk, so that building the arrays of a
new split for each of 200 runs is a matter of indexing, not of reading files again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toonvision import MissingFileError, ToonvisionError, defaults
from toonvision.data_processing.corrections import read_corrections
from toonvision.data_processing.images import ImageReadError, is_image_file, read_image, resize
from toonvision.data_processing.placement import placement
from toonvision.labels import Task

logger = logging.getLogger(__name__)

CROPS_FOLDER = "unsorted"
CACHE_ENVIRONMENT_VARIABLE = "TOONVISION_CACHE"


@dataclass
class Dataset:
    """Image files and their raw labels, from any source.

    Attributes:
        paths: the image files.
        labels: the raw label of each file (e.g. `cog_sb_coldcaller`, `king`, `Water`).
        source: a human-readable description of where the data came from.
        skipped: one-line messages for files or rows left out, each naming the file and why.
        corrected: how many labels come from the data folder's corrections file
            (`corrections`) rather than from the crops' names.
    """

    paths: list[Path]
    labels: list[str]
    source: str
    skipped: list[str] = field(default_factory=list)
    corrected: int = 0

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.labels):
            raise ToonvisionError(f"{len(self.paths)} paths but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.paths)

    def label_counts(self) -> dict[str, int]:
        """Returns the number of images per raw label, sorted by label."""
        labels, counts = np.unique(np.asarray(self.labels, dtype=str), return_counts=True)
        return {str(label): int(count) for label, count in zip(labels, counts, strict=True)}


def label_from_crop_name(path: Path) -> str:
    """Returns the label encoded in a crop's file name: `cog_bb_flunky_12.png` -> `cog_bb_flunky`.

    A name without a numeric `_<index>` suffix is taken whole as the label. Read in Unicode's
    composed form (NFC), as `extract` writes labels: a folder copied from macOS, whose file
    names are decomposed, gives the same labels.
    """
    stem = unicodedata.normalize("NFC", path.stem)
    label, separator, index = stem.rpartition("_")
    return label if separator and label and index.isdigit() else stem


def from_crops(data_dir: str | os.PathLike) -> Dataset:
    """Collects every crop under `<data_dir>/unsorted/`, labelled by its file name, or by
    `<data_dir>/corrections.csv` where a correction names it (see `corrections`).

    Args:
        data_dir: the data root that `toonvision extract` writes to.

    Returns:
        The dataset, sorted by path so that it is the same on every machine.

    Raises:
        FileNotFoundError: if `<data_dir>/unsorted` does not exist.
    """
    crops_dir = Path(data_dir) / CROPS_FOLDER
    if not crops_dir.is_dir():
        raise MissingFileError(
            f"{crops_dir} does not exist: run 'toonvision extract SCREENSHOTS_DIR --data-dir "
            f"{data_dir}' first"
        )
    paths = sorted(
        path for path in crops_dir.rglob("*")
        if path.is_file() and is_image_file(path) and not path.name.startswith(".")
    )
    corrections = read_corrections(data_dir)
    root = Path(data_dir)
    labels = [label_from_crop_name(path) for path in paths]
    corrected = 0
    if corrections:
        for position, path in enumerate(paths):
            correction = corrections.get(path.relative_to(root).as_posix())
            if correction is not None:
                labels[position] = correction.corrected
                corrected += 1
    return Dataset(paths, labels, str(crops_dir), corrected=corrected)


def from_csv(
    labels_csv: str | os.PathLike,
    images_dir: str | os.PathLike,
    id_column: str | None = None,
    label_column: str | None = None,
    keep: Iterable[str] | None = None,
) -> Dataset:
    """Reads a flat labelled set: a CSV of ids and labels plus a folder of images.

    The challenge form is `Id,label` with image file = Id plus whatever image extension is
    found on disk; named columns (e.g. `Name,Type1,Type2`) are chosen with `id_column` and
    `label_column`. Rows without an image and images without a row are reported in
    `Dataset.skipped`, never fatal.

    Args:
        labels_csv: the CSV file.
        images_dir: the folder holding the images.
        id_column: the column with the file stem; default: the first column.
        label_column: the column with the label; default: the second column.
        keep: if given, only rows with these labels are kept.

    Returns:
        The dataset, in CSV row order.

    Raises:
        FileNotFoundError: if the CSV or the folder is missing.
        ValueError: if a named column is not in the CSV or the CSV has fewer than 2 columns.
    """
    import pandas as pd

    labels_csv, images_dir = Path(labels_csv), Path(images_dir)
    if not labels_csv.is_file():
        raise MissingFileError(f"label file {labels_csv} does not exist")
    if not images_dir.is_dir():
        raise MissingFileError(f"image folder {images_dir} does not exist")
    table = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    columns = list(table.columns)
    if len(columns) < 2 and (id_column is None or label_column is None):
        raise ToonvisionError(f"{labels_csv}: need an id and a label column, found {columns}")
    id_column = id_column or columns[0]
    label_column = label_column or columns[1]
    for name in (id_column, label_column):
        if name not in columns:
            raise ToonvisionError(f"{labels_csv}: no column {name!r}; columns are {columns}")

    images_by_stem: dict[str, Path] = {}
    alternatives: list[Path] = []
    for path in sorted(images_dir.iterdir()):
        if path.is_file() and is_image_file(path):
            if path.stem in images_by_stem:
                alternatives.append(path)
            images_by_stem.setdefault(path.stem, path)
            images_by_stem.setdefault(path.name, path)

    kept_labels = None if keep is None else {label.strip() for label in keep}
    paths, labels, skipped, used = [], [], [], set()
    for row_number, (image_id, label) in enumerate(
        zip(table[id_column], table[label_column], strict=True), start=2
    ):
        image_id, label = str(image_id).strip(), str(label).strip()
        if kept_labels is not None and label not in kept_labels:
            continue
        if not label:
            skipped.append(f"{labels_csv}:{row_number}: id {image_id!r} has an empty label")
            continue
        path = images_by_stem.get(image_id)
        if path in used:
            skipped.append(
                f"{labels_csv}:{row_number}: id {image_id!r} repeats an earlier row; left out"
            )
            continue
        if path is None:
            skipped.append(
                f"{labels_csv}:{row_number}: no image for id {image_id!r} in {images_dir}"
            )
            continue
        paths.append(path)
        labels.append(label)
        used.add(path)
    for path in alternatives:
        chosen = images_by_stem[path.stem]
        skipped.append(f"{path}: same id as {chosen.name}, which is used instead")
    if kept_labels is None:
        for path in sorted(set(images_by_stem.values()) - used):
            skipped.append(f"{path}: image has no row in {labels_csv}")
    else:
        for label in sorted(kept_labels - set(labels)):
            skipped.append(f"{labels_csv}: --keep label {label!r} matches no row with an image")
    return Dataset(paths, labels, f"{labels_csv} + {images_dir}", skipped)


@dataclass
class TaskData:
    """A dataset loaded for one task: the images it covers and their class indices.

    Attributes:
        images: (N, height, width, 3) uint8 RGB.
        y: (N,) int64 class indices into `class_names`.
        class_names: the task's classes, in index order.
        paths: the image file of each row.
        labels: the raw label of each row.
        task: the task.
        skipped: files left out and why (unreadable images, plus the source's own).
        groups: the group of every row that splits keep whole (`splits.split_groups`: its
            screenshot, near-duplicate cluster or CSV column value), or None: ungrouped.
            Loading leaves it None; `compare --group-by` sets it.
    """

    images: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    paths: list[Path]
    labels: list[str]
    task: Task
    skipped: list[str] = field(default_factory=list)
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self) -> dict[str, int]:
        """Returns the number of images per class, in class order."""
        counts = np.bincount(self.y, minlength=len(self.class_names))
        return {name: int(count) for name, count in zip(self.class_names, counts, strict=True)}


def default_cache_dir() -> Path:
    """The image cache: `$TOONVISION_CACHE`, else `$XDG_CACHE_HOME/toonvision`, else ~/.cache."""
    if os.environ.get(CACHE_ENVIRONMENT_VARIABLE):
        return Path(os.environ[CACHE_ENVIRONMENT_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "toonvision"


def load_task_data(
    dataset: Dataset,
    task: Task,
    image_size: tuple[int, int] = defaults.IMAGE_SIZE,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    resize_mode: str = defaults.RESIZE,
) -> TaskData:
    """Loads the images of `dataset` that `task` covers, resized, with their class indices.

    Args:
        dataset: the source.
        task: which labels become which classes; uncovered labels are left out.
        image_size: (height, width) of the returned images.
        cache_dir: where decoded arrays are cached; default `default_cache_dir()`.
        progress: called as `progress(done, total)` while images are decoded (not on a hit).
        resize_mode: `stretch` or `letterbox` (`images.resize`).

    Returns:
        The task's data. Images that cannot be decoded are left out and listed in `skipped`.

    Raises:
        ValueError: if the task covers no image of the dataset.
    """
    paths, labels, y = select_for_task(dataset, task)
    images, readable = load_images(paths, image_size, cache_dir, progress, resize_mode)
    skipped = list(dataset.skipped) + [
        message for message in readable if isinstance(message, str)
    ]
    keep = [index for index, message in enumerate(readable) if message is None]
    return TaskData(
        images=images[keep] if len(keep) < len(paths) else images,
        y=y[keep],
        class_names=task.classes,
        paths=[paths[index] for index in keep],
        labels=[labels[index] for index in keep],
        task=task,
        skipped=skipped,
    )


def select_for_task(dataset: Dataset, task: Task) -> tuple[list[Path], list[str], np.ndarray]:
    """Returns the paths, raw labels and class indices of the images `task` covers.

    No image is read, so counting and splitting cost nothing.

    Raises:
        ValueError: if the task covers no image of the dataset.
    """
    selected = [
        (path, label, task.class_index(label))
        for path, label in zip(dataset.paths, dataset.labels, strict=True)
        if task.class_of(label) is not None
    ]
    if not selected:
        labels = sorted(set(dataset.labels))
        found = ", ".join(labels[:10]) + (f" and {len(labels) - 10} more" if len(labels) > 10
                                          else "") or "none"
        hint = ("; --task label makes every label a class, --task "
                f"{','.join(labels[:3])} keeps only those" if labels else "")
        raise ToonvisionError(
            f"task {task.name!r} (classes {', '.join(task.classes) or 'none'}) covers no image "
            f"of {dataset.source}; labels found: {found}{hint}"
        )
    return (
        [path for path, _, _ in selected],
        [label for _, label, _ in selected],
        np.asarray([class_index for _, _, class_index in selected], dtype=np.int64),
    )


def load_images(
    paths: Sequence[Path],
    image_size: tuple[int, int] = defaults.IMAGE_SIZE,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    resize_mode: str = defaults.RESIZE,
) -> tuple[np.ndarray, list[str | None]]:
    """Decodes and resizes `paths` (`images.resize` in `resize_mode`) once, then serves them
    from an on-disk cache.

    The cache key is a hash of every file's content, the size and the resize mode, so adding,
    removing or changing any image makes a new entry; a stale array is never served.

    Returns:
        The images as (N, height, width, 3) uint8 RGB (zeros for unreadable files), and per
        path None or the message saying why it could not be read.
    """
    height, width = _check_size(image_size)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    placement((1, 1), (height, width), resize_mode)   # refuses an unknown mode
    # Stretched arrays keep the key they had before letterbox existed.
    mode_key = "" if resize_mode == "stretch" else f":{resize_mode}"
    digest = hashlib.blake2b(f"v1:{height}x{width}{mode_key}".encode(), digest_size=20)
    for path in paths:
        digest.update(str(path.name).encode())
        digest.update(hashlib.blake2b(path.read_bytes(), digest_size=16).digest())
    key = digest.hexdigest()
    images_file = cache_dir / f"images-{key}.npy"
    errors_file = cache_dir / f"images-{key}.errors"
    if images_file.is_file() and errors_file.is_file():
        try:
            images = np.load(images_file)
            errors = errors_file.read_text(encoding="utf-8").split("\n")[: len(paths)]
            if images.shape == (len(paths), height, width, 3) and len(errors) == len(paths):
                return images, [message or None for message in errors]
        except (OSError, ValueError) as error:
            logger.warning("ignoring unreadable cache %s: %s", images_file, error)

    images = np.zeros((len(paths), height, width, 3), dtype=np.uint8)
    messages: list[str | None] = []
    for index, path in enumerate(paths):
        try:
            images[index] = resize(read_image(path), (height, width), resize_mode)
            messages.append(None)
        except ImageReadError as error:
            messages.append(str(error).replace("\n", " "))
        if progress is not None:
            progress(index + 1, len(paths))
    _write_cache(images_file, errors_file, images, messages)
    return images, messages


def _write_cache(
    images_file: Path, errors_file: Path, images: np.ndarray, messages: list[str | None]
) -> None:
    from toonvision.fileio import atomic_path, write_text_atomic

    try:
        with atomic_path(images_file) as temporary:
            np.save(temporary, images)
        write_text_atomic(errors_file, "\n".join(message or "" for message in messages))
    except OSError as error:
        logger.warning("could not write the image cache in %s: %s", images_file.parent, error)


def crop_ids(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """Returns a stable id per image: the first 8 bytes of the BLAKE2b hash of its file.

    The id depends on the file's bytes only, so it survives renaming or moving the data
    folder, and two runs of a comparison name the same crop alike. Files with identical bytes
    share an id (the dataset doctor reports them as exact duplicates anyway).

    Args:
        paths: the image files.

    Returns:
        (N,) uint64 ids, in the order of `paths`.

    Raises:
        MissingFileError: if a file cannot be read (the message names it).

    Example:
        >>> ids = crop_ids(task_data.paths)   # doctest: +SKIP
    """
    ids = np.empty(len(paths), dtype=np.uint64)
    for index, path in enumerate(paths):
        try:
            digest = hashlib.blake2b(Path(path).read_bytes(), digest_size=8).digest()
        except OSError as error:
            raise MissingFileError(f"{path}: cannot read the image to identify it ({error})"
                                   ) from None
        ids[index] = int.from_bytes(digest, "little")
    return ids


def _check_size(image_size: Sequence[int]) -> tuple[int, int]:
    if len(image_size) != 2 or min(int(value) for value in image_size) < 8:
        raise ToonvisionError(f"image size must be (height, width), each >= 8; got {image_size!r}")
    return int(image_size[0]), int(image_size[1])

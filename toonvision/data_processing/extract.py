"""Extraction: labelled screenshots in, a growing folder of crops plus a manifest out.

`toonvision extract` walks a folder of screenshots, each with its labelImg Pascal VOC XML
beside it, and crops every labelled box into `<data_dir>/unsorted/<prefix>/<label>_<index>.png`
(`<prefix>` is `cog`, `toon`, or the label itself for labels outside the ToonTown taxonomy).

Three promises shape the code:

- Nothing is extracted twice and no number is reused. `<data_dir>/manifest.csv` records each
  crop with the content hash of its screenshot and the object's position in the XML, so a
  screenshot seen again (even renamed or moved) adds nothing; the next index of a label is
  one past the highest ever recorded or found on disk, so deleted crops leave a gap.
- A crash or kill never leaves a half-done state that a re-run cannot finish exactly. For each
  screenshot the indices of its new crops are first recorded in the manifest as `planned`,
  then the crops are written (each to a temporary name, then renamed), then the rows become
  `written`. A re-run reuses planned indices, so it produces the very files an uninterrupted
  run would have produced.
- Bad input is reported, never fatal: each problem is one message naming the file and the
  reason, the batch goes on, and no file is written outside `<data_dir>` (or the drawing
  folder the user named).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toonvision import MissingFileError, ToonvisionError
from toonvision.data_processing import voc
from toonvision.data_processing.dataset import CROPS_FOLDER
from toonvision.data_processing.images import (
    ImageReadError,
    draw_labelled_box,
    is_image_file,
    read_image,
    write_image_atomic,
)
from toonvision.data_processing.manifest import (
    _MANIFEST_ROW,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    PLANNED,
    WRITTEN,
    CropRecord,
    _csv_line,
    read_manifest,
)
from toonvision.fileio import (
    exclusive_lock,
    move_without_overwrite,
    remove_temporary_files,
    write_text_atomic,
)
from toonvision.labels import is_taxonomy_label, label_prefix, safe_label

logger = logging.getLogger(__name__)

SCREENSHOT_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg")
# Decoding and encoding run in threads (OpenCV releases the GIL); screenshots are read up to
# READ_AHEAD ahead of the one being written. Indices are still given out in order.
WORKERS = min(4, os.cpu_count() or 1)
READ_AHEAD = 2 * WORKERS
PROCESSED_FOLDER = Path("raw") / "processed"
LOCK_NAME = ".extract.lock"
# Temporary files left by a killed atomic write: `.<name>.<8 random characters>.tmp`.

# Reasons a file or object is skipped; the summary groups skipped items by them.
IMAGE_WITHOUT_XML = "image without XML"
XML_WITHOUT_IMAGE = "XML without image"
AMBIGUOUS_PAIR = "several files for one screenshot"
UNUSABLE_XML = "unusable XML"
UNREADABLE_IMAGE = "unreadable image"
UNUSABLE_OBJECT = "unusable object"
UNUSABLE_LABEL = "unusable label"
EMPTY_BOX = voc.EMPTY_BOX
BOX_OUTSIDE_IMAGE = voc.BOX_OUTSIDE_IMAGE
MOVE_FAILED = "extracted, but could not be moved"
# Notes: worth knowing, but nothing was lost.
SIZE_MISMATCH = "<size> differs from the image (the image was trusted)"
BOX_CLIPPED = "box clipped to the image"
LABEL_RENAMED = "label made safe as a file name"
SAME_CONTENT = "same content as an extracted screenshot"


@dataclass(frozen=True)
class Problem:
    """Something about one file that the user should know.

    Attributes:
        path: the file concerned.
        kind: the reason in a few words (one of the module's reason constants).
        detail: the specifics, e.g. which object and which box.
    """

    path: Path
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class ScreenshotPair:
    """A screenshot and its annotation; `relative` is the image's path below the search root."""

    image: Path
    xml: Path
    relative: Path






@dataclass
class ScreenshotResult:
    """What happened to one screenshot (or to one file that is not a usable screenshot).

    Attributes:
        image_path: the screenshot, or the lone file for a pairing problem.
        xml_path: its annotation, when there is one.
        read: whether both the image and its XML were read.
        crops: the crops written by this run.
        already_extracted: objects skipped because an earlier run extracted them.
        skipped: files or objects left out, each with its reason.
        notes: things worth knowing where nothing was lost.
        moved_to: where the screenshot was moved by `move=True`, if it was.
        drawing: the copy with boxes drawn, if one was written.
    """

    image_path: Path
    xml_path: Path | None = None
    read: bool = False
    crops: list[CropRecord] = field(default_factory=list)
    already_extracted: int = 0
    skipped: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    moved_to: Path | None = None
    drawing: Path | None = None


@dataclass
class ExtractionSummary:
    """Totals over a run, built by `add`-ing each `ScreenshotResult`."""

    screenshots_read: int = 0
    crops_per_label: Counter = field(default_factory=Counter)
    already_extracted: int = 0
    moved: int = 0
    drawn: int = 0
    skipped: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    def add(self, result: ScreenshotResult) -> None:
        """Adds one screenshot's result to the totals."""
        self.screenshots_read += int(result.read)
        self.crops_per_label.update(crop.label for crop in result.crops)
        self.already_extracted += result.already_extracted
        self.moved += int(result.moved_to is not None)
        self.drawn += int(result.drawing is not None)
        self.skipped.extend(result.skipped)
        self.notes.extend(result.notes)

    @property
    def crops_written(self) -> int:
        return sum(self.crops_per_label.values())

    @property
    def outside_taxonomy(self) -> Counter:
        """Crops written per label for labels outside the ToonTown taxonomy."""
        return Counter({label: count for label, count in self.crops_per_label.items()
                        if not is_taxonomy_label(label)})

    def format(self, examples_per_reason: int = 10) -> str:
        """Returns the summary as text lines for a terminal.

        Args:
            examples_per_reason: how many skipped files to list under each reason.
        """
        lines = [f"screenshots read: {self.screenshots_read}",
                 f"crops written: {self.crops_written}"]
        width = max((len(label) for label in self.crops_per_label), default=0)
        lines += [f"  {label:<{width}}  {count}"
                  for label, count in sorted(self.crops_per_label.items())]
        outside = self.outside_taxonomy
        if outside:
            lines.append(f"  of which outside the ToonTown taxonomy: "
                         f"{_counted(sum(outside.values()), 'crop')} of "
                         f"{_counted(len(outside), 'label')} ({', '.join(sorted(outside))})")
        if self.already_extracted:
            lines.append(f"already extracted by an earlier run (left alone): "
                         f"{self.already_extracted} objects")
        if self.moved:
            lines.append(f"screenshots moved to {PROCESSED_FOLDER.as_posix()}: {self.moved}")
        if self.drawn:
            lines.append(f"screenshots drawn with their boxes: {self.drawn}")
        for kind, count in sorted(Counter(note.kind for note in self.notes).items()):
            lines.append(f"note: {kind}: {count}")
        lines.append(f"skipped: {len(self.skipped)}")
        for kind, count in sorted(Counter(problem.kind for problem in self.skipped).items()):
            lines.append(f"  {kind}: {count}")
            examples = [problem for problem in self.skipped if problem.kind == kind]
            lines += [f"    {problem}" for problem in examples[:examples_per_reason]]
            if len(examples) > examples_per_reason:
                lines.append(f"    ... and {len(examples) - examples_per_reason} more")
        return "\n".join(lines)


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def find_screenshots(
    root: str | os.PathLike, exclude: Iterable[str | os.PathLike] = ()
) -> tuple[list[ScreenshotPair], list[Problem]]:
    """Finds every screenshot (.png, .jpg, .jpeg, any case) with its XML, recursively.

    An image and its XML share a folder and a file stem (`shot.png` + `shot.xml`).

    Args:
        root: the folder to search.
        exclude: folders not to descend into (the data folder, the drawing folder).

    Returns:
        The pairs, sorted by path, and one problem per file that cannot be paired: an image
        without XML, an XML without image, or several candidates for one stem. Both lists
        are empty for a folder without screenshots or XML.

    Raises:
        FileNotFoundError: if `root` does not exist.
        NotADirectoryError: if `root` is not a folder.
    """
    root = Path(root)
    if not root.exists():
        raise MissingFileError(f"{root}: no such folder")
    if not root.is_dir():
        raise ToonvisionError(f"{root}: not a folder")
    excluded = {Path(folder).resolve() for folder in exclude}
    pairs: list[ScreenshotPair] = []
    problems: list[Problem] = []
    for folder_name, subfolders, file_names in os.walk(root):
        folder = Path(folder_name)
        subfolders[:] = sorted(name for name in subfolders
                               if (folder / name).resolve() not in excluded)
        images: dict[str, list[Path]] = {}
        annotations: dict[str, list[Path]] = {}
        for name in sorted(file_names):
            path = folder / name
            if path.suffix.lower() in SCREENSHOT_EXTENSIONS:
                images.setdefault(path.stem, []).append(path)
            elif path.suffix.lower() == ".xml":
                annotations.setdefault(path.stem, []).append(path)
        for stem in sorted(images.keys() | annotations.keys()):
            stem_images, stem_annotations = images.get(stem, []), annotations.get(stem, [])
            if len(stem_images) > 1 or len(stem_annotations) > 1:
                for path in stem_images + stem_annotations:
                    names = ", ".join(other.name for other in stem_images + stem_annotations)
                    problems.append(Problem(path, AMBIGUOUS_PAIR, f"cannot tell apart {names}"))
            elif not stem_annotations:
                problems.append(Problem(stem_images[0], IMAGE_WITHOUT_XML,
                                        f"expected {stem}.xml beside it"))
            elif not stem_images:
                problems.append(Problem(stem_annotations[0], XML_WITHOUT_IMAGE,
                                        f"expected {stem}.png, .jpg or .jpeg beside it"))
            else:
                image = stem_images[0]
                pairs.append(ScreenshotPair(image, stem_annotations[0], image.relative_to(root)))
    return pairs, problems


def output_folders(
    data_dir: str | os.PathLike, draw_dir: str | os.PathLike | None = None
) -> list[Path]:
    """Returns the folders extraction writes to, which a search for screenshots must skip.

    The data folder itself is one (its crops have no XML); its `unsorted/` and
    `raw/processed/` are named too for when the screenshots folder lies inside it
    (e.g. `toonvision extract data/raw --data-dir data`).
    """
    data_dir = Path(data_dir)
    folders = [data_dir, data_dir / CROPS_FOLDER, data_dir / PROCESSED_FOLDER]
    return folders + ([Path(draw_dir)] if draw_dir is not None else [])


def extract(
    screenshots_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    move: bool = False,
    draw_dir: str | os.PathLike | None = None,
) -> Iterator[ScreenshotResult]:
    """Finds the screenshots below `screenshots_dir` and extracts them into `data_dir`.

    Files that cannot be paired come first, as results with only `skipped` filled in; then
    one result per screenshot, as `extract_screenshots` produces them.

    Args:
        screenshots_dir: the folder of screenshots and their VOC XML, searched recursively.
        data_dir: the data folder; crops go to `<data_dir>/unsorted/`.
        move: move each fully extracted screenshot and its XML to `<data_dir>/raw/processed/`.
        draw_dir: if given, write a copy of each screenshot with its boxes drawn there.

    Yields:
        One `ScreenshotResult` per file or screenshot.
    """
    pairs, problems = find_screenshots(screenshots_dir, exclude=output_folders(data_dir, draw_dir))
    for problem in problems:
        yield ScreenshotResult(problem.path, skipped=[problem])
    yield from extract_screenshots(pairs, data_dir, move=move, draw_dir=draw_dir)


def extract_screenshots(
    pairs: Iterable[ScreenshotPair],
    data_dir: str | os.PathLike,
    move: bool = False,
    draw_dir: str | os.PathLike | None = None,
) -> Iterator[ScreenshotResult]:
    """Crops every labelled object of each screenshot into `<data_dir>/unsorted/`.

    Only one extraction may write to a data folder at a time (a lock file ensures it). The
    screenshots are processed in the order given; the same order gives the same indices.

    Args:
        pairs: the screenshots and their XML, e.g. from `find_screenshots`.
        data_dir: the data folder (created if missing).
        move: move each screenshot and its XML to `<data_dir>/raw/processed/` once all its
            crops are on disk and in the manifest. A screenshot with a skipped object stays
            where it is, so that what is left behind is what needs attention.
        draw_dir: if given, write `<draw_dir>/<relative path>.png`, the screenshot with its
            boxes and labels drawn.

    Yields:
        One `ScreenshotResult` per pair, after that screenshot is completely done.

    Raises:
        ValueError: if another extraction holds the data folder or the manifest is corrupt.
        OSError: if a file cannot be written (disk full, permissions); a re-run completes it.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with (exclusive_lock(data_dir / LOCK_NAME, "another 'toonvision extract'"),
          ThreadPoolExecutor(WORKERS) as pool):
        _remove_temporary_files(data_dir)
        extractor = _Extractor(data_dir, move, Path(draw_dir) if draw_dir else None, pool)
        try:
            for screenshot in _read_ahead(pool, _read_screenshot, pairs, READ_AHEAD):
                yield extractor.extract(screenshot)
        finally:
            extractor.save_if_changed()








@dataclass
class _Screenshot:
    """A screenshot as read from disk: its annotation, hash and pixels, or why not."""

    pair: ScreenshotPair
    annotation: voc.Annotation | None = None
    content_hash: str = ""
    image: np.ndarray | None = None
    problem: Problem | None = None


def _read_screenshot(pair: ScreenshotPair) -> _Screenshot:
    """Parses the XML, hashes and decodes the image; no side effects, so it can run ahead."""
    try:
        annotation = voc.parse_annotation(pair.xml)
    except voc.VocError as error:
        return _Screenshot(pair, problem=Problem(pair.xml, UNUSABLE_XML,
                                                 _reason(error, pair.xml)))
    try:
        with pair.image.open("rb") as handle:
            content_hash = hashlib.file_digest(handle, "sha256").hexdigest()
        image = read_image(pair.image)
    except (OSError, ImageReadError) as error:
        return _Screenshot(pair, problem=Problem(pair.image, UNREADABLE_IMAGE,
                                                 _reason(error, pair.image)))
    return _Screenshot(pair, annotation, content_hash, image)


def _read_ahead(
    pool: ThreadPoolExecutor, function: Callable, items: Iterable, window: int
) -> Iterator:
    """Yields `function(item)` for each item in order, computing up to `window` items ahead."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) > window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class _Extractor:
    """The state of one extraction run: the manifest and the next index of each label."""

    def __init__(
        self, data_dir: Path, move: bool, draw_dir: Path | None, pool: ThreadPoolExecutor
    ) -> None:
        self.data_dir = data_dir
        self.pool = pool
        self.crops_root = (data_dir / CROPS_FOLDER).resolve()
        self.move = move
        self.draw_dir = draw_dir
        self.manifest_path = data_dir / MANIFEST_NAME
        self.records = read_manifest(self.manifest_path)
        self.by_object = {(record.source_sha256, record.object_index): record
                          for record in self.records}
        self.next_index = self._highest_indices()
        self.lines: dict[int, tuple[tuple, str]] = {}
        self.changed = False
        self._complete_finished_plans()

    def _highest_indices(self) -> Counter:
        """Returns one past the highest index of each label, in the manifest or on disk."""
        next_index: Counter = Counter()
        for record in self.records:
            next_index[record.label] = max(next_index[record.label], record.index + 1)
        crops_dir = self.data_dir / CROPS_FOLDER
        if crops_dir.is_dir():
            for path in crops_dir.rglob("*"):
                label, _, index = path.stem.rpartition("_")
                if label and index.isdigit() and is_image_file(path):
                    next_index[label] = max(next_index[label], int(index) + 1)
        return next_index

    def _complete_finished_plans(self) -> None:
        """Marks planned crops whose file exists (a run stopped before saying so) as written."""
        finished = [record for record in self.records
                    if record.status == PLANNED and (self.data_dir / record.crop).is_file()]
        for record in finished:
            record.status = WRITTEN
        self.changed = bool(finished)

    def save_if_changed(self) -> None:
        """Writes the manifest if anything changed since it was last written.

        The manifest is rewritten whole (atomically) for each screenshot with new crops, so
        each record's CSV line is kept and formatted again only when the record changed.
        """
        if not self.changed:
            return
        lines = [_csv_line(MANIFEST_COLUMNS)]
        for record in self.records:
            values = _MANIFEST_ROW(record)
            cached = self.lines.get(id(record))
            if cached is None or cached[0] != values:
                cached = self.lines[id(record)] = (values, _csv_line(values))
            lines.append(cached[1])
        write_text_atomic(self.manifest_path, "".join(lines))
        self.changed = False

    def extract(self, screenshot: _Screenshot) -> ScreenshotResult:
        """Extracts one screenshot; see `extract_screenshots`."""
        pair, annotation, image = screenshot.pair, screenshot.annotation, screenshot.image
        result = ScreenshotResult(pair.image, pair.xml)
        if screenshot.problem is not None:
            result.skipped.append(screenshot.problem)
            return result
        result.read = True
        height, width = image.shape[:2]
        if annotation.size != (width, height):
            written = "missing" if annotation.size is None else "x".join(map(str, annotation.size))
            result.notes.append(Problem(pair.xml, SIZE_MISMATCH,
                                        f"XML says {written}, image is {width}x{height}"))
        result.skipped += [Problem(pair.xml, UNUSABLE_OBJECT, problem)
                           for problem in annotation.object_problems]

        to_write = self._plan(pair, annotation, screenshot.content_hash, (height, width), result)
        crops = [(self._inside_data_dir(record.crop),
                  image[record.ymin:record.ymax, record.xmin:record.xmax]) for record in to_write]
        for _ in self.pool.map(lambda crop: write_image_atomic(*crop), crops):
            pass
        result.crops += to_write
        if self.draw_dir is not None:
            result.drawing = self._draw(pair, image, annotation)
        if self.move and not result.skipped:
            try:
                result.moved_to = self._move_to_processed(pair)
            except OSError as error:
                result.skipped.append(Problem(pair.image, MOVE_FAILED,
                                              error.strerror or str(error)))
        # Saved with the next screenshot's plan or at the end: until then, a planned crop whose
        # file exists counts as written (see `_complete_finished_plans`).
        for record in to_write:
            record.status = WRITTEN
            if result.moved_to is not None:
                record.source = str(result.moved_to)
        self.changed = self.changed or bool(to_write)
        for note in result.notes:
            logger.info("%s", note)
        return result

    def _plan(
        self,
        pair: ScreenshotPair,
        annotation: voc.Annotation,
        content_hash: str,
        image_size: tuple[int, int],
        result: ScreenshotResult,
    ) -> list[CropRecord]:
        """Returns the crops to write for this screenshot, recorded as planned in the manifest.

        Objects extracted earlier are counted in `result.already_extracted`; objects planned
        by an interrupted run keep their planned index; unusable ones go to `result.skipped`.
        """
        to_write, newly_planned, earlier_sources = [], [], set()
        for voc_object in annotation.objects:
            earlier = self.by_object.get((content_hash, voc_object.index))
            if earlier is not None and earlier.status == WRITTEN:
                result.already_extracted += 1
                earlier_sources.add(earlier.source)
                continue
            if earlier is not None:
                to_write.append(earlier)
                continue
            record = self._new_record(pair, voc_object, content_hash, image_size, result)
            if record is not None:
                to_write.append(record)
                newly_planned.append(record)
        if newly_planned:
            self.records += newly_planned
            self.by_object.update(((record.source_sha256, record.object_index), record)
                                  for record in newly_planned)
            self.changed = True
            self.save_if_changed()
        earlier_sources.discard(str(pair.image.absolute()))
        result.notes += [Problem(pair.image, SAME_CONTENT, f"extracted from {source}")
                         for source in sorted(earlier_sources)]
        return to_write

    def _new_record(
        self,
        pair: ScreenshotPair,
        voc_object: voc.VocObject,
        content_hash: str,
        image_size: tuple[int, int],
        result: ScreenshotResult,
    ) -> CropRecord | None:
        """Returns a planned record with the next index of the object's label, or None."""
        described = f"object {voc_object.index} ({voc_object.label!r})"
        try:
            label = safe_label(voc_object.label)
        except ValueError as error:
            result.skipped.append(Problem(pair.xml, UNUSABLE_LABEL, f"{described}: {error}"))
            return None
        if label != voc_object.label:
            result.notes.append(Problem(pair.xml, LABEL_RENAMED, f"{described} -> {label!r}"))
        try:
            box = voc_object.clipped_box(image_size)
        except voc.UnusableBox as error:
            result.skipped.append(Problem(pair.xml, error.kind, f"{described}: {error}"))
            return None
        if box != voc_object.box:
            result.notes.append(Problem(pair.xml, BOX_CLIPPED, f"{described}: {box}"))
        index = self.next_index[label]
        self.next_index[label] = index + 1
        crop = f"{CROPS_FOLDER}/{label_prefix(label)}/{label}_{index}.png"
        self._inside_data_dir(crop)
        return CropRecord(crop, label, index, PLANNED, str(pair.image.absolute()), content_hash,
                          voc_object.index, *box)

    def _inside_data_dir(self, crop: str) -> Path:
        """Returns the crop's absolute path, refusing any that would leave the crops folder."""
        path = (self.data_dir / crop).resolve()
        if not path.is_relative_to(self.crops_root):
            raise ToonvisionError(f"{crop}: refusing to write outside {self.crops_root}")
        return path

    def _draw(self, pair: ScreenshotPair, image: np.ndarray, annotation: voc.Annotation) -> Path:
        """Writes the screenshot with its usable boxes and labels drawn; returns the file."""
        drawing = image.copy()
        for voc_object in annotation.objects:
            try:
                box = voc_object.clipped_box(image.shape[:2])
            except voc.UnusableBox:
                continue
            color = _LABEL_COLORS.get(label_prefix(voc_object.label), _OTHER_COLOR)
            draw_labelled_box(drawing, box, voc_object.label, color)
        path = self.draw_dir / pair.relative.with_suffix(".png")
        write_image_atomic(path, drawing)
        return path

    def _move_to_processed(self, pair: ScreenshotPair) -> Path:
        """Moves the screenshot and its XML under free names; returns the image's new path.

        A screenshot already in the processed folder stays as it is.
        """
        processed = self.data_dir / PROCESSED_FOLDER
        processed.mkdir(parents=True, exist_ok=True)
        if pair.image.parent.resolve() == processed.resolve():
            return pair.image.absolute()
        stem, number = pair.image.stem, 0
        while True:
            candidate = stem if number == 0 else f"{stem}_{number}"
            image_target = processed / f"{candidate}{pair.image.suffix}"
            xml_target = processed / f"{candidate}{pair.xml.suffix}"
            if not image_target.exists() and not xml_target.exists():
                break
            number += 1
        move_without_overwrite(pair.image, image_target)
        move_without_overwrite(pair.xml, xml_target)
        return image_target.absolute()


# Drawing colours (RGB): Cogs red, Toons blue, anything else green.
_LABEL_COLORS: dict[str, tuple[int, int, int]] = {"cog": (230, 40, 40), "toon": (40, 90, 240)}
_OTHER_COLOR = (40, 200, 40)


def _reason(error: Exception, path: Path) -> str:
    """Returns an error's message without the leading file name (the Problem names it)."""
    message = str(error)
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _remove_temporary_files(data_dir: Path) -> None:
    """Deletes temporary files left by a killed run (the caller holds the lock)."""
    removed = remove_temporary_files(data_dir)
    for folder in (data_dir / CROPS_FOLDER, data_dir / PROCESSED_FOLDER):
        removed += remove_temporary_files(folder, recursive=True)
    for path in removed:
        logger.info("removed %s, left by an interrupted run", path)

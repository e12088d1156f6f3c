"""One extraction run over screenshots in order: plan, write, move, record.

`Extractor` holds what a run knows (the manifest, the next index of each label) and extracts
one screenshot at a time, in the order that keeps a crash harmless: the new crops' indices
are recorded in the manifest as `planned`, the crops are written (temporary name, sync,
rename), the screenshot is moved, and the rows become `written`. `read_screenshot` does the
part without side effects (parsing, hashing, decoding), so it can run ahead in threads.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toonvision import ToonvisionError
from toonvision.data_processing import voc
from toonvision.data_processing.annotations import BOUNDING_BOX_OF, NO_BOXES, ScreenshotPair
from toonvision.data_processing.dataset import CROPS_FOLDER
from toonvision.data_processing.extract_results import (
    BOX_CLIPPED,
    LABEL_RENAMED,
    MOVE_FAILED,
    SAME_CONTENT,
    SIZE_MISMATCH,
    UNREADABLE_IMAGE,
    UNUSABLE_LABEL,
    UNUSABLE_OBJECT,
    UNUSABLE_XML,
    Problem,
    ScreenshotResult,
)
from toonvision.data_processing.images import (
    ImageReadError,
    apply_orientation,
    decode_image,
    draw_labelled_box,
    exif_orientation,
    is_image_file,
    write_image_atomic,
)
from toonvision.data_processing.manifest import (
    MANIFEST_NAME,
    PLANNED,
    PROCESSED_FOLDER,
    WRITTEN,
    CropRecord,
    ManifestText,
    read_manifest,
)
from toonvision.fileio import move_without_overwrite, write_text_atomic
from toonvision.labels import label_prefix, legacy_safe_label, safe_label

logger = logging.getLogger(__name__)


@dataclass
class Screenshot:
    """A screenshot as read from disk: its annotation, hash and pixels, or why not."""

    pair: ScreenshotPair
    annotation: voc.Annotation | None = None
    content_hash: str = ""
    image: np.ndarray | None = None
    problem: Problem | None = None


EXIF_TURNED = "turned by its EXIF orientation, as the labelling tool showed it"


def screenshot_bytes(source: Path) -> bytes:
    """The bytes whose SHA-256 identifies a screenshot (the manifest's `source_sha256`): the
    image file's, or the embedded image's for a labelme `.json` that carries its picture.

    Raises:
        OSError: if the file cannot be read; ToonvisionError: if the embedded image cannot.
    """
    if source.suffix.lower() == ".json":
        from toonvision.data_processing.labelme import embedded_image

        return embedded_image(source)
    return source.read_bytes()


def read_screenshot(pair: ScreenshotPair) -> Screenshot:
    """Parses the annotation, hashes and decodes the image; no side effects, so it can run
    ahead. Relative boxes (YOLO, Label Studio) become pixels here, with the decoded size.

    An image with an EXIF orientation is turned as the labelling tool showed it: as the
    annotation's recorded size says when only one of the two orientations matches it, else
    as the format's tool does (labelImg shows the stored pixels, the other tools turn them).
    """
    annotation = pair.annotation
    try:
        if annotation is None:
            annotation = voc.parse_annotation(pair.xml)
    except voc.VocError as error:
        return Screenshot(pair, problem=Problem(pair.xml, UNUSABLE_XML, _reason(error, pair.xml)))
    source = pair.xml if pair.embedded else pair.image
    try:
        content = screenshot_bytes(source)
        if not content:
            raise ImageReadError("file is empty")
        image = decode_image(content)
    except OSError as error:
        return Screenshot(pair, problem=Problem(source, UNREADABLE_IMAGE,
                                                error.strerror or str(error)))
    except ToonvisionError as error:
        return Screenshot(pair, problem=Problem(source, UNREADABLE_IMAGE,
                                                _reason(error, source)))
    orientation = exif_orientation(content)
    if orientation != 1:
        turned = apply_orientation(image, orientation)
        sizes = {(item.shape[1], item.shape[0]) for item in (image, turned)}
        if (annotation.size in sizes and len(sizes) == 2
                and annotation.size == (turned.shape[1], turned.shape[0])) or (
                (annotation.size not in sizes or len(sizes) == 1) and pair.oriented):
            image = turned
            annotation.notes.append((EXIF_TURNED, f"orientation {orientation}"))
    annotation = annotation.in_pixels(image.shape[1], image.shape[0])
    return Screenshot(pair, annotation, hashlib.sha256(content).hexdigest(), image)


class Extractor:
    """The state of one extraction run: the manifest and the next index of each label.

    The caller holds the data folder's lock (see `extract.extract_screenshots`) and feeds
    `extract` the screenshots in order; `save_if_changed` writes what is left at the end.

    Args:
        data_dir: the data folder.
        move: move each fully extracted screenshot to `<data_dir>/raw/processed/`.
        draw_dir: where to write each screenshot with its boxes drawn, or None.
        pool: the threads that write a screenshot's crops.
        dry_run: plan every crop (names included) but write, move and draw nothing, and
            leave the manifest as it is.
    """

    def __init__(
        self, data_dir: Path, move: bool, draw_dir: Path | None, pool: ThreadPoolExecutor,
        dry_run: bool = False,
    ) -> None:
        self.dry_run = dry_run
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
        self.text = ManifestText()
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

    def _label_of(self, given: str) -> str:
        """`safe_label(given)`; in a data folder that holds crops under the label's form of
        before 2026-12-03 (`legacy_safe_label`: `café` -> `caf_`) and none under the new one,
        that older form, so that one label keeps one name (and one class) in a folder that
        grows."""
        label = safe_label(given)
        try:
            legacy = legacy_safe_label(given)
        except ValueError:
            return label
        if legacy != label and legacy in self.next_index and label not in self.next_index:
            return legacy
        return label

    def _complete_finished_plans(self) -> None:
        """Marks planned crops whose file exists (a run stopped before saying so) as written."""
        finished = [record for record in self.records
                    if record.status == PLANNED and (self.data_dir / record.crop).is_file()]
        for record in finished:
            record.status = WRITTEN
        self.changed = bool(finished)

    def save_if_changed(self) -> None:
        """Writes the manifest (whole, atomically) if anything changed since it was written."""
        if not self.changed or self.dry_run:
            return
        write_text_atomic(self.manifest_path, self.text.format(self.records))
        self.changed = False

    def extract(self, screenshot: Screenshot) -> ScreenshotResult:
        """Extracts one screenshot; see `extract.extract_screenshots`."""
        pair, annotation, image = screenshot.pair, screenshot.annotation, screenshot.image
        result = ScreenshotResult(pair.image, pair.xml)
        if screenshot.problem is not None:
            result.skipped.append(screenshot.problem)
            return result
        result.read = True
        height, width = image.shape[:2]
        if annotation.size != (width, height) and (annotation.records_size
                                                   or annotation.size is not None):
            written = "missing" if annotation.size is None else "x".join(map(str, annotation.size))
            result.notes.append(Problem(pair.xml, SIZE_MISMATCH,
                                        f"annotation says {written}, image is {width}x{height}"))
        result.skipped += [Problem(pair.xml, UNUSABLE_OBJECT, problem)
                           for problem in annotation.object_problems]
        result.notes += [Problem(pair.xml, kind, detail) for kind, detail in annotation.notes]
        result.notes += [Problem(pair.xml, f"{shape} {BOUNDING_BOX_OF}",
                                 f"object {item.index} ({item.label!r})")
                         for item in annotation.objects if (shape := item.shape) != voc.BOX_SHAPE]
        if not annotation.objects and not annotation.object_problems and pair.annotation:
            result.notes.append(Problem(pair.xml, NO_BOXES, f"no boxes for {pair.image.name}"))

        to_write = self._plan(pair, annotation, screenshot.content_hash, (height, width), result)
        crops = [(self._inside_data_dir(record.crop),
                  image[record.ymin:record.ymax, record.xmin:record.xmax]) for record in to_write]
        if self.dry_run:
            result.crops += to_write
            return result
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
            label = self._label_of(voc_object.label)
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

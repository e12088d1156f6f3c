"""Labelled crops from the paths a user names: crop images, folders, screenshots with XML.

`predict` and `report` take the same PATH... arguments and read them here:
- an image paired with a labelImg XML beside it (or the XML given itself, with its image) is
  a screenshot: every usable box becomes a crop, labelled by the XML. Images and XML pair by
  `voc.pair_files`' rule, the one `extract` follows: same folder and stem, the XML's
  `<filename>` settling which of several same-stem images it describes;
- any other image is a crop labelled by its file name (`toon_dog_3.png` is a `toon_dog`);
- a folder stands for every image and XML file under it (recursively, sorted); a folder
  that holds another tool's export (YOLO, COCO, labelme, Label Studio, CVAT: see
  `annotations.find_annotated`) stands for the screenshots with boxes that export describes.

Problems with one input (an unreadable image, broken XML, a box outside its image) are
collected as messages that name the file, and the rest goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toonvision import MissingFileError, ToonvisionError, defaults
from toonvision.data_processing import voc
from toonvision.data_processing.annotations import ScreenshotPair, find_annotated
from toonvision.data_processing.dataset import label_from_crop_name
from toonvision.data_processing.extract_results import AMBIGUOUS_PAIR
from toonvision.data_processing.images import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    is_image_file,
    read_image,
    resize,
)


@dataclass(frozen=True)
class Crop:
    """One image to classify.

    Attributes:
        source: the image file (the crop itself, or the screenshot it was cut from).
        box: (xmin, ymin, xmax, ymax) in the screenshot, clipped to it; None for a crop file.
        index: the object's position in the screenshot's XML; None for a crop file.
        label: the XML's label, or the label in the crop's file name.
        image: the crop, uint8 RGB, resized to the size asked for (stretched or letterboxed).
    """

    source: Path
    box: tuple[int, int, int, int] | None
    index: int | None
    label: str
    image: np.ndarray

    @property
    def name(self) -> str:
        """`toon_dog_3.png` for a crop file, `street.png#2` for a screenshot's third box."""
        return self.source.name if self.index is None else f"{self.source.name}#{self.index}"


def _is_input_file(path: Path) -> bool:
    return is_image_file(path) or voc.is_annotation_file(path)


def find_inputs(paths: Iterable[str | os.PathLike]) -> list[Path | ScreenshotPair | str]:
    """Expands the given files and folders into image and XML files, in order; a folder
    holding another tool's export becomes its screenshots with their boxes.

    Raises:
        FileNotFoundError: if a path does not exist.
        ValueError: if a file is neither an image nor an XML, or a folder holds neither.
    """
    kinds = f"{', '.join(IMAGE_EXTENSIONS)} or {voc.ANNOTATION_SUFFIX}"
    found: list[Path | ScreenshotPair | str] = []
    for path in map(Path, paths):
        if path.is_dir():
            export = find_annotated(path)
            if export.format != "voc":
                found.extend(export.pairs)
                found.extend(f"{problem}" for problem in export.problems)
                continue
            files = sorted(item for item in path.rglob("*")
                           if item.is_file() and not item.name.startswith(".")
                           and _is_input_file(item))
            if not files:
                raise ToonvisionError(f"{path}: folder holds no image or XML file ({kinds})")
            found.extend(files)
        elif path.is_file():
            if not _is_input_file(path):
                raise ToonvisionError(f"{path}: not an image or labelImg XML file ({kinds}); "
                                      "give a "
                                      "crop, a screenshot with its XML beside it, or a folder")
            found.append(path)
        else:
            raise MissingFileError(f"{path} does not exist")
    return found


def iter_crops(files: Sequence[Path | ScreenshotPair | str], image_size: tuple[int, int],
               skipped: list[str], resize_mode: str = defaults.RESIZE) -> Iterator[Crop]:
    """Yields every crop that `files` (from `find_inputs`) hold, resized to `image_size` in
    `resize_mode` (`images.resize`: the model's `ModelInfo.resize`).

    A screenshot named twice (its image and its XML, or both through a folder) is read once.
    What cannot be used is described in `skipped`, naming the file and the reason (a text
    among `files` is such a message from reading an export).
    """
    pairings: dict[Path, voc.Pairing] = {}   # each folder is listed and paired once
    done: set[Path] = set()
    for path in files:
        if isinstance(path, str):
            skipped.append(path)
            continue
        if isinstance(path, ScreenshotPair):
            yield from _pair_crops(path, image_size, skipped, resize_mode)
            continue
        if path.parent not in pairings:
            pairings[path.parent] = voc.pair_folder(path.parent)
        pairing = pairings[path.parent]
        group = pairing.ambiguous_group(path)
        partner = pairing.partner(path)
        xml_path = path if voc.is_annotation_file(path) else partner
        image_path = partner if voc.is_annotation_file(path) else path
        if path.resolve() in done:
            continue
        if group:
            done.update(member.resolve() for member in group)
            skipped.append(f"{path}: {AMBIGUOUS_PAIR} (cannot tell apart "
                           f"{', '.join(member.name for member in group)})")
            continue
        try:
            if xml_path is None:
                yield Crop(path, None, None, label_from_crop_name(path),
                           resize(read_image(path), image_size, resize_mode))
                continue
            if image_path is None:
                skipped.append(f"{xml_path}: no image found beside it")
                continue
            done.update({xml_path.resolve(), image_path.resolve()})
            annotation = voc.parse_annotation(xml_path)
            screenshot = read_image(image_path)
        except (ImageReadError, voc.VocError) as error:
            skipped.append(str(error))
            continue
        skipped.extend(f"{xml_path}: {problem}" for problem in annotation.object_problems)
        for voc_object in annotation.objects:
            try:
                xmin, ymin, xmax, ymax = voc_object.clipped_box(screenshot.shape[:2])
            except voc.UnusableBox as error:
                skipped.append(f"{xml_path}: object {voc_object.index} "
                               f"({voc_object.label}): {error}")
                continue
            yield Crop(image_path, (xmin, ymin, xmax, ymax), voc_object.index, voc_object.label,
                       resize(screenshot[ymin:ymax, xmin:xmax], image_size, resize_mode))


def _pair_crops(pair: ScreenshotPair, image_size: tuple[int, int],
                skipped: list[str], resize_mode: str) -> Iterator[Crop]:
    """The crops of one screenshot of an export, read as extraction reads it."""
    from toonvision.data_processing.extractor import read_screenshot

    screenshot = read_screenshot(pair)
    if screenshot.problem is not None:
        skipped.append(str(screenshot.problem))
        return
    skipped.extend(f"{pair.xml}: {problem}" for problem in screenshot.annotation.object_problems)
    for item in screenshot.annotation.objects:
        try:
            xmin, ymin, xmax, ymax = item.clipped_box(screenshot.image.shape[:2])
        except voc.UnusableBox as error:
            skipped.append(f"{pair.xml}: object {item.index} ({item.label}): {error}")
            continue
        yield Crop(pair.image, (xmin, ymin, xmax, ymax), item.index, item.label,
                   resize(screenshot.image[ymin:ymax, xmin:xmax], image_size, resize_mode))

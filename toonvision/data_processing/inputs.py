"""Labelled crops from the paths a user names: crop images, folders, screenshots with XML.

`predict` and `report` take the same PATH... arguments and read them here:
- an image with a labelImg XML of the same stem beside it (or the XML given itself, its image
  found beside it) is a screenshot: every usable box becomes a crop, labelled by the XML;
- any other image is a crop labelled by its file name (`toon_dog_3.png` is a `toon_dog`);
- a folder stands for every image and XML file under it (recursively, sorted).

Problems with one input (an unreadable image, broken XML, a box outside its image) are
collected as messages that name the file, and the rest goes on.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toonvision import MissingFileError, ToonvisionError
from toonvision.data_processing.dataset import label_from_crop_name
from toonvision.data_processing.images import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    is_image_file,
    read_image,
    resize,
)

XML_SUFFIX = ".xml"


@dataclass(frozen=True)
class Crop:
    """One image to classify.

    Attributes:
        source: the image file (the crop itself, or the screenshot it was cut from).
        box: (xmin, ymin, xmax, ymax) in the screenshot, clipped to it; None for a crop file.
        index: the object's position in the screenshot's XML; None for a crop file.
        label: the XML's label, or the label in the crop's file name.
        image: the crop, uint8 RGB, resized to the size asked for.
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


def annotation_path(image_path: Path) -> Path | None:
    """The labelImg XML beside `image_path` (same stem, `.xml` in any case), or None."""
    for suffix in (XML_SUFFIX, XML_SUFFIX.upper()):
        candidate = image_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def image_for_annotation(xml_path: Path, filename: str) -> Path | None:
    """The screenshot an XML describes: its `<filename>` beside it, else an image of its stem."""
    candidates = [xml_path.with_name(filename)] if filename else []
    candidates += [path for path in sorted(xml_path.parent.glob(f"{glob.escape(xml_path.stem)}.*"))
                   if is_image_file(path)]
    return next((path for path in candidates if path.is_file()), None)


def _is_input_file(path: Path) -> bool:
    return is_image_file(path) or path.suffix.lower() == XML_SUFFIX


def find_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expands the given files and folders into image and XML files, in order.

    Raises:
        FileNotFoundError: if a path does not exist.
        ValueError: if a file is neither an image nor an XML, or a folder holds neither.
    """
    kinds = f"{', '.join(IMAGE_EXTENSIONS)} or {XML_SUFFIX}"
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
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


def iter_crops(files: Sequence[Path], image_size: tuple[int, int],
               skipped: list[str]) -> Iterator[Crop]:
    """Yields every crop that `files` (from `find_inputs`) hold, resized to `image_size`.

    A screenshot named twice (its image and its XML, or both through a folder) is read once.
    What cannot be used is described in `skipped`, naming the file and the reason.
    """
    from toonvision.data_processing.voc import UnusableBox, VocError, parse_annotation

    done: set[Path] = set()
    for path in files:
        if path.suffix.lower() == XML_SUFFIX:
            xml_path, image_path = path, None
        else:
            xml_path, image_path = annotation_path(path), path
        if path.resolve() in done or (xml_path is not None and xml_path.resolve() in done):
            continue
        try:
            if xml_path is None:
                yield Crop(path, None, None, label_from_crop_name(path),
                           resize(read_image(path), image_size))
                continue
            annotation = parse_annotation(xml_path)
            image_path = image_path or image_for_annotation(xml_path, annotation.filename)
            if image_path is None:
                skipped.append(f"{xml_path}: no image found beside it")
                continue
            done.update({xml_path.resolve(), image_path.resolve()})
            screenshot = read_image(image_path)
        except (ImageReadError, VocError) as error:
            skipped.append(str(error))
            continue
        skipped.extend(f"{xml_path}: {problem}" for problem in annotation.object_problems)
        for voc_object in annotation.objects:
            try:
                xmin, ymin, xmax, ymax = voc_object.clipped_box(screenshot.shape[:2])
            except UnusableBox as error:
                skipped.append(f"{xml_path}: object {voc_object.index} "
                               f"({voc_object.label}): {error}")
                continue
            yield Crop(image_path, (xmin, ymin, xmax, ymax), voc_object.index, voc_object.label,
                       resize(screenshot[ymin:ymax, xmin:xmax], image_size))

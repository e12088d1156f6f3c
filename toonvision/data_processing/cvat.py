"""The CVAT for images 1.1 XML reader (`annotations.xml` of a CVAT export).

Hand-written: `datumaro`, CVAT's own converter, is a large dependency; the format is one XML
file, parsed here as safely as VOC (`voc.parse_xml_safely`: no DTD, no entities, no
network). Rules:

- each `<image name= width= height=>` is resolved inside the folder the user gave (relative
  to the XML's folder, else by file name);
- `<box label= xtl= ytl= xbr= ybr=>` gives a box in pixels, decimals allowed; a `rotation`
  attribute (degrees about the box's centre) gives the rotated box's bounding box;
  `<polygon points="x1,y1;x2,y2;...">`, `<ellipse>` and `<mask left= top= width= height=>`
  are cropped by their bounding box; `<points>` and `<polyline>` have no area and are
  skipped, named. Elements keep their position among the image's shapes as their index;
- `<track>` elements belong to CVAT for video, which is not read: export "CVAT for images".
"""

from __future__ import annotations

import math
from pathlib import Path

from lxml import etree

from toonvision import ToonvisionError
from toonvision.data_processing import voc
from toonvision.data_processing.annotations import (
    MAX_JSON_BYTES,
    UNUSABLE_ANNOTATION_FILE,
    Found,
    ImageIndex,
    ImageNotFound,
    ScreenshotPair,
    files_of_format,
    relative_to_root,
)
from toonvision.data_processing.extract_results import Problem

SHAPES = ("box", "polygon", "ellipse", "mask", "points", "polyline")


def find(root: Path, folders: list[tuple[Path, list[str]]]) -> Found:
    """Reads every CVAT for images XML below `root`."""
    found = Found(format="cvat")
    index = ImageIndex(root, folders)
    for path in files_of_format(folders, ".xml", "cvat"):
        _read_file(path, root, index, found)
    return found


def _read_file(path: Path, root: Path, index: ImageIndex, found: Found) -> None:
    try:
        document = voc.parse_xml_safely(path, MAX_JSON_BYTES)
    except voc.VocError as error:
        found.problems.append(Problem(path, UNUSABLE_ANNOTATION_FILE, str(error)))
        return
    if document.find("track") is not None:
        found.problems.append(Problem(path, UNUSABLE_ANNOTATION_FILE,
                                      "has <track> elements (CVAT for video): export the task "
                                      "as 'CVAT for images 1.1'"))
    for element in document.iter("image"):
        name = element.get("name") or ""
        try:
            image = index.find(name, path.parent)
        except ImageNotFound as error:
            found.problems.append(Problem(path, error.kind, error.detail))
            continue
        annotation = voc.Annotation(path, name, _size(element))
        shapes = [child for child in element if child.tag in SHAPES]
        for position, shape in enumerate(shapes):
            try:
                annotation.objects.append(_box(position, shape))
            except ValueError as error:
                annotation.object_problems.append(f"image {name!r} {shape.tag} {position}: "
                                                  f"{error}")
        found.pairs.append(ScreenshotPair(image, path, relative_to_root(image, root),
                                          annotation, oriented=True))


def _size(element: etree._Element) -> tuple[int, int] | None:
    try:
        width, height = int(element.get("width", "")), int(element.get("height", ""))
    except ValueError:
        return None
    return (width, height) if width > 0 and height > 0 else None


def _number(element: etree._Element, name: str, default: str | None = None) -> float:
    text = element.get(name, default)
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ToonvisionError(f"{name} is {text!r:.20}, not a number") from None
    if not math.isfinite(value):
        raise ToonvisionError(f"{name} is {text!r:.20}, not a finite number")
    return value


def _box(position: int, shape: etree._Element) -> voc.VocObject:
    label = (shape.get("label") or "").strip()
    if not label:
        raise ToonvisionError("no label")
    if shape.tag == "box":
        corners = [_number(shape, name) for name in ("xtl", "ytl", "xbr", "ybr")]
        rotation = _number(shape, "rotation", "0") % 360
        if rotation == 0:
            return voc.box_in_pixels(position, label, *corners)
        centre_x, centre_y = (corners[0] + corners[2]) / 2, (corners[1] + corners[3]) / 2
        half_w, half_h = (corners[2] - corners[0]) / 2, (corners[3] - corners[1]) / 2
        angle = math.radians(rotation)
        reach_x = abs(half_w * math.cos(angle)) + abs(half_h * math.sin(angle))
        reach_y = abs(half_w * math.sin(angle)) + abs(half_h * math.cos(angle))
        return voc.box_in_pixels(position, label, centre_x - reach_x, centre_y - reach_y,
                                 centre_x + reach_x, centre_y + reach_y, "rotated box")
    if shape.tag == "ellipse":
        x, y = _number(shape, "cx"), _number(shape, "cy")
        rx, ry = _number(shape, "rx"), _number(shape, "ry")
        return voc.box_in_pixels(position, label, x - rx, y - ry, x + rx, y + ry, "ellipse")
    if shape.tag == "mask":
        left, top = _number(shape, "left"), _number(shape, "top")
        return voc.box_in_pixels(position, label, left, top, left + _number(shape, "width"),
                                 top + _number(shape, "height"), "mask")
    if shape.tag == "polygon":
        try:
            points = [tuple(float(value) for value in point.split(","))
                      for point in (shape.get("points") or "").split(";") if point.strip()]
        except ValueError:
            points = []
        if len(points) < 3 or any(len(point) != 2 or not all(map(math.isfinite, point))
                                  for point in points):
            raise ToonvisionError(f"{label!r}: points {shape.get('points')!r:.40} unusable")
        xs, ys = [point[0] for point in points], [point[1] for point in points]
        return voc.box_in_pixels(position, label, min(xs), min(ys), max(xs), max(ys),
                                 "polygon")
    raise ToonvisionError(f"{label!r}: a {shape.tag} has no area")

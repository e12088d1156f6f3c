"""The labelme JSON reader: one JSON per image, with `shapes` and `imagePath`.

Hand-written: labelme's own loader (`labelme.LabelFile`) pulls in Qt; `labelformat` and
`globox` read rectangles only and stop at the first bad shape. A labelme file is plain JSON:

- `imagePath` is resolved inside the folder the user gave (relative to the JSON, else by file
  name); when no such image is there, the base64 `imageData` the file embeds is the image;
- `rectangle` shapes (two corners, in any order) are boxes; `polygon`, `rotation` (a rotated
  box, X-AnyLabeling), `circle` (centre and a point on it) and `mask` are cropped by their
  bounding box; `point`, `line` and `linestrip` have no area and are skipped, named;
- `imageWidth` / `imageHeight` are the size checked against the image.
"""

from __future__ import annotations

import base64
import binascii
import math
from pathlib import Path

from toonvision import ToonvisionError
from toonvision.data_processing import voc
from toonvision.data_processing.annotations import (
    UNUSABLE_ANNOTATION_FILE,
    Found,
    ImageIndex,
    ImageNotFound,
    ScreenshotPair,
    files_of_format,
    read_json,
    relative_to_root,
)
from toonvision.data_processing.extract_results import Problem

BOUNDED_SHAPES = {"polygon": "polygon", "rotation": "rotated box", "mask": "mask",
                  "circle": "ellipse"}


def find(root: Path, folders: list[tuple[Path, list[str]]]) -> Found:
    """Reads every labelme JSON below `root` and finds its image."""
    found = Found(format="labelme")
    index = ImageIndex(root, folders)
    for path in files_of_format(folders, ".json", "labelme"):
        try:
            annotation, image_path, embedded = read_file(path, index)
        except ImageNotFound as error:
            found.problems.append(Problem(path, error.kind, error.detail))
            continue
        except ToonvisionError as error:
            found.problems.append(Problem(path, UNUSABLE_ANNOTATION_FILE, str(error)))
            continue
        relative = relative_to_root(image_path, root)
        if embedded:
            relative = relative.with_suffix(".png")
        found.pairs.append(ScreenshotPair(image_path, path, relative, annotation,
                                          embedded=embedded, oriented=True))
    return found


def read_file(path: Path, index: ImageIndex) -> tuple[voc.Annotation, Path, bool]:
    """Reads one labelme file: its boxes, its image file, and whether the image is embedded.

    Raises:
        ImageNotFound: if the image is neither found nor embedded.
        ToonvisionError: if the file is not a labelme JSON.
    """
    content = read_json(path)
    if not isinstance(content, dict) or not isinstance(content.get("shapes"), list):
        raise ToonvisionError(f"{path}: not a labelme file (no 'shapes' list)")
    image_path = str(content.get("imagePath") or "")
    embedded = False
    try:
        image = index.find(image_path, path.parent)
    except ImageNotFound:
        if not content.get("imageData"):
            raise
        image, embedded = path, True
    width, height = content.get("imageWidth"), content.get("imageHeight")
    size = (int(width), int(height)) if isinstance(width, int) and isinstance(height, int) \
        and width > 0 and height > 0 else None
    annotation = voc.Annotation(path, Path(image_path.replace("\\", "/")).name, size)
    for number, shape in enumerate(content["shapes"]):
        try:
            annotation.objects.append(_box(number, shape))
        except ValueError as error:
            annotation.object_problems.append(f"shape {number}: {error}")
    return annotation, image, embedded


def _box(number: int, shape: object) -> voc.VocObject:
    if not isinstance(shape, dict):
        raise ToonvisionError(f"{shape!r:.40} is not a shape")
    label = str(shape.get("label") or "").strip()
    if not label:
        raise ToonvisionError("no label")
    kind = shape.get("shape_type") or "polygon"
    points = shape.get("points")
    if not isinstance(points, list) or not all(
            isinstance(point, list) and len(point) == 2
            and all(isinstance(value, int | float) and math.isfinite(value) for value in point)
            for point in points) or not points:
        raise ToonvisionError(f"{label!r}: points are {points!r:.60}, not [[x, y], ...]")
    xs, ys = [point[0] for point in points], [point[1] for point in points]
    if kind == "rectangle" and len(points) == 2:
        return voc.box_in_pixels(number, label, min(xs), min(ys), max(xs), max(ys))
    if kind == "circle" and len(points) == 2:
        radius = math.dist(points[0], points[1])
        (x, y) = points[0]
        return voc.box_in_pixels(number, label, x - radius, y - radius, x + radius, y + radius,
                                 "ellipse")
    if kind in BOUNDED_SHAPES and len(points) >= 2:
        return voc.box_in_pixels(number, label, min(xs), min(ys), max(xs), max(ys),
                                 BOUNDED_SHAPES[kind])
    raise ToonvisionError(f"{label!r}: a {kind} with {len(points)} point(s) has no area")


def embedded_image(path: Path) -> bytes:
    """The image a labelme file embeds as base64 `imageData`.

    Raises:
        ToonvisionError: if the file or its `imageData` cannot be read.
    """
    content = read_json(path)
    data = content.get("imageData") if isinstance(content, dict) else None
    try:
        return base64.b64decode(data or "", validate=False)
    except (binascii.Error, TypeError, ValueError):
        raise ToonvisionError(f"{path}: imageData is not base64") from None


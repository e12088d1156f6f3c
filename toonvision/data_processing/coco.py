"""The COCO JSON reader: one file for all images, or one per split (Roboflow's
`train/_annotations.coco.json`, `valid/...`).

Hand-written: `pycocotools` needs a compiler on some platforms, loads the whole file into
its own index, and stops at the first annotation it cannot use; what extraction needs is a
few lines of plain JSON reading that report each bad annotation and go on.

- `images[].file_name` is resolved inside the folder the user gave (`ImageIndex.find`):
  relative to the JSON's folder, else by file name (COCO keeps images in a folder beside
  `annotations/`). An image entry whose file is not there is named and skipped.
- `bbox` is `[x, y, width, height]` in pixels; an annotation without a usable `bbox` but
  with a polygon `segmentation` is cropped by the polygon's bounding box.
- `category_id` names a category; unused categories (Roboflow's category 0, the dataset's
  name) are ignored, an unknown one skips the annotation. `iscrowd: 1` marks a region of
  many objects, left out with a note. Annotations of image ids not listed are named.
"""

from __future__ import annotations

import math
from pathlib import Path

from toonvision import ToonvisionError
from toonvision.data_processing import voc
from toonvision.data_processing.annotations import (
    LEFT_OUT,
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


def find(root: Path, folders: list[tuple[Path, list[str]]]) -> Found:
    """Reads every COCO JSON file below `root`."""
    found = Found(format="coco")
    index = ImageIndex(root, folders)
    for path in files_of_format(folders, ".json", "coco"):
        _read_file(path, root, index, found)
    return found


def _read_file(path: Path, root: Path, index: ImageIndex, found: Found) -> None:
    try:
        content = read_json(path)
        if not isinstance(content, dict) or not isinstance(content.get("images"), list):
            raise ToonvisionError(f"{path}: not a COCO file (no 'images' list)")
    except ToonvisionError as error:
        found.problems.append(Problem(path, UNUSABLE_ANNOTATION_FILE, str(error)))
        return
    categories = {item.get("id"): str(item.get("name", "")) for item in
                  content.get("categories") or [] if isinstance(item, dict)}
    by_image: dict[object, list[dict]] = {}
    for item in content.get("annotations") or []:
        if isinstance(item, dict):
            by_image.setdefault(item.get("image_id"), []).append(item)
    for entry in content["images"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            found.problems.append(Problem(path, UNUSABLE_ANNOTATION_FILE,
                                          f"image entry without a file_name: {entry!r:.60}"))
            continue
        try:
            image = index.find(entry["file_name"], path.parent)
        except ImageNotFound as error:
            found.problems.append(Problem(path, error.kind, error.detail))
            by_image.pop(entry.get("id"), None)
            continue
        annotation = voc.Annotation(path, entry["file_name"], _size(entry))
        for number, item in enumerate(by_image.pop(entry.get("id"), [])):
            _add(annotation, number, item, categories)
        found.pairs.append(ScreenshotPair(image, path, relative_to_root(image, root),
                                          annotation, oriented=True))
    for image_id, items in by_image.items():
        found.problems.append(Problem(path, UNUSABLE_ANNOTATION_FILE,
                                      f"{len(items)} annotation(s) of image_id {image_id!r}, "
                                      "which is not among the images"))


def _size(entry: dict) -> tuple[int, int] | None:
    width, height = entry.get("width"), entry.get("height")
    if isinstance(width, int | float) and isinstance(height, int | float) \
            and width > 0 and height > 0:
        return (int(width), int(height))
    return None


def _add(annotation: voc.Annotation, number: int, item: dict, categories: dict) -> None:
    """Adds annotation `item` (the image's `number`-th) as an object, a problem or a note."""
    label = categories.get(item.get("category_id"))
    if not label:
        annotation.object_problems.append(
            f"annotation {item.get('id', number)}: category_id {item.get('category_id')!r} "
            f"is not among the categories ({', '.join(sorted(filter(None, categories.values())))})")
        return
    if item.get("iscrowd") in (1, True):
        annotation.notes.append((LEFT_OUT, f"annotation {item.get('id', number)} ({label!r}) "
                                           "is a crowd region (iscrowd: 1)"))
        return
    try:
        annotation.objects.append(_box(number, label, item))
    except ValueError as error:
        annotation.object_problems.append(f"annotation {item.get('id', number)}: {error}")


def _box(number: int, label: str, item: dict) -> voc.VocObject:
    bbox = item.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4 and all(_finite(value) for value in bbox):
        x, y, width, height = bbox
        return voc.box_in_pixels(number, label, x, y, x + width, y + height)
    polygon = [value for part in item.get("segmentation") or [] if isinstance(part, list)
               for value in part] if isinstance(item.get("segmentation"), list) else []
    if len(polygon) >= 6 and all(_finite(value) for value in polygon):
        xs, ys = polygon[0::2], polygon[1::2]
        return voc.box_in_pixels(number, label, min(xs), min(ys), max(xs), max(ys), "polygon")
    raise ToonvisionError(f"{label!r}: bbox is {bbox!r:.60}, not [x, y, width, height] of "
                          "finite numbers")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)

"""The Label Studio reader: its JSON export (a list of tasks) and its JSON-MIN export.

Hand-written: Label Studio's own `label-studio-converter` pulls in its whole SDK and, with
rotated boxes, writes boxes that are not the rotated box's bounds. Rules:

- each task's image (`data.image`, or the first text value of `data`) is resolved by file
  name inside the folder the user gave: `/data/upload/1/8f3a2b1c-shot.jpg` is found as
  `8f3a2b1c-shot.jpg` or `shot.jpg` (Label Studio's upload prefix dropped),
  `/data/local-files/?d=shots/shot.jpg` as `shots/shot.jpg` below that folder or by name,
  a URL by the file name at its end. Nothing outside the folder is followed;
- the task's last annotation that was not cancelled is read (earlier ones are noted);
  `rectanglelabels` give boxes in percent of the image, `polygonlabels` their bounding box;
  a `rotation` (degrees, clockwise about the box's top-left corner) gives the bounding box
  of the rotated box, computed in pixels with `original_width` / `original_height`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

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

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")
REGION_TYPES = {"rectanglelabels": "box", "polygonlabels": "polygon"}


def find(root: Path, folders: list[tuple[Path, list[str]]]) -> Found:
    """Reads every Label Studio JSON export below `root`."""
    found = Found(format="labelstudio")
    index = ImageIndex(root, folders)
    for path in files_of_format(folders, ".json", "labelstudio"):
        _read_file(path, root, index, found)
    return found


def _read_file(path: Path, root: Path, index: ImageIndex, found: Found) -> None:
    try:
        tasks = read_json(path)
        if not isinstance(tasks, list):
            raise ToonvisionError(f"{path}: not a Label Studio export (not a list of tasks)")
    except ToonvisionError as error:
        found.problems.append(Problem(path, UNUSABLE_ANNOTATION_FILE, str(error)))
        return
    for number, task in enumerate(tasks):
        name = f"task {task.get('id', number) if isinstance(task, dict) else number}"
        try:
            reference, results, notes = _task(task)
            written, alternatives = image_reference(reference)
            image = index.find(written, root, alternatives)
        except ImageNotFound as error:
            found.problems.append(Problem(path, error.kind, f"{name}: {error.detail}"))
            continue
        except ToonvisionError as error:
            found.problems.append(Problem(path, UNUSABLE_ANNOTATION_FILE, f"{name}: {error}"))
            continue
        annotation = voc.Annotation(path, image.name, None, notes=notes)
        for position, result in enumerate(results):
            _add(annotation, position, result, name)
        found.pairs.append(ScreenshotPair(image, path, relative_to_root(image, root),
                                          annotation, oriented=True))


def _task(task: object) -> tuple[str, list, list[tuple[str, str]]]:
    """(image reference, the results to read, notes) of one task."""
    if not isinstance(task, dict):
        raise ToonvisionError(f"{task!r:.40} is not a task")
    data = task.get("data") if isinstance(task.get("data"), dict) else task
    reference = data.get("image")
    if not isinstance(reference, str):
        reference = next((value for value in data.values() if isinstance(value, str)
                          and re.search(r"\.\w{3,4}($|\?)", value)), None)
    if reference is None:
        raise ToonvisionError("no image in its data")
    if "annotations" not in task:   # JSON-MIN: regions are lists of values beside the image
        results = [{"type": kind, "value": value, **value}
                   for key, values in task.items() if isinstance(values, list)
                   for value in values if isinstance(value, dict)
                   for kind in REGION_TYPES if kind in value]
        return reference, results, []
    kept = [item for item in task.get("annotations") or []
            if isinstance(item, dict) and not item.get("was_cancelled")]
    notes = [(LEFT_OUT, f"{len(kept) - 1} earlier annotation(s) of the task; the last "
                        "was read")] if len(kept) > 1 else []
    return reference, (kept[-1].get("result") or []) if kept else [], notes


def image_reference(reference: str) -> tuple[str, list[str]]:
    """The path to look up for a Label Studio image reference, and other names to try."""
    parts = urlsplit(reference)
    query = parse_qs(parts.query)
    if "d" in query:
        written = unquote(query["d"][0])
    else:
        written = Path(unquote(parts.path)).name
    name = Path(written.replace("\\", "/")).name
    stripped = UPLOAD_PREFIX.sub("", name)
    return written, [stripped] if stripped != name else []


def _add(annotation: voc.Annotation, position: int, result: object, task: str) -> None:
    if not isinstance(result, dict) or result.get("type") not in REGION_TYPES:
        return   # choices, text, relations: not regions
    value = result.get("value") or {}
    labels = value.get(result["type"]) or []
    described = f"{task} region {position}"
    if not labels:
        annotation.object_problems.append(f"{described}: no label")
        return
    width, height = result.get("original_width"), result.get("original_height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        annotation.size = annotation.size or (width, height)
    else:
        width = height = None
    try:
        annotation.relative.append(_box(position, str(labels[0]), value, width, height))
    except ValueError as error:
        annotation.object_problems.append(f"{described}: {error}")


def _box(position: int, label: str, value: dict, width: int | None,
         height: int | None) -> voc.RelativeBox:
    def number(key: str, default: float | None = None) -> float:
        item = value.get(key, default)
        if not isinstance(item, int | float) or not math.isfinite(item):
            raise ToonvisionError(f"{label!r}: {key} is {item!r:.20}, not a finite number")
        return float(item)

    if "points" in value:
        points = value["points"]
        if not isinstance(points, list) or len(points) < 3:
            raise ToonvisionError(f"{label!r}: points are {points!r:.40}")
        xs, ys = [point[0] / 100 for point in points], [point[1] / 100 for point in points]
        return voc.RelativeBox(position, label, min(xs), min(ys), max(xs), max(ys), "polygon")
    x, y, w, h = (number(key) / 100 for key in ("x", "y", "width", "height"))
    rotation = number("rotation", 0.0) % 360
    if rotation == 0:
        return voc.RelativeBox(position, label, x, y, x + w, y + h)
    if width is None:
        raise ToonvisionError(f"{label!r}: rotated by {rotation} degrees, but without "
                              "original_width and original_height to turn it")
    angle = math.radians(rotation)
    cos, sin = math.cos(angle), math.sin(angle)
    corners = [(x * width + dx * cos - dy * sin, y * height + dx * sin + dy * cos)
               for dx, dy in ((0, 0), (w * width, 0), (w * width, h * height), (0, h * height))]
    xs, ys = [cx / width for cx, _ in corners], [cy / height for _, cy in corners]
    return voc.RelativeBox(position, label, min(xs), min(ys), max(xs), max(ys), "rotated box")

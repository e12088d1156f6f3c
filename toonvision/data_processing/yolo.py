"""The YOLO txt reader: ultralytics, Roboflow, labelImg, CVAT and Label Studio YOLO exports.

Hand-written, because the maintained readers do not handle the traps of real exports as
extraction needs: `supervision` and `globox` drop or reject a whole file for one bad line,
and none reports which class file was used. Layout and rules:

- a label file is `<stem>.txt`, found as ultralytics finds it: the image's path with its
  last `images` folder replaced by `labels` (`train/images/a.jpg` -> `train/labels/a.txt`),
  else beside the image. An image without one is a background image (noted, not skipped);
- class names come from the nearest folder, from the label file's up to the root, holding
  a YAML file with `names` (a list, or a mapping from index to name: `data.yaml`), a
  `classes.txt` (labelImg, Label Studio) or an `obj.names` (CVAT, darknet). When two such
  files in one folder disagree, that is noted: labelImg rewrites `classes.txt`, which
  shifts class indices. Paths inside `data.yaml` (`train: ../train/images`) are not followed;
- each line is `class cx cy w h` in fractions of the image (a sixth number, a confidence,
  is ignored), or `class x1 y1 x2 y2 ...` (a polygon, ultralytics segments and oriented
  boxes), cropped by its bounding box. A line with a class index out of range, a missing or
  non-finite number, or pixel coordinates is skipped with its line number; the other lines
  keep their index (their line number), so the manifest knows each object again.
"""

from __future__ import annotations

import math
from pathlib import Path

from toonvision import ToonvisionError
from toonvision.data_processing import voc
from toonvision.data_processing.annotations import (
    IMAGE_NOT_FOUND,
    NO_BOXES,
    UNUSABLE_ANNOTATION_FILE,
    Found,
    ScreenshotPair,
)
from toonvision.data_processing.extract_results import Problem
from toonvision.data_processing.images import is_image_file

CLASS_FILES: tuple[str, ...] = ("classes.txt", "obj.names")
NOT_LABELS = frozenset(name.lower() for name in CLASS_FILES)
# A coordinate above this is a pixel coordinate, not a fraction (a box may stick out a bit).
MAX_FRACTION = 1.5
CLASSES_DISAGREE = "class name files disagree"


def find(root: Path, folders: list[tuple[Path, list[str]]]) -> Found:
    """Pairs every image below `root` with its YOLO label file and reads the labels."""
    found = Found(format="yolo")
    files = {folder: set(names) for folder, names in folders}
    claimed: set[Path] = set()
    classes = _ClassNames(root, files, found)
    for folder, names in folders:
        for name in names:
            image = folder / name
            if not is_image_file(image):
                continue
            label_file = _label_file(image, files)
            if label_file is None:
                found.notes.append(Problem(image, NO_BOXES, "no label file: a background image"))
                continue
            claimed.add(label_file)
            try:
                annotation = read_labels(label_file, image.name, classes.of(label_file))
            except ToonvisionError as error:
                found.problems.append(Problem(label_file, UNUSABLE_ANNOTATION_FILE, str(error)))
                continue
            found.pairs.append(ScreenshotPair(image, label_file, image.relative_to(root),
                                              annotation, oriented=True))
    for folder, names in folders:
        if "labels" not in (part.lower() for part in folder.relative_to(root).parts):
            continue
        found.problems += [Problem(folder / name, IMAGE_NOT_FOUND, "label file without image")
                           for name in names if name.lower().endswith(".txt")
                           and name.lower() not in NOT_LABELS and folder / name not in claimed]
    return found


def _label_file(image: Path, files: dict[Path, set[str]]) -> Path | None:
    """The label file of `image`: ultralytics' `images` -> `labels` rule, else beside it."""
    parts = image.parent.parts
    candidates = []
    for position in range(len(parts) - 1, -1, -1):
        if parts[position].lower() == "images":
            candidates.append(Path(*parts[:position], "labels", *parts[position + 1:]))
            break
    candidates.append(image.parent)
    for folder in candidates:
        if f"{image.stem}.txt" in files.get(folder, ()):
            return folder / f"{image.stem}.txt"
    return None


class _ClassNames:
    """The class names that apply to each label file, read once per folder."""

    def __init__(self, root: Path, files: dict[Path, set[str]], found: Found) -> None:
        self.root, self.files, self.found = root, files, found
        self.cache: dict[Path, list[str] | None] = {}

    def of(self, label_file: Path) -> list[str]:
        """The names for `label_file`, from the nearest folder that has some.

        Raises:
            ToonvisionError: if no folder up to the root names the classes, or the nearest
                class file is unusable.
        """
        folder = label_file.parent
        while True:
            names = self._in(folder)
            if names is not None:
                return names
            if folder == self.root or not folder.is_relative_to(self.root):
                raise ToonvisionError(
                    "class names unknown: no data.yaml with names, classes.txt or obj.names "
                    f"in {label_file.parent} or a folder above it inside {self.root}")
            folder = folder.parent

    def _in(self, folder: Path) -> list[str] | None:
        if folder in self.cache:
            return self.cache[folder]
        candidates: list[tuple[Path, list[str]]] = []
        for name in sorted(self.files.get(folder, ())):
            path = folder / name
            if name.lower().endswith((".yaml", ".yml")):
                names = read_yaml_names(path)
            elif name.lower() in NOT_LABELS:
                names = read_class_file(path)
            else:
                continue
            if names is not None:
                candidates.append((path, names))
        chosen = candidates[0][1] if candidates else None
        for path, names in candidates[1:]:
            if names != chosen:
                self.found.notes.append(Problem(path, CLASSES_DISAGREE,
                                                f"{candidates[0][0].name} was used"))
        self.cache[folder] = chosen
        return chosen


def read_class_file(path: Path) -> list[str]:
    """The names of a `classes.txt` / `obj.names`, one per line (trailing blank lines dropped).

    Raises:
        ToonvisionError: if the file cannot be read as text.
    """
    lines = _text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def read_yaml_names(path: Path) -> list[str] | None:
    """The `names` of a YOLO dataset YAML (list or index mapping), or None if it has none.

    Raises:
        ToonvisionError: if the YAML is damaged or its `names` is neither a list nor a
            mapping from whole numbers.
    """
    import yaml

    try:
        content = yaml.safe_load(_text(path))
    except yaml.YAMLError as error:
        raise ToonvisionError(f"{path}: not valid YAML ({str(error)[:80]})") from None
    names = content.get("names") if isinstance(content, dict) else None
    if names is None:
        return None
    if isinstance(names, dict):
        try:
            indexed = {int(key): str(value) for key, value in names.items()}
        except (TypeError, ValueError):
            raise ToonvisionError(f"{path}: names keys must be class indices") from None
        return [indexed.get(index, "") for index in range(max(indexed, default=-1) + 1)]
    if isinstance(names, list):
        return [str(name) for name in names]
    raise ToonvisionError(f"{path}: names must be a list or a mapping, not {names!r:.40}")


def _text(path: Path) -> str:
    try:
        if path.stat().st_size > voc.MAX_XML_BYTES:
            raise ToonvisionError(f"{path}: larger than {voc.MAX_XML_BYTES} bytes")
        return path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise ToonvisionError(f"{path}: cannot read file ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ToonvisionError(f"{path}: not UTF-8 text") from None


def read_labels(path: Path, image_name: str, names: list[str]) -> voc.Annotation:
    """Reads one YOLO label file into boxes relative to the image's size.

    Args:
        path: the label file.
        image_name: the image's file name (recorded as the annotation's `filename`).
        names: the class names, index by index.

    Raises:
        ToonvisionError: if the file cannot be read as text.
    """
    annotation = voc.Annotation(path, image_name, None, records_size=False)
    for number, line in enumerate(_text(path).splitlines()):
        if not line.strip():
            continue
        try:
            annotation.relative.append(_box(number, line.split(), names))
        except ValueError as error:
            annotation.object_problems.append(f"line {number + 1}: {error}")
    return annotation


def _box(number: int, tokens: list[str], names: list[str]) -> voc.RelativeBox:
    try:
        values = [float(token) for token in tokens]
    except ValueError:
        raise ToonvisionError(f"{' '.join(tokens)[:40]!r} holds something not a number") from None
    if not all(math.isfinite(value) for value in values):
        raise ToonvisionError(f"{' '.join(tokens)[:40]!r} holds NaN or infinity")
    if values[0] != int(values[0]) or not 0 <= values[0] < len(names) or not names[int(values[0])]:
        raise ToonvisionError(f"class {tokens[0]} is not among the {len(names)} class names "
                              f"({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})")
    label, coordinates = names[int(values[0])], values[1:]
    if any(abs(value) > MAX_FRACTION for value in coordinates):
        raise ToonvisionError("coordinates are not fractions of the image (0..1): pixels?")
    if len(coordinates) in (4, 5):
        x, y, width, height = coordinates[:4]
        return voc.RelativeBox(number, label, x - width / 2, y - height / 2,
                               x + width / 2, y + height / 2)
    if len(coordinates) >= 6 and len(coordinates) % 2 == 0:
        xs, ys = coordinates[0::2], coordinates[1::2]
        return voc.RelativeBox(number, label, min(xs), min(ys), max(xs), max(ys), "polygon")
    raise ToonvisionError(f"{len(coordinates)} numbers after the class; expected 4 "
                          "(cx cy w h) or an even number of 6 or more (a polygon)")

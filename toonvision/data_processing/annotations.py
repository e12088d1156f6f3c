"""Screenshots with boxes from any labelling tool's export: detection, pairing, paths.

`find_annotated` is what `extract`, `predict` and `report --inputs` call on a folder. It
detects which export the folder holds (`detect_format`) or takes the one forced with
`--format`, and returns every screenshot with its boxes as a `ScreenshotPair`:

    voc          labelImg Pascal VOC XML beside each image (`voc`)
    yolo         YOLO txt in `labels/` beside `images/`, or beside the images (`yolo`)
    coco         COCO JSON, one file or one per split (`coco`)
    labelme      labelme JSON, one per image (`labelme`)
    labelstudio  Label Studio's JSON export (`labelstudio`)
    cvat         CVAT for images 1.1 XML (`cvat`)

Every reader returns the one box type (`voc.Annotation` of `voc.VocObject`), and every path
named inside an annotation file is resolved by `ImageIndex.find`: inside the folder the user
gave, never outside it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from toonvision import MissingFileError, ToonvisionError
from toonvision.data_processing import voc
from toonvision.data_processing.extract_results import AMBIGUOUS_PAIR, Problem
from toonvision.data_processing.images import is_image_file

# Each format and the module of its reader (each has `find(root, folders) -> Found`).
_READERS = {"voc": "voc_pairs", "yolo": "yolo", "coco": "coco", "labelme": "labelme",
            "labelstudio": "labelstudio", "cvat": "cvat"}
FORMATS: tuple[str, ...] = tuple(_READERS)
# Exports that describe many images in one file may be large; a labelme file holds its image.
MAX_JSON_BYTES = 512 * 1024 * 1024
# Reasons, beside those of `extract_results`.
IMAGE_NOT_FOUND = "annotation of an image that is not there"
OUTSIDE_FOLDER = "image path outside the folder"
UNUSABLE_ANNOTATION_FILE = "unusable annotation file"
NO_BOXES = "screenshot without boxes"
BOUNDING_BOX_OF = "cropped by its bounding box"
LEFT_OUT = "left out on purpose"


@dataclass(frozen=True)
class ScreenshotPair:
    """A screenshot and its annotation.

    Attributes:
        image: the image file (for an image embedded in a labelme file: that file).
        xml: the annotation file (any format; the name is kept from VOC-only days).
        relative: the image's path below the search root (mirrored by `--draw`).
        annotation: the boxes, already read (formats other than VOC); None for VOC, whose
            XML is parsed when the screenshot is read.
        embedded: whether the image is the annotation's base64 `imageData` (labelme).
        oriented: whether the format's tool showed the image turned by its EXIF orientation
            (all but labelImg); used when the annotation's size cannot tell.
    """

    image: Path
    xml: Path
    relative: Path
    annotation: voc.Annotation | None = field(default=None, compare=False, repr=False)
    embedded: bool = False
    oriented: bool = False


@dataclass
class Found:
    """What `find_annotated` found: pairs, files skipped, facts noted, the format read."""

    pairs: list[ScreenshotPair] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    format: str = "voc"


def walk(root: Path, exclude: Iterable[str | os.PathLike] = ()) -> list[tuple[Path, list[str]]]:
    """(folder, sorted file names) for `root` and every folder below it, skipping `exclude`;
    links to folders are not followed."""
    excluded = {Path(folder).resolve() for folder in exclude}
    found = []
    for folder_name, subfolders, file_names in os.walk(root):
        folder = Path(folder_name)
        subfolders[:] = sorted(name for name in subfolders
                               if (folder / name).resolve() not in excluded)
        found.append((folder, sorted(file_names)))
    return found


class ImageNotFound(ToonvisionError):
    """An annotation names an image that `ImageIndex.find` cannot use; `kind` says why."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


class ImageIndex:
    """Every image below the root, found by relative path or by file name.

    Annotation files name their images in many ways (`file_name`, `imagePath`,
    `/data/upload/1/8f3a2b1c-shot.jpg`, Windows paths); `find` resolves each one to an image
    inside the root or says why not. A path is never followed out of the root: `..` and
    absolute paths are reduced to their file name and looked up inside it.
    """

    def __init__(self, root: Path, folders: list[tuple[Path, list[str]]]) -> None:
        self.root = root.resolve()
        self.by_name: dict[str, list[Path]] = {}
        for folder, names in folders:
            for name in names:
                path = folder / name
                if is_image_file(path):
                    self.by_name.setdefault(name, []).append(path)

    def find(self, reference: str, base: Path, names: Iterable[str] = ()) -> Path:
        """The image that `reference` names, written in an annotation file in folder `base`.

        Args:
            reference: the path as written (any separators).
            base: the folder of the annotation file; relative paths start there.
            names: other file names to try when the written one is not found (the name
                without Label Studio's upload prefix).

        Raises:
            ImageNotFound: with IMAGE_NOT_FOUND, OUTSIDE_FOLDER or AMBIGUOUS_PAIR as kind.
        """
        written = PurePosixPath(reference.replace("\\", "/"))
        parts = [part for part in written.parts if part not in ("", ".", "/")]
        outside = written.is_absolute() or ".." in parts or re.match(r"^[A-Za-z]:", reference)
        if parts and not outside:
            candidate = base.joinpath(*parts)
            if candidate.is_file() and candidate.resolve().is_relative_to(self.root):
                return candidate
        for name in (written.name, *names):
            matches = self.by_name.get(name, [])
            if len(matches) > 1:   # prefer the one whose path ends as written
                matches = [path for path in matches
                           if path.as_posix().endswith("/" + "/".join(parts[-2:]))] or matches
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise ImageNotFound(AMBIGUOUS_PAIR, f"several images are named {name!r}: "
                                    f"{', '.join(str(path) for path in matches[:3])}")
        if outside:
            raise ImageNotFound(OUTSIDE_FOLDER, f"{reference!r} is not followed, and no image "
                                f"named {written.name!r} is inside {self.root}")
        raise ImageNotFound(IMAGE_NOT_FOUND, f"{reference!r} not found in {self.root}")


def read_json(path: Path) -> object:
    """Reads a JSON annotation file.

    Raises:
        ToonvisionError: if it is too large, truncated or not JSON (naming the file).
    """
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ToonvisionError(f"{path}: larger than {MAX_JSON_BYTES} bytes")
        return json.loads(path.read_bytes())
    except OSError as error:
        raise ToonvisionError(f"{path}: cannot read file ({error.strerror or error})") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ToonvisionError(f"{path}: not valid JSON, truncated or damaged "
                              f"({str(error)[:80]})") from None


def files_of_format(folders: list[tuple[Path, list[str]]], suffix: str,
                    format_name: str) -> Iterator[Path]:
    """The files of `folders` whose name ends in `suffix` and whose content `sniff`s as
    `format_name` (one rule for every reader of one-file-per-export formats)."""
    for folder, names in folders:
        for name in names:
            path = folder / name
            if name.lower().endswith(suffix) and sniff(path) == format_name:
                yield path


def sniff(path: Path) -> str | None:
    """The format a single file belongs to, from its name and first bytes, or None."""
    name, suffix = path.name.lower(), path.suffix.lower()
    if name in ("classes.txt", "obj.names"):
        return "yolo"
    if suffix == ".txt" and "labels" in (part.lower() for part in path.parent.parts):
        return "yolo"
    if suffix not in (".xml", ".json", ".yaml", ".yml"):
        return None
    try:
        with path.open("rb") as handle:
            head = handle.read(65536)
    except OSError:
        return None
    if suffix in (".yaml", ".yml"):
        return "yolo" if re.search(rb"^names\s*:", head, re.MULTILINE) else None
    if suffix == ".xml":
        match = re.search(rb"<\s*([A-Za-z_][\w.-]*)[\s>/]", re.sub(rb"<[?!][^>]*>", b"", head))
        tag = match.group(1) if match else b""
        return {b"annotation": "voc", b"annotations": "cvat"}.get(tag)
    if name.endswith(".coco.json"):
        return "coco"
    text = head.lstrip()
    if text.startswith(b"["):
        return "labelstudio" if re.search(rb'"(data|annotations|rectanglelabels)"', text) else None
    if re.search(rb'"shapes"\s*:', text) and re.search(rb'"imagePath"\s*:', head + b'"imagePath":'):
        return "labelme"
    if re.search(rb'"(images|categories)"\s*:', text):
        return "coco"
    if len(head) == 65536:   # a large object whose keys come late: read it whole
        try:
            content = read_json(path)
        except ToonvisionError:
            return None
        if isinstance(content, dict) and "images" in content and "annotations" in content:
            return "coco"
    return None


def detect_format(folders: list[tuple[Path, list[str]]]) -> str:
    """The export format a folder holds, judged from its files (see `find_annotated`).

    Raises:
        ToonvisionError: if it holds annotations of several formats (naming one file of
            each), so that the user chooses with `--format`.
    """
    seen: dict[str, Path] = {}
    for folder, names in folders:
        for name in names:
            path = folder / name
            kind = sniff(path)
            if kind is not None:
                seen.setdefault(kind, path)
    if len(seen) > 1:
        found = ", ".join(f"{kind} ({path})" for kind, path in sorted(seen.items()))
        raise ToonvisionError(f"the folder holds annotations of several formats: {found}; "
                              f"choose one with --format ({', '.join(FORMATS)})")
    return next(iter(seen), "voc")


def find_annotated(root: str | os.PathLike, exclude: Iterable[str | os.PathLike] = (),
                   format: str | None = None) -> Found:
    """Finds every screenshot with its boxes below `root`, in any supported format.

    Args:
        root: the folder the user gave; no path inside an annotation leads out of it.
        exclude: folders not to search (the data folder, the drawing folder).
        format: one of FORMATS, or None to detect it.

    Returns:
        The pairs, the files skipped (each a `Problem` naming the file and why) and notes.

    Raises:
        MissingFileError: if `root` does not exist.
        ToonvisionError: if `root` is not a folder, `format` is unknown, or the format
            cannot be told (see `detect_format`).
    """
    from importlib import import_module

    root = Path(root)
    if not root.exists():
        raise MissingFileError(f"{root}: no such folder")
    if not root.is_dir():
        raise ToonvisionError(f"{root}: not a folder")
    if format is not None and format not in FORMATS:
        raise ToonvisionError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    folders = walk(root, exclude)
    chosen = format or detect_format(folders)
    reader = import_module(f"toonvision.data_processing.{_READERS[chosen]}")
    found = reader.find(root, folders)
    found.format = chosen
    return found


def relative_to_root(path: Path, root: Path) -> Path:
    """`path` below `root` for `--draw`'s mirror (the name alone if it is not below)."""
    try:
        return path.relative_to(root)
    except ValueError:
        return Path(path.name)

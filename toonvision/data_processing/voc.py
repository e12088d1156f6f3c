"""Safe reading of labelImg Pascal VOC annotations.

labelImg writes one XML file beside each screenshot: the image's `<size>` and one `<object>`
per labelled box (`<name>` and `<bndbox>` with `xmin`, `ymin`, `xmax`, `ymax` in pixels).

Annotation files come from anywhere, so they are parsed defensively with lxml: no network
access, no DTD loading, no entity expansion, and any document with a DOCTYPE (the carrier of
"billion laughs" and external-entity attacks) is rejected before its content is used. Nothing
here trusts the numbers either: boxes are returned as written (rounded to whole pixels) and
clipped later against the real image, and an unreadable `<size>` is simply absent.

Which image an XML describes is decided here too, by one rule (`pair_files`) that
extraction, prediction and the report all follow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from toonvision import ToonvisionError
from toonvision.data_processing.images import is_image_file

# labelImg files are a few kilobytes; anything far larger is not an annotation.
MAX_XML_BYTES = 10 * 1024 * 1024
BOX_FIELDS: tuple[str, ...] = ("xmin", "ymin", "xmax", "ymax")
ANNOTATION_SUFFIX = ".xml"


BOX_SHAPE = "box"


class VocError(ToonvisionError):
    """An annotation file cannot be used; the message names the file and the reason."""


EMPTY_BOX = "empty box"
BOX_OUTSIDE_IMAGE = "box outside the image"


class UnusableBox(ToonvisionError):
    """A box with nothing to crop; `kind` is EMPTY_BOX or BOX_OUTSIDE_IMAGE."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True)
class VocObject:
    """One labelled box, as written in the XML.

    Attributes:
        index: the position of this `<object>` among the file's objects, from 0. It identifies
            the object even when other objects of the file are unusable.
        label: the `<name>` text with surrounding white space removed (not yet made safe).
        xmin, ymin, xmax, ymax: the box corners in pixels, rounded to integers; they may lie
            outside the image or describe an empty box.
        shape: `box`, or what the box bounds when the annotation drew something else
            (`polygon`, `rotated box`, `ellipse`, `mask`): such objects are cropped by their
            bounding box, and extraction counts them.
    """

    index: int
    label: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int
    shape: str = BOX_SHAPE

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(xmin, ymin, xmax, ymax) as written."""
        return (self.xmin, self.ymin, self.xmax, self.ymax)

    def clipped_box(self, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The box clipped to an image of (height, width).

        Raises:
            UnusableBox: if the box has no area or lies wholly outside the image.
        """
        height, width = image_size
        xmin, ymin, xmax, ymax = self.box
        if xmax <= xmin or ymax <= ymin:
            raise UnusableBox(EMPTY_BOX, f"box {self.box} has no area")
        clipped = (max(xmin, 0), max(ymin, 0), min(xmax, width), min(ymax, height))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            raise UnusableBox(BOX_OUTSIDE_IMAGE,
                              f"box {self.box} lies wholly outside the {width}x{height} image")
        return clipped


@dataclass
class Annotation:
    """The content of one VOC XML file.

    Attributes:
        path: the XML file.
        filename: the `<filename>` text, or '' when absent.
        size: (width, height) from `<size>`, or None when missing, unreadable or zero.
        objects: the usable objects, in file order.
        object_problems: one message per `<object>` that could not be read, e.g.
            "object 2: no <bndbox>"; such objects are absent from `objects`.
        relative: boxes in fractions of the image's width and height (YOLO, Label Studio),
            turned into `objects` by `in_pixels` once the image's size is known.
        notes: (kind, detail) for objects left out on purpose (a COCO crowd region) or
            facts worth knowing; nothing the user wanted is lost.
        records_size: whether the format records the image's size at all (YOLO does not),
            so that a missing size is worth a note.

    Every reader of every format (see `annotations`) returns this one type, with the one
    rounding rule of `box_in_pixels`, so the same box gives the same crop in any format.
    """

    path: Path
    filename: str
    size: tuple[int, int] | None
    objects: list[VocObject] = field(default_factory=list)
    object_problems: list[str] = field(default_factory=list)
    relative: list[RelativeBox] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    records_size: bool = True

    def in_pixels(self, width: int, height: int) -> Annotation:
        """This annotation with its relative boxes turned into pixel `objects`, in index order.

        Args:
            width, height: the decoded image's size.
        """
        if not self.relative:
            return self
        objects = list(self.objects)
        for box in self.relative:
            objects.append(box_in_pixels(box.index, box.label, box.x0 * width, box.y0 * height,
                                         box.x1 * width, box.y1 * height, box.shape))
        objects.sort(key=lambda item: item.index)
        return Annotation(self.path, self.filename, self.size, objects, self.object_problems,
                          [], self.notes, self.records_size)


@dataclass(frozen=True)
class RelativeBox:
    """A box in fractions (0..1) of the image's width and height, corners (x0, y0, x1, y1)."""

    index: int
    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    shape: str = BOX_SHAPE


def box_in_pixels(index: int, label: str, x0: float, y0: float, x1: float, y1: float,
                  shape: str = BOX_SHAPE) -> VocObject:
    """The one rule that turns any format's box into pixels: each corner rounded to the
    nearest whole pixel (Python's `round`, halves to even), the box being the half-open
    range [xmin, xmax) x [ymin, ymax) of pixel columns and rows, so a crop is
    `image[ymin:ymax, xmin:xmax]`. Corners are kept in the order given (a box whose
    xmax is not above its xmin is empty, as in VOC).

    Raises:
        ToonvisionError: if a corner is not a finite number.
    """
    corners = []
    for name, value in (("xmin", x0), ("ymin", y0), ("xmax", x1), ("ymax", y1)):
        if not isinstance(value, int | float) or isinstance(value, bool) \
                or not math.isfinite(value):
            raise ToonvisionError(f"{label!r} box: {name} is {value!r}, not a finite number")
        corners.append(round(value))
    return VocObject(index, label, *corners, shape)


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_annotation(xml_path: str | os.PathLike) -> Annotation:
    """Parses a labelImg Pascal VOC XML file without trusting it.

    Args:
        xml_path: the annotation file.

    Returns:
        The annotation. Objects without a `<name>`, without a `<bndbox>`, or with a corner
        that is not a finite number are left out and described in `object_problems`.

    Raises:
        VocError: if the file cannot be read, is not well-formed XML, has a DOCTYPE or
            entity declarations, or its root element is not `<annotation>`.
    """
    path = Path(xml_path)
    root = parse_xml_safely(path)
    if root.tag != "annotation":
        raise VocError(f"{path}: root element is <{root.tag}>, expected <annotation>")

    annotation = Annotation(
        path=path,
        filename=(root.findtext("filename") or "").strip(),
        size=_read_size(root),
    )
    for index, element in enumerate(root.findall("object")):
        try:
            annotation.objects.append(_read_object(index, element))
        except ValueError as error:
            annotation.object_problems.append(f"object {index}: {error}")
    return annotation


def parse_xml_safely(path: Path, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parses any annotation XML (VOC, CVAT) without trusting it; returns the root element.

    Raises:
        VocError: if the file cannot be read, is larger than MAX_XML_BYTES, is not
            well-formed XML, or has a DOCTYPE, entity declarations or entity references.
    """
    try:
        if path.stat().st_size > max_bytes:
            raise VocError(f"{path}: larger than {max_bytes} bytes, not an annotation")
        content = path.read_bytes()
    except OSError as error:
        raise VocError(f"{path}: cannot read file ({error.strerror or error})") from error
    # Checked on the raw bytes first so that a hostile document is never even parsed; the
    # check on the parsed tree below also catches encodings (UTF-16) that hide the marker.
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise VocError(f"{path}: has a DOCTYPE or entity declarations, which are not allowed")
    try:
        root = etree.fromstring(content, _safe_parser())
    except etree.XMLSyntaxError as error:
        raise VocError(f"{path}: not well-formed XML ({error.msg})") from error
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise VocError(f"{path}: has a DOCTYPE or entity declarations, which are not allowed")
    if any(isinstance(node, etree._Entity) for node in root.iter()):
        raise VocError(f"{path}: uses entity references, which are not allowed")
    return root


def _read_size(root: etree._Element) -> tuple[int, int] | None:
    size = root.find("size")
    if size is None:
        return None
    try:
        width = int(_number(size.findtext("width")))
        height = int(_number(size.findtext("height")))
    except ValueError:
        return None
    return (width, height) if width > 0 and height > 0 else None


def _read_object(index: int, element: etree._Element) -> VocObject:
    label = (element.findtext("name") or "").strip()
    if not label:
        raise ToonvisionError("no <name> (label)")
    box = element.find("bndbox")
    if box is None:
        raise ToonvisionError(f"{label!r} has no <bndbox>")
    corners = []
    for name in BOX_FIELDS:
        try:
            corners.append(_number(box.findtext(name)))
        except ValueError as error:
            raise ToonvisionError(f"{label!r} box: <{name}> {error}") from None
    return box_in_pixels(index, label, *corners)


def _number(text: str | None) -> float:
    if text is None or not text.strip():
        raise ToonvisionError("is missing")
    try:
        value = float(text.strip())
    except ValueError:
        raise ToonvisionError(f"is {text.strip()[:20]!r}, not a number") from None
    if not math.isfinite(value):
        raise ToonvisionError(f"is {text.strip()[:20]!r}, not a finite number")
    return value


@dataclass
class Pairing:
    """How the images and annotation files of one folder pair up (see `pair_files`).

    Attributes:
        pairs: (image, annotation) for each screenshot, in the order of the annotations'
            file stems.
        images_without_annotation: images that no annotation describes.
        annotations_without_image: annotations whose image is not there.
        ambiguous: the files of one stem that cannot be told apart, one tuple per stem
            (`shot.png` and `shot.jpg` beside a `shot.xml` whose `<filename>` names neither).
    """

    pairs: list[tuple[Path, Path]]
    images_without_annotation: list[Path]
    annotations_without_image: list[Path]
    ambiguous: list[tuple[Path, ...]]
    _partners: dict[Path, Path] = field(init=False, repr=False, compare=False)
    _groups: dict[Path, tuple[Path, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._partners = {**dict(self.pairs), **{xml: image for image, xml in self.pairs}}
        self._groups = {path: group for group in self.ambiguous for path in group}

    def partner(self, path: Path) -> Path | None:
        """The annotation of an image, or the image of an annotation; None if unpaired."""
        return self._partners.get(path)

    def ambiguous_group(self, path: Path) -> tuple[Path, ...]:
        """The files that cannot be told apart from `path`, itself included; () if none."""
        return self._groups.get(path, ())


def is_annotation_file(path: Path) -> bool:
    """Whether `path` is named like a labelImg annotation: `.xml`, in any case."""
    return path.suffix.lower() == ANNOTATION_SUFFIX


def pair_files(paths: Iterable[Path]) -> Pairing:
    """Pairs the images of one folder with their labelImg XML: the rule of extract, predict
    and report.

    1. An image is a file with an image extension (`images.IMAGE_EXTENSIONS`: .png, .jpg,
       .jpeg, .bmp, .webp, in any case), an annotation a `.xml` file (any case). Only files
       of the same folder pair.
    2. An annotation describes the image of its own stem: labelImg saves `shot.xml` beside
       `shot.png`. The stem wins over `<filename>`, which goes stale when an XML is copied
       as a template for another screenshot.
    3. When several images share the annotation's stem (`shot.png` and `shot.jpg`), its
       `<filename>` says which one it describes (labelImg overwrote the XML of the other);
       if it names none of them, the stem's files cannot be told apart.
    4. An annotation with no image of its stem describes the image its `<filename>` names
       beside it, if that image has no annotation of its own (an XML that was renamed).
    5. Two annotations of one stem (`shot.xml`, `shot.XML`), or of one image by rule 4,
       cannot be told apart. Other files are ignored.

    Args:
        paths: the files of one folder (other names are ignored).

    Returns:
        The pairing; every image and annotation among `paths` is in exactly one of its lists.
    """
    images: dict[str, list[Path]] = {}
    annotations: dict[str, list[Path]] = {}
    for path in sorted(paths):
        if is_image_file(path):
            images.setdefault(path.stem, []).append(path)
        elif is_annotation_file(path):
            annotations.setdefault(path.stem, []).append(path)
    paired: dict[Path, Path] = {}    # annotation -> image
    without_annotation: list[Path] = []
    without_image: list[Path] = []
    ambiguous: list[tuple[Path, ...]] = []
    unclaimed = {path.name: path for stem, paths_of_stem in images.items()
                 if stem not in annotations for path in paths_of_stem}
    claims: dict[Path, list[Path]] = {}   # image -> annotations without an image of their stem
    for stem in sorted(images.keys() | annotations.keys()):
        stem_images, stem_annotations = images.get(stem, []), annotations.get(stem, [])
        if len(stem_annotations) > 1:
            ambiguous.append((*stem_images, *stem_annotations))
        elif len(stem_annotations) == 1 and len(stem_images) == 1:
            paired[stem_annotations[0]] = stem_images[0]
        elif len(stem_annotations) == 1 and stem_images:
            named = _filename(stem_annotations[0])
            chosen = next((image for image in stem_images if image.name == named), None)
            if chosen is None:
                ambiguous.append((*stem_images, *stem_annotations))
                continue
            paired[stem_annotations[0]] = chosen
            without_annotation += [image for image in stem_images if image != chosen]
        elif stem_annotations:
            named = unclaimed.get(_filename(stem_annotations[0]))
            if named is None:
                without_image.append(stem_annotations[0])
            else:
                claims.setdefault(named, []).append(stem_annotations[0])
    for image, claimants in claims.items():
        if len(claimants) == 1:
            paired[claimants[0]] = image
        else:
            ambiguous.append((image, *claimants))
        del unclaimed[image.name]
    pairs = sorted(((image, annotation) for annotation, image in paired.items()),
                   key=lambda pair: pair[1].stem)
    return Pairing(pairs, sorted(without_annotation + list(unclaimed.values())), without_image,
                   ambiguous)


def pair_folder(folder: Path) -> Pairing:
    """Pairs the images and annotations in `folder` (not below it) by `pair_files`' rule."""
    with os.scandir(folder) as entries:
        return pair_files([folder / entry.name for entry in entries if entry.is_file()])


def _filename(annotation: Path) -> str:
    """The `<filename>` of an annotation, or '' when it has none or cannot be read."""
    try:
        return parse_annotation(annotation).filename
    except VocError:
        return ""

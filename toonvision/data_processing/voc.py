"""Safe reading of labelImg Pascal VOC annotations.

labelImg writes one XML file beside each screenshot: the image's `<size>` and one `<object>`
per labelled box (`<name>` and `<bndbox>` with `xmin`, `ymin`, `xmax`, `ymax` in pixels).

Annotation files come from anywhere, so they are parsed defensively with lxml: no network
access, no DTD loading, no entity expansion, and any document with a DOCTYPE (the carrier of
"billion laughs" and external-entity attacks) is rejected before its content is used. Nothing
here trusts the numbers either: boxes are returned as written (rounded to whole pixels) and
clipped later against the real image, and an unreadable `<size>` is simply absent.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from toonvision import ToonvisionError

# labelImg files are a few kilobytes; anything far larger is not an annotation.
MAX_XML_BYTES = 10 * 1024 * 1024
BOX_FIELDS: tuple[str, ...] = ("xmin", "ymin", "xmax", "ymax")


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
    """

    index: int
    label: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int

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
    """

    path: Path
    filename: str
    size: tuple[int, int] | None
    objects: list[VocObject] = field(default_factory=list)
    object_problems: list[str] = field(default_factory=list)


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
    try:
        if path.stat().st_size > MAX_XML_BYTES:
            raise VocError(f"{path}: larger than {MAX_XML_BYTES} bytes, not an annotation")
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
            corners.append(round(_number(box.findtext(name))))
        except ValueError as error:
            raise ToonvisionError(f"{label!r} box: <{name}> {error}") from None
    return VocObject(index, label, *corners)


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

"""Tests for toonvision.voc: reading labelImg XML without trusting it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from toonvision.data_processing import voc


def write_xml(path: Path, body: str, size: str | None = "<width>96</width><height>64</height>",
              header: str = "") -> Path:
    size_element = f"<size>{size}<depth>3</depth></size>" if size is not None else ""
    path.write_text(f"{header}<annotation><filename>{path.stem}.png</filename>{size_element}"
                    f"{body}</annotation>", encoding="utf-8")
    return path


def voc_object(label: str, xmin="1", ymin="2", xmax="30", ymax="40") -> str:
    return (f"<object><name>{label}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def test_reads_the_real_toontown_annotation(shared_data):
    annotation = voc.parse_annotation(shared_data / "toontown" / "sample_img1.xml")
    assert annotation.filename == "sample_img1.png"
    assert annotation.size == (800, 600)
    assert [voc_object.label for voc_object in annotation.objects] == [
        "cog_lb_bottomfeeder", "cog_sb_telemarketer", "cog_bb_flunky", "cog_bb_flunky", "toon_dog"]
    assert annotation.objects[0] == voc.VocObject(0, "cog_lb_bottomfeeder", 100, 287, 140, 332)
    assert annotation.object_problems == []


@pytest.mark.parametrize("size", [None, "<width>0</width><height>0</height>",
                                  "<width>wide</width><height>64</height>", ""])
def test_missing_zero_or_unreadable_size_is_none(tmp_path, size):
    path = write_xml(tmp_path / "shot.xml", voc_object("king"), size=size)
    annotation = voc.parse_annotation(path)
    assert annotation.size is None
    assert len(annotation.objects) == 1


def test_unusable_objects_are_reported_and_the_others_keep_their_index(tmp_path):
    body = (voc_object("king")
            + "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
              "</bndbox></object>"
            + "<object><name>queen</name></object>"
            + voc_object("jack", xmin="left")
            + voc_object("ten", ymax="nan")
            + voc_object("ace", xmax="")
            + voc_object("  nine  ", xmin="10.6", ymin="2.2"))
    annotation = voc.parse_annotation(write_xml(tmp_path / "shot.xml", body))
    assert [(item.index, item.label) for item in annotation.objects] == [(0, "king"), (6, "nine")]
    assert (annotation.objects[1].xmin, annotation.objects[1].ymin) == (11, 2)
    assert [problem.split(":")[0] for problem in annotation.object_problems] == [
        "object 1", "object 2", "object 3", "object 4", "object 5"]
    assert "no <name>" in annotation.object_problems[0]
    assert "no <bndbox>" in annotation.object_problems[1]
    assert "'left', not a number" in annotation.object_problems[2]
    assert "not a finite number" in annotation.object_problems[3]
    assert "<xmax> is missing" in annotation.object_problems[4]


def test_not_well_formed_xml_is_rejected_naming_the_file(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<annotation><object><name>king</name></annotation>", encoding="utf-8")
    with pytest.raises(voc.VocError, match="broken.xml: not well-formed XML"):
        voc.parse_annotation(path)


def test_wrong_root_and_missing_file_are_rejected(tmp_path):
    path = tmp_path / "other.xml"
    path.write_text("<svg><object/></svg>", encoding="utf-8")
    with pytest.raises(voc.VocError, match="root element is <svg>"):
        voc.parse_annotation(path)
    with pytest.raises(voc.VocError, match="absent.xml: cannot read file"):
        voc.parse_annotation(tmp_path / "absent.xml")
    assert issubclass(voc.VocError, ValueError)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE annotation [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotation><object><name>&lol9;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>
<ymax>9</ymax></bndbox></object></annotation>
"""


def test_billion_laughs_is_rejected_without_expansion(tmp_path):
    path = tmp_path / "laughs.xml"
    path.write_text(BILLION_LAUGHS, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(voc.VocError, match="laughs.xml: has a DOCTYPE"):
        voc.parse_annotation(path)
    assert time.perf_counter() - started < 1.0


def test_external_entities_are_rejected_and_never_fetched(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    for name, system_id in (("file", secret.as_uri()), ("web", "http://192.0.2.1/x.dtd")):
        path = tmp_path / f"{name}.xml"
        path.write_text(f'<?xml version="1.0"?><!DOCTYPE annotation [<!ENTITY leak SYSTEM '
                        f'"{system_id}">]><annotation><filename>&leak;</filename></annotation>',
                        encoding="utf-8")
        with pytest.raises(voc.VocError, match="DOCTYPE") as error:
            voc.parse_annotation(path)
        assert "TOP SECRET" not in str(error.value)


def test_doctype_hidden_by_utf16_encoding_is_still_rejected(tmp_path):
    path = tmp_path / "utf16.xml"
    path.write_bytes('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]>'
                     "<annotation><filename>&e;</filename></annotation>".encode("utf-16"))
    with pytest.raises(voc.VocError, match="DOCTYPE"):
        voc.parse_annotation(path)


def test_plain_doctype_without_entities_is_rejected(tmp_path):
    path = write_xml(tmp_path / "plain.xml", voc_object("king"), header="<!DOCTYPE annotation>")
    with pytest.raises(voc.VocError, match="DOCTYPE"):
        voc.parse_annotation(path)


def test_boxes_are_clipped_to_the_image_or_refused_with_their_kind():
    def box(xmin, ymin, xmax, ymax):
        return voc.VocObject(0, "cog", xmin, ymin, xmax, ymax)

    assert box(-5, 2, 30, 80).clipped_box((64, 96)) == (0, 2, 30, 64)
    assert box(1, 2, 30, 40).clipped_box((64, 96)) == (1, 2, 30, 40)
    for unusable, kind in ((box(10, 10, 10, 20), voc.EMPTY_BOX),
                           (box(30, 10, 20, 20), voc.EMPTY_BOX),
                           (box(100, 10, 120, 20), voc.BOX_OUTSIDE_IMAGE),
                           (box(-30, -30, -1, -1), voc.BOX_OUTSIDE_IMAGE)):
        with pytest.raises(voc.UnusableBox) as caught:
            unusable.clipped_box((64, 96))
        assert caught.value.kind == kind

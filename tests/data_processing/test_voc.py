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


# --- pairing an image with its XML: the one rule of extract, predict and report ------------

def make_files(folder: Path, *names: str, filenames: dict[str, str] | None = None) -> list[Path]:
    """Creates empty images and XML files whose `<filename>` is `filenames[name]` or '' ."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / name
        if voc.is_annotation_file(path):
            filename = (filenames or {}).get(name, "")
            path.write_text(f"<annotation><filename>{filename}</filename></annotation>")
        else:
            path.write_bytes(b"")
    return [folder / name for name in names]


def test_images_pair_with_the_xml_of_their_stem_in_any_case(tmp_path):
    files = make_files(tmp_path, "a.PNG", "a.xml", "b.jpeg", "b.XML", "c.webp", "c.Xml",
                       "notes.txt", "lonely.bmp", "orphan.xml")
    pairing = voc.pair_files(files)
    assert [(image.name, xml.name) for image, xml in pairing.pairs] == [
        ("a.PNG", "a.xml"), ("b.jpeg", "b.XML"), ("c.webp", "c.Xml")]
    assert [path.name for path in pairing.images_without_annotation] == ["lonely.bmp"]
    assert [path.name for path in pairing.annotations_without_image] == ["orphan.xml"]
    assert pairing.ambiguous == []
    assert pairing.partner(tmp_path / "a.PNG") == tmp_path / "a.xml"
    assert pairing.partner(tmp_path / "a.xml") == tmp_path / "a.PNG"
    assert pairing.partner(tmp_path / "lonely.bmp") is None
    assert voc.pair_folder(tmp_path) == pairing


def test_the_stem_wins_over_a_stale_filename(tmp_path):
    # b.xml was copied from a.xml as a template: its <filename> still says a.png.
    files = make_files(tmp_path, "a.png", "a.xml", "b.png", "b.xml",
                       filenames={"a.xml": "a.png", "b.xml": "a.png"})
    assert [(image.name, xml.name) for image, xml in voc.pair_files(files).pairs] == [
        ("a.png", "a.xml"), ("b.png", "b.xml")]


def test_the_filename_settles_several_images_of_one_stem(tmp_path):
    files = make_files(tmp_path, "shot.png", "shot.jpg", "shot.xml",
                       filenames={"shot.xml": "shot.png"})
    pairing = voc.pair_files(files)
    assert pairing.pairs == [(tmp_path / "shot.png", tmp_path / "shot.xml")]
    assert pairing.images_without_annotation == [tmp_path / "shot.jpg"]


@pytest.mark.parametrize("filename", ["", "other.png", "shot.gif"])
def test_several_images_and_a_filename_naming_none_cannot_be_told_apart(tmp_path, filename):
    files = make_files(tmp_path, "shot.png", "shot.jpg", "shot.xml",
                       filenames={"shot.xml": filename})
    pairing = voc.pair_files(files)
    assert pairing.pairs == [] and pairing.images_without_annotation == []
    group = (tmp_path / "shot.jpg", tmp_path / "shot.png", tmp_path / "shot.xml")
    assert pairing.ambiguous == [group]
    assert pairing.ambiguous_group(tmp_path / "shot.png") == group


def test_an_unusable_xml_names_no_image(tmp_path):
    files = make_files(tmp_path, "shot.png", "shot.jpg", "renamed.png")
    (tmp_path / "shot.xml").write_text("<annotation><filename>shot.png")
    (tmp_path / "other.xml").write_text("<annotation><filename>renamed.png")
    pairing = voc.pair_files([*files, tmp_path / "shot.xml", tmp_path / "other.xml"])
    assert pairing.pairs == [] and len(pairing.ambiguous) == 1
    assert pairing.annotations_without_image == [tmp_path / "other.xml"]
    assert pairing.images_without_annotation == [tmp_path / "renamed.png"]


def test_an_xml_without_its_image_takes_the_one_its_filename_names(tmp_path):
    files = make_files(tmp_path, "street.png", "renamed.xml", "kept.png", "kept.xml",
                       "stray.xml", "twin_1.xml", "twin_2.xml", "twin.png",
                       filenames={"renamed.xml": "street.png", "stray.xml": "kept.png",
                                  "twin_1.xml": "twin.png", "twin_2.xml": "twin.png"})
    pairing = voc.pair_files(files)
    assert [(image.name, xml.name) for image, xml in pairing.pairs] == [
        ("kept.png", "kept.xml"), ("street.png", "renamed.xml")]
    # kept.png has an XML of its own: stray.xml cannot take it.
    assert pairing.annotations_without_image == [tmp_path / "stray.xml"]
    assert pairing.ambiguous == [(tmp_path / "twin.png", tmp_path / "twin_1.xml",
                                  tmp_path / "twin_2.xml")]
    assert pairing.images_without_annotation == []

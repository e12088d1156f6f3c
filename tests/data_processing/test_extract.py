"""Tests for toonvision.data_processing: extracting labelled screenshots into crops."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from toonvision import cli
from toonvision.data_processing import extractor
from toonvision.data_processing.dataset import from_crops
from toonvision.data_processing.extract import extract, extract_screenshots, find_screenshots
from toonvision.data_processing.extract_results import (
    AMBIGUOUS_PAIR,
    BOX_CLIPPED,
    BOX_OUTSIDE_IMAGE,
    EMPTY_BOX,
    IMAGE_WITHOUT_XML,
    LABEL_RENAMED,
    MOVE_FAILED,
    SAME_CONTENT,
    SIZE_MISMATCH,
    UNREADABLE_IMAGE,
    UNUSABLE_LABEL,
    UNUSABLE_OBJECT,
    UNUSABLE_XML,
    XML_WITHOUT_IMAGE,
    ExtractionSummary,
)
from toonvision.data_processing.images import read_image
from toonvision.data_processing.manifest import MANIFEST_COLUMNS, read_manifest
from toonvision.fileio import TEMPORARY_FILE

WIDTH, HEIGHT = 96, 64  # the size of conftest's noise screenshots
RED = (255, 0, 0)


def run_all(screenshots: Path, data_dir: Path, **options) -> ExtractionSummary:
    summary = ExtractionSummary()
    for result in extract(screenshots, data_dir, **options):
        summary.add(result)
    return summary


def crop_names(data_dir: Path) -> list[str]:
    return sorted(path.relative_to(data_dir).as_posix()
                  for path in (data_dir / "unsorted").rglob("*") if path.is_file())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below `root` with its content."""
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file()}


# --- the normal path ------------------------------------------------------------------------

def test_crops_are_named_by_label_in_their_prefix_folder_with_true_colors(
        tmp_path, write_screenshot, noise_image):
    image = noise_image(1)
    image[10:30, 20:40] = RED
    write_screenshot(tmp_path / "shots", "street", [
        ("cog_sb_coldcaller", 20, 10, 40, 30),
        ("toon_dog", 0, 0, 16, 16),
        ("king", 50, 20, 90, 60),
    ], image=image)
    summary = run_all(tmp_path / "shots", tmp_path / "data")
    assert crop_names(tmp_path / "data") == [
        "unsorted/cog/cog_sb_coldcaller_0.png",
        "unsorted/king/king_0.png",
        "unsorted/toon/toon_dog_0.png",
    ]
    red_crop = tmp_path / "data" / "unsorted" / "cog" / "cog_sb_coldcaller_0.png"
    on_disk_bgr = cv2.imread(str(red_crop), cv2.IMREAD_UNCHANGED)
    assert on_disk_bgr.shape == (20, 20, 3)
    assert (on_disk_bgr == (0, 0, 255)).all(), "a red pixel must be stored as red"
    king = read_image(tmp_path / "data" / "unsorted" / "king" / "king_0.png")
    np.testing.assert_array_equal(king, image[20:60, 50:90])
    assert summary.screenshots_read == 1
    assert summary.crops_per_label == Counter({"cog_sb_coldcaller": 1, "toon_dog": 1, "king": 1})
    assert summary.outside_taxonomy == Counter({"king": 1})
    assert not summary.skipped


def test_manifest_records_where_each_crop_came_from(tmp_path, write_screenshot):
    image_path = write_screenshot(tmp_path / "shots", "street", [
        ("cog_bb_flunky", 5, 6, 25, 26), ("cog_bb_flunky", -10, 30, 20, 80)])
    run_all(tmp_path / "shots", tmp_path / "data")
    manifest = tmp_path / "data" / "manifest.csv"
    assert manifest.read_text().splitlines()[0] == ",".join(MANIFEST_COLUMNS)
    records = read_manifest(manifest)
    content_hash = hashlib.sha256(image_path.read_bytes()).hexdigest()
    assert [(r.crop, r.label, r.index, r.status, r.object_index) for r in records] == [
        ("unsorted/cog/cog_bb_flunky_0.png", "cog_bb_flunky", 0, "written", 0),
        ("unsorted/cog/cog_bb_flunky_1.png", "cog_bb_flunky", 1, "written", 1),
    ]
    assert {r.source for r in records} == {str(image_path.absolute())}
    assert {r.source_sha256 for r in records} == {content_hash}
    assert [(r.xmin, r.ymin, r.xmax, r.ymax) for r in records] == [(5, 6, 25, 26), (0, 30, 20, 64)]


def test_running_twice_or_on_a_renamed_copy_adds_nothing(tmp_path, write_screenshot):
    write_screenshot(tmp_path / "shots", "a", [("toon_dog", 0, 0, 10, 10), ("king", 1, 1, 9, 9)])
    run_all(tmp_path / "shots", tmp_path / "data")
    before = snapshot(tmp_path / "data")
    again = run_all(tmp_path / "shots", tmp_path / "data")
    assert again.crops_written == 0 and again.already_extracted == 2
    (tmp_path / "shots" / "a.png").rename(tmp_path / "shots" / "renamed.png")
    (tmp_path / "shots" / "a.xml").rename(tmp_path / "shots" / "renamed.xml")
    renamed = run_all(tmp_path / "shots", tmp_path / "data")
    assert renamed.crops_written == 0 and renamed.already_extracted == 2
    assert not renamed.skipped
    assert [note.kind for note in renamed.notes] == [SAME_CONTENT]
    assert snapshot(tmp_path / "data") == before


def test_index_is_never_reused_after_deletions_restarts_and_new_screenshots(
        tmp_path, write_screenshot):
    write_screenshot(tmp_path / "first", "a", [("cog_bb_flunky", 0, 0, 10, 10)] * 2, seed=1)
    run_all(tmp_path / "first", tmp_path / "data")
    cog_folder = tmp_path / "data" / "unsorted" / "cog"
    (cog_folder / "cog_bb_flunky_1.png").unlink()
    write_screenshot(tmp_path / "second", "b", [("cog_bb_flunky", 0, 0, 10, 10)], seed=2)
    run_all(tmp_path / "second", tmp_path / "data")
    assert sorted(path.name for path in cog_folder.iterdir()) == [
        "cog_bb_flunky_0.png", "cog_bb_flunky_2.png"]
    # The deleted crop stays deleted when its screenshot is seen again.
    assert run_all(tmp_path / "first", tmp_path / "data").crops_written == 0
    assert not (cog_folder / "cog_bb_flunky_1.png").exists()


def test_index_continues_after_crops_that_are_on_disk_but_not_in_the_manifest(
        tmp_path, write_screenshot):
    old_crop = tmp_path / "data" / "unsorted" / "toon" / "toon_cat_7.png"
    old_crop.parent.mkdir(parents=True)
    old_crop.write_bytes(b"an older crop")
    write_screenshot(tmp_path / "shots", "a", [("toon_cat", 0, 0, 10, 10)])
    run_all(tmp_path / "shots", tmp_path / "data")
    assert (old_crop.parent / "toon_cat_8.png").is_file()
    assert old_crop.read_bytes() == b"an older crop"


def test_find_screenshots_pairs_by_stem_in_any_case_recursively(tmp_path, write_screenshot):
    write_screenshot(tmp_path / "shots", "upper", [], extension=".PNG")
    write_screenshot(tmp_path / "shots" / "deep" / "er", "photo", [], extension=".JPEG")
    write_screenshot(tmp_path / "shots", "plain", [], extension=".jpg")
    (tmp_path / "shots" / "notes.txt").write_text("not a screenshot")
    pairs, problems = find_screenshots(tmp_path / "shots")
    assert [pair.relative.as_posix() for pair in pairs] == [
        "plain.jpg", "upper.PNG", "deep/er/photo.JPEG"]
    assert all(pair.xml == pair.image.with_suffix(".xml") for pair in pairs)
    assert problems == []


def test_find_screenshots_reports_unpaired_ambiguous_and_empty(tmp_path, write_screenshot):
    shots = tmp_path / "shots"
    write_screenshot(shots, "lonely", [])
    (shots / "lonely.xml").unlink()
    write_screenshot(shots, "orphan", [])
    (shots / "orphan.png").unlink()
    write_screenshot(shots, "twice", [], extension=".png")
    write_screenshot(shots, "twice", [], extension=".jpg")
    (shots / "twice.xml").write_text("<annotation><filename>elsewhere.png</filename>"
                                     "</annotation>")    # names neither image
    pairs, problems = find_screenshots(shots)
    assert pairs == []
    kinds = {(problem.path.name, problem.kind) for problem in problems}
    assert (("lonely.png", IMAGE_WITHOUT_XML) in kinds
            and ("orphan.xml", XML_WITHOUT_IMAGE) in kinds)
    assert {name for name, kind in kinds if kind == AMBIGUOUS_PAIR} == {
        "twice.jpg", "twice.png", "twice.xml"}
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert find_screenshots(tmp_path / "empty") == ([], [])
    with pytest.raises(FileNotFoundError, match="missing: no such folder"):
        find_screenshots(tmp_path / "missing")


def test_the_xml_filename_tells_which_of_two_images_it_describes(tmp_path, write_screenshot):
    shots = tmp_path / "shots"
    write_screenshot(shots, "shot", [("king", 0, 0, 10, 10)], extension=".png", seed=1)
    write_screenshot(shots, "shot", [("queen", 0, 0, 10, 10)], extension=".jpg", seed=2)
    pairs, problems = find_screenshots(shots)   # the XML last saved names shot.jpg
    assert [(pair.image.name, pair.xml.name) for pair in pairs] == [("shot.jpg", "shot.xml")]
    assert [(problem.path.name, problem.kind) for problem in problems] == [
        ("shot.png", IMAGE_WITHOUT_XML)]
    summary = run_all(shots, tmp_path / "data")
    assert summary.crops_per_label == Counter({"queen": 1})


def test_predict_and_report_read_the_screenshots_extract_pairs(tmp_path, write_screenshot):
    from toonvision.data_processing.inputs import find_inputs, iter_crops

    shots = tmp_path / "shots"
    write_screenshot(shots, "shot", [("king", 0, 0, 10, 10)], extension=".png", seed=1)
    write_screenshot(shots, "shot", [("queen", 0, 0, 10, 10)], extension=".JPG", seed=2)
    write_screenshot(shots, "renamed", [("ace", 0, 0, 10, 10)], extension=".webp", seed=3)
    (shots / "renamed.xml").rename(shots / "renamed_copy.xml")   # <filename> still names it
    write_screenshot(shots, "double", [("ten", 0, 0, 10, 10)], seed=4)
    (shots / "double.XML").write_text((shots / "double.xml").read_text())
    pairs, problems = find_screenshots(shots)
    assert sorted((pair.image.name, pair.xml.name) for pair in pairs) == [
        ("renamed.webp", "renamed_copy.xml"), ("shot.JPG", "shot.xml")]
    assert {(problem.path.name, problem.kind) for problem in problems} == {
        ("shot.png", IMAGE_WITHOUT_XML), ("double.png", AMBIGUOUS_PAIR),
        ("double.xml", AMBIGUOUS_PAIR), ("double.XML", AMBIGUOUS_PAIR)}

    skipped: list[str] = []
    crops = list(iter_crops(find_inputs([shots]), (8, 8), skipped))
    boxed = sorted((crop.source.name, crop.label) for crop in crops if crop.box is not None)
    assert boxed == [("renamed.webp", "ace"), ("shot.JPG", "queen")]
    assert [crop.source.name for crop in crops if crop.box is None] == ["shot.png"]
    assert len(skipped) == 1 and AMBIGUOUS_PAIR in skipped[0] and "double.XML" in skipped[0]
    # Named alone, each file finds the same partner.
    assert [crop.label for crop in iter_crops([shots / "renamed_copy.xml"], (8, 8), [])] == [
        "ace"]
    assert [crop.label for crop in iter_crops([shots / "shot.JPG"], (8, 8), [])] == ["queen"]


def test_data_and_drawing_folders_inside_the_screenshots_folder_are_not_searched(
        tmp_path, write_screenshot):
    write_screenshot(tmp_path, "a", [("king", 0, 0, 10, 10)])
    first = run_all(tmp_path, tmp_path / "data", draw_dir=tmp_path / "drawn")
    second = run_all(tmp_path, tmp_path / "data", draw_dir=tmp_path / "drawn")
    assert first.crops_written == 1 and second.already_extracted == 1
    assert not first.skipped and not second.skipped


# --- --move and --draw ----------------------------------------------------------------------

def test_move_puts_screenshots_in_processed_without_overwriting(tmp_path, write_screenshot):
    shots, data_dir = tmp_path / "shots", tmp_path / "data"
    write_screenshot(shots, "street", [("toon_dog", 0, 0, 10, 10)])
    processed = data_dir / "raw" / "processed"
    processed.mkdir(parents=True)
    (processed / "street.png").write_bytes(b"an earlier screenshot")
    original = (shots / "street.png").read_bytes()
    summary = run_all(shots, data_dir, move=True)
    assert summary.moved == 1
    assert sorted(path.name for path in shots.iterdir()) == []
    assert (processed / "street.png").read_bytes() == b"an earlier screenshot"
    assert (processed / "street_1.png").read_bytes() == original
    assert (processed / "street_1.xml").is_file()
    assert read_manifest(data_dir / "manifest.csv")[0].source == str(
        (processed / "street_1.png").absolute())


def test_move_leaves_screenshots_that_need_attention(tmp_path, write_screenshot):
    shots = tmp_path / "shots"
    write_screenshot(shots, "good", [("toon_dog", 0, 0, 10, 10)], seed=1)
    write_screenshot(shots, "bad_box", [("toon_dog", 0, 0, 10, 10), ("king", 5, 5, 5, 9)], seed=2)
    write_screenshot(shots, "no_xml", [], seed=3)
    (shots / "no_xml.xml").unlink()
    summary = run_all(shots, tmp_path / "data", move=True)
    assert summary.moved == 1
    assert sorted(path.name for path in shots.iterdir()) == [
        "bad_box.png", "bad_box.xml", "no_xml.png"]
    assert summary.crops_written == 2


def test_a_failed_move_is_reported_and_the_crops_are_kept(tmp_path, monkeypatch, write_screenshot):
    write_screenshot(tmp_path / "shots", "a", [("toon_dog", 0, 0, 9, 9)])

    def refuse(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(extractor, "move_without_overwrite", refuse)
    summary = run_all(tmp_path / "shots", tmp_path / "data", move=True)
    assert summary.crops_written == 1 and summary.moved == 0
    assert [(problem.path.name, problem.kind, problem.detail) for problem in summary.skipped] == [
        ("a.png", MOVE_FAILED, "Permission denied")]
    assert (tmp_path / "shots" / "a.png").is_file()


def test_draw_writes_a_copy_with_boxes_mirroring_subfolders(tmp_path, write_screenshot):
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    write_screenshot(tmp_path / "shots" / "day1", "street", [("cog_bb_flunky", 10, 10, 50, 50)],
                     image=image, extension=".jpg", encode_as=".png")
    summary = run_all(tmp_path / "shots", tmp_path / "data", draw_dir=tmp_path / "drawn")
    drawing = read_image(tmp_path / "drawn" / "day1" / "street.png")
    assert summary.drawn == 1
    assert drawing.shape == image.shape
    assert drawing[30, 10].tolist() == list(extractor._LABEL_COLORS["cog"])
    assert drawing[30, 30].tolist() == [0, 0, 0]


# --- bad input ------------------------------------------------------------------------------

def test_bad_xml_is_skipped_and_the_batch_goes_on(tmp_path, write_screenshot):
    shots = tmp_path / "shots"
    write_screenshot(shots, "good", [("king", 0, 0, 10, 10)], seed=1)
    write_screenshot(shots, "broken", [], seed=2)
    (shots / "broken.xml").write_text("<annotation><object>", encoding="utf-8")
    write_screenshot(shots, "laughs", [], seed=3)
    (shots / "laughs.xml").write_text(
        '<!DOCTYPE annotation [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<annotation><object><name>&b;</name><bndbox><xmin>0</xmin><ymin>0</ymin>"
        "<xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>", encoding="utf-8")
    summary = run_all(shots, tmp_path / "data")
    assert summary.crops_per_label == Counter({"king": 1})
    messages = sorted(str(problem) for problem in summary.skipped)
    assert len(messages) == 2
    assert messages[0].startswith(f"{shots / 'broken.xml'}: {UNUSABLE_XML} (not well-formed")
    assert messages[1].startswith(f"{shots / 'laughs.xml'}: {UNUSABLE_XML} (has a DOCTYPE")
    assert all("\n" not in message for message in messages)


def test_extensions_that_lie_are_decoded_by_content(tmp_path, write_screenshot, noise_image):
    png_image, jpeg_image = noise_image(1), np.full((HEIGHT, WIDTH, 3), 200, np.uint8)
    write_screenshot(tmp_path / "shots", "is_png", [("king", 0, 0, 8, 8)], image=png_image,
                     extension=".jpg", encode_as=".png")
    write_screenshot(tmp_path / "shots", "is_jpeg", [("queen", 0, 0, 8, 8)], image=jpeg_image,
                     extension=".png", encode_as=".jpg")
    summary = run_all(tmp_path / "shots", tmp_path / "data")
    assert summary.crops_written == 2 and not summary.skipped
    king = read_image(tmp_path / "data" / "unsorted" / "king" / "king_0.png")
    np.testing.assert_array_equal(king, png_image[:8, :8])
    queen = read_image(tmp_path / "data" / "unsorted" / "queen" / "queen_0.png")
    assert np.abs(queen.astype(int) - 200).max() <= 3


def test_rgba_palette_and_grayscale_screenshots_give_rgb_crops(tmp_path, write_screenshot):
    shots = tmp_path / "shots"
    rgba = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 255
    write_screenshot(shots, "rgba", [("apple", 0, 0, 10, 10)], image=rgba)
    gray = np.full((HEIGHT, WIDTH), 128, np.uint8)
    write_screenshot(shots, "gray", [("banana", 0, 0, 10, 10)], image=gray)
    write_screenshot(shots, "palette", [("orange", 0, 0, 10, 10)], seed=5)
    palette_rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    palette_rgb[:, :, 2] = 255
    Image.fromarray(palette_rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(
        shots / "palette.png")
    summary = run_all(shots, tmp_path / "data")
    assert summary.crops_written == 3 and not summary.skipped
    crops = tmp_path / "data" / "unsorted"
    expected = {"apple/apple_0.png": [255, 0, 0], "banana/banana_0.png": [128, 128, 128],
                "orange/orange_0.png": [0, 0, 255]}
    for name, color in expected.items():
        crop = cv2.imread(str(crops / name), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (10, 10, 3), name
        assert cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)[5, 5].tolist() == color, name


@pytest.mark.parametrize("size", [None, "<width>0</width><height>0</height>",
                                  "<width>800</width><height>600</height>"])
def test_size_missing_zero_or_wrong_trusts_the_image(tmp_path, size, write_screenshot):
    write_screenshot(tmp_path / "shots", "shot", [("king", 80, 50, 300, 300)], size=size)
    summary = run_all(tmp_path / "shots", tmp_path / "data")
    crop = read_image(tmp_path / "data" / "unsorted" / "king" / "king_0.png")
    assert crop.shape == (HEIGHT - 50, WIDTH - 80, 3)
    assert {note.kind for note in summary.notes} == {SIZE_MISMATCH, BOX_CLIPPED}
    assert not summary.skipped


def test_boxes_are_clipped_or_skipped_with_a_reason(tmp_path, write_screenshot):
    write_screenshot(tmp_path / "shots", "shot", [
        ("king", -5, -5, 10, 12),       # partly outside: clipped
        ("queen", 200, 10, 300, 40),    # wholly outside: skipped
        ("jack", 10, 10, 10, 40),       # zero width: skipped
        ("ace", 30, 40, 20, 20),        # negative: skipped
        ("ten", 0, 0, 4, 4),
    ])
    summary = run_all(tmp_path / "shots", tmp_path / "data")
    assert crop_names(tmp_path / "data") == ["unsorted/king/king_0.png", "unsorted/ten/ten_0.png"]
    assert read_image(tmp_path / "data" / "unsorted" / "king" / "king_0.png").shape == (12, 10, 3)
    assert sorted(problem.kind for problem in summary.skipped) == [
        BOX_OUTSIDE_IMAGE, EMPTY_BOX, EMPTY_BOX]
    assert any("object 1 ('queen')" in str(problem) for problem in summary.skipped)


def test_object_without_name_or_box_is_skipped_and_others_keep_their_index(
        tmp_path, write_screenshot):
    path = write_screenshot(tmp_path / "shots", "shot", [("king", 0, 0, 5, 5)])
    xml = path.with_suffix(".xml")
    xml.write_text(xml.read_text().replace(
        "</annotation>", "<object><name>queen</name></object></annotation>"))
    summary = run_all(tmp_path / "shots", tmp_path / "data")
    assert summary.crops_written == 1
    assert [problem.kind for problem in summary.skipped] == [UNUSABLE_OBJECT]
    assert "object 1" in str(summary.skipped[0])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_images_are_skipped(tmp_path, damage, write_screenshot):
    shots = tmp_path / "shots"
    path = write_screenshot(shots, "bad", [("king", 0, 0, 5, 5)], seed=1)
    write_screenshot(shots, "good", [("queen", 0, 0, 5, 5)], seed=2)
    content = path.read_bytes()
    path.write_bytes({"truncated": content[: len(content) // 2], "garbage": b"\x89PNG garbage",
                      "empty": b""}[damage])
    summary = run_all(shots, tmp_path / "data")
    assert crop_names(tmp_path / "data") == ["unsorted/queen/queen_0.png"]
    assert [(problem.path, problem.kind) for problem in summary.skipped] == [
        (path, UNREADABLE_IMAGE)]


def test_unsafe_labels_and_names_never_write_outside_the_data_folder(tmp_path, write_screenshot):
    shots, data_dir = tmp_path / "shots", tmp_path / "work" / "data"
    write_screenshot(shots / "..odd dir", "a b;ü&(1)", [
        ("../../../escaped", 0, 0, 5, 5),
        ("..\\..\\windows", 0, 0, 5, 5),
        ("/etc/passwd", 0, 0, 5, 5),
        ("cog_sb/../../coldcaller", 0, 0, 5, 5),
        ("...", 0, 0, 5, 5),
        ("", 0, 0, 5, 5),
    ])
    write_screenshot(shots, "..", [("king", 0, 0, 5, 5)], seed=3)
    before = snapshot(tmp_path)
    summary = run_all(shots, data_dir, move=True, draw_dir=tmp_path / "work" / "drawn")
    after = snapshot(tmp_path)
    created = set(after) - set(before)
    assert all(name.startswith(("work/data/", "work/drawn/")) for name in created), created
    assert all(after[name] == content for name, content in before.items() if name in after)
    assert crop_names(data_dir) == [
        "unsorted/cog/cog_sb_____coldcaller_0.png",
        "unsorted/escaped/escaped_0.png",
        "unsorted/etc_passwd/etc_passwd_0.png",
        "unsorted/king/king_0.png",
        "unsorted/windows/windows_0.png",
    ]
    assert sorted(problem.kind for problem in summary.skipped) == [
        UNUSABLE_LABEL, UNUSABLE_OBJECT]
    assert Counter(note.kind for note in summary.notes)[LABEL_RENAMED] == 4
    assert (data_dir / "raw" / "processed" / "...png").is_file()


def test_labels_in_any_script_keep_their_letters(tmp_path, write_screenshot):
    write_screenshot(tmp_path / "shots", "a", [("ポケモン", 0, 0, 5, 5),
                                               ("Poke\u0301mon", 0, 0, 6, 6),  # decomposed
                                               ("Pokémon", 1, 1, 7, 7)])
    summary = run_all(tmp_path / "shots", tmp_path / "data")
    assert summary.crops_written == 3 and not summary.skipped
    assert crop_names(tmp_path / "data") == [
        "unsorted/Pokémon/Pokémon_0.png", "unsorted/Pokémon/Pokémon_1.png",
        "unsorted/ポケモン/ポケモン_0.png"]
    assert from_crops(tmp_path / "data").label_counts() == {"Pokémon": 2, "ポケモン": 1}


def test_a_folder_written_before_unicode_labels_keeps_its_label_names(tmp_path,
                                                                       write_screenshot):
    # Before 2026-12-03, `café` was written as `caf_` (ASCII only): that is what such a
    # folder holds. New screenshots of `café` join those crops instead of a new class.
    data_dir = tmp_path / "data"
    write_screenshot(tmp_path / "old", "a", [("caf_", 0, 0, 5, 5)])
    run_all(tmp_path / "old", data_dir)
    write_screenshot(tmp_path / "new", "b", [("café", 0, 0, 5, 5), ("thé", 0, 0, 6, 6)],
                     seed=1)
    summary = run_all(tmp_path / "new", data_dir)
    assert crop_names(data_dir) == ["unsorted/caf_/caf__0.png", "unsorted/caf_/caf__1.png",
                                    "unsorted/thé/thé_0.png"]
    assert [note.detail for note in summary.notes if note.kind == LABEL_RENAMED] == [
        "object 0 ('café') -> 'caf_'"]
    assert from_crops(data_dir).label_counts() == {"caf_": 2, "thé": 1}


def test_two_extractions_cannot_write_to_one_data_folder_at_once(tmp_path, write_screenshot):
    write_screenshot(tmp_path / "shots", "a", [("king", 0, 0, 5, 5)])
    pairs, _ = find_screenshots(tmp_path / "shots")
    running = extract_screenshots(pairs * 2, tmp_path / "data")
    next(running)
    with pytest.raises(ValueError, match="another 'toonvision extract' is writing"):
        next(extract_screenshots(pairs, tmp_path / "data"))
    running.close()
    assert next(extract_screenshots(pairs, tmp_path / "data")).already_extracted == 1


def test_a_damaged_manifest_is_an_error_not_overwritten(tmp_path, write_screenshot):
    write_screenshot(tmp_path / "shots", "a", [("king", 0, 0, 5, 5)])
    manifest = tmp_path / "data" / "manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text("something,else\n1,2\n")
    with pytest.raises(ValueError, match="manifest.csv: not an extraction manifest"):
        run_all(tmp_path / "shots", tmp_path / "data")
    assert manifest.read_text() == "something,else\n1,2\n"


# --- crash and kill in the middle -----------------------------------------------------------

def make_batch(folder: Path, write_screenshot) -> Path:
    """Four screenshots, nine objects, two of them with a shared label across screenshots."""
    write_screenshot(folder, "s1", [("cog_bb_flunky", 0, 0, 20, 20), ("toon_dog", 5, 5, 30, 40)],
                     seed=11)
    write_screenshot(folder, "s2", [("cog_bb_flunky", 1, 1, 21, 21), ("king", 0, 0, 9, 9),
                                    ("king", 10, 10, 60, 60)], seed=12)
    write_screenshot(folder, "s3", [("toon_dog", 0, 0, 40, 40)], seed=13)
    write_screenshot(folder / "sub", "s4", [("cog_bb_flunky", 3, 3, 33, 33),
                                            ("queen", 0, 0, 50, 50),
                                            ("king", 40, 20, 90, 60)], seed=14)
    return folder


@pytest.fixture
def uninterrupted(tmp_path, write_screenshot) -> tuple[Path, dict[str, bytes]]:
    shots = make_batch(tmp_path / "shots", write_screenshot=write_screenshot)
    run_all(shots, tmp_path / "reference")
    return shots, snapshot(tmp_path / "reference")


@pytest.mark.parametrize("fail_at", [1, 3, 4, 8])
def test_failure_while_writing_crops_then_rerun_gives_the_same_files(
        tmp_path, monkeypatch, uninterrupted, fail_at):
    shots, expected = uninterrupted
    real_write = extractor.write_image_atomic
    calls = []

    def failing_write(path, image):
        calls.append(path)
        if len(calls) == fail_at:
            raise OSError("disk unplugged")
        real_write(path, image)

    monkeypatch.setattr(extractor, "write_image_atomic", failing_write)
    with pytest.raises(OSError, match="disk unplugged"):
        run_all(shots, tmp_path / "data")
    monkeypatch.undo()
    run_all(shots, tmp_path / "data")
    assert snapshot(tmp_path / "data") == expected


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_failure_while_writing_the_manifest_then_rerun_gives_the_same_files(
        tmp_path, monkeypatch, uninterrupted, fail_at):
    shots, expected = uninterrupted
    real_write = extractor.write_text_atomic
    calls = []

    def failing_write(path, text):
        calls.append(path)
        if len(calls) == fail_at:
            raise OSError("power cut")
        real_write(path, text)

    monkeypatch.setattr(extractor, "write_text_atomic", failing_write)
    with pytest.raises(OSError, match="power cut"):
        run_all(shots, tmp_path / "data")
    monkeypatch.undo()
    run_all(shots, tmp_path / "data")
    assert snapshot(tmp_path / "data") == expected


KILLER = textwrap.dedent("""
    import os, signal, sys
    from toonvision.data_processing import extract
    real_fsync, calls = os.fsync, []
    def fsync_then_die(descriptor):
        calls.append(descriptor)
        if len(calls) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
        real_fsync(descriptor)
    os.fsync = fsync_then_die
    for _ in extract.extract(sys.argv[1], sys.argv[2]):
        pass
""")


@pytest.mark.parametrize("kill_at", [3, 4, 7])
def test_killed_process_then_rerun_gives_the_same_files_and_no_leftovers(
        tmp_path, uninterrupted, kill_at):
    shots, expected = uninterrupted
    data_dir = tmp_path / "data"
    killed = subprocess.run([sys.executable, "-c", KILLER, str(shots), str(data_dir),
                             str(kill_at)], capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9, killed.stderr
    assert any(TEMPORARY_FILE.match(path.name) for path in data_dir.rglob("*")), "no temporary file"
    run_all(shots, data_dir)
    assert snapshot(data_dir) == expected


# --- command line ---------------------------------------------------------------------------

def test_command_prints_one_line_per_problem_a_summary_and_fails_when_skipping(
        tmp_path, capsys, write_screenshot):
    shots = tmp_path / "shots"
    write_screenshot(shots, "good", [("cog_lb_bigwig", 0, 0, 9, 9), ("king", 0, 0, 9, 9)])
    write_screenshot(shots, "lonely", [], seed=2)
    (shots / "lonely.xml").unlink()
    status = cli.main(["extract", str(shots), "--data-dir", str(tmp_path / "data")])
    output = capsys.readouterr()
    assert status == 1
    # Off a terminal the progress is a few plain lines ("extracting: 1/1 screenshot in 0 s").
    problems = [line for line in output.err.strip().splitlines()
                if not line.startswith("extracting: ")]
    assert problems == [
        f"{shots / 'lonely.png'}: {IMAGE_WITHOUT_XML} (expected lonely.xml beside it)"]
    assert "screenshots read: 1" in output.out
    assert "crops written: 2" in output.out
    assert "outside the ToonTown taxonomy: 1 crop of 1 label (king)" in output.out
    assert f"{IMAGE_WITHOUT_XML}: 1" in output.out
    (shots / "lonely.png").unlink()
    assert cli.main(["extract", str(shots), "--data-dir", str(tmp_path / "data")]) == 0
    assert "already extracted by an earlier run" in capsys.readouterr().out


def test_command_on_an_empty_folder_says_so_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert cli.main(["extract", str(tmp_path / "empty"), "--data-dir",
                     str(tmp_path / "data")]) == 0
    output = capsys.readouterr()
    assert output.err.strip() == (f"{tmp_path / 'empty'}: nothing to extract (no .png, .jpg, "
                                  ".jpeg, .bmp, .webp with annotations in it or below it)")
    assert "crops written: 0" in output.out
    assert not (tmp_path / "data" / "manifest.csv").exists()


def test_screenshots_folder_inside_the_data_folder_is_extracted_once_and_moved_once(
        tmp_path, write_screenshot):
    incoming = tmp_path / "data" / "raw"
    write_screenshot(incoming, "a", [("toon_dog", 0, 0, 9, 9)])
    first = run_all(incoming, tmp_path / "data", move=True)
    second = run_all(incoming, tmp_path / "data", move=True)
    assert (first.crops_written, first.moved) == (1, 1)
    assert (second.crops_written, second.moved, second.skipped) == (0, 0, [])
    assert sorted(path.name for path in (incoming / "processed").iterdir()) == ["a.png", "a.xml"]
    processed_again = run_all(incoming / "processed", tmp_path / "data", move=True)
    assert processed_again.already_extracted == 1
    assert sorted(path.name for path in (incoming / "processed").iterdir()) == ["a.png", "a.xml"]


def test_command_stops_on_a_full_disk_with_one_line_and_status_2(
        tmp_path, monkeypatch, capsys, write_screenshot):
    write_screenshot(tmp_path / "shots", "a", [("toon_dog", 0, 0, 9, 9)])

    def disk_full(path, image):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(extractor, "write_image_atomic", disk_full)
    assert cli.main(["extract", str(tmp_path / "shots"), "--data-dir",
                     str(tmp_path / "data")]) == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1
    assert error_lines[0].startswith("toonvision extract: error: [Errno 28] No space left")


def test_command_with_a_missing_folder_exits_2_with_a_message(tmp_path, capsys):
    assert cli.main(["extract", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err


def test_command_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["extract", "--help"])
    help_text = capsys.readouterr().out
    for option in ("SCREENSHOTS_DIR", "--data-dir", "--move", "--draw", "default"):
        assert option in help_text


# --- the real data sets ---------------------------------------------------------------------

def test_real_toontown_screenshots_give_the_seven_crops(shared_data, tmp_path):
    shots = tmp_path / "toontown"
    shots.mkdir()
    for name in ("sample_img0.png", "sample_img0.xml", "sample_img1.png", "sample_img1.xml"):
        shutil.copy(shared_data / "toontown" / name, shots / name)
    summary = run_all(shots, tmp_path / "data", move=True)
    assert summary.crops_per_label == Counter({
        "cog_sb_coldcaller": 1, "cog_lb_bloodsucker": 1, "cog_lb_bottomfeeder": 1,
        "cog_sb_telemarketer": 1, "cog_bb_flunky": 2, "toon_dog": 1})
    assert crop_names(tmp_path / "data")[:2] == [
        "unsorted/cog/cog_bb_flunky_0.png", "unsorted/cog/cog_bb_flunky_1.png"]
    assert len(crop_names(tmp_path / "data")) == 7
    assert summary.moved == 2 and list(shots.iterdir()) == []
    assert not summary.skipped and not summary.notes
    flunky = read_image(tmp_path / "data" / "unsorted" / "cog" / "cog_bb_flunky_1.png")
    assert flunky.shape == (326 - 286, 642 - 616, 3)
    assert Counter(from_crops(tmp_path / "data").labels) == summary.crops_per_label


def test_real_toontown_folder_reports_the_unannotated_screenshot(shared_data, tmp_path):
    pairs, problems = find_screenshots(shared_data / "toontown")
    assert [pair.image.name for pair in pairs] == ["sample_img0.png", "sample_img1.png"]
    assert [(problem.path.name, problem.kind) for problem in problems] == [
        ("sample_screenshot.png", IMAGE_WITHOUT_XML)]


@pytest.mark.slow
def test_real_cards_give_670_crops_in_six_classes(shared_data, tmp_path):
    summary = run_all(shared_data / "cards_voc", tmp_path / "data")
    assert summary.screenshots_read == 363
    assert summary.crops_per_label == Counter({
        "ace": 118, "king": 118, "nine": 115, "jack": 113, "queen": 106, "ten": 100})
    assert len(crop_names(tmp_path / "data")) == 670
    assert not summary.skipped


@pytest.mark.slow
def test_real_fruit_gives_all_582_objects_despite_its_defects(shared_data, tmp_path):
    summary = run_all(shared_data / "fruit_voc", tmp_path / "data")
    assert summary.screenshots_read == 300
    assert summary.crops_per_label == Counter({"banana": 209, "apple": 191, "orange": 182})
    assert len(crop_names(tmp_path / "data")) == 582
    assert not summary.skipped
    assert Counter(note.kind for note in summary.notes) == Counter({SIZE_MISMATCH: 37})


def test_extract_screenshots_script_moves_what_it_extracted(tmp_path, write_screenshot):
    repository = Path(__file__).resolve().parents[2]
    toonvision = Path(sys.executable).with_name("toonvision")
    if shutil.which("bash") is None or not toonvision.is_file():
        pytest.skip("needs bash and the installed toonvision command")
    write_screenshot(tmp_path / "shots", "a", [("toon_dog", 0, 0, 9, 9)])
    completed = subprocess.run(
        ["bash", str(repository / "scripts" / "extract_screenshots.sh"), str(tmp_path / "shots"),
         str(tmp_path / "data")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TOONVISION": str(toonvision)})
    assert completed.returncode == 0, completed.stderr
    assert crop_names(tmp_path / "data") == ["unsorted/toon/toon_dog_0.png"]
    assert sorted(path.name for path in (tmp_path / "data" / "raw" / "processed").iterdir()) == [
        "a.png", "a.xml"]
    assert list((tmp_path / "shots").iterdir()) == []

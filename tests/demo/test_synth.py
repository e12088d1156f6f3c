"""Tests of the synthetic demo screenshots: determinism, labelImg XML, geometry, learnability."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from toonvision import cli
from toonvision.data_processing.images import read_image
from toonvision.demo import synth
from toonvision.labels import COG_LABELS, TAXONOMY_LABELS, TOON_LABELS

ANNOTATION_TAGS = ["folder", "filename", "path", "source", "size", "segmented"]
OBJECT_TAGS = ["name", "pose", "truncated", "difficult", "bndbox"]
BOX_TAGS = ["xmin", "ymin", "xmax", "ymax"]


def _scenes(count: int, seed: int = 0):
    plan = synth.plan_labels(count, seed)
    for index, labels in enumerate(plan):
        yield synth.render_scene(labels, np.random.default_rng([seed, index]))


def _xml_without_path(path: Path) -> bytes:
    return b"".join(line for line in path.read_bytes().splitlines(keepends=True)
                    if b"<path>" not in line)


def test_same_seed_gives_same_files_and_another_seed_differs(tmp_path):
    first, second, other = tmp_path / "a" / "out", tmp_path / "b" / "out", tmp_path / "c" / "out"
    results = list(synth.generate(first, screenshots=3, seed=7))
    list(synth.generate(second, screenshots=3, seed=7))
    list(synth.generate(other, screenshots=3, seed=8))

    assert [result.status for result in results] == ["written"] * 3
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    assert len(names) == 6
    for name in names:
        if name.endswith(".png"):
            assert (first / name).read_bytes() == (second / name).read_bytes()
        else:
            assert _xml_without_path(first / name) == _xml_without_path(second / name)
    assert (first / "synth_7_0000.png").read_bytes() != (other / "synth_8_0000.png").read_bytes()


def test_xml_has_labelimg_layout_and_boxes_inside_the_image(tmp_path):
    results = list(synth.generate(tmp_path, screenshots=4, seed=1))
    for result in results:
        image = read_image(result.image_path)
        assert image.shape == (600, 800, 3)
        root = etree.parse(str(result.xml_path)).getroot()
        assert root.tag == "annotation"
        children = [child.tag for child in root]
        assert children[:6] == ANNOTATION_TAGS
        assert set(children[6:]) == {"object"}
        assert 2 <= len(children[6:]) <= 6
        assert root.findtext("filename") == result.image_path.name
        assert Path(root.findtext("path")) == result.image_path.absolute()
        assert [child.tag for child in root.find("size")] == ["width", "height", "depth"]
        assert (root.findtext("size/width"), root.findtext("size/height")) == ("800", "600")
        for obj, expected in zip(root.iter("object"), result.objects, strict=True):
            assert [child.tag for child in obj] == OBJECT_TAGS
            assert [child.tag for child in obj.find("bndbox")] == BOX_TAGS
            assert obj.findtext("name") == expected.label
            assert obj.findtext("name") in TAXONOMY_LABELS
            xmin, ymin, xmax, ymax = (int(obj.findtext(f"bndbox/{tag}")) for tag in BOX_TAGS)
            assert (xmin, ymin, xmax, ymax) == expected.box
            assert 0 <= xmin < xmax <= 800 and 0 <= ymin < ymax <= 600


def test_xml_layout_matches_a_real_labelimg_file(shared_data, tmp_path):
    real = etree.parse(str(shared_data / "toontown" / "sample_img1.xml")).getroot()
    result = next(synth.generate(tmp_path, screenshots=1))
    ours = etree.parse(str(result.xml_path)).getroot()

    def layout(element):
        return (element.tag, [layout(child) for child in element])

    assert layout(ours)[1][:6] == layout(real)[1][:6]
    assert layout(ours.find("object")) == layout(real.find("object"))


def test_figures_are_taller_than_wide_with_nametag_above_and_outside_the_box():
    heights = []
    for image, objects in _scenes(10, seed=2):
        for obj in objects:
            xmin, ymin, xmax, ymax = obj.box
            tag_xmin, tag_ymin, tag_xmax, tag_ymax = obj.nametag_box
            heights.append(ymax - ymin)
            assert ymax - ymin > xmax - xmin
            assert 0 <= tag_ymin < tag_ymax <= ymin, "the nametag must lie wholly above the box"
            assert tag_xmin < xmax and tag_xmax > xmin, "the nametag must stand over its figure"
            assert 0 <= tag_xmin < tag_xmax <= image.shape[1]
            panel = image[tag_ymin:tag_ymax, tag_xmin:tag_xmax].astype(int)
            assert np.median(panel) > 140, "the nametag panel is light"
    assert min(heights) < 60 and max(heights) > 100, "figure sizes vary with depth"


def test_labels_are_balanced_between_cogs_and_toons_and_cover_the_taxonomy():
    plan = synth.plan_labels(60, seed=0)
    assert len(plan) == 60
    assert all(2 <= len(labels) <= 6 for labels in plan)
    counts = Counter(label for labels in plan for label in labels)
    assert set(counts) == set(TAXONOMY_LABELS)
    cogs = sum(counts[label] for label in COG_LABELS)
    toons = sum(counts[label] for label in TOON_LABELS)
    assert abs(cogs - toons) <= 1
    assert max(counts[label] for label in COG_LABELS) - min(
        counts[label] for label in COG_LABELS) <= 1
    assert synth.plan_labels(60, seed=0) == plan
    assert synth.plan_labels(60, seed=1) != plan


def test_cog_crops_are_less_colourful_than_toon_crops():
    chroma = {"cog": [], "toon": []}
    for image, objects in _scenes(12, seed=3):
        for obj in objects:
            xmin, ymin, xmax, ymax = obj.box
            crop = image[ymin:ymax, xmin:xmax].astype(int)
            chroma[obj.label.split("_")[0]].append((crop.max(axis=2) - crop.min(axis=2)).mean())
    assert np.mean(chroma["toon"]) > np.mean(chroma["cog"]) + 20


def test_existing_files_are_never_overwritten_and_an_interrupted_run_resumes(tmp_path):
    first = list(synth.generate(tmp_path, screenshots=3))
    original_xml = first[2].xml_path.read_bytes()
    first[2].xml_path.unlink()
    foreign = b"not ours"
    first[1].image_path.write_bytes(foreign)
    first[1].xml_path.unlink()

    second = list(synth.generate(tmp_path, screenshots=3))

    assert [result.status for result in second] == ["present", "skipped", "written"]
    assert str(first[1].image_path) in second[1].reason
    assert first[1].image_path.read_bytes() == foreign
    assert not first[1].xml_path.exists(), "no XML is paired with a foreign image"
    assert first[2].xml_path.read_bytes() == original_xml
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_command_prints_a_summary_and_fails_when_something_was_skipped(tmp_path, capsys):
    out = tmp_path / "screenshots"
    assert cli.main(["synth", "--out", str(out), "--screenshots", "2", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    assert "2 written" in printed
    total = sum(len(result.objects) for result in synth.generate(out, 2, seed=4))
    assert f"objects: {total} (" in printed

    (out / "synth_4_0000.xml").write_text("user data")
    assert cli.main(["synth", "--out", str(out), "--screenshots", "2", "--seed", "4"]) == 1
    captured = capsys.readouterr()
    assert "1 already present, 1 skipped" in captured.out
    assert "synth_4_0000.xml" in captured.err
    assert (out / "synth_4_0000.xml").read_text() == "user data"


def test_bad_arguments_raise_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="screenshots"):
        synth.plan_labels(-1)
    with pytest.raises(ValueError, match="seed=-3"):
        synth.plan_labels(5, seed=-3)
    assert cli.main(["synth", "--out", str(tmp_path / "out"), "--screenshots", "-2"]) == 2
    assert "toonvision synth: error: screenshots and seed must be 0 or more" in (
        capsys.readouterr().err)
    with pytest.raises(ValueError, match="taxonomy"):
        synth.render_scene(["king"], np.random.default_rng(0))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        list(synth.generate(a_file, screenshots=1))

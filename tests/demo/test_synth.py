"""Tests of the synthetic demo screenshots: determinism, labelImg XML, geometry, variety."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from toonvision import cli
from toonvision.data_processing.images import read_image
from toonvision.demo import drawing, synth
from toonvision.labels import COG_LABELS, TAXONOMY_LABELS, TOON_LABELS

ANNOTATION_TAGS = ["folder", "filename", "path", "source", "size", "segmented"]
OBJECT_TAGS = ["name", "pose", "truncated", "difficult", "bndbox"]
BOX_TAGS = ["xmin", "ymin", "xmax", "ymax"]


def _scenes(count: int, seed: int = 0):
    plan = synth.plan_labels(count, seed)
    for index, labels in enumerate(plan):
        yield synth.render_scene(labels, np.random.default_rng([seed, index]))


@pytest.fixture(scope="module")
def demo_set():
    """The 60 screenshots of `make demo` (seed 0), rendered in memory."""
    return list(_scenes(60, seed=0))


def _intersect(first, second) -> int:
    across = min(first[2], second[2]) - max(first[0], second[0])
    down = min(first[3], second[3]) - max(first[1], second[1])
    return max(0, across) * max(0, down)


def _edges_touched(box) -> str:
    xmin, ymin, xmax, ymax = box
    return "left" if xmin == 1 else "right" if xmax == 800 else "bottom" if ymax == 600 else "top"


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
    results = list(synth.generate(tmp_path, screenshots=6, seed=1))
    for result in results:
        image = read_image(result.image_path)
        assert image.shape == (600, 800, 3)
        root = etree.parse(str(result.xml_path)).getroot()
        assert root.tag == "annotation"
        children = [child.tag for child in root]
        assert children[:6] == ANNOTATION_TAGS
        assert set(children[6:]) == {"object"}
        assert 2 <= len(children[6:]) <= 8
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
            assert 1 <= xmin < xmax <= 800 and 1 <= ymin < ymax <= 600, "labelImg's range"
            touches_edge = xmin == 1 or ymin == 1 or xmax == 800 or ymax == 600
            assert obj.findtext("truncated") == str(int(touches_edge)), "labelImg's rule"
            assert obj.findtext("truncated") == str(int(expected.truncated))


def test_xml_layout_matches_a_real_labelimg_file(shared_data, tmp_path):
    real = etree.parse(str(shared_data / "toontown" / "sample_img1.xml")).getroot()
    result = next(synth.generate(tmp_path, screenshots=1))
    ours = etree.parse(str(result.xml_path)).getroot()

    def layout(element):
        return (element.tag, [layout(child) for child in element])

    assert layout(ours)[1][:6] == layout(real)[1][:6]
    assert layout(ours.find("object")) == layout(real.find("object"))


def test_whole_figures_are_taller_than_wide_with_their_nametag_above_the_box(demo_set):
    for image, objects in demo_set[:15]:
        for obj in objects:
            xmin, ymin, xmax, ymax = obj.box
            tag_xmin, tag_ymin, tag_xmax, tag_ymax = obj.nametag_box
            if not obj.truncated and obj.view != "side":
                assert ymax - ymin > xmax - xmin
            assert 0 <= tag_ymin < tag_ymax <= ymin, "the nametag must lie wholly above the box"
            assert tag_xmin < xmax and tag_xmax > xmin, "the nametag must stand over its figure"
            assert 0 <= tag_xmin < tag_xmax <= image.shape[1]
            panel = image[tag_ymin:tag_ymax, tag_xmin:tag_xmax].astype(int)
            assert np.median(panel) > 140, "the nametag panel is light"


def test_the_set_is_as_varied_as_real_screenshots(demo_set):
    objects = [obj for _, scene in demo_set for obj in scene]
    heights = np.array([obj.box[3] - obj.box[1] for obj in objects])
    assert heights.min() < 25 and heights.max() > 180, "from far and small to near and big"
    bands = np.histogram(heights, [0, 30, 60, 120, 600])[0] / len(heights)
    assert (bands > 0.1).all(), f"every band of sizes is common, got shares {bands}"
    truncated = [obj for obj in objects if obj.truncated]
    assert 0.05 < len(truncated) / len(objects) < 0.3, "some figures are cut by the edge"
    assert {_edges_touched(obj.box) for obj in truncated} >= {"left", "right", "bottom"}
    overlapping = sum(_intersect(first.box, second.box) > 0
                      for _, scene in demo_set
                      for first, second in itertools.combinations(scene, 2))
    assert overlapping > 30, "many figures partly hide one another"
    under_tags = sum(_intersect(first.nametag_box, second.box) > 0
                     for _, scene in demo_set for first in scene for second in scene
                     if first is not second)
    assert under_tags > 30, "nametags cover parts of other figures"
    assert Counter(obj.view for obj in objects).keys() == {"front", "side", "back"}
    assert Counter(scene[0].light for _, scene in demo_set).keys() == {"day", "dusk", "shade"}


def test_cogs_are_far_more_common_than_toons_and_some_cog_names_are_rare():
    plan = synth.plan_labels(60, seed=0)
    assert len(plan) == 60
    assert all(2 <= len(labels) <= 8 for labels in plan)
    counts = Counter(label for labels in plan for label in labels)
    cogs = sum(counts[label] for label in COG_LABELS)
    toons = sum(counts[label] for label in TOON_LABELS)
    assert cogs > 1.8 * toons > 0
    cog_counts = sorted(counts[label] for label in COG_LABELS)
    assert cog_counts[-1] >= 20 and cog_counts[len(cog_counts) // 2] <= 4
    assert cog_counts[0] <= 1, "some Cog names are rare or missing"
    assert len([label for label in TOON_LABELS if counts[label]]) >= 9
    assert synth.plan_labels(60, seed=0) == plan
    assert synth.plan_labels(60, seed=1) != plan


def test_the_cog_share_sets_the_mix_of_cogs_and_toons(tmp_path, capsys):
    # The default is the share a real labelled set has (most figures are Cogs); the demo
    # asks for half and half (docs/synth.md, "The demo's comparison").
    assert synth.plan_labels(60, seed=0, cog_share=synth.COG_SHARE) == synth.plan_labels(60)
    for share in (0.5, 0.2):
        labels = [label for labels in synth.plan_labels(200, seed=3, cog_share=share)
                  for label in labels]
        cogs = sum(label in COG_LABELS for label in labels)
        assert abs(cogs / len(labels) - share) < 0.05
    assert all(label in TOON_LABELS for labels in synth.plan_labels(5, cog_share=0.0)
               for label in labels)
    with pytest.raises(ValueError, match="share of Cogs"):
        synth.plan_labels(5, cog_share=1.2)
    out = tmp_path / "half"
    assert cli.main(["synth", "--out", str(out), "--screenshots", "4", "--cog-share",
                     "0.5"]) == 0
    assert "4 written" in capsys.readouterr().out
    # The same names with another share are other files: skipped, never overwritten.
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert cli.main(["synth", "--out", str(out), "--screenshots", "4"]) == 1
    assert "already exists with other content; left untouched" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert cli.main(["synth", "--out", str(tmp_path / "x"), "--cog-share", "-1"]) == 2
    assert "share of Cogs must be between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_toon_crops_are_more_colourful_than_cog_crops_on_average_but_not_all(demo_set):
    chroma = {"cog": [], "toon": []}
    for image, objects in demo_set:
        for obj in objects:
            xmin, ymin, xmax, ymax = obj.box
            crop = image[ymin:ymax, xmin:xmax].astype(int)
            chroma[obj.label.split("_")[0]].append((crop.max(axis=2) - crop.min(axis=2)).mean())
    assert np.mean(chroma["toon"]) > np.mean(chroma["cog"])
    dull_toons = np.mean(np.array(chroma["toon"]) < np.median(chroma["cog"]))
    assert dull_toons > 0.15, "some Toons look as grey as a Cog (the article's cat_20)"


def test_far_figures_are_blurred_and_a_figure_cut_by_the_edge_keeps_its_visible_box():
    patch = np.zeros((40, 20, 4), dtype=np.uint8)
    patch[5:35, 5:15] = (200, 30, 30, 255)
    sharp = drawing.soften(patch, 0.0, 0.0, (255, 255, 255))
    blurred = drawing.soften(patch, 1.5, 0.4, (255, 255, 255))
    assert np.abs(np.diff(blurred[:, :, 0], axis=1)).max() < np.abs(
        np.diff(sharp[:, :, 0], axis=1)).max() / 2
    assert blurred[20, 10, 1] > sharp[20, 10, 1] + 50, "haze pulls colours toward the sky"

    image = np.zeros((100, 100, 3), dtype=np.uint8)
    assert drawing.paste(image, sharp, -8, 50) == (0, 55, 7, 85)
    assert drawing.paste(image, sharp, 90, 70) == (95, 75, 100, 100)
    assert drawing.paste(image, sharp, 200, 0) is None
    assert image[60, 3, 0] == 200


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

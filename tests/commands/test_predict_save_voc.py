"""`predict --save-voc`: the model's names written back as labelImg XML, ready to correct."""

from __future__ import annotations

import shutil

from toonvision import cli
from toonvision.data_processing import voc
from toonvision.data_processing.extract import find_screenshots


def test_save_voc_writes_an_xml_per_screenshot_with_the_same_boxes_named_by_the_model(
        author_model_path, shared_data, tmp_path, capsys):
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("sample_img0.png", "sample_img0.xml", "sample_img1.png", "sample_img1.xml"):
        shutil.copy(shared_data / "toontown" / name, shots / name)
    out = tmp_path / "named"
    assert cli.main(["predict", str(author_model_path), str(shots), "--save-voc", str(out)]) == 0
    capsys.readouterr()
    for stem in ("sample_img0", "sample_img1"):
        given = voc.parse_annotation(shots / f"{stem}.xml")
        named = voc.parse_annotation(out / f"{stem}.xml")
        assert named.filename == f"{stem}.png" and named.size == (800, 600)
        assert [item.box for item in named.objects] == [item.box for item in given.objects]
        assert {item.label for item in named.objects} <= {"cog", "toon"}
        assert "cog" in {item.label for item in named.objects}
    assert (out / "predictions.csv").read_text().count("\n") == 1 + 7
    # the loop closes: the named XML beside the screenshots is what extract reads
    (out / "sample_img0.xml").write_text((out / "sample_img0.xml").read_text())
    shutil.copy(shots / "sample_img0.png", out / "sample_img0.png")
    pairs, _ = find_screenshots(out)
    assert [pair.image.name for pair in pairs] == ["sample_img0.png"]
    # an existing (perhaps corrected) XML is never overwritten
    (out / "sample_img1.xml").write_text("<annotation>corrected by hand</annotation>")
    cli.main(["predict", str(author_model_path), str(shots), "--save-voc", str(out)])
    assert "corrected by hand" in (out / "sample_img1.xml").read_text()

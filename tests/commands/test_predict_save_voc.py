"""`predict --save-voc`: the model's names written back as labelImg XML, ready to correct."""

from __future__ import annotations

import shutil

from toonvision import cli
from toonvision.data_processing import voc
from toonvision.data_processing.dataset import label_from_crop_name
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
    # the loop closes: the folder holds each screenshot beside its named XML, as labelImg
    # opens it and extract reads it (a hard link here: no second copy of the pixels)
    pairs, problems = find_screenshots(out)
    assert [pair.image.name for pair in pairs] == ["sample_img0.png", "sample_img1.png"]
    assert not problems and (out / "sample_img0.png").samefile(shots / "sample_img0.png")
    assert cli.main(["extract", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    capsys.readouterr()
    # the crops carry the model's names (cog, toon), not the XML's (cog_lb_..., toon_...)
    labels = [label_from_crop_name(path)
              for path in (tmp_path / "data" / "unsorted").rglob("*.png")]
    assert len(labels) == 7 and set(labels) <= {"cog", "toon"} and "cog" in labels
    # an existing (perhaps corrected) XML is never overwritten
    (out / "sample_img1.xml").write_text("<annotation>corrected by hand</annotation>")
    cli.main(["predict", str(author_model_path), str(shots), "--save-voc", str(out)])
    assert "corrected by hand" in (out / "sample_img1.xml").read_text()


def test_save_voc_never_puts_its_xml_beside_another_picture_of_the_same_name(tmp_path,
                                                                            noise_image):
    from toonvision.data_processing.images import write_image_atomic
    from toonvision.model_utils.prediction import Prediction, write_voc

    shots, out = tmp_path / "shots", tmp_path / "named"
    for folder, seed in ((shots / "a", 1), (shots / "b", 2), (out, 3)):
        write_image_atomic(folder / "shot.png", noise_image(seed))
    other = (out / "shot.png").read_bytes()
    predictions = [Prediction(shots / folder / "shot.png", (1, 1, 9, 9), "", None, "cog", 0.9)
                   for folder in ("a", "b")]
    written = write_voc(predictions, out)
    # a/shot.png would be named shot.png, where another picture is: left out, kept as it was
    assert (out / "shot.png").read_bytes() == other
    assert [path.name for path in written] == ["shot_2.xml", "predictions.csv"]
    assert (out / "shot_2.png").read_bytes() == (shots / "b" / "shot.png").read_bytes()
    assert voc.parse_annotation(out / "shot_2.xml").filename == "shot_2.png"
    # written into the screenshots' own folder: the screenshot is already there
    (shots / "c").mkdir()
    (shots / "a" / "shot.png").rename(shots / "c" / "shot.png")
    mine = [Prediction(shots / "c" / "shot.png", (1, 1, 9, 9), "", None, "cog", 0.9)]
    assert [path.name for path in write_voc(mine, shots / "c")] == ["shot.xml",
                                                                     "predictions.csv"]
    assert sorted(path.name for path in (shots / "c").iterdir()) == [
        "predictions.csv", "shot.png", "shot.xml"]


def test_save_voc_writes_out_the_image_a_labelme_file_embeds(tmp_path, noise_image):
    import base64
    import json

    from toonvision.data_processing.extract import extract
    from toonvision.data_processing.images import encode_image, read_image
    from toonvision.model_utils.prediction import Prediction, write_drawings, write_voc

    shots, out = tmp_path / "shots", tmp_path / "named"
    shots.mkdir()
    image = noise_image(4)
    (shots / "shot.json").write_text(json.dumps({
        "shapes": [{"label": "cog", "points": [[2, 2], [30, 40]], "shape_type": "rectangle"}],
        "imagePath": "gone.png", "imageHeight": image.shape[0], "imageWidth": image.shape[1],
        "imageData": base64.b64encode(encode_image(image)).decode()}))
    predictions = [Prediction(shots / "shot.json", (2, 2, 30, 40), "cog", "cog", "toon", 0.7)]
    assert [path.name for path in write_voc(predictions, out)] == ["shot.xml", "predictions.csv"]
    assert (read_image(out / "shot.png") == image).all()
    assert voc.parse_annotation(out / "shot.xml").filename == "shot.png"
    drawn = read_image(write_drawings(predictions, tmp_path / "drawn")[0])
    assert drawn.shape == image.shape and not (drawn == image).all()   # the box is drawn
    crops = [crop for result in extract(out, tmp_path / "data") for crop in result.crops]
    assert len(crops) == 1

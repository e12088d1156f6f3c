"""Tests of toonvision.predict and the predict command."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from toonvision.data_processing.images import read_image, write_image_atomic
from toonvision.data_processing.inputs import find_inputs, iter_crops
from toonvision.data_processing.voc import parse_annotation
from toonvision.model_utils.prediction import (
    CSV_COLUMNS,
    predict_paths,
    predictions_csv,
    write_drawings,
)

SCREENSHOTS = ("sample_img0.png", "sample_img1.png")


def test_inputs_are_crops_folders_and_annotated_screenshots(tmp_path, write_voc):
    screenshot = np.zeros((100, 200, 3), np.uint8)
    screenshot[10:50, 20:60] = 255
    write_image_atomic(tmp_path / "shots" / "street.png", screenshot)
    write_voc(tmp_path / "shots" / "street.xml", "street.png", [
        ("cog_bb_flunky", 20, 10, 60, 50),
        ("toon_dog", 180, 80, 400, 300),      # runs off the image: clipped
        ("toon_cat", 250, 10, 300, 50),       # entirely outside: skipped
    ])
    write_image_atomic(tmp_path / "shots" / "crops" / "toon_cat_3.png",
                       np.full((30, 10, 3), 128, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")

    files = find_inputs([tmp_path / "shots"])
    assert [path.name for path in files] == ["toon_cat_3.png", "street.png", "street.xml"]
    skipped: list[str] = []
    crops = list(iter_crops(files, (48, 24), skipped))   # the screenshot is read once
    assert [(crop.label, crop.box) for crop in crops] == [
        ("toon_cat", None), ("cog_bb_flunky", (20, 10, 60, 50)), ("toon_dog", (180, 80, 200, 100)),
    ]
    assert [crop.name for crop in crops] == ["toon_cat_3.png", "street.png#0", "street.png#1"]
    assert all(crop.image.shape == (48, 24, 3) for crop in crops)
    assert crops[1].image.min() == 255   # the box's own pixels
    assert len(skipped) == 1 and "object 2 (toon_cat): box" in skipped[0]
    assert "lies wholly outside" in skipped[0]

    # The XML named alone finds its screenshot beside it.
    assert [crop.label for crop in iter_crops([tmp_path / "shots" / "street.xml"], (48, 24),
                                              [])] == ["cog_bb_flunky", "toon_dog"]

    with pytest.raises(FileNotFoundError):
        find_inputs([tmp_path / "missing.png"])
    with pytest.raises(ValueError, match="not an image or labelImg XML file"):
        find_inputs([tmp_path / "notes.txt"])


@pytest.fixture(scope="module")
def author_model(author_model_path):
    from toonvision.model_utils.training.model_io import load_model

    return load_model(author_model_path)


@pytest.mark.slow
def test_author_model_gets_every_box_of_the_annotated_screenshots_right(author_model,
                                                                       shared_data):
    model, info = author_model
    results = predict_paths(model, info, [shared_data / "toontown" / name for name in SCREENSHOTS])
    predicted = [item.predicted for item in results.predictions]
    assert sorted(predicted) == ["cog"] * 6 + ["toon"]
    assert all(item.correct for item in results.predictions)
    assert results.accuracy() == 1.0 and results.skipped == []
    assert {item.label for item in results.predictions if item.predicted == "toon"} == {"toon_dog"}

    rows = list(csv.reader(io.StringIO(predictions_csv(results.predictions))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0] == ["source", "xmin", "ymin", "xmax", "ymax", "label", "predicted",
                       "confidence", "part", "novelty", "accepted"]
    assert len(rows) == 8 and all(row[1].isdigit() and float(row[7]) > 0.5 for row in rows[1:])
    # the author's model has no confidence rule: no novelty, every crop accepted
    assert all(row[9:] == ["", "1"] for row in rows[1:])


@pytest.mark.slow
def test_crops_named_by_label_give_the_same_answers(author_model, shared_data, tmp_path):
    model, info = author_model
    screenshot = shared_data / "toontown" / "sample_img1.png"
    image = read_image(screenshot)
    for item in parse_annotation(screenshot.with_suffix(".xml")).objects:
        write_image_atomic(tmp_path / "crops" / f"{item.label}_{item.index}.png",
                           image[item.ymin:item.ymax, item.xmin:item.xmax])
    write_image_atomic(tmp_path / "crops" / "unnamed.png", image[0:300, 0:100])
    results = predict_paths(model, info, [tmp_path / "crops"])
    by_name = {item.source.name: item for item in results.predictions}
    assert len(by_name) == 6
    toons = [item for item in results.predictions if item.label.startswith("toon_")]
    assert [item.predicted for item in toons] == ["toon"]
    assert all(item.correct for name, item in by_name.items() if name != "unnamed.png")
    assert by_name["unnamed.png"].label == "" and by_name["unnamed.png"].correct is None


@pytest.mark.slow
def test_draw_marks_every_box_on_a_copy(author_model, shared_data, tmp_path):
    model, info = author_model
    screenshot = shared_data / "toontown" / "sample_img0.png"
    results = predict_paths(model, info, [screenshot])
    written = write_drawings(results.predictions, tmp_path / "drawn")
    assert [path.name for path in written] == ["sample_img0_predicted.png"]
    original, drawn = read_image(screenshot), read_image(written[0])
    assert drawn.shape == original.shape
    for item in results.predictions:
        xmin, ymin, xmax, ymax = item.box
        edge = drawn[ymin:ymax, xmin].astype(int)   # left edge: drawn in green (correct)
        assert (edge[:, 1] - edge[:, 0]).mean() > 100


@pytest.mark.slow
def test_our_keras_models_use_their_stored_classes_and_size(tmp_path, capsys):
    from toonvision.cli import main
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.model_io import ModelInfo, save_model_atomic
    from toonvision.model_utils.training.models import make_model

    info = ModelInfo(class_names=("bossbot", "cashbot", "lawbot"), image_size=(48, 48),
                     task="bossbot,cashbot,lawbot")
    save_model_atomic(make_model(BUILTIN_CONFIGS["baseline"], 3, (48, 48)),
                      tmp_path / "suits.keras", info)
    for index, size in enumerate([(60, 20), (48, 48), (300, 100)]):
        write_image_atomic(tmp_path / "crops" / f"lawbot_{index}.png",
                           np.full((*size, 3), 40 * index, np.uint8))
    assert main(["predict", str(tmp_path / "suits.keras"), str(tmp_path / "crops"),
                 "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == list(CSV_COLUMNS) and len(rows) == 4
    assert all(row[5] == "lawbot" and row[6] in info.class_names for row in rows[1:])
    assert all(row[1] == "" for row in rows[1:])   # crops have no box


# --- one probability rule: predict, the report and Grad-CAM agree ---------------------------

def _assert_predict_report_and_gradcam_agree(
        model, info, paths) -> tuple[np.ndarray, np.ndarray]:
    """Checks that the three give the same probabilities for the crops of `paths`.

    Returns:
        The probabilities (N, classes) and the crops, for further checks.
    """
    from toonvision.data_visualization.evaluation import evaluate, load_inputs
    from toonvision.data_visualization.gradcam import GradCam
    from toonvision.labels import make_task

    predictions = predict_paths(model, info, paths).predictions
    data = load_inputs(paths, info.class_names, info.image_size,
                       make_task(info.task, info.class_names))
    reported = evaluate(model, data)
    assert [item.label for item in predictions] == data.labels
    assert [item.predicted for item in predictions] == [
        info.class_names[index] for index in reported.y_pred]
    np.testing.assert_allclose([item.confidence for item in predictions],
                               reported.probabilities.max(axis=1), rtol=1e-6)
    _, gradcam_probabilities = GradCam(model)(data.images)
    np.testing.assert_allclose(gradcam_probabilities, reported.probabilities, atol=1e-5)
    np.testing.assert_allclose(reported.probabilities.sum(axis=1), 1.0, atol=1e-5)
    return reported.probabilities, data.images


@pytest.mark.slow
def test_predict_and_report_give_the_author_models_probabilities(author_model, shared_data):
    model, info = author_model
    paths = [shared_data / "toontown" / name for name in SCREENSHOTS]
    probabilities, images = _assert_predict_report_and_gradcam_agree(model, info, paths)
    sigmoid = np.asarray(model.predict_on_batch(images.astype(np.float32)))[:, 0]
    np.testing.assert_allclose(probabilities, np.stack([1 - sigmoid, sigmoid], axis=1),
                               atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("class_names", [("cog", "toon"), ("ace", "king", "queen")])
def test_predict_and_report_give_a_logits_models_probabilities(tmp_path, class_names, write_voc):
    import dataclasses

    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.model_io import ModelInfo
    from toonvision.model_utils.training.models import make_model

    config = dataclasses.replace(BUILTIN_CONFIGS["baseline"], output_activation="none")
    model = make_model(config, len(class_names), (48, 48))
    assert model.get_layer("output").activation.__name__ == "linear"
    binary = len(class_names) == 2
    info = ModelInfo(class_names=class_names, image_size=(48, 48),
                     task="binary" if binary else "label")
    labels = ("cog_bb_flunky", "toon_dog") if binary else class_names
    generator = np.random.default_rng(0)
    screenshot = generator.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    write_image_atomic(tmp_path / "shot.png", screenshot)
    write_voc(tmp_path / "shot.xml", "shot.png",
              [(label, 10 * index, 5, 10 * index + 60, 90) for index, label in enumerate(labels)])
    for index in range(4):
        write_image_atomic(tmp_path / "crops" / f"{labels[index % len(labels)]}_{index}.png",
                           generator.integers(0, 256, (60, 30, 3), dtype=np.uint8))
    # Untrained, the logits of noise crops are all alike: spread them around 0.
    images = np.stack([crop.image for crop in iter_crops(
        find_inputs([tmp_path / "crops", tmp_path / "shot.xml"]), (48, 48), [])])
    raw = np.asarray(model.predict_on_batch(images.astype(np.float32)))
    scale = 4 / np.ptp(raw, axis=0)
    kernel, bias = model.get_layer("output").get_weights()
    model.get_layer("output").set_weights([kernel * scale, (bias - raw.mean(axis=0)) * scale])

    probabilities, images = _assert_predict_report_and_gradcam_agree(
        model, info, [tmp_path / "crops", tmp_path / "shot.xml"])
    logits = np.asarray(model.predict_on_batch(images.astype(np.float32)), np.float64)
    if binary:
        positive = 1 / (1 + np.exp(-logits[:, 0]))
        expected = np.stack([1 - positive, positive], axis=1)
    else:
        exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
        expected = exponentials / exponentials.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert np.ptp(probabilities[:, 0]) > 0.3   # neither raw outputs nor saturated

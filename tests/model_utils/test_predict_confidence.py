"""`predict` with a kept model's confidence rule: calibrated answers, novelty, `unknown`."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from toonvision.data_processing.images import read_image, write_image_atomic
from toonvision.data_processing.voc import parse_annotation
from toonvision.model_utils.prediction import (
    CSV_COLUMNS,
    REJECTED_COLOR,
    predict_paths,
    predictions_csv,
    write_drawings,
)
from toonvision.model_utils.prediction import write_voc as write_predicted_voc
from toonvision.model_utils.statistics.calibration import apply_temperature
from toonvision.model_utils.training.confidence import (
    UNKNOWN,
    fit_confidence,
    save_confidence,
)

SIZE = (32, 32)


def noise(generator: np.random.Generator, count: int) -> np.ndarray:
    """Crops like the model's training data: coloured noise."""
    return generator.integers(0, 256, (count, *SIZE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def kept_model(tmp_path_factory, tiny_model):
    """A tiny model saved as `compare` keeps it, with its rule fitted on noise crops."""
    from toonvision.model_utils.training.model_io import ModelInfo, save_model_atomic

    folder = tmp_path_factory.mktemp("kept")
    model = tiny_model(SIZE)
    generator = np.random.default_rng(1)
    images, y = noise(generator, 60), np.arange(60) % 2
    split = {"train": np.arange(40), "validate": np.arange(40, 60)}
    rule = fit_confidence(model, images, y, split)
    info = ModelInfo(class_names=("cog", "toon"), image_size=SIZE, task="binary")
    path = save_model_atomic(model, folder / "best_baseline.keras", info)
    save_confidence(path, rule)
    return model, info, rule, path


def write_inputs(folder, generator) -> tuple[list, list]:
    """10 noise crops (familiar) and 5 flat-colour crops (nothing like the training data)."""
    familiar = [folder / f"cog_{index}.png" for index in range(10)]
    strange = [folder / f"toon_{index}.png" for index in range(5)]
    for path, image in zip(familiar, noise(generator, 10), strict=True):
        write_image_atomic(path, image)
    for index, path in enumerate(strange):
        write_image_atomic(path, np.full((*SIZE, 3), 50 * index + 20, np.uint8))
    return familiar, strange


def test_a_rule_answers_unknown_for_crops_unlike_the_training_data(kept_model, tmp_path):
    model, info, rule, _ = kept_model
    familiar, strange = write_inputs(tmp_path / "crops", np.random.default_rng(2))
    results = predict_paths(model, info, familiar + strange, confidence=rule)
    answers = {item.source: item for item in results.predictions}
    assert all(answers[path].predicted == UNKNOWN and not answers[path].accepted
               for path in strange)
    assert sum(answers[path].accepted for path in familiar) >= 7
    # an abstention is neither right nor wrong: the accuracy counts the accepted ones
    assert all(answers[path].correct is None for path in strange)
    # the confidences are the calibrated probabilities
    raw = predict_paths(model, info, familiar).predictions
    calibrated = apply_temperature(
        np.array([[1 - item.confidence, item.confidence] for item in raw]), rule.temperature)
    np.testing.assert_allclose([answers[path].confidence for path in familiar],
                               calibrated.max(axis=1), rtol=1e-4)
    rows = list(csv.reader(io.StringIO(predictions_csv(results.predictions))))
    assert rows[0] == list(CSV_COLUMNS) and rows[0][-2:] == ["novelty", "accepted"]
    assert {row[6] for row in rows[1:] if row[-1] == "0"} == {UNKNOWN}
    assert all(float(row[-2]) == pytest.approx(answers[familiar[0]].novelty, abs=1e-4)
               for row in rows[1:2])


def test_without_a_rule_the_answers_are_raw_and_never_unknown(kept_model, tmp_path):
    model, info, _, _ = kept_model
    familiar, strange = write_inputs(tmp_path / "crops", np.random.default_rng(2))
    results = predict_paths(model, info, familiar + strange)
    assert all(item.accepted and item.novelty is None and item.predicted in info.class_names
               for item in results.predictions)
    rows = list(csv.reader(io.StringIO(predictions_csv(results.predictions))))
    assert all(row[-2:] == ["", "1"] for row in rows[1:])


def test_unknown_boxes_are_grey_when_drawn_and_named_unknown_in_voc(kept_model, tmp_path,
                                                                     write_voc):
    model, info, rule, _ = kept_model
    generator = np.random.default_rng(3)
    screenshot = np.zeros((80, 120, 3), np.uint8)
    screenshot[:, :60] = generator.integers(0, 256, (80, 60, 3), dtype=np.uint8)
    screenshot[:, 60:] = 200   # the right box holds a flat colour
    write_image_atomic(tmp_path / "shot.png", screenshot)
    write_voc(tmp_path / "shot.xml", "shot.png",
              [("cog_bb_flunky", 5, 5, 55, 75), ("toon_dog", 65, 5, 115, 75)])
    results = predict_paths(model, info, [tmp_path / "shot.png"], confidence=rule)
    right = results.predictions[1]
    assert right.predicted == UNKNOWN
    drawn = read_image(write_drawings(results.predictions, tmp_path / "drawn")[0])
    assert tuple(drawn[40, 65]) == REJECTED_COLOR   # the box's left edge
    written = write_predicted_voc(results.predictions, tmp_path / "voc")
    names = [item.label for item in parse_annotation(written[0]).objects]
    assert names[1] == UNKNOWN


def test_predict_command_uses_the_rule_and_accept_sets_the_share(kept_model, tmp_path,
                                                                 capsys):
    from toonvision.cli import main

    _, _, _, path = kept_model
    familiar, strange = write_inputs(tmp_path / "crops", np.random.default_rng(4))

    def unknown_count(*extra: str) -> int:
        assert main(["predict", str(path), str(tmp_path / "crops"), "--format", "csv",
                     *extra]) == 0
        captured = capsys.readouterr()
        rows = list(csv.DictReader(io.StringIO(captured.out)))
        assert len(rows) == 15 and "no confidence rule" not in captured.err
        return sum(row["predicted"] == UNKNOWN for row in rows)

    default, strict = unknown_count(), unknown_count("--accept", "0.3")
    assert 5 <= default < strict   # accepting 30% of validation rejects familiar crops too
    assert main(["predict", str(path), str(tmp_path / "crops"), "--accept", "1.5"]) != 0
    capsys.readouterr()
    bare = tmp_path / "bare.keras"   # the same model without its rule file
    bare.write_bytes(path.read_bytes())
    (tmp_path / "bare.keras.json").write_bytes(path.with_name(path.name + ".json").read_bytes())
    assert main(["predict", str(bare), str(tmp_path / "crops"), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "no confidence rule" in captured.err
    assert UNKNOWN not in {row["predicted"] for row in csv.DictReader(io.StringIO(captured.out))}

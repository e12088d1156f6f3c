"""A kept model's confidence rule: fitted on validation, stored beside the model, says unknown."""

from __future__ import annotations

import numpy as np
import pytest

from toonvision import ToonvisionError
from toonvision.data_processing.splits import stratified_split
from toonvision.model_utils.training.confidence import (
    confidence_path,
    fit_confidence,
    load_confidence,
    save_confidence,
)

SIZE = (32, 32)


def _crops(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dark noisy crops (class 0) and bright ones (class 1), as tests/conftest.crop_image."""
    rng = np.random.default_rng(seed)
    y = np.arange(count) % 2
    images = np.stack([rng.normal(60 if label == 0 else 190, 30, (*SIZE, 3))
                       for label in y]).clip(0, 255).astype(np.uint8)
    return images, y


def _strangers(count: int, seed: int) -> np.ndarray:
    """Crops like nothing the model saw: saturated colour stripes."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, *SIZE, 3), dtype=np.uint8)
    for index in range(count):
        images[index, :, ::4, rng.integers(0, 3)] = 255
        images[index, ::3, :, rng.integers(0, 3)] = 255
    return images


@pytest.fixture(scope="module")
def trained(tiny_model):
    model = tiny_model(SIZE, classes=2)
    images, y = _crops(200, seed=0)
    split = stratified_split(y, seed=0)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    train = split["train"]
    model.fit(images[train].astype("float32"), y[train].astype("float32"), epochs=5,
              batch_size=16, verbose=0)
    return model, images, y, split


def test_the_rule_accepts_its_own_crops_and_calls_strangers_unknown(trained):
    model, images, y, split = trained
    rule = fit_confidence(model, images, y, split)
    assert rule.score == "nearest_neighbour" and rule.accept == 0.95
    assert (rule.validation_scores >= rule.threshold).mean() >= 0.95
    own = rule.judge(model, images[split["test"]])
    assert own.accepted.mean() >= 0.85
    strangers = rule.judge(model, _strangers(40, seed=1))
    assert (~strangers.accepted).mean() >= 0.9
    # Calibration changes how sure the model is, never what it answers.
    assert (own.probabilities.argmax(1) == own.raw_probabilities.argmax(1)).all()
    assert rule.temperature > 0


def test_a_stricter_share_rejects_more_and_the_file_round_trips(trained, tmp_path):
    model, images, y, split = trained
    rule = fit_confidence(model, images, y, split)
    model_path = tmp_path / "best_baseline.keras"
    path = save_confidence(model_path, rule)
    assert path == confidence_path(model_path) and path.name == "best_baseline.keras.confidence.npz"
    loaded = load_confidence(model_path)
    assert loaded.temperature == pytest.approx(rule.temperature)
    assert loaded.threshold == pytest.approx(rule.threshold)
    assert np.array_equal(loaded.reference, rule.reference)
    test = images[split["test"]]
    assert np.array_equal(loaded.judge(model, test).accepted, rule.judge(model, test).accepted)
    strict = loaded.with_accept(0.5)
    assert strict.threshold >= loaded.threshold
    assert strict.judge(model, test).accepted.sum() <= loaded.judge(model, test).accepted.sum()
    assert load_confidence(tmp_path / "other.keras") is None


def test_max_probability_rule_and_the_errors_a_user_can_meet(trained, tmp_path):
    model, images, y, split = trained
    rule = fit_confidence(model, images, y, split, score="max_probability", accept=0.9)
    assert rule.reference.size == 0
    assert rule.judge(model, images[split["test"]]).accepted.mean() >= 0.8
    with pytest.raises(ToonvisionError, match="did you mean 'max_probability'"):
        fit_confidence(model, images, y, split, score="max_probabilty")
    with pytest.raises(ToonvisionError, match="needs validation crops"):
        fit_confidence(model, images, y, {"train": split["train"], "validate": []})
    broken = tmp_path / "m.keras"
    confidence_path(broken).write_bytes(b"not a zip")
    with pytest.raises(ToonvisionError, match="m.keras.confidence.npz"):
        load_confidence(broken)

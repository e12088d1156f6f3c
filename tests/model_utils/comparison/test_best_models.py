"""Tests of comparison.best_models: a kept model's confidence rule travels with it."""

from __future__ import annotations

import numpy as np
from conftest import fake_settings

from toonvision.model_utils.comparison.best_models import BestModels
from toonvision.model_utils.comparison.runlog import RunRecord
from toonvision.model_utils.engine.ray_engine import ModelFile
from toonvision.model_utils.training.confidence import confidence_path, load_confidence


def record(run: int) -> RunRecord:
    return RunRecord(config="baseline", run=run, seed=run, split_seed=run, history={},
                     validation_metrics={"loss": 0.5, "accuracy": 0.8},
                     test_metrics={"loss": 0.5, "accuracy": 0.8}, epochs_run=1,
                     setup_seconds=0.0, train_seconds=0.0)


def test_a_new_best_gets_its_rule_and_a_best_without_one_drops_the_old(tmp_path, tiny_model):
    model = tiny_model((16, 16))
    generator = np.random.default_rng(0)
    images = generator.integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    y = np.arange(20) % 2
    split = {"train": np.arange(0, 12), "validate": np.arange(12, 16),
             "test": np.arange(16, 20)}
    settings = fake_settings(image_size=[16, 16])
    kept = BestModels(tmp_path)
    # As a Ray worker sends it: the model's .keras file as bytes, loaded back for the rule.
    model.save(tmp_path / "sent.keras")
    sent = ModelFile((tmp_path / "sent.keras").read_bytes())
    kept.save_pending(sent, record(0), settings, (images, y, split))
    kept.promote("baseline")
    rule = load_confidence(kept.model_path("baseline"))
    assert rule is not None and rule.reference.shape[0] == 12
    assert len(rule.validation_scores) == 4
    # A later best saved without data has no rule: the old one must not describe it.
    kept.save_pending(model, record(1), settings)
    kept.promote("baseline")
    assert not confidence_path(kept.model_path("baseline")).exists()
    assert load_confidence(kept.model_path("baseline")) is None

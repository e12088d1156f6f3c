"""The report's calibration: metrics.json keys and the reliability diagram, with and without
a confidence rule."""

from __future__ import annotations

import html
import json

import numpy as np
import pytest

from toonvision.data_visualization import evaluation, report
from toonvision.data_visualization.report_calibration import (
    NO_RULE_NOTE,
    RELIABILITY_FILE,
    calibration_record,
)
from toonvision.model_utils.statistics.calibration import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
)
from toonvision.model_utils.training.confidence import ConfidenceRule, Judgement, fit_confidence

SIZE = (32, 32)


def test_coverage_and_accuracy_among_the_accepted_are_counted_by_hand():
    raw = np.array([[0.9, 0.1], [0.3, 0.7], [0.8, 0.2], [0.4, 0.6]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])
    found = evaluation.Evaluation(raw, y, ("a", "b"), binary=False)
    rule = ConfidenceRule(2.0, "max_probability", 0.9, 0.0, np.zeros(0), np.zeros((0, 0)))
    calibrated = apply_temperature(raw, 2.0)
    # images 0 and 2 accepted: image 0 right, image 2 wrong
    judged = Judgement(calibrated, raw, np.zeros(4), np.array([True, False, True, False]))
    record = calibration_record(found, judged, rule)
    assert record["coverage"] == 0.5 and record["accuracy_accepted"] == 0.5
    assert record["temperature"] == 2.0 and record["accept"] == 0.9
    assert record["ece_raw"] == pytest.approx(expected_calibration_error(raw, y))
    assert record["ece"] == pytest.approx(expected_calibration_error(calibrated, y))
    assert record["brier"] == pytest.approx(brier_score(calibrated, y))
    bare = calibration_record(found, None, None)
    assert bare["temperature"] == 1.0 and bare["coverage"] == 1.0
    assert bare["ece"] == bare["ece_raw"] and bare["accuracy_accepted"] == 0.5
    assert bare["confidence_rule"] is False and bare["accept"] is None


@pytest.mark.parametrize("with_rule", [True, False])
def test_report_writes_calibration_keys_and_the_reliability_diagram(tmp_path, tiny_model,
                                                                    with_rule):
    model = tiny_model(SIZE)
    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, (40, *SIZE, 3), dtype=np.uint8)
    y = np.arange(40) % 2
    rule = (fit_confidence(model, images, y, {"train": np.arange(20),
                                              "validate": np.arange(20, 30)})
            if with_rule else None)
    # the test crops: 10 like the training data, 4 flat colours (nothing like it)
    test_images = np.concatenate([images[30:], np.stack([np.full((*SIZE, 3), value, np.uint8)
                                                         for value in (0, 80, 160, 240)])])
    test_y = np.concatenate([y[30:], [0, 1, 0, 1]])
    data = evaluation.LabelledImages(test_images, test_y, ("cog", "toon"),
                                     [f"crop{index}" for index in range(14)],
                                     ["cog" if value == 0 else "toon" for value in test_y],
                                     "generated")
    page = report.write_report(model, data, tmp_path / "out", samples=1, filters=1, explain=0,
                               confidence=rule)
    metrics = json.loads((tmp_path / "out" / report.METRICS_FILE).read_text())
    assert {"ece", "ece_raw", "temperature", "brier", "coverage",
            "accuracy_accepted"} <= set(metrics)
    assert (tmp_path / "out" / RELIABILITY_FILE).is_file()
    text = html.unescape(page.read_text(encoding="utf-8"))
    assert RELIABILITY_FILE in text
    if with_rule:
        assert metrics["temperature"] == pytest.approx(rule.temperature)
        assert metrics["coverage"] <= 10 / 14   # the flat crops are unknown
        assert "coverage" in text and NO_RULE_NOTE not in text
    else:
        assert metrics["temperature"] == 1.0 and metrics["coverage"] == 1.0
        assert metrics["ece"] == metrics["ece_raw"]
        assert NO_RULE_NOTE in text

"""Calibration and novelty scores: hand computations and simulated models whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toonvision import ToonvisionError
from toonvision.model_utils.statistics.calibration import (
    acceptance_threshold,
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    separation_auroc,
)
from toonvision.model_utils.statistics.novelty import (
    max_probability_scores,
    nearest_neighbour_scores,
    normalise_features,
)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_ece_matches_a_hand_computation_with_two_images_in_one_bin():
    p = np.array([[0.95, 0.05], [0.91, 0.09], [0.3, 0.7], [0.45, 0.55]])
    y = np.array([0, 1, 1, 0])
    # Bins of width 0.1: {0.95, 0.91} in (0.9, 1]: accuracy 0.5, confidence 0.93 -> 0.43;
    # 0.7 in (0.6, 0.7]: right -> 0.3; 0.55 in (0.5, 0.6]: wrong -> 0.55.
    expected = 0.5 * 0.43 + 0.25 * 0.3 + 0.25 * 0.55
    assert expected_calibration_error(p, y, bins=10) == pytest.approx(expected)
    # Brier by hand: each row misses the one-hot truth by the same amount in both classes.
    brier = (2 * 0.05**2 + 2 * 0.91**2 + 2 * 0.3**2 + 2 * 0.55**2) / 4
    assert brier_score(p, y) == pytest.approx(brier)


def test_a_calibrated_model_has_a_small_error_and_an_overconfident_one_a_large_one():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(20000, 3))
    truth = _softmax(logits)
    y = np.array([rng.choice(3, p=row) for row in truth])
    assert expected_calibration_error(truth, y) < 0.02
    overconfident = _softmax(3 * logits)
    assert expected_calibration_error(overconfident, y) > 0.08


def test_the_fitted_temperature_undoes_a_known_overconfidence_and_keeps_every_answer():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1.5, size=(5000, 4))
    y = np.array([rng.choice(4, p=row) for row in _softmax(logits)])
    overconfident = _softmax(3 * logits)
    temperature = fit_temperature(overconfident, y)
    assert temperature == pytest.approx(3.0, rel=0.1)
    tempered = apply_temperature(overconfident, temperature)
    assert (tempered.argmax(axis=1) == overconfident.argmax(axis=1)).all()
    assert negative_log_likelihood(tempered, y) < negative_log_likelihood(overconfident, y)
    assert expected_calibration_error(tempered, y) < 0.03


def test_temperature_on_a_sigmoid_model_is_the_sigmoid_of_the_scaled_logit():
    logit = np.array([-3.0, -0.5, 0.0, 2.0, 6.0])
    s = 1 / (1 + np.exp(-logit))
    tempered = apply_temperature(np.stack([1 - s, s], axis=1), 2.0)
    assert tempered[:, 1] == pytest.approx(1 / (1 + np.exp(-logit / 2.0)), abs=1e-5)
    assert apply_temperature(np.stack([1 - s, s], axis=1), 1.0) == pytest.approx(
        np.stack([1 - s, s], axis=1), abs=1e-5)


def test_degenerate_inputs_are_named_or_neutral():
    assert fit_temperature(np.zeros((0, 2)), np.zeros(0, dtype=int)) == 1.0
    assert math.isnan(expected_calibration_error(np.zeros((0, 2)), []))
    with pytest.raises(ToonvisionError, match="one class per image"):
        brier_score(np.full((3, 2), 0.5), [0, 1])
    with pytest.raises(ToonvisionError, match="temperature must be above 0"):
        apply_temperature(np.full((1, 2), 0.5), 0.0)


def test_the_threshold_accepts_at_least_the_chosen_share():
    scores = np.random.default_rng(2).normal(size=997)
    for accept in (0.5, 0.9, 0.95, 1.0):
        threshold = acceptance_threshold(scores, accept)
        assert (scores >= threshold).mean() >= accept
        assert (scores >= threshold).mean() < accept + 2 / len(scores)
    assert acceptance_threshold([], 0.95) == -math.inf
    with pytest.raises(ToonvisionError, match="share"):
        acceptance_threshold(scores, 0.0)


def test_nearest_neighbour_scores_find_what_the_softmax_misses():
    rng = np.random.default_rng(3)
    # Known crops: features near two class directions; unknown: another direction entirely.
    directions = np.eye(8, dtype=np.float32)
    known = np.concatenate([directions[0] + rng.normal(0, 0.1, (100, 8)),
                            directions[1] + rng.normal(0, 0.1, (100, 8))])
    reference = normalise_features(known[::2])
    held_out = known[1::2]
    unknown = directions[5] + rng.normal(0, 0.1, (50, 8))
    known_scores = nearest_neighbour_scores(reference, held_out, k=5)
    unknown_scores = nearest_neighbour_scores(reference, unknown, k=5)
    assert separation_auroc(known_scores, unknown_scores) == 1.0
    # A saturated softmax says nothing: every image scores 1.0 and the AUROC is chance.
    sure = max_probability_scores(np.tile([[1.0, 0.0]], (50, 1)))
    assert separation_auroc(sure, sure) == 0.5
    threshold = acceptance_threshold(nearest_neighbour_scores(reference, held_out), 0.95)
    assert (unknown_scores < threshold).all()


def test_a_run_records_ece_and_brier_of_each_part_and_nothing_for_an_empty_one():
    from toonvision.model_utils.statistics.calibration import calibration_scores

    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = np.array([0, 1, 1])
    # ECE by hand: bins (0.8, 0.867] and (0.867, 0.933] right, (0.6] wrong: |0 - 0.6| / 3
    # + |1 - 0.8| / 3 + |1 - 0.9| / 3 = 0.3; Brier: (0.02 + 0.08 + 0.72) / 3
    assert calibration_scores(p, y) == pytest.approx({"ece": 0.3, "brier": 0.82 / 3})
    assert calibration_scores(np.zeros((0, 2)), np.zeros(0, np.int64)) == {}

"""How far a model's confidence can be trusted, and when it should answer "unknown".

A softmax output is not a probability until it has been checked against how often the model
is right: the author's model gives 0.988 "toon" to a green door. This module measures that
(expected calibration error, Brier score), fixes the scale with one temperature fitted on
the validation split (Guo et al. 2017, "On Calibration of Modern Neural Networks"), and sets
the threshold of a rejection score so that a chosen share of in-distribution crops is
accepted. Numbers in, numbers out: no files, no model.

Temperature scaling works on the model's probabilities: the log-probabilities are logits up
to a constant per image, so `softmax(log(p) / T)` is the tempered softmax of the logits, and
for a one-output sigmoid model, whose probabilities are `[1 - p, p]`, it is `sigmoid(logit /
T)`. T > 1 softens over-confident outputs, T < 1 sharpens under-confident ones; the predicted
class never changes.

Example:
    >>> import numpy as np
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> y = np.array([0, 1, 1])
    >>> round(expected_calibration_error(p, y, bins=10), 4)
    0.3
    >>> round(brier_score(p, y), 4)
    0.2733
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toonvision import ToonvisionError

ECE_BINS = 15   # equal-width confidence bins, as in Guo et al. 2017
# Temperatures searched (a bounded scalar search over log T): 0.05 .. 20 covers every model
# seen here; a fit at a bound is reported as such by `fit_temperature`'s caller.
TEMPERATURE_RANGE = (0.05, 20.0)
_EPSILON = 1e-7


def _checked(probabilities: np.ndarray, y: Sequence[int] | np.ndarray) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ToonvisionError(f"probabilities must be (images, classes) with at least two "
                              f"classes; got shape {probabilities.shape}")
    if len(y) != len(probabilities):
        raise ToonvisionError(f"need one class per image: {len(probabilities)} images but "
                              f"{len(y)} classes")
    if len(y) and (y.min() < 0 or y.max() >= probabilities.shape[1]):
        raise ToonvisionError(f"classes must lie in 0..{probabilities.shape[1] - 1}")
    return probabilities, y


@dataclass(frozen=True)
class ReliabilityTable:
    """Images binned by their highest probability (what a reliability diagram draws).

    Attributes:
        edges: (bins + 1,) bin edges from 0 to 1; bin i holds confidences in
            (edges[i], edges[i + 1]] (a confidence of 0 joins the first).
        counts: (bins,) images per bin.
        accuracy: (bins,) share right per bin (NaN for an empty bin).
        confidence: (bins,) mean highest probability per bin (NaN for an empty bin).
    """

    edges: np.ndarray
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray

    @property
    def expected_calibration_error(self) -> float:
        """The count-weighted mean |accuracy - confidence| over the bins (NaN: no images)."""
        total = self.counts.sum()
        if not total:
            return math.nan
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float((self.counts[filled] * gaps).sum() / total)


def reliability_table(probabilities: np.ndarray, y: Sequence[int] | np.ndarray,
                      bins: int = ECE_BINS) -> ReliabilityTable:
    """Bins images by confidence (highest probability) into `bins` equal-width bins."""
    probabilities, y = _checked(probabilities, y)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(index, weights=correct, minlength=bins) / counts
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / counts
    return ReliabilityTable(np.linspace(0.0, 1.0, bins + 1), counts, accuracy,
                            mean_confidence)


def expected_calibration_error(probabilities: np.ndarray, y: Sequence[int] | np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """The top-label expected calibration error: the mean gap between confidence and accuracy.

    Images are put in `bins` equal-width bins by their highest probability; each bin's
    |accuracy - mean confidence| is weighted by its share of the images. 0 is perfectly
    calibrated; 0.1 means the model is, on average, 10 points more (or less) sure than right.

    Args:
        probabilities: (N, classes) probabilities.
        y: (N,) true class indices.
        bins: the number of confidence bins.

    Returns:
        The error in 0..1, NaN for no images.
    """
    return reliability_table(probabilities, y, bins).expected_calibration_error


def brier_score(probabilities: np.ndarray, y: Sequence[int] | np.ndarray) -> float:
    """The multi-class Brier score: mean squared distance to the one-hot truth (0 is best).

    Returns:
        The mean over images of sum over classes of (p_k - [k == y])^2, NaN for no images.
    """
    probabilities, y = _checked(probabilities, y)
    if not len(y):
        return math.nan
    truth = np.zeros_like(probabilities)
    truth[np.arange(len(y)), y] = 1.0
    return float(((probabilities - truth) ** 2).sum(axis=1).mean())


def calibration_scores(probabilities: np.ndarray, y: Sequence[int] | np.ndarray
                       ) -> dict[str, float]:
    """`{"ece": ..., "brier": ...}` of some probabilities: what a run records per part.

    Returns:
        Both scores (lower is better); an empty dict for no images.
    """
    if not len(y):
        return {}
    return {"ece": expected_calibration_error(probabilities, y),
            "brier": brier_score(probabilities, y)}


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Tempered probabilities: `softmax(log(p) / temperature)` per image (see the module notes).

    Returns:
        (N, classes) float32 probabilities; the same argmax as `probabilities`.
    """
    if not temperature > 0:
        raise ToonvisionError(f"temperature must be above 0; got {temperature!r}")
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1.0))
    scaled = logits / float(temperature)
    scaled -= scaled.max(axis=1, keepdims=True)
    exponent = np.exp(scaled)
    return (exponent / exponent.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probabilities: np.ndarray, y: Sequence[int] | np.ndarray) -> float:
    """The mean cross-entropy of the true classes (the quantity temperature scaling minimises)."""
    probabilities, y = _checked(probabilities, y)
    if not len(y):
        return math.nan
    return float(-np.log(np.clip(probabilities[np.arange(len(y)), y], _EPSILON, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, y: Sequence[int] | np.ndarray) -> float:
    """The temperature that minimises the validation split's cross-entropy.

    A bounded scalar search over log T (`scipy.optimize.minimize_scalar`): one parameter,
    a smooth convex-in-practice objective, no gradients needed.

    Args:
        probabilities: (N, classes) validation probabilities of the model.
        y: (N,) their true classes.

    Returns:
        T in `TEMPERATURE_RANGE`; 1.0 (no change) when there are no images or every
        validation image is classified with certainty either way.
    """
    from scipy.optimize import minimize_scalar

    probabilities, y = _checked(probabilities, y)
    if len(y) == 0:
        return 1.0

    def loss(log_temperature: float) -> float:
        return negative_log_likelihood(apply_temperature(probabilities,
                                                         math.exp(log_temperature)), y)

    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    result = minimize_scalar(loss, bounds=(low, high), method="bounded",
                             options={"xatol": 1e-4})
    if not result.success or loss(result.x) > loss(0.0):
        return 1.0
    return float(math.exp(result.x))


def acceptance_threshold(scores: np.ndarray, accept: float) -> float:
    """The score at or above which a share `accept` of these in-distribution scores lies.

    Args:
        scores: (N,) rejection scores of in-distribution images (higher: more familiar).
        accept: the share to accept, in (0, 1] (0.95 accepts 95%).

    Returns:
        The threshold (-inf for no scores: everything is accepted).
    """
    if not 0 < accept <= 1:
        raise ToonvisionError(f"the accepted share must be in (0, 1]; got {accept!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return -math.inf
    # The lower (1 - accept) quantile; 'lower' keeps at least `accept` of the scores at or
    # above it, never fewer.
    return float(np.quantile(scores, 1.0 - accept, method="lower"))


def separation_auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """How well a score tells known from unknown images: the area under the ROC curve.

    1.0: every known image scores above every unknown one; 0.5: no better than chance.
    """
    from sklearn.metrics import roc_auc_score

    known, unknown = np.asarray(known, dtype=np.float64), np.asarray(unknown, dtype=np.float64)
    if not len(known) or not len(unknown):
        return math.nan
    truth = np.concatenate([np.ones(len(known)), np.zeros(len(unknown))])
    return float(roc_auc_score(truth, np.concatenate([known, unknown])))

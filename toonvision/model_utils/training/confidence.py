"""What a kept model's confidence means: its temperature and its "unknown" rule.

Fitted once on the model's own validation split (`fit_confidence`) and stored beside the
model file as `<model file>.confidence.npz` (`save_confidence` / `load_confidence`), so that
`predict`, `report` and the doctor apply the same rule:

- probabilities are divided by the fitted temperature (`statistics.calibration`), so that a
  model 90% sure is right about 90% of the time on data like its validation split;
- every image gets a novelty score (`statistics.novelty`; by default the distance to the
  nearest training crops in the model's feature space) and is answered `unknown` when its
  score is below the threshold that accepts a chosen share of the validation crops (95% by
  default; `accept` changes it when predicting, from the stored validation scores).

A model without the file (an older comparison's, or the author's HDF5 model) keeps its raw
probabilities and never answers `unknown`; the commands say so.

Example:
    >>> rule = fit_confidence(model, images, y, split)           # doctest: +SKIP
    >>> save_confidence("runs/x/best_optimized.keras", rule)      # doctest: +SKIP
    >>> verdict = rule.judge(model, new_images)                   # doctest: +SKIP
    >>> verdict.accepted.mean(), verdict.probabilities.argmax(1)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toonvision import ToonvisionError, defaults
from toonvision.fileio import write_bytes_atomic
from toonvision.model_utils.statistics.calibration import (
    acceptance_threshold,
    apply_temperature,
    fit_temperature,
)
from toonvision.model_utils.statistics.novelty import (
    NEIGHBOURS,
    NOVELTY_SCORES,
    max_probability_scores,
    nearest_neighbour_scores,
    normalise_features,
)

CONFIDENCE_SUFFIX = ".confidence.npz"
UNKNOWN = "unknown"   # the answer for an image the model does not recognise


@dataclass(frozen=True)
class Judgement:
    """A model's answer on some images, after its confidence rule.

    Attributes:
        probabilities: (N, classes) calibrated probabilities.
        raw_probabilities: (N, classes) the model's own.
        scores: (N,) novelty scores (higher: more familiar).
        accepted: (N,) whether each image is recognised (False: answer `unknown`).
    """

    probabilities: np.ndarray
    raw_probabilities: np.ndarray
    scores: np.ndarray
    accepted: np.ndarray


@dataclass(frozen=True)
class ConfidenceRule:
    """A model's temperature and rejection rule (see the module notes).

    Attributes:
        temperature: divides the log-probabilities (1.0: unchanged).
        score: the novelty score, one of `statistics.novelty.NOVELTY_SCORES`.
        accept: the share of validation crops accepted by `threshold`.
        threshold: the score below which an image is `unknown`.
        validation_scores: (V,) the validation crops' scores (another `accept` re-derives
            the threshold from them).
        reference: (M, D) float16 normalised features of the training crops (the
            nearest-neighbour score's memory; empty for `max_probability`).
        neighbours: k of the k-th nearest neighbour.
    """

    temperature: float
    score: str
    accept: float
    threshold: float
    validation_scores: np.ndarray
    reference: np.ndarray
    neighbours: int = NEIGHBOURS

    def with_accept(self, accept: float) -> ConfidenceRule:
        """The same rule with the threshold that accepts `accept` of the validation crops."""
        threshold = acceptance_threshold(self.validation_scores, accept)
        return ConfidenceRule(self.temperature, self.score, accept, threshold,
                              self.validation_scores, self.reference, self.neighbours)

    def scores_of(self, model: Any, images: np.ndarray,
                  probabilities: np.ndarray) -> np.ndarray:
        """The novelty scores of `images`, whose calibrated `probabilities` are given."""
        if self.score == "max_probability":
            return max_probability_scores(probabilities)
        from toonvision.model_utils.training.features import extract_features

        reference = self.reference.astype(np.float32)
        return nearest_neighbour_scores(reference, extract_features(model, images),
                                        self.neighbours)

    def judge(self, model: Any, images: np.ndarray,
              raw_probabilities: np.ndarray | None = None) -> Judgement:
        """Calibrated probabilities, scores and the accept/`unknown` decision for `images`.

        Args:
            model: the model the rule was fitted for.
            images: (N, height, width, 3) images in the model's input size.
            raw_probabilities: the model's probabilities of `images` when already computed
                (`models.predict_probabilities`).
        """
        if raw_probabilities is None:
            from toonvision.model_utils.training.models import predict_probabilities

            raw_probabilities = predict_probabilities(model, images)
        probabilities = apply_temperature(raw_probabilities, self.temperature)
        scores = self.scores_of(model, images, probabilities)
        return Judgement(probabilities, np.asarray(raw_probabilities, dtype=np.float32),
                         scores, scores >= self.threshold)


def fit_confidence(model: Any, images: np.ndarray, y: np.ndarray,
                   split: Mapping[str, Sequence[int] | np.ndarray],
                   score: str = defaults.NOVELTY_SCORE,
                   accept: float = defaults.ACCEPT) -> ConfidenceRule:
    """Fits a model's temperature and rejection rule on its own split.

    Args:
        model: the trained classifier.
        images: every image of its data (`TaskData.images`).
        y: their classes.
        split: the index arrays the model trained (`train`) and was validated (`validate`)
            on; the test part plays no part.
        score: the novelty score, one of `NOVELTY_SCORES`.
        accept: the share of validation crops to accept (0.95: 95%).

    Raises:
        ToonvisionError: for an unknown score, or a split without validation crops.
    """
    from toonvision.model_utils.training.models import predict_probabilities

    if score not in NOVELTY_SCORES:
        from toonvision import unknown_name_error

        raise unknown_name_error("novelty score", score, NOVELTY_SCORES)
    validate = np.asarray(split.get("validate", ()), dtype=np.int64)
    if not len(validate):
        raise ToonvisionError("fitting a temperature and an unknown rule needs validation "
                              "crops; this split has none")
    raw = predict_probabilities(model, images[validate])
    temperature = fit_temperature(raw, np.asarray(y)[validate])
    reference = np.zeros((0, 0), dtype=np.float16)
    if score == "nearest_neighbour":
        from toonvision.model_utils.training.features import extract_features

        train = np.asarray(split["train"], dtype=np.int64)
        reference = normalise_features(extract_features(model, images[train]))
        reference = reference.astype(np.float16)
    rule = ConfidenceRule(temperature, score, accept, 0.0, np.zeros(0), reference)
    validation_scores = rule.scores_of(model, images[validate],
                                       apply_temperature(raw, temperature))
    return ConfidenceRule(temperature, score, accept,
                          acceptance_threshold(validation_scores, accept),
                          validation_scores, reference)


def confidence_path(model_path: str | os.PathLike) -> Path:
    """Where the confidence rule of `model_path` is stored: `<model file>.confidence.npz`."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + CONFIDENCE_SUFFIX)


def save_confidence(model_path: str | os.PathLike, rule: ConfidenceRule) -> Path:
    """Writes `rule` beside `model_path`, atomically; returns the file's path."""
    meta = {"temperature": rule.temperature, "score": rule.score, "accept": rule.accept,
            "threshold": rule.threshold, "neighbours": rule.neighbours, "version": 1}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                        validation_scores=rule.validation_scores, reference=rule.reference)
    return write_bytes_atomic(confidence_path(model_path), buffer.getvalue())


def load_confidence(model_path: str | os.PathLike) -> ConfidenceRule | None:
    """The stored rule of `model_path`, or None when it has none.

    Raises:
        ToonvisionError: if the file exists but cannot be read (it names the file).
    """
    path = confidence_path(model_path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            return ConfidenceRule(float(meta["temperature"]), str(meta["score"]),
                                  float(meta["accept"]), float(meta["threshold"]),
                                  data["validation_scores"].copy(), data["reference"].copy(),
                                  int(meta.get("neighbours", NEIGHBOURS)))
    except (OSError, ValueError, KeyError) as error:
        raise ToonvisionError(f"{path}: not a readable confidence file ({error}); delete it "
                              "to use the model's raw probabilities") from None

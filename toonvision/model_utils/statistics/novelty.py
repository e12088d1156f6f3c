"""Scores that say how familiar an image is to a model, for an "unknown" answer.

Two scores, higher meaning more familiar; a threshold set on the validation split
(`calibration.acceptance_threshold`) turns either into an accept/reject rule:

- `max_probability`: the highest calibrated class probability (Hendrycks and Gimpel 2017).
  Free, but a classifier that has only seen Cogs and Toons is often sure about a door:
  outside its training data nothing keeps the softmax from saturating.
- `nearest_neighbour`: minus the distance, in the model's own feature space (the mean and
  spread of every convolution channel, `training.features`, L2-normalised), to the k-th
  nearest training crop (after Sun et al. 2022, "Out-of-Distribution Detection with Deep
  Nearest Neighbors"). A crop unlike anything the model trained on is far from every
  training crop, however sure the softmax is.

Which one a kept model uses was chosen by measurement (docs/compare.md, "Unknown crops").
"""

from __future__ import annotations

import numpy as np

from toonvision import ToonvisionError

NOVELTY_SCORES: tuple[str, ...] = ("nearest_neighbour", "max_probability")
NEIGHBOURS = 5   # k of the k-th nearest neighbour (k = 1 and 10 measured alike here)


def normalise_features(features: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (float32), flattened to (N, D)."""
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def nearest_neighbour_scores(reference: np.ndarray, features: np.ndarray,
                             k: int = NEIGHBOURS) -> np.ndarray:
    """Minus the distance of each row of `features` to its k-th nearest `reference` row.

    Args:
        reference: (M, D) normalised features of the training crops.
        features: (N, ...) features to score (normalised here).
        k: which neighbour; fewer reference rows than k use the farthest one.

    Returns:
        (N,) float64 scores in [-2, 0]; higher is more familiar.
    """
    from sklearn.neighbors import NearestNeighbors

    reference = np.asarray(reference, dtype=np.float32)
    if not len(reference):
        raise ToonvisionError("nearest-neighbour scores need at least one reference crop")
    features = normalise_features(features)
    if not len(features):
        return np.zeros(0)
    neighbours = min(k, len(reference))
    index = NearestNeighbors(n_neighbors=neighbours).fit(reference)
    distances, _ = index.kneighbors(features)
    return -distances[:, -1].astype(np.float64)


def max_probability_scores(probabilities: np.ndarray) -> np.ndarray:
    """The highest (calibrated) class probability of each row; higher is more familiar."""
    return np.asarray(probabilities, dtype=np.float64).max(axis=1)

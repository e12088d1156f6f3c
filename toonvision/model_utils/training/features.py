"""What a model's convolutions respond to, summarised per image: its novelty features.

The "unknown" answer (`statistics.novelty.nearest_neighbour_scores`) measures distances in
this space. The features are the mean and the standard deviation of every channel of every
convolution's output (for a model without convolutions, such as the deck's MLP: the input of
its last layer). Measured on the real sets (benchmarks/bench_unknown.py, docs/compare.md,
"Unknown crops"), they separate a model's own crops from other sets' far better than the
input of the last layer does: on a cards model, AUROC 0.95-0.99 against 0.85-0.94.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def feature_model(model: Any) -> keras.Model:
    """A sub-model from the model's input to every convolution's output (or, without any, to
    the input of its last layer).

    Works for our models and for legacy HDF5 ones (whose `model.input` is a list:
    `model.inputs[0]` is the tensor).
    """
    convolutions = [layer.output for layer in model.layers
                    if isinstance(layer, keras.layers.Conv2D)]
    return keras.Model(model.inputs[0], convolutions or [model.layers[-1].input])


def extract_features(model: Any, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(N, D) float32 novelty features of `images` (N, height, width, 3, 0-255).

    Args:
        model: the classifier (its feature sub-model is built here: a view of the same
            layers, no copy of the weights).
        images: the images, in the model's input size.
        batch_size: images per forward pass.
    """
    extractor = feature_model(model)
    batches = []
    for start in range(0, len(images), batch_size):
        chunk = np.asarray(images[start:start + batch_size], dtype=np.float32)
        outputs = extractor.predict_on_batch(chunk)
        outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
        batches.append(np.concatenate([_summary(np.asarray(output)) for output in outputs],
                                      axis=1))
    if not batches:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(batches).astype(np.float32)


def _summary(output: np.ndarray) -> np.ndarray:
    """(N, 2C) channel means and standard deviations of (N, H, W, C); (N, D) stays flat."""
    if output.ndim == 4:
        return np.concatenate([output.mean(axis=(1, 2)), output.std(axis=(1, 2))], axis=1)
    return output.reshape(len(output), -1)

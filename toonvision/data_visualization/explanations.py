"""Several ways to explain a classifier's decision, behind one interface.

Every method turns images (and the class to explain per image) into heatmaps of the image's
size, scaled to [0, 1], where high means "this region matters for the class":

- `gradcam`: Grad-CAM (`gradcam.GradCam`), on a chosen convolution;
- `gradcam++`: Grad-CAM++ on a chosen convolution, better when the evidence is in several places;
- `saliency`: the gradient of the class score with respect to each pixel (`gradcam.Saliency`);
- `random`: a random map, smooth at 1/8 of the image size (the scale of a small CNN's last
  convolution), the floor every method must beat. It does not look at the model at all.

The CAM methods can explain any of the last convolutions (`cam_layers`); which one explains a
model best is a question for `faithfulness.compare_methods`, which scores them all.

Example:
    for method in make_methods(model):
        heatmaps = method.explain(images, class_indices)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from toonvision import ToonvisionError
from toonvision.data_visualization.interpret import (
    DEFAULT_BATCH_SIZE,
    FlatModel,
    conv_output_path,
    flatten_model,
    layer_paths,
)

METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "saliency", "random")
CAM_METHODS: tuple[str, ...] = ("gradcam", "gradcam++")
CAM_LAYER_CANDIDATES = 3          # the last convolutions the CAM methods are tried on
RANDOM_MAP_SCALE = 8              # a random map's cells are 1/8 of the image's side
METHOD_TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "saliency": "saliency",
                 "random": "random map"}


@dataclass(frozen=True)
class Method:
    """One way to explain, ready to run.

    Attributes:
        name: one of `METHODS`.
        layer: the explained layer's path for the CAM methods, "" for the others.
        explain: `explain(images, class_indices)` -> (N, height, width) float32 heatmaps in
            [0, 1]; `class_indices` (N,) ints.
    """

    name: str
    layer: str
    explain: Callable[[np.ndarray, np.ndarray], np.ndarray]

    @property
    def title(self) -> str:
        """The method's name as a reader knows it, with its layer."""
        title = METHOD_TITLES.get(self.name, self.name)
        return f"{title} ({self.layer})" if self.layer else title


def cam_layers(flat: FlatModel, count: int = CAM_LAYER_CANDIDATES) -> list[str]:
    """The outputs of the model's last `count` convolutions (as `interpret.conv_output_path`
    passes them on), last first: the layers a CAM method can explain.

    Raises:
        ValueError: if the model has no Conv2D layer.
    """
    import keras

    paths = layer_paths(flat, (keras.layers.Conv2D,))
    if not paths:
        raise ToonvisionError(f"model has no Conv2D layer to explain; layers are "
                              f"{', '.join(flat.layer_names)}")
    return [conv_output_path(flat, path) for path in reversed(paths)][:max(1, count)]


def random_maps(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Random heatmaps, one per image: uniform noise on a grid of 1/`RANDOM_MAP_SCALE` of the
    image size, resized bilinearly to it and scaled to [0, 1]. Image k of a call gets the
    same map for the same `seed`, whatever the model (so it fails the sanity check, as it
    should)."""
    import cv2

    count, height, width = np.asarray(images).shape[:3]
    grid = (max(1, height // RANDOM_MAP_SCALE), max(1, width // RANDOM_MAP_SCALE))
    maps = np.empty((count, height, width), np.float32)
    for index in range(count):
        cells = np.random.default_rng((seed, index)).random(grid).astype(np.float32)
        smooth = cv2.resize(cells, (width, height), interpolation=cv2.INTER_LINEAR)
        low, high = smooth.min(), smooth.max()
        maps[index] = (smooth - low) / (high - low) if high > low else 0.0
    return maps


def make_method(model: object, name: str, layer: str | None = None, seed: int = 0,
                batch_size: int = DEFAULT_BATCH_SIZE) -> Method:
    """One explanation method of `model`.

    Args:
        model: a Keras image classifier.
        name: one of `METHODS`.
        layer: for the CAM methods, the layer path (default: the last convolution's output).
        seed: the random map's seed.
        batch_size: images per compiled call.

    Returns:
        The method.

    Raises:
        ValueError: for an unknown method or layer (the message lists the known ones).
    """
    from toonvision.data_visualization.gradcam import GradCam, Saliency

    if name not in METHODS:
        raise ToonvisionError(f"unknown explanation method {name!r}; choose from "
                              f"{', '.join(METHODS)}")
    if name == "random":
        return Method(name, "", lambda images, _classes: random_maps(images, seed))
    explainer = (Saliency(model) if name == "saliency"
                 else GradCam(model, layer_name=layer, variant=name))

    def explain(images: np.ndarray, class_indices: np.ndarray) -> np.ndarray:
        return explainer(images, class_indices, batch_size=batch_size)[0]

    return Method(name, explainer.layer_name, explain)


def make_methods(model: object, names: Sequence[str] = METHODS,
                 layers: Sequence[str] | int = CAM_LAYER_CANDIDATES, seed: int = 0,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> list[Method]:
    """Every requested method of `model`, the CAM methods once per layer.

    Args:
        model: a Keras image classifier.
        names: methods from `METHODS`.
        layers: the layers for the CAM methods, or how many of the last convolutions
            (`cam_layers`) to try.
        seed: the random map's seed.
        batch_size: images per compiled call.

    Returns:
        The methods, in the order of `names` (per CAM method, its layers last first).

    Raises:
        ValueError: for an unknown method or layer, or CAM methods on a model without a
            convolution.
    """
    flat: FlatModel | None = None
    if isinstance(layers, int) and any(name in CAM_METHODS for name in names):
        flat = flatten_model(model)
    methods = []
    for name in names:
        if name in CAM_METHODS:
            chosen = cam_layers(flat, layers) if isinstance(layers, int) else list(layers)
            methods.extend(make_method(model, name, layer, seed, batch_size) for layer in chosen)
        else:
            methods.append(make_method(model, name, None, seed, batch_size))
    return methods

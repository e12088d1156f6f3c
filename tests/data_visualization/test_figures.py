"""Figures: heatmap overlays, grids, metrics figures and the architecture diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toonvision.data_processing.images import read_image
from toonvision.data_visualization import figures


def _saved_image(figure, path: Path) -> np.ndarray:
    figures.save_figure(figure, path)
    return read_image(path)


def test_overlay_heatmap_paints_hot_red_and_cold_blue() -> None:
    image = np.full((40, 20, 3), 128, np.uint8)
    heatmap = np.zeros((10, 5), np.float32)  # coarser than the image: resized to it
    heatmap[:5] = 1.0
    overlay = figures.overlay_heatmap(image, heatmap)
    assert overlay.shape == image.shape and overlay.dtype == np.uint8
    hot, cold = overlay[5, 10].astype(int), overlay[35, 10].astype(int)
    assert hot[0] > hot[2] + 50   # red where the heatmap is 1
    assert cold[2] > cold[0] + 50  # blue where it is 0


def test_image_grid_titles_and_saving(tmp_path: Path) -> None:
    images = [np.full((30, 10, 3), value, np.uint8) for value in (0, 100, 200)]
    figure = figures.image_grid_figure(images, ["a", "b\nc", "d"], columns=2)
    titled = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert titled == ["a", "b\nc", "d"]
    saved = _saved_image(figure, tmp_path / "grid.png")
    assert saved.shape[0] > saved.shape[1] > 50  # two rows of tall tiles
    with pytest.raises(ValueError, match="3 images but 2 titles"):
        figures.image_grid_figure(images, ["a", "b"])


def test_prediction_title_is_the_articles() -> None:
    assert figures.prediction_title("toon", 0.75, 0.25) == "toon\nE=0.750  A=0.250"
    assert figures.prediction_title("king", 0.6, 0.7, "queen").endswith("\npred: queen")


def test_heatmap_pairs_put_each_overlay_beside_its_image() -> None:
    images = [np.full((30, 10, 3), 100, np.uint8)] * 3
    figure = figures.heatmap_pairs_figure(images, [np.ones((30, 10))] * 3, ["x", "y", "z"],
                                          columns=5, title_colours=["red", "black", "red"])
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert titles == ["x", "Grad-CAM", "y", "Grad-CAM", "z", "Grad-CAM"]
    assert figure.axes[0].title.get_color() == "red"


def test_activation_figure_shows_at_most_the_requested_channels() -> None:
    maps = np.random.default_rng(0).random((20, 8, 24)).astype(np.float32)
    maps[..., 3] = 0.0  # a silent channel must not break the scaling
    figure = figures.activation_figure("conv", maps, max_channels=16, columns=8)
    assert sum(1 for axis in figure.axes if axis.images) == 16
    assert "16 of 24 channels" in figure._suptitle.get_text()


def test_filter_patterns_figure_shows_the_central_square() -> None:
    patterns = np.zeros((2, 60, 20, 3), np.uint8)
    figure = figures.filter_patterns_figure("conv", patterns, [4, 5])
    shown = [axis.images[0].get_array().shape for axis in figure.axes if axis.images]
    assert shown == [(20, 20, 3), (20, 20, 3)]


def test_confusion_matrix_and_histograms(tmp_path: Path) -> None:
    figure = figures.confusion_matrix_figure(np.array([[5, 1], [0, 4]]), ["cog", "toon"])
    texts = {text.get_text() for text in figure.axes[0].texts}
    assert {"5", "1", "0", "4"} <= texts
    assert _saved_image(figure, tmp_path / "matrix.png").size > 0
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    figure = figures.confidence_histograms_figure(probabilities, np.array([0, 1, 1]),
                                                  ["cog", "toon"])
    assert [axis.get_title() for axis in figure.axes] == ["true cog (1)", "true toon (2)"]
    three = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    figure = figures.confidence_histograms_figure(three, np.array([0, 2]), ["a", "b", "c"])
    assert figure.axes[0].get_xlabel() == "P(true class)"


def test_architecture_image_draws_keras3_layers_with_visualkeras() -> None:
    pytest.importorskip("visualkeras")
    layers = [
        figures.LayerShape("rescaling", "Rescaling", (None, 96, 32, 3)),
        figures.LayerShape("conv", "Conv2D", (None, 94, 30, 8)),
        figures.LayerShape("block/pool", "MaxPooling2D", (None, 47, 15, 8)),
        figures.LayerShape("flatten", "Flatten", (None, 5640)),
        figures.LayerShape("dense", "Dense", (None, 1)),
    ]
    image, note = figures.architecture_image(layers)
    assert note == "visualkeras layered view"
    assert image is not None and image.ndim == 3 and image.shape[1] > 100


def test_architecture_image_falls_back_with_a_reason(monkeypatch) -> None:
    visualkeras = pytest.importorskip("visualkeras")

    def broken(*args, **kwargs):
        raise AttributeError("'InputLayer' object has no attribute 'output_shape'")

    monkeypatch.setattr(visualkeras, "layered_view", broken)
    image, note = figures.architecture_image([figures.LayerShape("dense", "Dense", (None, 1))])
    assert image is None
    assert note == ("visualkeras could not draw this model (AttributeError: 'InputLayer' object "
                    "has no attribute 'output_shape')")

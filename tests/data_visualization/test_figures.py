"""Figures: heatmap overlays, grids, metrics figures, the architecture diagram, saving."""

from __future__ import annotations

import subprocess
import sys
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


def test_save_figure_writes_through_a_temporary_file_and_keeps_the_old_one_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "out" / "grid.png"
    figures.save_figure(figures.image_grid_figure([np.zeros((8, 8, 3), np.uint8)], ["a"]), path)
    before = path.read_bytes()
    figure = figures.image_grid_figure([np.full((8, 8, 3), 255, np.uint8)], ["b"])

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(figure, "savefig", fail)
    with pytest.raises(OSError, match="disk full"):
        figures.save_figure(figure, path)
    assert path.read_bytes() == before
    assert [item.name for item in path.parent.iterdir()] == ["grid.png"]


FIGURES_IN_A_FRESH_PROCESS = """
import sys
import matplotlib
matplotlib.use("pdf")  # what a notebook user chose
import matplotlib.pyplot as pyplot
import numpy as np
from toonvision.data_visualization import figures
images = [np.zeros((20, 10, 3), np.uint8)] * 2
figures.save_figure(figures.image_grid_figure(images, ["a", "b"]), sys.argv[1] + "/grid.png")
figures.save_figure(figures.confusion_matrix_figure(np.eye(2, dtype=int), ["cog", "toon"]),
                    sys.argv[1] + "/matrix.png")
print(matplotlib.get_backend(), pyplot.get_fignums())
"""


def test_drawing_and_saving_keeps_the_backend_and_creates_no_pyplot_figure(
    tmp_path: Path,
) -> None:
    result = subprocess.run([sys.executable, "-c", FIGURES_IN_A_FRESH_PROCESS, str(tmp_path)],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[0] == "pdf []"
    assert read_image(tmp_path / "grid.png").size and read_image(tmp_path / "matrix.png").size

"""Figures of what a model sees and how well it does, as the ToonVision article draws them.

Every function takes plain arrays (computed by `data_visualization.interpret` or scikit-learn) and
returns a matplotlib `Figure` (or an RGB array), so the figures can be saved, shown in a
notebook, or put on the report page. `save_figure` is the one way every figure of toonvision
is written (atomically, through `toonvision.fileio.atomic_path`). Figures are
`matplotlib.figure.Figure` objects, never pyplot's: nothing here calls `matplotlib.use` or
keeps a figure in pyplot's list, so a notebook keeps its backend and memory is freed when a
figure is dropped. Nothing here imports Keras.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from toonvision import ToonvisionError
from toonvision.fileio import atomic_path

HEATMAP_COLORMAP = "jet"
HEATMAP_ALPHA = 0.4
FIGURE_DPI = 100
TILE_WIDTH_INCHES = 1.6


@dataclass
class LayerShape:
    """One layer as the architecture diagram needs it.

    Attributes:
        name: the layer's name (or path, `outer/inner`, for nested models).
        type_name: the Keras class name, e.g. `Conv2D`.
        output_shape: the output shape with the batch dimension first (None).
    """

    name: str
    type_name: str
    output_shape: tuple


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Saves `figure` to `path`, which appears only once it is completely written.

    The format follows the extension (`.png` for every figure toonvision writes). The figure
    is drawn into a temporary file beside `path` that is synced and renamed over it, so a
    crash never leaves a torn image, and an earlier file of that name stays until then.

    Example:
        >>> save_figure(confusion_matrix_figure(matrix, classes), "out/m.png")  # doctest: +SKIP

    Args:
        figure: the figure (not closed: drop it, or show it again in a notebook).
        path: the file to write; missing parent folders are created.

    Returns:
        `path`, as a `Path`.
    """
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=FIGURE_DPI, bbox_inches="tight")
    return Path(path)


def overlay_heatmap(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = HEATMAP_ALPHA,
    colormap: str = HEATMAP_COLORMAP,
) -> np.ndarray:
    """Superimposes a heatmap on an image, as the Grad-CAM figures show it.

    Args:
        image: (height, width, 3) uint8 RGB.
        heatmap: (height, width) values in [0, 1] (resized to the image if needed).
        alpha: the heatmap's weight; the image keeps `1 - alpha`.
        colormap: a matplotlib colour map name (default `jet`: blue cold, red hot).

    Returns:
        (height, width, 3) uint8 RGB.
    """
    import cv2

    image = np.asarray(image)
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape != image.shape[:2]:
        heatmap = cv2.resize(heatmap, (image.shape[1], image.shape[0]))
    colours = matplotlib.colormaps[colormap](np.clip(heatmap, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * image[..., :3].astype(np.float32) + alpha * colours
    return np.clip(blended, 0, 255).astype(np.uint8)


def _grid(
    count: int, columns: int, tile_aspect: float, title_lines: int = 0,
    tile_width: float = TILE_WIDTH_INCHES,
) -> tuple:
    """A figure of `count` tiles; tile_aspect is height / width of one tile."""
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    tile_height = tile_width * tile_aspect + 0.18 * title_lines
    figure = Figure(figsize=(tile_width * columns, tile_height * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    return figure, list(axes.flat)


def image_grid_figure(
    images: Sequence[np.ndarray], titles: Sequence[str], columns: int = 8,
    suptitle: str | None = None, title_colours: Sequence[str] | None = None,
) -> Figure:
    """Shows images in a grid, each with a title (several lines allowed).

    Args:
        images: RGB uint8 images of one size (or grey 2-D arrays).
        titles: one title per image.
        columns: tiles per row.
        suptitle: a title over the whole grid.
        title_colours: a matplotlib colour per title (e.g. red for a mistake).
    """
    if len(images) != len(titles):
        raise ToonvisionError(f"{len(images)} images but {len(titles)} titles")
    if not images:
        figure = Figure(figsize=(4, 0.6))
        figure.text(0.5, 0.5, "(nothing to show)", ha="center", va="center")
        return figure
    height, width = np.asarray(images[0]).shape[:2]
    lines = max(title.count("\n") + 1 for title in titles)
    figure, axes = _grid(len(images), columns, height / width, lines)
    for index, (image, title) in enumerate(zip(images, titles, strict=True)):
        axes[index].imshow(image, cmap="gray" if np.asarray(image).ndim == 2 else None)
        colour = title_colours[index] if title_colours is not None else "black"
        axes[index].set_title(title, fontsize=8, color=colour)
    if suptitle:
        figure.suptitle(suptitle)
    figure.tight_layout()
    return figure


def prediction_title(
    true_class: str, error: float, output: float, predicted_class: str | None = None,
) -> str:
    """The article's tile title: the true label, E (error) and A (the model's output).

    Args:
        true_class: the true class name.
        error: distance of the confidence from the true class, 0 (right and sure) to 1.
        output: the model's output (a binary model's sigmoid output, else the probability of
            the predicted class).
        predicted_class: shown when given (multi-class models), since A alone does not say
            which class was predicted.
    """
    title = f"{true_class}\nE={error:.3f}  A={output:.3f}"
    return title if predicted_class is None else f"{title}\npred: {predicted_class}"


def heatmap_pairs_figure(
    images: Sequence[np.ndarray], heatmaps: Sequence[np.ndarray], titles: Sequence[str],
    columns: int = 8, title_colours: Sequence[str] | None = None,
) -> Figure:
    """Each image beside its Grad-CAM overlay: two tiles per image.

    Args:
        images: RGB uint8 images.
        heatmaps: one heatmap in [0, 1] per image.
        titles: one title per image (the overlay is titled `Grad-CAM`).
        columns: tiles per row (rounded down to an even number).
        title_colours: a colour per image title.
    """
    tiles, tile_titles, colours = [], [], []
    for index, (image, heatmap, title) in enumerate(zip(images, heatmaps, titles, strict=True)):
        tiles += [image, overlay_heatmap(image, heatmap)]
        tile_titles += [title, "Grad-CAM"]
        colours += [title_colours[index] if title_colours is not None else "black", "black"]
    return image_grid_figure(tiles, tile_titles, columns=max(2, columns - columns % 2),
                             title_colours=colours)


def activation_figure(
    layer_name: str, maps: np.ndarray, max_channels: int = 16, columns: int = 16,
) -> Figure:
    """The feature maps of one layer for one image, one grey tile per channel.

    Each channel is contrast-stretched on its own (bright = strong activation); channels
    that stay at zero for this image are shown black.

    Args:
        layer_name: shown as the title.
        maps: (height, width, channels).
        max_channels: how many of the first channels to show.
        columns: tiles per row.
    """
    channels = min(maps.shape[-1], max_channels)
    height, width = maps.shape[:2]
    figure, axes = _grid(channels, columns, height / width, 1, tile_width=0.8)
    for channel in range(channels):
        values = maps[..., channel].astype(np.float32)
        span = float(values.max() - values.min())
        shown = (values - values.min()) / span if span > 0 else np.zeros_like(values)
        axes[channel].imshow(shown, cmap="viridis", vmin=0, vmax=1)
        axes[channel].set_title(str(channel), fontsize=7)
    figure.suptitle(f"{layer_name}: {channels} of {maps.shape[-1]} channels, "
                    f"{height}x{width}", fontsize=10)
    figure.tight_layout()
    return figure


def kernels_figure(layer_name: str, patches: np.ndarray, columns: int = 16) -> Figure:
    """First-layer kernels as small RGB patches (each scaled to its own full range)."""
    figure, axes = _grid(len(patches), columns, 1.0, 1, tile_width=0.8)
    for index, patch in enumerate(patches):
        axes[index].imshow(patch, interpolation="nearest")
        axes[index].set_title(str(index), fontsize=7)
    figure.suptitle(f"{layer_name}: {len(patches)} kernels of "
                    f"{patches.shape[1]}x{patches.shape[2]} pixels", fontsize=10)
    figure.tight_layout()
    return figure


def filter_patterns_figure(
    layer_name: str, patterns: np.ndarray, filter_indices: Sequence[int], columns: int = 8,
) -> Figure:
    """The input patterns that excite each filter most (from gradient ascent).

    Only the central square of each pattern is shown (a filter's pattern repeats over the
    image, and a square shows it larger than a tall or wide strip).
    """
    height, width = patterns.shape[1:3]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    titles = [f"filter {index}" for index in filter_indices]
    figure = image_grid_figure([pattern[top:top + side, left:left + side] for pattern in patterns],
                               titles, columns=columns)
    figure.suptitle(f"{layer_name}: what {len(titles)} filters respond to most", fontsize=10)
    figure.tight_layout()
    return figure


def confusion_matrix_figure(matrix: np.ndarray, class_names: Sequence[str]) -> Figure:
    """The confusion matrix: rows are true classes, columns predicted classes."""
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(3.5, 0.55 * len(class_names) + 2.0)
    figure = Figure(figsize=(size, size * 0.85))
    axis = figure.subplots()
    display = ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(class_names))
    display.plot(ax=axis, cmap="Blues", colorbar=False,
                 xticks_rotation="vertical" if len(class_names) > 4 else "horizontal")
    axis.set_title("Confusion matrix (test images)")
    figure.tight_layout()
    return figure


def confidence_histograms_figure(
    probabilities: np.ndarray, y_true: np.ndarray, class_names: Sequence[str],
) -> Figure:
    """One histogram per true class of how confident the model was.

    For a binary model the x axis is the model's output (the probability of class 1, with
    the 0.5 threshold drawn), so each true class should pile up at its own end; for more
    classes it is the probability given to the true class (1 = right and sure).
    """
    probabilities = np.asarray(probabilities)
    binary = probabilities.shape[1] == 2
    count = len(class_names)
    columns = min(count, 4)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    bins = np.linspace(0.0, 1.0, 21)
    for class_index, axis in enumerate(axes.flat):
        if class_index >= count:
            axis.axis("off")
            continue
        members = np.asarray(y_true) == class_index
        values = probabilities[members, 1] if binary else probabilities[members, class_index]
        axis.hist(values, bins=bins, color=f"C{class_index % 10}", edgecolor="black")
        if binary:
            axis.axvline(0.5, color="red", linestyle="--", linewidth=1)
            axis.set_xlabel(f"output: P({class_names[1]})")
        else:
            axis.set_xlabel("P(true class)")
        axis.set_title(f"true {class_names[class_index]} ({int(members.sum())})", fontsize=10)
        axis.set_xlim(0, 1)
    axes.flat[0].set_ylabel("images")
    figure.tight_layout()
    return figure


def architecture_image(layers: Sequence[LayerShape]) -> tuple[np.ndarray | None, str]:
    """Draws the layered architecture diagram with visualkeras.

    visualkeras 0.2.0's `layered_view` reads `layer.output_shape`, which Keras 3 layers no
    longer have. It only needs `model.layers` with a name, an output shape and a type per
    layer, so it is given light stand-ins built from `layers` (one stand-in class per Keras
    layer type, named like it, so the legend and colours stay per type). The installed
    library is not changed.

    Args:
        layers: the layers in order (e.g. the leaf layers of a flattened model).

    Returns:
        `(image, note)`: an RGB array, or None when visualkeras cannot draw it, and a note
        saying which drawing was made (or why none was).
    """
    try:
        import visualkeras
    except ImportError as error:
        return None, f"visualkeras is not installed ({error}); see the layer table instead"
    stand_in_classes: dict[str, type] = {}
    stand_ins = []
    for layer in layers:
        cls = stand_in_classes.setdefault(layer.type_name, type(layer.type_name, (_LayerView,), {}))
        stand_ins.append(cls(layer.name, tuple(layer.output_shape)))
    model_view = _ModelView(stand_ins)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its own deprecation notices about its defaults
            picture = visualkeras.layered_view(model_view, legend=True, draw_volume=True,
                                               scale_xy=0.5, scale_z=1.0, max_z=60, spacing=12)
    except Exception as error:  # any drawing failure falls back to the layer table
        return None, f"visualkeras could not draw this model ({type(error).__name__}: {error})"
    return np.asarray(picture.convert("RGB")), "visualkeras layered view"


class _LayerView:
    """What visualkeras reads of a layer: its name and output shape."""

    def __init__(self, name: str, output_shape: tuple) -> None:
        self.name = name
        self.output_shape = output_shape


class _ModelView:
    """What visualkeras reads of a model: its list of layers."""

    def __init__(self, layers: list[_LayerView]) -> None:
        self.layers = layers


def architecture_figure(image: np.ndarray) -> Figure:
    """Wraps a drawn architecture diagram in a figure for saving."""
    height, width = image.shape[:2]
    figure = Figure(figsize=(width / FIGURE_DPI, height / FIGURE_DPI))
    axis = figure.add_axes((0, 0, 1, 1))
    axis.imshow(image)
    axis.axis("off")
    return figure

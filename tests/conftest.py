"""Shared fixtures: the real data sets beside the repository, generated screenshots with their
labelImg XML, generated crops, a tiny model, and quiet TensorFlow logs.

The writers are fixtures that return functions (`write_crops(folder, labels)`), so a test asks
for the ones it uses and calls them as often as it needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = REPOSITORY.parent / "shared" / "data"

# (label, xmin, ymin, xmax, ymax), as labelImg writes a box.
Box = tuple[str, int, int, int, int]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets in ../shared/data; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (only present beside a checkout "
                    "in the project's workspace and CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def author_model_path(shared_data: Path) -> Path:
    """The ToonVision author's own trained binary model (Keras 2 HDF5)."""
    path = shared_data / "toontown" / "toonvision_optimized_1e-5_run12.h5"
    if not path.is_file():
        pytest.skip(f"author's model not found at {path}")
    return path


def voc_xml(filename: str, boxes: Sequence[Box], size: tuple[int, int] | None = None) -> str:
    """labelImg's Pascal VOC XML for `boxes` in the image `filename`; `size` = (width, height)."""
    size_element = ("" if size is None else
                    f"<size><width>{size[0]}</width><height>{size[1]}</height>"
                    "<depth>3</depth></size>")
    objects = "".join(
        f"<object><name>{escape(label)}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        for label, xmin, ymin, xmax, ymax in boxes)
    return (f"<annotation><filename>{escape(filename)}</filename>{size_element}{objects}"
            "</annotation>")


@pytest.fixture
def write_voc() -> Callable[..., Path]:
    """`write_voc(xml_path, filename, boxes, size=None)` writes a labelImg XML file."""

    def write(xml_path: Path, filename: str, boxes: Sequence[Box],
              size: tuple[int, int] | None = None) -> Path:
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        xml_path.write_text(voc_xml(filename, boxes, size), encoding="utf-8")
        return xml_path

    return write


def crop_image(label: str, size: tuple[int, int], generator: np.random.Generator) -> np.ndarray:
    """A noisy crop whose brightness tells its class: cogs dark, toons bright, others grey."""
    brightness = 60 if label.startswith("cog_") else 190 if label.startswith("toon_") else 125
    return generator.normal(brightness, 30, (*size, 3)).clip(0, 255).astype(np.uint8)


@pytest.fixture
def write_crops() -> Callable[..., list[Path]]:
    """`write_crops(folder, labels, size=(48, 48), seed=0, data_dir=True)` writes one crop per
    label, named `<label>_<index>.png` as extraction names them; with `data_dir` they go where
    extraction puts them (`folder/unsorted/<cog|toon|label>/`), else straight into `folder`."""
    from toonvision.data_processing.images import write_image_atomic
    from toonvision.labels import label_prefix

    def write(folder: Path, labels: Sequence[str], size: tuple[int, int] = (48, 48),
              seed: int = 0, data_dir: bool = True) -> list[Path]:
        generator = np.random.default_rng(seed)
        paths = []
        for index, label in enumerate(labels):
            where = folder / "unsorted" / label_prefix(label) if data_dir else folder
            path = where / f"{label}_{index}.png"
            write_image_atomic(path, crop_image(label, size, generator))
            paths.append(path)
        return paths

    return write


@pytest.fixture
def write_screenshot(write_voc: Callable[..., Path]) -> Callable[..., Path]:
    """`write_screenshot(folder, stem, boxes, image=None, size=(160, 120))` writes
    `<stem>.png` (noise unless `image` is given) and its labelImg `<stem>.xml`; returns the
    image's path."""
    from toonvision.data_processing.images import write_image_atomic

    def write(folder: Path, stem: str, boxes: Sequence[Box], image: np.ndarray | None = None,
              size: tuple[int, int] = (160, 120), seed: int = 0) -> Path:
        if image is None:
            image = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3),
                                                         dtype=np.uint8)
        path = folder / f"{stem}.png"
        write_image_atomic(path, image)
        write_voc(folder / f"{stem}.xml", path.name, boxes, (image.shape[1], image.shape[0]))
        return path

    return write


@pytest.fixture
def tiny_model() -> Callable[..., object]:
    """`tiny_model(image_size=(96, 32), classes=2, logits=False)`: a small untrained seeded CNN
    taking uint8-range RGB: two convolutions, then one sigmoid output for two classes (a
    softmax otherwise), or logits with `logits=True`."""

    def build(image_size: tuple[int, int] = (96, 32), classes: int = 2, logits: bool = False):
        import keras

        keras.utils.set_random_seed(0)
        inputs = keras.Input((*image_size, 3))
        outputs = keras.layers.Rescaling(1 / 255)(inputs)
        outputs = keras.layers.Conv2D(4, 3, activation="relu")(outputs)
        outputs = keras.layers.MaxPooling2D()(outputs)
        outputs = keras.layers.Conv2D(4, 3, activation="relu")(outputs)
        outputs = keras.layers.Flatten()(outputs)
        units = 1 if classes == 2 else classes
        activation = None if logits else "sigmoid" if units == 1 else "softmax"
        outputs = keras.layers.Dense(units, activation=activation)(outputs)
        return keras.Model(inputs, outputs, name="tiny")

    return build

"""Saving and loading trained models with what a user needs to apply them.

A model file alone does not say which class is which or what image size it expects, so
every model we save gets a sidecar `<model file>.json` (`ModelInfo`). Models without one,
such as the ToonVision author's Keras 2 HDF5 model, are taken as binary cog/toon models
whose image size is read from the input shape.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toonvision import MissingFileError, ToonvisionError, defaults
from toonvision.fileio import atomic_path, write_text_atomic

SIDECAR_SUFFIX = ".json"


@dataclass
class ModelInfo:
    """What a saved model predicts and expects.

    Attributes:
        class_names: the classes in output order (binary sigmoid models: the negative class
            first, so output > 0.5 means `class_names[1]`).
        image_size: (height, width) of the input images (uint8 RGB; the model rescales).
        resize: how a crop becomes that input (`images.resize`): `stretch` (the default,
            and what a sidecar written before it existed means) or `letterbox`.
        task: the task's name or class-list spec (`binary`, `suit`, `king,queen`, ...).
        config: the configuration that trained it, if known.
        split_seed: the seed of the split it was evaluated on, if known.
        ratios: that split's train/validate/test ratios.
        extra: anything else worth keeping (metrics, run number).
        split: for a model kept by a comparison, what decides the crops it was trained,
            validated and tested on (`comparison.provenance.SplitRecord.to_dict`: the
            comparison, run, fold, seed, ratios, balance, grouping and data fingerprint);
            None for models saved otherwise or before it was recorded.
    """

    class_names: tuple[str, ...] = ("cog", "toon")
    image_size: tuple[int, int] = (600, 200)
    task: str = "binary"
    resize: str = defaults.RESIZE
    config: str | None = None
    split_seed: int | None = None
    ratios: tuple[float, float, float] = defaults.RATIOS
    extra: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, text: str) -> ModelInfo:
        data = json.loads(text)
        data["class_names"] = tuple(data.get("class_names", ("cog", "toon")))
        data["image_size"] = tuple(data.get("image_size", (600, 200)))
        data["ratios"] = tuple(data.get("ratios", defaults.RATIOS))
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """Returns where the `ModelInfo` of `model_path` is stored."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + SIDECAR_SUFFIX)


def load_model(path: str | os.PathLike) -> tuple[Any, ModelInfo]:
    """Loads a `.keras` model or a legacy Keras 2 `.h5` model, for inference.

    Args:
        path: the model file.

    Returns:
        The model (not compiled) and its `ModelInfo`: from the sidecar when present, else
        inferred (binary cog/toon, image size from the model's input shape).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if Keras cannot read it.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"model file {path} does not exist")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:
        raise ToonvisionError(f"{path}: Keras cannot load this model ({error})") from error
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        return model, ModelInfo.from_json(sidecar.read_text(encoding="utf-8"))
    input_shape = tuple(model.inputs[0].shape)
    outputs = int(model.outputs[0].shape[-1])
    info = ModelInfo(image_size=(int(input_shape[1]), int(input_shape[2])))
    if outputs > 1:
        info.class_names = tuple(f"class_{index}" for index in range(outputs))
        info.task = "label"
    return model, info


def save_model_atomic(model: Any, path: str | os.PathLike, info: ModelInfo) -> Path:
    """Saves `model` and its sidecar; each lands under its final name only when complete.

    Args:
        model: a Keras model.
        path: the target, ending in `.keras`.
        info: what the model predicts and expects.

    Returns:
        The model's path.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ToonvisionError(f"models are saved as .keras files; got {path}")
    with atomic_path(path) as temporary:
        model.save(temporary)
        write_text_atomic(sidecar_path(path), info.to_json())
    return path

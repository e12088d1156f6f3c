"""Training configurations as data: the article's built-in ones, TOML files, lookup by name.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from toonvision import MissingFileError, ToonvisionError, did_you_mean, unknown_name_error
from toonvision.model_utils.training.architecture import (
    HEADS,
    PADDINGS,
    TUPLE_FIELDS,
    check_architecture,
)

FAMILIES: tuple[str, ...] = ("cnn", "mlp")


OPTIMIZERS: dict[str, str] = {
    "adam": "Adam", "adamax": "Adamax", "nadam": "Nadam", "rmsprop": "RMSprop", "sgd": "SGD",
    "adadelta": "Adadelta", "adagrad": "Adagrad", "ftrl": "Ftrl",
}


HIDDEN_ACTIVATIONS: tuple[str, ...] = ("relu", "sigmoid", "linear")


OUTPUT_ACTIVATIONS: tuple[str, ...] = ("auto", "none")


PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")


# How the augmentation warp samples the image (see `augment.augment_images`).
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "nearest")


@dataclass(frozen=True)
class TrainingConfig:
    """One training configuration: the model family, its architecture, optimizer and training.

    The fields from `conv_filters` on describe the CNN (the MLP ignores them); their defaults
    are the article's CNN (see `architecture`). Those marked "per block" take one value for
    every block or a list with one value per block of `conv_filters`.

    Attributes:
        name: the configuration's name (used in logs, file names and plots).
        family: "cnn" (the ToonVision article's) or "mlp" (the Pokemon deck's).
        learning_rate: the optimizer's initial learning rate.
        decay: Keras 2 style decay, learning_rate / (1 + decay * step), expressed as
            `keras.optimizers.schedules.InverseTimeDecay(learning_rate, 1, decay)`.
        dropout: dropout rate before the output layer (0 = none).
        augmentation: random horizontal flip (50%), rotation within +/-7.5% of a turn and zoom
            within +/-20%, on training batches only.
        interpolation: how the augmentation's warp samples the image: "bilinear" (the Keras
            layers' default, the article's) or "nearest" (about 3x cheaper to compute).
        optimizer: one of adam, adamax, nadam, rmsprop, sgd, adadelta, adagrad, ftrl.
        batch_size: training batch size.
        epochs: training epochs (the most, with early stopping).
        hidden_units: the MLP's hidden layer sizes.
        hidden_activation: the MLP's hidden activation: relu, sigmoid or linear (no
            non-linearity, "ReLU removed").
        output_activation: "auto" (sigmoid for two classes, softmax otherwise) or "none"
            (logits, trained with a from-logits loss).
        early_stopping_patience: epochs without a better validation loss before stopping, the
            best weights being restored; None = train every epoch.
        precision: "auto" (for the CNN, bfloat16 compute where the CPU has native bfloat16;
            float32 otherwise and for the MLP), "float32" or "bfloat16" (Keras
            `mixed_bfloat16`; the output layer stays float32).
        conv_filters: the convolution blocks, one entry per block: the filters of each of its
            convolutions (the article's 16, 32, 32).
        convs_per_block: Conv2D layers per block (per block; the article's 1).
        kernel_size: the convolutions' kernel side (the article's 3).
        padding: "valid" (the article's: each convolution loses kernel_size - 1 pixels per
            side length) or "same" (zero padding keeps the size).
        pool_input: whether the rescaled input is 2x2 max pooled before the first block (the
            article's MaxPooling2D first; `Trainer` then trains on pre-pooled images).
        block_pooling: whether a block ends with MaxPooling2D(2) (per block; the article's
            true).
        batch_norm: each convolution without bias, then BatchNormalization, then ReLU
            (instead of a convolution with bias and ReLU inside).
        block_dropout: dropout rate after a block, after its pooling (per block; 0 = none).
        head: how the last block's feature maps reach the output: "flatten" (the article's)
            or "global_average" (GlobalAveragePooling2D: one value per channel).
    """

    name: str
    family: str = "cnn"
    learning_rate: float = 1e-3
    decay: float = 0.0
    dropout: float = 0.0
    augmentation: bool = False
    interpolation: str = "bilinear"
    optimizer: str = "adam"
    batch_size: int = 32
    epochs: int = 25
    hidden_units: tuple[int, ...] = (256, 128)
    hidden_activation: str = "relu"
    output_activation: str = "auto"
    early_stopping_patience: int | None = None
    precision: str = "auto"
    conv_filters: tuple[int, ...] = (16, 32, 32)
    convs_per_block: int | tuple[int, ...] = 1
    kernel_size: int = 3
    padding: str = "valid"
    pool_input: bool = True
    block_pooling: bool | tuple[bool, ...] = True
    batch_norm: bool = False
    block_dropout: float | tuple[float, ...] = 0.0
    head: str = "flatten"

    def __post_init__(self) -> None:
        for attribute in TUPLE_FIELDS:      # TOML and JSON give lists
            if isinstance(getattr(self, attribute), list):
                object.__setattr__(self, attribute, tuple(getattr(self, attribute)))
        choices = {
            "family": FAMILIES, "optimizer": tuple(OPTIMIZERS),
            "hidden_activation": HIDDEN_ACTIVATIONS, "output_activation": OUTPUT_ACTIVATIONS,
            "precision": PRECISIONS, "interpolation": INTERPOLATIONS, "padding": PADDINGS,
            "head": HEADS,
        }
        for attribute, allowed in choices.items():
            value = getattr(self, attribute)
            if value not in allowed:
                hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
                raise ToonvisionError(f"config {self.name!r}: {attribute} must be one of "
                                      f"{', '.join(allowed)}; got {value!r}{hint}")
        if not 0.0 <= self.dropout < 1.0:
            raise ToonvisionError(f"config {self.name!r}: dropout must be in [0, 1); "
                                  f"got {self.dropout}")
        if self.learning_rate <= 0 or self.decay < 0:
            raise ToonvisionError(f"config {self.name!r}: learning_rate must be > 0 and decay >= "
                                  "0; "
                                  f"got {self.learning_rate} and {self.decay}")
        if self.batch_size < 1 or self.epochs < 1:
            raise ToonvisionError(f"config {self.name!r}: batch_size and epochs must be >= 1; "
                                  f"got {self.batch_size} and {self.epochs}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 0:
            raise ToonvisionError(f"config {self.name!r}: early_stopping_patience must be >= 0 or "
                                  f"None; got {self.early_stopping_patience}")
        if any(units < 1 for units in self.hidden_units):
            raise ToonvisionError(f"config {self.name!r}: hidden_units must be positive; "
                                  f"got {self.hidden_units}")
        object.__setattr__(self, "hidden_units", tuple(int(u) for u in self.hidden_units))
        check_architecture(self)

    def replace(self, **changes: Any) -> TrainingConfig:
        """Returns a copy with `changes` applied (validated like a new config).

        Raises:
            ToonvisionError: for an unknown field (with the closest known one) or a bad value.
        """
        known = [item.name for item in dataclasses.fields(self)]
        for name in changes:
            if name not in known:
                raise unknown_name_error("config field", name, known)
        return dataclasses.replace(self, **changes)


_OPTIMIZED = TrainingConfig(name="optimized", augmentation=True, dropout=0.9, decay=1e-5)


# The article names its optimized variants by their decay (its model_kwargs:
# `Adam(learning_rate=LR, decay=1e-5)` with LR = 1e-3); the learning-rate variants say so.
BUILTIN_CONFIGS: dict[str, TrainingConfig] = {
    "baseline": TrainingConfig(name="baseline"),
    "optimized": _OPTIMIZED,
    "optimized_1e-4": _OPTIMIZED.replace(name="optimized_1e-4", decay=1e-4),
    "optimized_1e-5": _OPTIMIZED.replace(name="optimized_1e-5", decay=1e-5),
    "optimized_lr1e-4": _OPTIMIZED.replace(name="optimized_lr1e-4", learning_rate=1e-4),
    "optimized_lr1e-5": _OPTIMIZED.replace(name="optimized_lr1e-5", learning_rate=1e-5),
    "mlp": TrainingConfig(name="mlp", family="mlp", epochs=200, early_stopping_patience=5),
}


def load_config_file(path: str | Path) -> dict[str, TrainingConfig]:
    """Reads configurations from a TOML file of `[configs.NAME]` tables.

    Each table sets `TrainingConfig` fields; `base = "NAME"` starts from a built-in config or
    one defined earlier in the file. Example:

        [configs.optimized_small_batch]
        base = "optimized"
        batch_size = 16
        learning_rate = 5e-4

    `early_stopping_patience = false` turns early stopping off (TOML has no null).

    Args:
        path: the TOML file.

    Returns:
        The configurations by name, in file order.

    Raises:
        MissingFileError: when the file does not exist (also a `FileNotFoundError`).
        ToonvisionError: when the file is not valid TOML or a table names an unknown field
            (with a did-you-mean suggestion), base or value.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"config file {path} not found")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ToonvisionError(f"{path}: not valid TOML: {error}") from error
    tables = document.get("configs")
    if not isinstance(tables, dict) or not tables:
        raise ToonvisionError(f"{path}: no [configs.NAME] tables found")
    configs: dict[str, TrainingConfig] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ToonvisionError(f"{path}: configs.{name} must be a table")
        configs[name] = config_from_table(name, table, {**BUILTIN_CONFIGS, **configs},
                                          f"{path}: configs.{name}")
    return configs


def config_from_table(name: str, table: dict[str, Any], known: dict[str, TrainingConfig],
                      where: str) -> TrainingConfig:
    """Makes a configuration from a table of `TrainingConfig` fields (TOML or JSON).

    Args:
        name: the configuration's name.
        table: its fields (without `name`); `base = "NAME"` starts from the configuration
            `known[NAME]` instead of the `TrainingConfig` defaults;
            `early_stopping_patience = false` means None (TOML has no null); lists become
            tuples (see `TrainingConfig`).
        known: the configurations a `base` may name.
        where: where the table is, for messages (e.g. `FILE: configs.NAME`).

    Raises:
        ToonvisionError: for an unknown field or base (with the closest known one) or a bad
            value; the message starts with `where`.
    """
    settings = {key: value for key, value in table.items() if key != "base"}
    base_name = table.get("base")
    fields = ["base", *(item.name for item in dataclasses.fields(TrainingConfig)
                        if item.name != "name")]
    for key in settings:
        if key not in fields:
            raise ToonvisionError(f"{where}: {unknown_name_error('field', key, fields)}")
    if base_name is not None and base_name not in known:
        raise ToonvisionError(f"{where}: {unknown_name_error('base', base_name, known)}")
    if settings.get("early_stopping_patience") is False:     # TOML has no null
        settings["early_stopping_patience"] = None
    base = known[base_name] if base_name is not None else TrainingConfig(name=name)
    try:
        return base.replace(name=name, **settings)
    except (TypeError, ToonvisionError) as error:
        raise ToonvisionError(f"{where}: {error}") from error


def resolve_configs(names: Sequence[str],
                    config_file: str | Path | None = None) -> list[TrainingConfig]:
    """Looks configurations up by name among the built-in ones and those of `config_file`.

    Args:
        names: configuration names, e.g. ["baseline", "optimized"].
        config_file: an optional TOML file (see `load_config_file`); its configs win over
            built-in ones of the same name.

    Returns:
        The configurations, in the order of `names`.

    Raises:
        ToonvisionError: naming an unknown name, the closest known one and all of them.
    """
    known = dict(BUILTIN_CONFIGS)
    if config_file is not None:
        known.update(load_config_file(config_file))
    if not names:
        raise ToonvisionError(f"no configuration named; known: {', '.join(known)}")
    for name in names:
        if name not in known:
            raise unknown_name_error("configuration", name, known)
    return [known[name] for name in names]


@cache
def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX-BF16 or AVX512-BF16 on Linux)."""
    try:
        cpu_info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in cpu_info.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"amx_bf16", "avx512_bf16"})
    return False


def dtype_policy_name(precision: str, family: str = "cnn") -> str:
    """The Keras dtype policy for a config's `precision` ("auto", "float32" or "bfloat16").

    "auto" is bfloat16 compute for the CNN where the CPU has native bfloat16 (1.7-2.3x faster
    here) and float32 otherwise; the MLP, limited by memory traffic rather than arithmetic,
    gains nothing from bfloat16 and stays float32.
    """
    if precision not in PRECISIONS:
        raise ToonvisionError(f"precision must be one of {', '.join(PRECISIONS)}; got "
                              f"{precision!r}")
    if precision == "auto":
        native = family == "cnn" and cpu_has_native_bfloat16()
        precision = "bfloat16" if native else "float32"
    return "mixed_bfloat16" if precision == "bfloat16" else "float32"

"""The CNN's architecture as data: the fields of a `TrainingConfig` that shape the CNN, their
validation, the blocks they describe, and the feature map size they leave.

No Keras here (configurations are read where Keras is not loaded); `models.make_model`
builds the layers from `cnn_blocks`. The article's CNN is the default of every field:

    Rescaling -> MaxPooling2D(2)                          pool_input = true
    -> [Conv2D(f, 3, relu) -> MaxPooling2D(2)]            conv_filters = [16, 32, 32],
                                                          convs_per_block = 1, kernel_size = 3,
                                                          padding = "valid", block_pooling = true
    -> Flatten -> [Dropout] -> Dense                      head = "flatten", dropout
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from toonvision import ToonvisionError

if TYPE_CHECKING:
    from toonvision.model_utils.training.configs import TrainingConfig

# Convolution padding, as Keras names it: "valid" loses kernel_size - 1 pixels per
# convolution, "same" keeps the size.
PADDINGS: tuple[str, ...] = ("valid", "same")


# How the last block's feature maps become the output layer's input.
HEADS: tuple[str, ...] = ("flatten", "global_average")


# The fields that may be one value for every block or a list with one value per block.
PER_BLOCK_FIELDS: tuple[str, ...] = ("convs_per_block", "block_pooling", "block_dropout")


# Every architecture field whose TOML/JSON list becomes a tuple.
TUPLE_FIELDS: tuple[str, ...] = ("conv_filters", *PER_BLOCK_FIELDS)


# The largest image side `cnn_minimum_side` looks at.
_LARGEST_SIDE = 100_000


@dataclass(frozen=True)
class CnnBlock:
    """One convolution block of the CNN, as `cnn_blocks` reads it from a configuration.

    Attributes:
        filters: channels of each of its convolutions.
        convolutions: Conv2D layers in the block (each followed by batch normalization and
            ReLU when the configuration has `batch_norm`, else with ReLU inside).
        pooling: whether the block ends with MaxPooling2D(2).
        dropout: dropout rate after the block (0 = none).
    """

    filters: int
    convolutions: int
    pooling: bool
    dropout: float


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_rate(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1


def _shown(value: Any) -> str:
    """A field's value as a message shows it: tuples as the lists TOML writes."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def _per_block(value: Any, blocks: int) -> tuple[Any, ...]:
    """A per-block field's value for each block: one value repeated, or the list itself."""
    return tuple(value) if isinstance(value, tuple) else (value,) * blocks


def check_architecture(config: TrainingConfig) -> None:
    """Validates the CNN fields of `config` (see `TrainingConfig`).

    Raises:
        ToonvisionError: naming the configuration, the field, what is allowed and what was
            given.
    """
    def fail(message: str) -> None:
        raise ToonvisionError(f"config {config.name!r}: {message}")

    filters = config.conv_filters
    if (not isinstance(filters, tuple) or not filters
            or not all(_is_int(value) and value >= 1 for value in filters)):
        fail(f"conv_filters must be a non-empty list of whole numbers >= 1 (one per block); "
             f"got {_shown(filters)}")
    if not _is_int(config.kernel_size) or config.kernel_size < 1:
        fail(f"kernel_size must be a whole number >= 1; got {config.kernel_size!r}")
    for name in ("pool_input", "batch_norm"):
        if not isinstance(getattr(config, name), bool):
            fail(f"{name} must be true or false; got {getattr(config, name)!r}")
    checks = {
        "convs_per_block": (lambda value: _is_int(value) and value >= 1, "a whole number >= 1"),
        "block_pooling": (lambda value: isinstance(value, bool), "true or false"),
        "block_dropout": (_is_rate, "a rate in [0, 1)"),
    }
    for name, (valid, allowed) in checks.items():
        value = getattr(config, name)
        values = value if isinstance(value, tuple) else (value,)
        if isinstance(value, tuple) and len(value) != len(filters):
            fail(f"{name} must be one value or a list of {len(filters)} (one per block of "
                 f"conv_filters {_shown(filters)}); got {_shown(value)}")
        if not values or not all(valid(item) for item in values):
            fail(f"{name} must be {allowed}, or a list of them, one per block; got "
                 f"{_shown(value)}")


def cnn_blocks(config: TrainingConfig) -> list[CnnBlock]:
    """The convolution blocks `config` describes, in order.

    Example:
        >>> from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
        >>> [block.filters for block in cnn_blocks(BUILTIN_CONFIGS["baseline"])]
        [16, 32, 32]
    """
    count = len(config.conv_filters)
    return [CnnBlock(filters, convolutions, pooling, float(dropout))
            for filters, convolutions, pooling, dropout in zip(
                config.conv_filters, _per_block(config.convs_per_block, count),
                _per_block(config.block_pooling, count), _per_block(config.block_dropout, count),
                strict=True)]


def cnn_output_size(side: int, config: TrainingConfig) -> int:
    """The CNN's last feature map size along one image side of `side` pixels (0 = too small).

    Follows Keras' arithmetic: MaxPooling2D(2) gives side // 2, a "valid" convolution
    side - kernel_size + 1, a "same" one keeps the side.

    Example:
        >>> from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
        >>> article = BUILTIN_CONFIGS["baseline"]
        >>> cnn_output_size(600, article), cnn_output_size(200, article)
        (35, 10)
    """
    if config.pool_input:
        side //= 2
    shrink = config.kernel_size - 1 if config.padding == "valid" else 0
    for block in cnn_blocks(config):
        for _ in range(block.convolutions):
            side = max(side - shrink, 0)
        if block.pooling:
            side //= 2
    return side


def cnn_minimum_side(config: TrainingConfig) -> int:
    """The smallest image side the CNN of `config` leaves at least one pixel of (44 for the
    article's)."""
    low, high = 1, _LARGEST_SIDE          # the output size grows with the side: bisect
    while low < high:
        middle = (low + high) // 2
        if cnn_output_size(middle, config) >= 1:
            high = middle
        else:
            low = middle + 1
    return low


def check_image_size(config: TrainingConfig, image_size: Sequence[int]) -> None:
    """Raises a clear error when `image_size` = (height, width) is too small for the CNN.

    Raises:
        ToonvisionError: naming the size, the configuration and the smallest side it takes.
    """
    if min(cnn_output_size(int(side), config) for side in image_size) < 1:
        raise ToonvisionError(
            f"image_size {tuple(image_size)} is too small for the CNN of config "
            f"{config.name!r}: each side must be at least {cnn_minimum_side(config)} pixels")

"""The article's models, their training configurations, and a fast trainer for repeated runs.

`make_model` builds the ToonVision CNN (or the Pokemon deck's MLP) from a `TrainingConfig`.
`Trainer` builds and compiles that model once and then trains it many times, re-initialising
weights, optimizer state and random seeds for each run from the run's seed: the ~3 s spent
building and tracing a Keras model is paid once per configuration, not once per run.

Speed, measured on a 2-core CPU with AMX-BF16 (docs/training.md has the figures):
- augmentation is one OpenCV affine warp per image in the data feed (`toonvision.augment`)
  instead of Keras RandomRotation + RandomZoom layers (~5 ms per image each on a CPU);
- the `mixed_bfloat16` dtype policy where the CPU computes bfloat16 natively (the output
  layer stays float32);
- one compiled model per configuration, re-initialised per run;
- for the MLP, `steps_per_execution` and XLA on TensorFlow (its fused Adam update);
- the CNN's first Rescaling + MaxPooling2D done on the uint8 images before training (exactly
  the same numbers, a quarter of the data to move).
The training path uses only `keras.*`, numpy and OpenCV, so it runs on any Keras backend.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import keras
import numpy as np

from toonvision.augment import INTERPOLATIONS, TrainingFeed, max_pool_2x2

LOGGER = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = ("cnn", "mlp")
OPTIMIZERS: dict[str, str] = {
    "adam": "Adam", "adamax": "Adamax", "nadam": "Nadam", "rmsprop": "RMSprop", "sgd": "SGD",
    "adadelta": "Adadelta", "adagrad": "Adagrad", "ftrl": "Ftrl",
}
HIDDEN_ACTIVATIONS: tuple[str, ...] = ("relu", "sigmoid", "linear")
OUTPUT_ACTIVATIONS: tuple[str, ...] = ("auto", "none")
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")
CNN_FILTERS: tuple[int, ...] = (16, 32, 32)
CNN_MINIMUM_SIDE = 44       # smallest image side that survives the CNN's pooling and convolutions
# Batches per compiled call for the MLP: its steps are so small that Python overhead between
# steps dominates (measured in benchmarks/bench_mlp.py).
MLP_STEPS_PER_EXECUTION = 16
EVALUATION_BATCH_SIZE = 64


@dataclass(frozen=True)
class TrainingConfig:
    """One training configuration: the model family, optimizer and training settings.

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

    def __post_init__(self) -> None:
        choices = {
            "family": FAMILIES, "optimizer": tuple(OPTIMIZERS),
            "hidden_activation": HIDDEN_ACTIVATIONS, "output_activation": OUTPUT_ACTIVATIONS,
            "precision": PRECISIONS, "interpolation": tuple(INTERPOLATIONS),
        }
        for attribute, allowed in choices.items():
            if getattr(self, attribute) not in allowed:
                raise ValueError(f"config {self.name!r}: {attribute} must be one of "
                                 f"{', '.join(allowed)}; got {getattr(self, attribute)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"config {self.name!r}: dropout must be in [0, 1); "
                             f"got {self.dropout}")
        if self.learning_rate <= 0 or self.decay < 0:
            raise ValueError(f"config {self.name!r}: learning_rate must be > 0 and decay >= 0; "
                             f"got {self.learning_rate} and {self.decay}")
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError(f"config {self.name!r}: batch_size and epochs must be >= 1; "
                             f"got {self.batch_size} and {self.epochs}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 0:
            raise ValueError(f"config {self.name!r}: early_stopping_patience must be >= 0 or "
                             f"None; got {self.early_stopping_patience}")
        if any(units < 1 for units in self.hidden_units):
            raise ValueError(f"config {self.name!r}: hidden_units must be positive; "
                             f"got {self.hidden_units}")
        object.__setattr__(self, "hidden_units", tuple(int(u) for u in self.hidden_units))

    def replace(self, **changes: Any) -> TrainingConfig:
        """Returns a copy with `changes` applied (validated like a new config)."""
        unknown = set(changes) - {item.name for item in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}; known: "
                             f"{', '.join(item.name for item in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)


_OPTIMIZED = TrainingConfig(name="optimized", augmentation=True, dropout=0.9, decay=1e-5)
BUILTIN_CONFIGS: dict[str, TrainingConfig] = {
    "baseline": TrainingConfig(name="baseline"),
    "optimized": _OPTIMIZED,
    "optimized_1e-4": _OPTIMIZED.replace(name="optimized_1e-4", learning_rate=1e-4),
    "optimized_1e-5": _OPTIMIZED.replace(name="optimized_1e-5", learning_rate=1e-5),
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
        FileNotFoundError: when the file does not exist.
        ValueError: when the file is not valid TOML or a table names an unknown field, base
            or value.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from error
    tables = document.get("configs")
    if not isinstance(tables, dict) or not tables:
        raise ValueError(f"{path}: no [configs.NAME] tables found")
    field_names = {item.name for item in dataclasses.fields(TrainingConfig)} - {"name"}
    configs: dict[str, TrainingConfig] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: configs.{name} must be a table")
        settings = dict(table)
        base_name = settings.pop("base", None)
        unknown = set(settings) - field_names
        if unknown:
            raise ValueError(f"{path}: configs.{name}: unknown field(s) {sorted(unknown)}; "
                             f"known: base, {', '.join(sorted(field_names))}")
        known = {**BUILTIN_CONFIGS, **configs}
        if base_name is not None and base_name not in known:
            raise ValueError(f"{path}: configs.{name}: unknown base {base_name!r}; known: "
                             f"{', '.join(known)}")
        if "hidden_units" in settings:
            settings["hidden_units"] = tuple(settings["hidden_units"])
        if settings.get("early_stopping_patience") is False:     # TOML has no null
            settings["early_stopping_patience"] = None
        base = known[base_name] if base_name is not None else TrainingConfig(name=name)
        try:
            configs[name] = base.replace(name=name, **settings)
        except TypeError as error:
            raise ValueError(f"{path}: configs.{name}: {error}") from error
    return configs


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
        ValueError: naming an unknown name and listing the known ones.
    """
    known = dict(BUILTIN_CONFIGS)
    if config_file is not None:
        known.update(load_config_file(config_file))
    if not names:
        raise ValueError(f"no configuration named; known: {', '.join(known)}")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown configuration(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(known)}")
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
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        native = family == "cnn" and cpu_has_native_bfloat16()
        precision = "bfloat16" if native else "float32"
    return "mixed_bfloat16" if precision == "bfloat16" else "float32"


def uses_xla(config: TrainingConfig) -> bool:
    """Whether `Trainer` compiles the train step with XLA (`jit_compile`).

    Only the MLP on the TensorFlow backend: XLA fuses its Adam update over 3 million weights
    (2.2x faster per epoch here), while it makes the CNN ~4x slower on a CPU. The JAX backend
    always compiles with XLA; the torch backend is left as is.
    """
    return config.family == "mlp" and keras.backend.backend() == "tensorflow"


def cnn_output_size(side: int) -> int:
    """The CNN's feature map size along one image side of `side` pixels (0 = too small)."""
    side //= 2
    for _ in CNN_FILTERS:
        side = max(side - 2, 0) // 2
    return side


def make_model(config: TrainingConfig, num_classes: int,
               image_size: tuple[int, int]) -> keras.Model:
    """Builds the model of `config` (uncompiled) for images of `image_size` = (height, width).

    The CNN is the ToonVision article's: Rescaling(1/255) -> MaxPooling2D(2) ->
    [Conv2D(f, 3, relu) -> MaxPooling2D(2)] for f in 16, 32, 32 -> Flatten -> [Dropout] ->
    Dense(1, sigmoid) for two classes or Dense(num_classes, softmax). The MLP is the Pokemon
    deck's: Rescaling -> Flatten -> Dense(units, activation) per hidden layer -> [Dropout] ->
    the same output layer. Augmentation is not a layer: `Trainer` applies it to training
    batches (see `toonvision.augment`), so the model is the same in training and inference.

    Args:
        config: the configuration.
        num_classes: number of classes (>= 2).
        image_size: (height, width) of the input images.

    Returns:
        A functional `keras.Model` taking (N, height, width, 3) float RGB in 0-255.
    """
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes; got {num_classes}")
    height, width = image_size
    if config.family == "cnn" and min(cnn_output_size(height), cnn_output_size(width)) < 1:
        raise ValueError(f"image_size {tuple(image_size)} is too small for the CNN: each side "
                         f"must be at least {CNN_MINIMUM_SIDE} pixels")
    policy = dtype_policy_name(config.precision, config.family)
    inputs = keras.Input(shape=(height, width, 3), name="image")
    features = keras.layers.Rescaling(1.0 / 255, dtype=policy, name="rescaling")(inputs)
    if config.family == "cnn":
        features = keras.layers.MaxPooling2D(2, dtype=policy, name="pool_0")(features)
        for index, filters in enumerate(CNN_FILTERS, start=1):
            features = keras.layers.Conv2D(filters, 3, activation="relu", dtype=policy,
                                           name=f"conv_{index}")(features)
            features = keras.layers.MaxPooling2D(2, dtype=policy, name=f"pool_{index}")(features)
        features = keras.layers.Flatten(dtype=policy, name="flatten")(features)
    else:
        features = keras.layers.Flatten(dtype=policy, name="flatten")(features)
        for index, units in enumerate(config.hidden_units, start=1):
            features = keras.layers.Dense(units, activation=config.hidden_activation,
                                          dtype=policy, name=f"hidden_{index}")(features)
    if config.dropout > 0:
        features = keras.layers.Dropout(config.dropout, dtype=policy, name="dropout")(features)
    binary = num_classes == 2
    if config.output_activation == "none":
        activation = None
    else:
        activation = "sigmoid" if binary else "softmax"
    outputs = keras.layers.Dense(1 if binary else num_classes, activation=activation,
                                 dtype="float32", name="output")(features)
    return keras.Model(inputs, outputs, name=f"toonvision_{config.family}")


@keras.saving.register_keras_serializable(package="toonvision")
class SparseMacroF1(keras.metrics.F1Score):
    """Macro-averaged F1 for integer class labels (Keras' F1Score wants one-hot labels).

    Args:
        num_classes: number of classes.
        name: the metric's name in logs.
        dtype: the metric's dtype.
    """

    def __init__(self, num_classes: int, name: str = "macro_f1", dtype: Any = None) -> None:
        super().__init__(average="macro", name=name, dtype=dtype)
        self.num_classes = num_classes

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        super().update_state(keras.ops.one_hot(labels, self.num_classes), y_pred,
                             sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="toonvision")
class LogitPrecision(keras.metrics.Precision):
    """Precision of a binary model that outputs a logit (applies the sigmoid first)."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        super().update_state(y_true, keras.ops.sigmoid(y_pred), sample_weight)


@keras.saving.register_keras_serializable(package="toonvision")
class LogitRecall(keras.metrics.Recall):
    """Recall of a binary model that outputs a logit (applies the sigmoid first)."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        super().update_state(y_true, keras.ops.sigmoid(y_pred), sample_weight)


def make_optimizer(config: TrainingConfig) -> keras.optimizers.Optimizer:
    """The optimizer of `config`, with Keras 2 style decay as an InverseTimeDecay schedule."""
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.decay > 0:
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            config.learning_rate, decay_steps=1, decay_rate=config.decay)
    optimizer_class = getattr(keras.optimizers, OPTIMIZERS[config.optimizer])
    return optimizer_class(learning_rate=learning_rate)


def loss_and_metrics(config: TrainingConfig,
                     num_classes: int) -> tuple[keras.losses.Loss, list[keras.metrics.Metric]]:
    """The loss and metrics for the task: binary (2 classes) or multiclass.

    Binary: binary cross-entropy with accuracy, precision and recall (class 1 is positive).
    Multiclass: sparse categorical cross-entropy with accuracy and macro F1.
    """
    logits = config.output_activation == "none"
    if num_classes == 2:
        loss = keras.losses.BinaryCrossentropy(from_logits=logits)
        if logits:
            metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),
                       LogitPrecision(name="precision"), LogitRecall(name="recall")]
        else:
            metrics = [keras.metrics.BinaryAccuracy(name="accuracy"),
                       keras.metrics.Precision(name="precision"),
                       keras.metrics.Recall(name="recall")]
        return loss, metrics
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    return loss, [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                  SparseMacroF1(num_classes)]


@dataclass
class RunResult:
    """What one training run produced.

    Attributes:
        config: the configuration's name.
        seed: the run's seed.
        history: per-epoch values: loss, accuracy, val_loss, val_accuracy, plus
            precision/recall (binary) or macro_f1 (multiclass) and their val_ versions.
        validation_metrics: metrics of the final (or restored best) model on validation.
        test_metrics: the same metrics on the test split (empty when it is empty).
        epochs_run: epochs trained (fewer than configured when early stopping stopped).
        setup_seconds: model build (first run only), re-initialisation and tracing.
        train_seconds: training and evaluation.
    """

    config: str
    seed: int
    history: dict[str, list[float]]
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    epochs_run: int
    setup_seconds: float
    train_seconds: float


def targets_for(y: np.ndarray, num_classes: int) -> np.ndarray:
    """The training targets for class indices `y`: (N, 1) float32 for binary, (N,) int64."""
    y = np.asarray(y)
    if num_classes == 2:
        return y.reshape(-1, 1).astype(np.float32)
    return y.astype(np.int64)


class _EpochReporter(keras.callbacks.Callback):
    """Passes each epoch's logs to a plain function."""

    def __init__(self, report: Callable[[int, dict[str, float]], None]) -> None:
        super().__init__()
        self.report = report

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.report(epoch, {key: float(value) for key, value in (logs or {}).items()})


def training_model_after_first_pooling(model: keras.Model) -> keras.Model:
    """A model sharing `model`'s layers that takes images already 2x2 max-pooled.

    The CNN begins Rescaling -> MaxPooling2D(2). Rescaling is monotonic, so pooling the uint8
    images first (`augment.max_pool_2x2`) and then rescaling gives exactly the same numbers;
    training on pooled images moves a quarter of the data and skips a full-size pass.

    Args:
        model: a CNN from `make_model`.

    Returns:
        A functional model with input (height // 2, width // 2, 3) and the same weights.
    """
    height, width = model.input_shape[1:3]
    inputs = keras.Input(shape=(height // 2, width // 2, 3), name="pooled_image")
    features = model.get_layer("rescaling")(inputs)
    names = [layer.name for layer in model.layers]
    for layer in model.layers[names.index("pool_0") + 1:]:
        features = layer(features)
    return keras.Model(inputs, features, name=f"{model.name}_after_pool_0")


class Trainer:
    """Builds and compiles one model per (config, num_classes, image_size) ONCE, and
    re-initialises its weights and optimizer state for every run (fresh weights, no new trace).

    For the CNN, training and evaluation run on a model that shares every weight with
    `Trainer.model` but takes 2x2 max-pooled images (see
    `training_model_after_first_pooling`): the results are the same, the data four times
    smaller. Keras callbacks passed to `run` therefore see that training model; the full model
    (600x200 input) is `Trainer.model`.

    Args:
        config: the training configuration.
        num_classes: number of classes (2 = binary with a sigmoid output).
        image_size: (height, width) of the images.
    """

    def __init__(self, config: TrainingConfig, num_classes: int,
                 image_size: tuple[int, int]) -> None:
        self.config = config
        self.num_classes = num_classes
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.pools_input = config.family == "cnn"
        self._model: keras.Model | None = None
        self._training_model: keras.Model | None = None
        self._initial_optimizer_state: list[np.ndarray] = []
        self._pending_setup_seconds = 0.0
        self._cached_images: np.ndarray | None = None
        self._cached_inputs: np.ndarray | None = None

    @property
    def model(self) -> keras.Model:
        """The full model as trained by the last run (built on first access)."""
        if self._model is None:
            self._build()
        return self._model

    @property
    def training_model(self) -> keras.Model:
        """The compiled model `fit` trains (the CNN after its first pooling; else the model)."""
        if self._training_model is None:
            self._build()
        return self._training_model

    def _build(self) -> None:
        """Builds, compiles and traces the model once (a tiny fit), timing it as set-up."""
        start = time.perf_counter()
        model = make_model(self.config, self.num_classes, self.image_size)
        training_model = (training_model_after_first_pooling(model) if self.pools_input
                          else model)
        loss, metrics = loss_and_metrics(self.config, self.num_classes)
        training_model.compile(
            optimizer=make_optimizer(self.config), loss=loss, metrics=metrics,
            steps_per_execution=MLP_STEPS_PER_EXECUTION if self.config.family == "mlp" else 1,
            jit_compile=True if uses_xla(self.config) else "auto",
        )
        training_model.optimizer.build(training_model.trainable_variables)
        self._initial_optimizer_state = [np.array(variable.numpy())
                                         for variable in training_model.optimizer.variables]
        self._model, self._training_model = model, training_model
        # Trace the train and test steps now with one batch, so that every run, the first
        # included, starts from a traced model; the weights are re-initialised afterwards.
        batch = min(self.config.batch_size, 4)
        warm_images = np.zeros((batch, *self.image_size, 3), dtype=np.uint8)
        warm_targets = targets_for(np.arange(batch) % self.num_classes, self.num_classes)
        training_model.fit(
            **self._training_data(warm_images, self._model_inputs(warm_images), warm_targets,
                                  batch, seed=0),
            validation_data=(self._model_inputs(warm_images), warm_targets),
            validation_batch_size=EVALUATION_BATCH_SIZE, epochs=1, verbose=0)
        self._pending_setup_seconds = time.perf_counter() - start
        LOGGER.info("built and traced %s in %.2f s", self.config.name,
                    self._pending_setup_seconds)

    def _training_data(self, images: np.ndarray, inputs: np.ndarray, targets: np.ndarray,
                       batch_size: int, seed: int) -> dict[str, Any]:
        """The training data arguments of `fit`: full-size `images`, or the same images as
        the training model takes them (`inputs`, see `_model_inputs`).

        With augmentation: a `TrainingFeed` that warps (and pools) every batch in worker
        threads. Without: the (pooled) arrays themselves, which Keras batches and shuffles
        inside the framework; a Python feed there left one of 2 CPU cores idle during the
        step (7.7 against 5.2 s per 600x200 epoch, measured in benchmarks/README.md).
        """
        if self.config.augmentation:
            # Warp at full size, then pool: exactly what the full model's layers would see.
            return {"x": TrainingFeed(images, targets, batch_size, augment=True, seed=seed,
                                      pool=self.pools_input,
                                      interpolation=self.config.interpolation)}
        return {"x": inputs, "y": targets, "batch_size": batch_size, "shuffle": True}

    def _model_inputs(self, images: np.ndarray) -> np.ndarray:
        """`images` as the training model takes them (pooled for the CNN), cached per array."""
        if not self.pools_input:
            return images
        if self._cached_images is not images:
            self._cached_images, self._cached_inputs = images, max_pool_2x2(images)
        return self._cached_inputs

    def reinitialise(self, seed: int) -> None:
        """Gives the model fresh weights, optimizer state and random seeds from `seed`.

        A model built anew with the global seed set supplies the initial values, so a reused
        Trainer starts exactly where a brand-new one with the same seed would.
        """
        model, training_model = self.model, self.training_model
        keras.utils.set_random_seed(seed)
        fresh = make_model(self.config, self.num_classes, self.image_size)
        for target, source in zip(model.variables, fresh.variables, strict=True):
            target.assign(source)
        for variable, value in zip(training_model.optimizer.variables,
                                   self._initial_optimizer_state, strict=True):
            variable.assign(value)

    def run(self, images: np.ndarray, y: np.ndarray, split: Mapping[str, np.ndarray], seed: int,
            epoch_callback: Callable[[int, dict[str, float]], None] | None = None,
            extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> RunResult:
        """Trains from fresh weights on split["train"], validating on split["validate"].

        Args:
            images: (N, height, width, 3) uint8 images (`TaskData.images`).
            y: (N,) class indices.
            split: index arrays "train", "validate" and "test" (`splits.stratified_split`;
                "train" may already be balanced).
            seed: sets initial weights, shuffling, dropout and augmentation.
            epoch_callback: called after each epoch with (epoch index, logs).
            extra_callbacks: more Keras callbacks for `fit` (e.g. CSVLogger); they see the
                training model (see the class documentation).

        Returns:
            The run's `RunResult`.
        """
        self._check_inputs(images, y, split)
        start = time.perf_counter()
        self.reinitialise(seed)
        setup_seconds = time.perf_counter() - start + self._pending_setup_seconds
        self._pending_setup_seconds = 0.0

        train_start = time.perf_counter()
        inputs = self._model_inputs(images)
        train_indices = np.asarray(split["train"])
        validation_indices = np.asarray(split.get("validate", ()), dtype=np.int64)
        test_indices = np.asarray(split.get("test", ()), dtype=np.int64)
        train_targets = targets_for(y[train_indices], self.num_classes)
        validation_data = None
        if len(validation_indices):
            validation_data = (inputs[validation_indices],
                               targets_for(y[validation_indices], self.num_classes))
        callbacks = list(extra_callbacks)
        if epoch_callback is not None:
            callbacks.append(_EpochReporter(epoch_callback))
        if self.config.early_stopping_patience is not None:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss" if validation_data is not None else "loss",
                patience=self.config.early_stopping_patience, restore_best_weights=True))
        history = self.training_model.fit(
            **self._training_data(images[train_indices], inputs[train_indices], train_targets,
                                  self.config.batch_size, seed),
            validation_data=validation_data, validation_batch_size=EVALUATION_BATCH_SIZE,
            epochs=self.config.epochs, callbacks=callbacks, verbose=0)
        validation_metrics = self._evaluate(inputs, y, validation_indices)
        test_metrics = self._evaluate(inputs, y, test_indices)
        train_seconds = time.perf_counter() - train_start
        history_values = {key: [float(value) for value in values]
                          for key, values in history.history.items()}
        return RunResult(
            config=self.config.name, seed=seed, history=history_values,
            validation_metrics=validation_metrics, test_metrics=test_metrics,
            epochs_run=len(history_values.get("loss", [])), setup_seconds=setup_seconds,
            train_seconds=train_seconds,
        )

    def _evaluate(self, inputs: np.ndarray, y: np.ndarray,
                  indices: np.ndarray) -> dict[str, float]:
        if len(indices) == 0:
            return {}
        results = self.training_model.evaluate(
            inputs[indices], targets_for(y[indices], self.num_classes),
            batch_size=EVALUATION_BATCH_SIZE, verbose=0, return_dict=True)
        return {key: float(value) for key, value in results.items()}

    def _check_inputs(self, images: np.ndarray, y: np.ndarray,
                      split: Mapping[str, np.ndarray]) -> None:
        expected = (*self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"images must have shape (N, {expected[0]}, {expected[1]}, 3) for "
                             f"this trainer; got {images.shape}")
        if len(y) != len(images):
            raise ValueError(f"{len(images)} images but {len(y)} labels")
        if "train" not in split or len(split["train"]) == 0:
            raise ValueError(f"split needs a non-empty 'train' part; got parts {sorted(split)}")
        if len(y) and (np.min(y) < 0 or np.max(y) >= self.num_classes):
            raise ValueError(f"class indices must be in 0..{self.num_classes - 1}; got "
                             f"{int(np.min(y))}..{int(np.max(y))}")


def predict_probabilities(model: keras.Model, images: np.ndarray,
                          batch_size: int = 64) -> np.ndarray:
    """Class probabilities of `images` for one of our models or a legacy binary model.

    A (N, 1) sigmoid output becomes [1 - p, p]; models that output logits (a linear output
    layer) get a sigmoid (one output) or softmax.

    Args:
        model: a Keras classifier taking (N, height, width, 3) RGB in 0-255.
        images: (N, height, width, 3) images, uint8 or float.
        batch_size: images per forward pass.

    Returns:
        (N, num_classes) float32 probabilities (num_classes = 2 for a one-output model).
    """
    if len(images) == 0:
        outputs = int(model.outputs[0].shape[-1])
        return np.zeros((0, max(outputs, 2)), dtype=np.float32)
    batches = []
    for start in range(0, len(images), batch_size):
        chunk = np.asarray(images[start:start + batch_size], dtype=np.float32)
        prediction = model.predict_on_batch(chunk)
        if isinstance(prediction, list | tuple):
            prediction = prediction[0]
        batches.append(np.asarray(prediction, dtype=np.float32))
    outputs = np.concatenate(batches).reshape(len(images), -1)
    output_activation = getattr(model.layers[-1], "activation", None)
    logits = getattr(output_activation, "__name__", "") == "linear"
    if outputs.shape[1] == 1:
        positive = 1.0 / (1.0 + np.exp(-outputs[:, 0])) if logits else outputs[:, 0]
        return np.stack([1.0 - positive, positive], axis=1).astype(np.float32)
    if logits:
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    return outputs

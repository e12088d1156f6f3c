"""The article's CNN (or any architecture a configuration describes) and the Pokemon deck's
MLP, their optimizer, loss and metrics, and the class probabilities of any classifier (the one
rule for logits and sigmoid outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from toonvision import ToonvisionError
from toonvision.model_utils.training.architecture import check_image_size, cnn_blocks
from toonvision.model_utils.training.configs import OPTIMIZERS, TrainingConfig, dtype_policy_name


def uses_xla(config: TrainingConfig) -> bool:
    """Whether `Trainer` compiles the train step with XLA (`jit_compile`).

    Only the MLP on the TensorFlow backend: XLA fuses its Adam update over 3 million weights
    (2.2x faster per epoch here), while it makes the CNN ~4x slower on a CPU. The JAX backend
    always compiles with XLA; the torch backend is left as is.
    """
    return config.family == "mlp" and keras.backend.backend() == "tensorflow"


def make_model(config: TrainingConfig, num_classes: int,
               image_size: tuple[int, int]) -> keras.Model:
    """Builds the model of `config` (uncompiled) for images of `image_size` = (height, width).

    The CNN follows the configuration's architecture fields; their defaults are the
    ToonVision article's CNN: Rescaling(1/255) -> MaxPooling2D(2) -> [Conv2D(f, 3, relu) ->
    MaxPooling2D(2)] for f in 16, 32, 32 -> Flatten -> [Dropout] -> Dense(1, sigmoid) for two
    classes or Dense(num_classes, softmax). In general (see `TrainingConfig`):

        Rescaling -> [MaxPooling2D(2)]                              pool_input
        -> per block: [Conv2D(f, k, padding, relu)] x convs_per_block
                      (batch_norm: Conv2D(no bias) -> BatchNormalization -> ReLU)
                      -> [MaxPooling2D(2)] -> [Dropout(block rate)]
        -> Flatten | GlobalAveragePooling2D -> [Dropout] -> Dense    head, dropout

    Layers are named `rescaling`, `pool_0`, `conv_B` (`conv_B_I` with several convolutions
    per block; `batch_norm_B[_I]`, `relu_B[_I]`), `pool_B`, `dropout_B`, `flatten` or
    `global_average_pooling`, `dropout`, `output`. The MLP is the Pokemon deck's: Rescaling ->
    Flatten -> Dense(units, activation) per hidden layer -> [Dropout] -> the same output layer.
    Augmentation is not a layer: `Trainer` applies it to training batches (see
    `toonvision.model_utils.training.augment`), so the model is the same in training and inference.

    Args:
        config: the configuration.
        num_classes: number of classes (>= 2).
        image_size: (height, width) of the input images.

    Returns:
        A functional `keras.Model` taking (N, height, width, 3) float RGB in 0-255.

    Raises:
        ToonvisionError: for fewer than 2 classes, or images too small for the CNN (the
            message gives the smallest side, `architecture.cnn_minimum_side`).
    """
    if num_classes < 2:
        raise ToonvisionError(f"a classifier needs at least 2 classes; got {num_classes}")
    height, width = image_size
    if config.family == "cnn":
        check_image_size(config, image_size)
    policy = dtype_policy_name(config.precision, config.family)
    inputs = keras.Input(shape=(height, width, 3), name="image")
    features = keras.layers.Rescaling(1.0 / 255, dtype=policy, name="rescaling")(inputs)
    if config.family == "cnn":
        features = _cnn_features(features, config, policy)
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


def _cnn_features(features: keras.KerasTensor, config: TrainingConfig,
                  policy: str) -> keras.KerasTensor:
    """The CNN's layers from the rescaled image to the output layer's input (see `make_model`)."""
    layers = keras.layers
    if config.pool_input:
        features = layers.MaxPooling2D(2, dtype=policy, name="pool_0")(features)
    for number, block in enumerate(cnn_blocks(config), start=1):
        for index in range(1, block.convolutions + 1):
            suffix = f"{number}" if block.convolutions == 1 else f"{number}_{index}"
            if config.batch_norm:
                # The bias is redundant before batch normalization, which adds its own.
                features = layers.Conv2D(block.filters, config.kernel_size,
                                         padding=config.padding, use_bias=False, dtype=policy,
                                         name=f"conv_{suffix}")(features)
                features = layers.BatchNormalization(dtype=policy,
                                                     name=f"batch_norm_{suffix}")(features)
                features = layers.Activation("relu", dtype=policy,
                                             name=f"relu_{suffix}")(features)
            else:
                features = layers.Conv2D(block.filters, config.kernel_size,
                                         padding=config.padding, activation="relu",
                                         dtype=policy, name=f"conv_{suffix}")(features)
        if block.pooling:
            features = layers.MaxPooling2D(2, dtype=policy, name=f"pool_{number}")(features)
        if block.dropout > 0:
            features = layers.Dropout(block.dropout, dtype=policy,
                                      name=f"dropout_{number}")(features)
    if config.head == "global_average":
        return layers.GlobalAveragePooling2D(dtype=policy,
                                             name="global_average_pooling")(features)
    return layers.Flatten(dtype=policy, name="flatten")(features)


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


def final_activation(model: keras.Model | keras.layers.Layer) -> str:
    """The name of the activation that gives the output of `model` ('' when it has none).

    The last layer decides, looked for inside nested models too (a `Sequential` used as the
    last layer): `linear` means the model outputs logits (see `output_is_logits`).
    """
    layer = model
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    return getattr(getattr(layer, "activation", None), "__name__", "")


def output_is_logits(model: keras.Model | keras.layers.Layer) -> bool:
    """Whether `model` outputs logits: the one rule every prediction follows.

    A model whose last layer is linear (`Dense(..., activation=None)`, our
    `output_activation="none"`) was trained `from_logits=True`; its outputs become
    probabilities through `class_probabilities`. Any other model (sigmoid, softmax, or an
    activation we cannot tell) gives its outputs as they are.
    """
    return final_activation(model) == "linear"


def class_probabilities(outputs: Any, logits: bool) -> Any:
    """Class probabilities from a classifier's outputs, one column per class.

    Logits get their sigmoid (one output) or softmax. A single output p (a binary model)
    then becomes the two columns `[1 - p, p]`, so that column k is always the probability of
    class k. Written with `keras.ops`, so the same rule serves NumPy arrays, backend tensors
    inside a compiled function (Grad-CAM) and symbolic tensors of a functional model.

    Args:
        outputs: (N, outputs) model outputs.
        logits: whether they are logits (`output_is_logits`).

    Returns:
        (N, max(outputs, 2)) probabilities, as a backend tensor (or the symbolic tensor).
    """
    single = int(outputs.shape[-1]) == 1
    if logits:
        outputs = ops.sigmoid(outputs) if single else ops.softmax(outputs, axis=-1)
    if single:
        outputs = ops.concatenate([ops.subtract(1.0, outputs), outputs], axis=-1)
    return outputs


def predict_probabilities(
    model: keras.Model, images: np.ndarray, batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Class probabilities of `images`, for one of our models or a legacy one.

    The one place where probabilities come from a model: `predict`, the report and the
    comparisons call it, and Grad-CAM applies the same `class_probabilities`.

    Args:
        model: a Keras classifier taking (N, height, width, 3) RGB in 0-255.
        images: (N, height, width, 3) images, uint8 or float.
        batch_size: images per forward pass.
        progress: called as `progress(done, total)` after each batch.

    Returns:
        (N, num_classes) float32 probabilities (num_classes = 2 for a one-output model).

    Example:
        >>> probabilities = predict_probabilities(model, images)  # doctest: +SKIP
        >>> predicted = probabilities.argmax(axis=1)              # doctest: +SKIP
    """
    logits = output_is_logits(model)
    if len(images) == 0:
        outputs = int(model.outputs[0].shape[-1])
        return np.zeros((0, max(outputs, 2)), dtype=np.float32)
    batches = []
    for start in range(0, len(images), batch_size):
        chunk = np.asarray(images[start:start + batch_size], dtype=np.float32)
        prediction = model.predict_on_batch(chunk)
        if isinstance(prediction, list | tuple):
            prediction = prediction[0]
        outputs = np.asarray(prediction, dtype=np.float32).reshape(len(chunk), -1)
        batches.append(ops.convert_to_numpy(class_probabilities(outputs, logits)))
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    return np.concatenate(batches).astype(np.float32)


def predict_parts(model: Any, images: np.ndarray, split: Mapping[str, Sequence[int]],
                  parts: Sequence[str] = ("validate", "test")) -> dict[str, np.ndarray]:
    """Predicts the images of some split parts with `models.predict_probabilities`.

    Args:
        model: the trained classifier.
        images: all images (`TaskData.images`).
        split: index arrays per part.
        parts: the parts to predict (default: validate and test).

    Returns:
        Per part, (len(split[part]), classes) float32 probabilities in the part's order.
    """
    return {name: predict_probabilities(model, images[np.asarray(split[name], dtype=np.int64)])
            for name in parts if name in split}

"""What a trained image classifier sees: activations, filters and Grad-CAM heatmaps.

Every function here takes any Keras image classifier: our own models (augmentation layers
inside, inactive at inference), models nested inside other models (a `Sequential` used as a
layer), and legacy Keras 2 HDF5 models such as the ToonVision author's, whose `model.input`
is a list. They all go through `flatten_model`, which re-applies every leaf layer of the
model (recursing into nested models) to a fresh input, so that the output of any inner layer
is a tensor of one flat graph that gradients can flow through.

Inputs are what the model takes: uint8 (or float) RGB images of the model's input size, with
any rescaling done inside the model. Grad-CAM runs batched inside one compiled TensorFlow
function (`tf.function`): about 10x faster than an eager per-image loop on a CPU.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from toonvision import ToonvisionError
from toonvision.model_utils.training.models import (
    class_probabilities,
    final_activation,
    output_is_logits,
)

logger = logging.getLogger(__name__)

ACTIVATION_LAYER_TYPES: tuple[type, ...] = (keras.layers.Conv2D, keras.layers.MaxPooling2D)
# Layers that finish what a convolution computes when they follow it directly (a Conv2D
# without activation, then BatchNormalization and ReLU): its output as it is passed on.
CONV_FOLLOWERS: tuple[type, ...] = (keras.layers.BatchNormalization, keras.layers.Activation,
                                    keras.layers.ReLU)
DEFAULT_BATCH_SIZE = 32
PROBABILITY_ACTIVATIONS = ("sigmoid", "softmax")


def gradients_supported() -> bool:
    """Whether Grad-CAM and filter patterns can run: they need the TensorFlow backend.

    Everything else here (flattening, activations, kernels) is plain Keras and runs on any
    backend.
    """
    return keras.backend.backend() == "tensorflow"


def _require_gradients(what: str) -> None:
    if not gradients_supported():
        raise ToonvisionError(f"{what} needs the TensorFlow backend; Keras runs on "
                              f"{keras.backend.backend()!r} (set KERAS_BACKEND=tensorflow)")


@dataclass
class FlatModel:
    """A model re-applied layer by layer to a fresh input, exposing every inner output.

    Attributes:
        input: the fresh input tensor.
        logits: the class scores before the final sigmoid/softmax (see `flatten_model`).
        probabilities: the class probabilities, one column per class: the model's output
            through `models.class_probabilities`, as `models.predict_probabilities` gives
            them.
        outputs: the symbolic output of every leaf layer, by path.
        layer_inputs: the symbolic input of every leaf layer, by path.
        layer_names: the leaf layers, as paths (`outer/inner` for nested models), in the order
            they run.
        layers: the leaf layer objects, by path.
        binary: whether the model has a single sigmoid-style output (class 1 = output > 0.5).
    """

    input: keras.KerasTensor
    logits: keras.KerasTensor
    probabilities: keras.KerasTensor
    outputs: dict[str, keras.KerasTensor]
    layer_inputs: dict[str, keras.KerasTensor]
    layer_names: list[str]
    layers: dict[str, keras.layers.Layer]
    binary: bool


def _single_input(model: keras.Model) -> keras.KerasTensor:
    inputs = model.inputs
    if len(inputs) != 1:
        raise ToonvisionError(f"model {model.name!r} has {len(inputs)} inputs; images need "
                              "exactly 1")
    return inputs[0]


def _call_layer(layer: keras.layers.Layer, args: tuple, kwargs: dict) -> object:
    """Calls `layer` for inference: `training=False` when its `call` accepts it."""
    if "training" in inspect.signature(layer.call).parameters:
        kwargs = {**kwargs, "training": False}
    return layer(*args, **kwargs)


def _apply_flat(
    model: keras.Model,
    inputs: object,
    prefix: str,
    record: Callable[[str, keras.layers.Layer, object, object], None],
) -> object:
    """Applies `model` to `inputs` one leaf layer at a time, recursing into nested models."""

    def wrap(operation: keras.layers.Layer) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            path = f"{prefix}{operation.name}"
            if isinstance(operation, keras.Model):
                return _apply_flat(operation, args[0], f"{path}/", record)
            outputs = _call_layer(operation, args, kwargs)
            record(path, operation, args[0] if args else None, outputs)
            return outputs

        return call

    if isinstance(model, keras.Sequential):
        outputs = inputs
        for layer in model.layers:
            outputs = wrap(layer)(outputs)
        return outputs
    # Functional models: replay the model's own graph (the same walk `Functional.call`
    # does), with every operation swapped for its flat version.
    return model._run_through_graph(inputs, operation_fn=wrap)


def flatten_model(model: keras.Model) -> FlatModel:
    """Rebuilds `model` as one flat functional graph exposing every leaf layer's output.

    Args:
        model: a Keras image classifier with one image input and one output.

    Returns:
        The flat model. Its `logits` are the input of the final sigmoid/softmax when the
        model ends in a Dense or Activation layer with one (Grad-CAM needs the score before
        the squashing, whose gradient vanishes on confident predictions); a model ending in
        a linear layer outputs logits (`models.output_is_logits`). Its `probabilities`
        follow `models.class_probabilities`, the rule of `models.predict_probabilities`.

    Raises:
        ValueError: if the model has several inputs or outputs.
    """
    if len(model.outputs) != 1:
        raise ToonvisionError(f"model {model.name!r} has {len(model.outputs)} outputs; need "
                              "exactly 1")
    original_input = _single_input(model)
    inputs = keras.Input(shape=tuple(original_input.shape[1:]), dtype=original_input.dtype)
    recorded: dict[str, tuple[keras.layers.Layer, object, object]] = {}

    def record(path: str, layer: keras.layers.Layer, layer_input: object, output: object) -> None:
        recorded[path] = (layer, layer_input, output)

    outputs = _apply_flat(model, inputs, "", record)
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    logits = output_is_logits(model)
    return FlatModel(
        input=inputs,
        logits=outputs if logits else _scores(outputs, *next(reversed(recorded.values()))),
        probabilities=class_probabilities(outputs, logits),
        outputs={path: output for path, (_, _, output) in recorded.items()},
        layer_inputs={path: layer_input for path, (_, layer_input, _) in recorded.items()},
        layer_names=list(recorded),
        layers={path: layer for path, (layer, _, _) in recorded.items()},
        binary=int(outputs.shape[-1]) == 1,
    )


def _scores(
    outputs: keras.KerasTensor, last_layer: keras.layers.Layer, last_input: object,
    last_output: object,
) -> keras.KerasTensor:
    """The class scores before the final sigmoid/softmax of a model that does not end in logits.

    They are the input of that activation when the last layer is a Dense or an Activation;
    for any other ending the output itself stands for the scores.
    """
    if last_output is outputs and final_activation(last_layer) in PROBABILITY_ACTIVATIONS:
        if isinstance(last_layer, keras.layers.Activation):
            return last_input
        if isinstance(last_layer, keras.layers.Dense):
            return _dense_pre_activation(last_layer)(last_input)
    logger.info("model does not end in sigmoid, softmax or a linear layer; its output is used "
                "as the class scores")
    return outputs


def _dense_pre_activation(dense: keras.layers.Dense) -> keras.layers.Layer:
    """A layer computing `dense`'s output before its activation, sharing its weights."""

    def pre_activation(values: object) -> object:
        scores = ops.matmul(values, dense.kernel)
        return scores if dense.bias is None else ops.add(scores, dense.bias)

    return keras.layers.Lambda(pre_activation)


def _conv_pre_activation(conv: keras.layers.Conv2D) -> keras.layers.Layer:
    """A layer computing `conv`'s output before its activation, sharing its weights."""

    def pre_activation(values: object) -> object:
        responses = conv.convolution_op(values, conv.kernel)
        if conv.bias is None:
            return responses
        if conv.data_format == "channels_first":
            return ops.add(responses, ops.reshape(conv.bias, (1, -1, 1, 1)))
        return ops.add(responses, conv.bias)

    return keras.layers.Lambda(pre_activation)


def layer_paths(flat: FlatModel, layer_types: tuple[type, ...]) -> list[str]:
    """Returns the paths of the flat model's leaf layers of the given types, in run order."""
    return [path for path in flat.layer_names if isinstance(flat.layers[path], layer_types)]


def conv_output_path(flat: FlatModel, path: str) -> str:
    """The layer whose output is what the convolution at `path` passes on.

    That is the convolution itself, or, when batch normalization and activation layers
    (`CONV_FOLLOWERS`) take its output directly one after the other, the last of them: a
    `Conv2D(use_bias=False) -> BatchNormalization -> ReLU` block passes on the ReLU's output,
    as a `Conv2D(activation="relu")` passes on its own.
    """
    names = flat.layer_names
    index = names.index(path)
    while index + 1 < len(names):
        following = names[index + 1]
        if (not isinstance(flat.layers[following], CONV_FOLLOWERS)
                or flat.layer_inputs[following] is not flat.outputs[names[index]]):
            break
        index += 1
    return names[index]


def last_conv_layer(flat: FlatModel) -> str:
    """Returns the path of the last 2-D convolution's output, searching nested models too.

    The convolution is found by type (`Conv2D`), whatever its name; its output is taken
    where it is passed on (`conv_output_path`: after a batch normalization and ReLU that
    follow it).

    Raises:
        ValueError: if the model has no Conv2D layer.
    """
    paths = layer_paths(flat, (keras.layers.Conv2D,))
    if not paths:
        raise ToonvisionError(f"model has no Conv2D layer for Grad-CAM; layers are "
                              f"{', '.join(flat.layer_names)}")
    return conv_output_path(flat, paths[-1])


def layer_activations(
    model: keras.Model, image: np.ndarray, layer_types: tuple[type, ...] = ACTIVATION_LAYER_TYPES,
) -> list[tuple[str, np.ndarray]]:
    """Returns the feature maps of every layer of `layer_types` for one image.

    A convolution's maps are taken where it passes them on (`conv_output_path`): after the
    batch normalization and ReLU layers that follow a convolution without activation, under
    the last of their paths.

    Args:
        model: the classifier (nested models are searched too).
        image: (height, width, 3), as the model takes it.
        layer_types: which leaf layers to return; default Conv2D and MaxPooling2D.

    Returns:
        `(layer path, maps)` pairs in run order; `maps` is (height, width, channels).
    """
    flat = flatten_model(model)
    paths = list(dict.fromkeys(
        conv_output_path(flat, path) if isinstance(flat.layers[path], keras.layers.Conv2D)
        else path for path in layer_paths(flat, layer_types)))
    if not paths:
        return []
    activation_model = keras.Model(flat.input, {path: flat.outputs[path] for path in paths})
    outputs = activation_model(np.asarray(image, np.float32)[None], training=False)
    return [(path, ops.convert_to_numpy(outputs[path])[0]) for path in paths]


def first_layer_kernels(model: keras.Model) -> tuple[str, np.ndarray]:
    """Returns the first Conv2D layer's kernels as small images, one per filter.

    Returns:
        `(layer path, patches)`, patches (filters, kernel height, kernel width, 3) in [0, 1]:
        each filter scaled on its own to the full range (mid-grey = 0 when it is symmetric).
        A layer whose input is not 3-channel shows the mean over input channels as grey.

    Raises:
        ValueError: if the model has no Conv2D layer.
    """
    flat = flatten_model(model)
    paths = layer_paths(flat, (keras.layers.Conv2D,))
    if not paths:
        raise ToonvisionError(f"model {model.name!r} has no Conv2D layer")
    kernel = flat.layers[paths[0]].get_weights()[0].astype(np.float32)
    patches = np.transpose(kernel, (3, 0, 1, 2))
    if patches.shape[-1] != 3:
        patches = np.repeat(patches.mean(axis=-1, keepdims=True), 3, axis=-1)
    low = patches.min(axis=(1, 2, 3), keepdims=True)
    span = patches.max(axis=(1, 2, 3), keepdims=True) - low
    return paths[0], np.divide(patches - low, span, out=np.full_like(patches, 0.5),
                               where=span > 0)


def filter_patterns(
    model: keras.Model,
    layer_name: str,
    filter_indices: Sequence[int],
    steps: int = 30,
    step_size: float = 2.0,
    seed: int = 0,
) -> np.ndarray:
    """Finds, by gradient ascent on the input, the pattern each filter responds to most.

    The objective is the filter's response before its activation function: after a ReLU,
    a filter silent on the grey starting image would get no gradient and stay noise. All
    filters are optimised together, one image each, inside one compiled function: each step
    moves every image along the normalised gradient of its filter's mean response (borders
    excluded, where padding artefacts dominate).

    Args:
        model: the classifier.
        layer_name: the path of a Conv2D layer (see `FlatModel.layer_names`).
        filter_indices: the filters (channels) to visualise.
        steps: gradient ascent steps.
        step_size: how far each step moves a pixel on average, in input units (0..255).
        seed: the seed of the starting noise.

    Returns:
        (filters, height, width, 3) uint8 images of the model's input size, contrast
        stretched for display.

    Raises:
        ValueError: for an unknown or non-Conv2D layer, a filter index out of range, or a
            Keras backend other than TensorFlow.
    """
    _require_gradients("gradient ascent on filters")
    import tensorflow as tf

    flat = flatten_model(model)
    if layer_name not in flat.layers:
        raise ToonvisionError(f"no layer {layer_name!r}; layers are {', '.join(flat.layer_names)}")
    layer = flat.layers[layer_name]
    if not isinstance(layer, keras.layers.Conv2D):
        raise ToonvisionError(f"layer {layer_name!r} is a {type(layer).__name__}, not a Conv2D")
    feature_model = keras.Model(
        flat.input, _conv_pre_activation(layer)(flat.layer_inputs[layer_name]))
    channels = int(feature_model.outputs[0].shape[-1])
    indices = np.asarray(filter_indices, dtype=np.int32)
    if indices.size == 0 or indices.min() < 0 or indices.max() >= channels:
        raise ToonvisionError(f"filter indices must lie in 0..{channels - 1}; got {list(indices)}")
    input_shape = tuple(int(size) for size in flat.input.shape[1:])
    generator = np.random.default_rng(seed)
    images = tf.Variable(
        generator.uniform(124, 132, size=(len(indices), *input_shape)).astype(np.float32))
    selection = tf.constant(np.eye(channels, dtype=np.float32)[indices][:, None, None, :])

    @tf.function
    def ascend() -> None:
        with tf.GradientTape() as tape:
            activations = feature_model(images, training=False)
            border = 2 if min(activations.shape[1:3]) > 8 else 0
            if border:
                activations = activations[:, border:-border, border:-border, :]
            objective = tf.reduce_sum(tf.reduce_mean(activations * selection, axis=(1, 2, 3)))
        gradients = tape.gradient(objective, images)
        scale = tf.math.reduce_std(gradients, axis=(1, 2, 3), keepdims=True) + 1e-8
        images.assign(tf.clip_by_value(images + step_size * gradients / scale, 0.0, 255.0))

    for _ in range(steps):
        ascend()
    patterns = images.numpy()
    patterns -= patterns.mean(axis=(1, 2, 3), keepdims=True)
    patterns /= patterns.std(axis=(1, 2, 3), keepdims=True) + 1e-5
    return np.clip((patterns * 0.15 + 0.5) * 255, 0, 255).astype(np.uint8)

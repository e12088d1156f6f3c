"""Gradient heatmaps (Grad-CAM, Grad-CAM++, saliency), batched inside one compiled function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

from toonvision import ToonvisionError
from toonvision.data_visualization.interpret import (
    DEFAULT_BATCH_SIZE,
    _require_gradients,
    flatten_model,
    last_conv_layer,
)

CAM_VARIANTS = ("gradcam", "gradcam++")


def _class_scores(tf: object, outputs: dict, class_indices: object, use_predicted: object,
                  binary: bool) -> object:
    """Each image's score for its class (the predicted one when `use_predicted`), as a tensor.

    For a binary sigmoid model the score of class 1 is the logit and that of class 0 its
    negative (the complement); for a softmax model, the chosen class's logit.
    """
    logits = outputs["logits"]
    # The predicted class is the one `predict` reports: the most probable.
    predicted = tf.cast(tf.argmax(outputs["probabilities"], axis=-1), tf.int32)
    chosen = tf.where(use_predicted, predicted, class_indices)
    if binary:
        return logits[:, 0] * tf.cast(2 * chosen - 1, logits.dtype)
    return tf.gather(logits, chosen, axis=1, batch_dims=1)


class BatchedExplainer:
    """The common part of the gradient heatmaps: batches, scaling to [0, 1], upsampling.

    A subclass sets `self._compiled(images, class_indices, use_predicted)`, a compiled
    function returning `(heatmaps, probabilities)` for one batch.
    """

    _compiled: Callable[..., tuple[object, object]]

    def __call__(
        self,
        images: np.ndarray,
        class_indices: Sequence[int] | np.ndarray | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Callable[[int, int], None] | None = None,
        upsample: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Computes heatmaps for `images`.

        Args:
            images: (N, height, width, 3) images as the model takes them.
            class_indices: the class to explain per image; default: the predicted class.
            batch_size: images per compiled call.
            progress: called as `progress(done, total)` after each batch.
            upsample: resize the heatmaps to the image size (bilinear); else keep the
                layer's resolution.

        Returns:
            `(heatmaps, probabilities)`: heatmaps (N, height, width) float32, each scaled so
            that its maximum is 1 (all zeros where no evidence for the class was found), and
            the class probabilities (N, classes), as `models.predict_probabilities` gives
            them (the same `class_probabilities` rule).

        Raises:
            ValueError: if the images are not a 4-D batch or the class indices do not match.
        """
        import cv2

        images = np.asarray(images)
        if images.ndim != 4:
            raise ToonvisionError("images must be (N, height, width, channels); got "
                                  f"{images.shape}")
        count = len(images)
        use_predicted = class_indices is None
        chosen = np.zeros(count, np.int32) if use_predicted else np.asarray(class_indices, np.int32)
        if chosen.shape != (count,):
            raise ToonvisionError(f"need one class index per image ({count}); got {chosen.shape}")
        maps, probabilities = [], []
        for start in range(0, count, batch_size):
            stop = min(start + batch_size, count)
            batch_maps, batch_probabilities = self._compiled(
                np.asarray(images[start:stop], dtype=np.float32), chosen[start:stop],
                np.bool_(use_predicted),
            )
            maps.append(batch_maps.numpy())
            probabilities.append(batch_probabilities.numpy())
            if progress is not None:
                progress(stop, count)
        if count == 0:
            return np.zeros((0, *images.shape[1:3]), np.float32), np.zeros((0, 2), np.float32)
        heatmaps = np.concatenate(maps).astype(np.float32)
        probabilities_array = np.concatenate(probabilities).astype(np.float32)
        peaks = heatmaps.max(axis=(1, 2), keepdims=True)
        heatmaps = np.divide(heatmaps, peaks, out=np.zeros_like(heatmaps), where=peaks > 0)
        if upsample and heatmaps.shape[1:3] != images.shape[1:3]:
            height, width = images.shape[1:3]
            heatmaps = np.stack([
                cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR)
                for heatmap in heatmaps
            ])
        return heatmaps, probabilities_array


class GradCam(BatchedExplainer):
    """Grad-CAM (or Grad-CAM++) heatmaps of one layer (default: the last Conv2D's output).

    For each image, the gradient of the chosen class's score with respect to the layer's
    feature maps weighs each map; the weighted sum, clipped at 0, is the heatmap: where the
    evidence for that class lies. Grad-CAM weighs a map by its gradient averaged over space
    (Selvaraju et al. 2017); Grad-CAM++ (Chattopadhay et al. 2018) by its positive gradients,
    each weighted by the closed-form coefficient alpha = g^2 / (2 g^2 + sum(A) g^3) of the
    paper's exponential-score form (as pytorch-grad-cam computes it), so that several
    separate parts of the evidence all show. The scores are those of `_class_scores`.

    Example:
        grad_cam = GradCam(model)
        heatmaps, probabilities = grad_cam(images)   # heatmaps in [0, 1], image size
    """

    def __init__(self, model: keras.Model, layer_name: str | None = None,
                 variant: str = "gradcam") -> None:
        """Builds the flat graph and the compiled function.

        Args:
            model: the classifier.
            layer_name: the path of the layer to explain (see `FlatModel.layer_names`);
                default: the last Conv2D found by type, nested models included, where it
                passes its output on (after the batch normalization and ReLU that follow a
                convolution without activation; `interpret.last_conv_layer`).
            variant: "gradcam" or "gradcam++".

        Raises:
            ValueError: if the layer does not exist, the model has no Conv2D layer, the
                variant is unknown, or Keras does not run on TensorFlow.
        """
        _require_gradients("Grad-CAM")
        import tensorflow as tf

        if variant not in CAM_VARIANTS:
            raise ToonvisionError(f"unknown CAM variant {variant!r}; choose one of "
                                  f"{', '.join(CAM_VARIANTS)}")
        self.variant = variant
        self.flat = flatten_model(model)
        self.layer_name = layer_name or last_conv_layer(self.flat)
        if self.layer_name not in self.flat.layers:
            raise ToonvisionError(
                f"no layer {self.layer_name!r} in model {model.name!r}; layers are "
                f"{', '.join(self.flat.layer_names)}"
            )
        binary = self.flat.binary
        explained = keras.Model(self.flat.input, {
            "features": self.flat.outputs[self.layer_name],
            "logits": self.flat.logits,
            "probabilities": self.flat.probabilities,
        })

        @tf.function(reduce_retracing=True)
        def heatmaps_and_probabilities(images, class_indices, use_predicted):
            with tf.GradientTape() as tape:
                outputs = explained(images, training=False)
                feature_maps = outputs["features"]
                # Each image's score depends on its own feature maps only, so the gradient
                # of the sum gives every image's gradient in one pass.
                total = tf.reduce_sum(_class_scores(tf, outputs, class_indices, use_predicted,
                                                    binary))
            gradients = tape.gradient(total, feature_maps)
            if variant == "gradcam":
                weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
            else:
                squared = tf.square(gradients)
                summed = tf.reduce_sum(feature_maps, axis=(1, 2), keepdims=True)
                denominator = 2 * squared + summed * squared * gradients
                alpha = tf.math.divide_no_nan(squared, denominator)
                weights = tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=(1, 2),
                                        keepdims=True)
            heatmaps = tf.nn.relu(tf.reduce_sum(weights * feature_maps, axis=-1))
            return heatmaps, outputs["probabilities"]

        self._compiled = heatmaps_and_probabilities


class Saliency(BatchedExplainer):
    """Gradient saliency (Simonyan et al. 2014): how much each pixel moves the class score.

    The heatmap of an image is the largest absolute gradient of its class's score (as in
    `GradCam`) with respect to the pixel's three channels, at full image resolution.

    Example:
        heatmaps, probabilities = Saliency(model)(images)
    """

    def __init__(self, model: keras.Model) -> None:
        """Builds the flat graph and the compiled function.

        Args:
            model: the classifier.

        Raises:
            ValueError: if Keras does not run on TensorFlow.
        """
        _require_gradients("Saliency")
        import tensorflow as tf

        self.flat = flatten_model(model)
        self.layer_name = ""
        binary = self.flat.binary
        explained = keras.Model(self.flat.input, {
            "logits": self.flat.logits, "probabilities": self.flat.probabilities})

        @tf.function(reduce_retracing=True)
        def heatmaps_and_probabilities(images, class_indices, use_predicted):
            with tf.GradientTape() as tape:
                tape.watch(images)
                outputs = explained(images, training=False)
                total = tf.reduce_sum(_class_scores(tf, outputs, class_indices, use_predicted,
                                                    binary))
            gradients = tape.gradient(total, images)
            return tf.reduce_max(tf.abs(gradients), axis=-1), outputs["probabilities"]

        def compiled(images, class_indices, use_predicted):
            return heatmaps_and_probabilities(tf.convert_to_tensor(images), class_indices,
                                              use_predicted)

        self._compiled = compiled

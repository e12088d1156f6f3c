"""Grad-CAM throughput: the batched compiled `GradCam` against a plain eager per-image loop.

The reference is the keras.io tutorial's way: one image at a time, a `GradientTape` run
eagerly over a sub-model giving the last convolution's maps and the class score. Both compute
the same heatmaps (checked here); only batching and `tf.function` differ.

Uses the ToonVision author's model (600x200 input) when ../shared/data is present, else a
model of the article's architecture with random weights. Numbers are noisy on a shared
machine: run it on an idle one for figures to publish.

    .venv/bin/python benchmarks/bench_gradcam.py [--images 96] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from toonvision.data_visualization import gradcam

AUTHOR_MODEL = (Path(__file__).resolve().parents[2] / "shared" / "data" / "toontown"
                / "toonvision_optimized_1e-5_run12.h5")


def article_model() -> keras.Model:
    """The article's optimized CNN (25,537 parameters) with random weights."""
    inputs = keras.Input((600, 200, 3))
    outputs = keras.layers.Rescaling(1 / 255)(inputs)
    outputs = keras.layers.MaxPooling2D()(outputs)
    for filters in (16, 32, 32):
        outputs = keras.layers.Conv2D(filters, 3, activation="relu")(outputs)
        outputs = keras.layers.MaxPooling2D()(outputs)
    outputs = keras.layers.Dropout(0.5)(keras.layers.Flatten()(outputs))
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(outputs))


def eager_reference(grad_cam: gradcam.GradCam, images: np.ndarray) -> np.ndarray:
    """One image at a time, eagerly: the plain tutorial loop (same maths, no batching)."""
    flat = grad_cam.flat
    sub_model = keras.Model(flat.input, [flat.outputs[grad_cam.layer_name], flat.logits])
    heatmaps = []
    for image in images:
        batch = tf.convert_to_tensor(image[None].astype(np.float32))
        with tf.GradientTape() as tape:
            feature_maps, logits = sub_model(batch, training=False)
            score = logits[:, 0] if float(tf.sigmoid(logits[0, 0])) > 0.5 else -logits[:, 0]
        gradients = tape.gradient(score, feature_maps)
        weights = tf.reduce_mean(gradients, axis=(0, 1, 2))
        heatmap = tf.nn.relu(tf.reduce_sum(feature_maps[0] * weights, axis=-1)).numpy()
        heatmaps.append(heatmap / heatmap.max() if heatmap.max() > 0 else heatmap)
    return np.stack(heatmaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96, help="images per timing (default 96)")
    parser.add_argument("--batch-size", type=int, default=32, help="compiled batch size")
    args = parser.parse_args()

    if AUTHOR_MODEL.is_file():
        model, source = keras.models.load_model(AUTHOR_MODEL, compile=False), "author's model"
    else:
        model, source = article_model(), "article architecture, random weights"
    images = np.random.default_rng(0).integers(0, 256, (args.images, 600, 200, 3), np.uint8)
    grad_cam = gradcam.GradCam(model)
    print(f"model: {source}; layer {grad_cam.layer_name}; {args.images} images of 600x200; "
          f"{os.cpu_count()} CPUs")

    grad_cam(images[:args.batch_size], batch_size=args.batch_size, upsample=False)  # trace
    start = time.perf_counter()
    compiled, _ = grad_cam(images, batch_size=args.batch_size, upsample=False)
    compiled_seconds = time.perf_counter() - start
    start = time.perf_counter()
    grad_cam(images, batch_size=args.batch_size)
    upsampled_seconds = time.perf_counter() - start

    eager_reference(grad_cam, images[:2])  # warm-up
    start = time.perf_counter()
    reference = eager_reference(grad_cam, images)
    eager_seconds = time.perf_counter() - start

    difference = float(np.abs(compiled - reference).max())
    rows = [
        ("eager, one image at a time", eager_seconds),
        (f"GradCam, tf.function, batch {args.batch_size}", compiled_seconds),
        ("GradCam + upsampling to 600x200", upsampled_seconds),
    ]
    print(f"{'method':<42} {'ms/image':>9} {'images/s':>9}")
    for name, seconds in rows:
        print(f"{name:<42} {1000 * seconds / args.images:>9.2f} {args.images / seconds:>9.1f}")
    print(f"speed-up of the compiled batch: {eager_seconds / compiled_seconds:.1f}x; "
          f"largest heatmap difference: {difference:.2e}")


if __name__ == "__main__":
    main()

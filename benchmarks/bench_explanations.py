"""Scoring explanations: every method on 16 images of 600x200, batched against a plain loop.

For each method (Grad-CAM and Grad-CAM++ on the last three convolutions, saliency, a random
map) the maps of 16 images are computed and scored by `faithfulness.score_maps` (deletion and
insertion AUC with 16 steps, average drop, increase in confidence: 33 perturbed copies per
image, sent through the model together in batches of 32). The reference is the plain way: the
same perturbed copies, one `model.predict_on_batch` call per step and image. Both give the same
scores (checked here). Then the sanity check (maps after re-initialising the weights) is timed.

Uses the ToonVision author's model (600x200 input) when ../shared/data is present, else the
article's architecture with random weights. Numbers are noisy on a shared machine: run it on
an idle one for figures to publish.

    .venv/bin/python benchmarks/bench_explanations.py [--images 16] [--steps 16] [--loop-images 4]
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

from toonvision.data_visualization import explanations, faithfulness  # noqa: E402
from toonvision.model_utils.training.models import predict_probabilities  # noqa: E402

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


def plain_loop(model: keras.Model, images: np.ndarray, heatmaps: np.ndarray,
               classes: np.ndarray, steps: int) -> np.ndarray:
    """Deletion AUC with one forward pass per step and image (the same perturbed copies)."""
    generator = np.random.default_rng(0)
    areas = []
    for image, heatmap, chosen in zip(images, heatmaps, classes, strict=True):
        stack = faithfulness._perturbed(image, heatmap, steps, "blur", generator)
        curve = [float(predict_probabilities(model, image[None])[0, chosen])]
        for copy in stack[:steps]:
            curve.append(float(predict_probabilities(model, copy[None])[0, chosen]))
        for copy in stack[steps:]:   # insertion and the kept image: as many passes again
            predict_probabilities(model, copy[None])
        areas.append(faithfulness._area(np.array([curve]))[0])
    return np.array(areas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="images scored (default 16)")
    parser.add_argument("--steps", type=int, default=16, help="deletion/insertion steps")
    parser.add_argument("--loop-images", type=int, default=4,
                        help="images the slow plain loop scores (default 4)")
    parser.add_argument("--no-sanity", action="store_true", help="skip the sanity-check timing")
    args = parser.parse_args()

    if AUTHOR_MODEL.is_file():
        model, source = keras.models.load_model(AUTHOR_MODEL, compile=False), "author's model"
    else:
        model, source = article_model(), "article architecture, random weights"
    images = np.random.default_rng(0).integers(0, 256, (args.images, 600, 200, 3), np.uint8)
    classes = predict_probabilities(model, images).argmax(axis=1)
    print(f"model: {source}; {args.images} images of 600x200; {args.steps} steps; "
          f"{os.cpu_count()} CPUs")
    print(f"{'method':<34} {'maps s':>7} {'scores s':>9} {'ms/image':>9}")
    methods = explanations.make_methods(model)
    total = 0.0
    for method in methods:
        method.explain(images[:2], classes[:2])   # trace
        start = time.perf_counter()
        heatmaps = method.explain(images, classes)
        maps_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scores = faithfulness.score_maps(model, images, heatmaps, classes, args.steps)
        scores_seconds = time.perf_counter() - start
        total += maps_seconds + scores_seconds
        if method.name == "gradcam" and method.layer == methods[0].layer:
            reference_maps, reference_scores = heatmaps, scores
        print(f"{method.title:<34} {maps_seconds:>7.2f} {scores_seconds:>9.2f} "
              f"{1000 * scores_seconds / args.images:>9.1f}")
    print(f"every method, maps and scores: {total:.1f} s")

    count = min(args.loop_images, args.images)
    start = time.perf_counter()
    looped = plain_loop(model, images[:count], reference_maps[:count], classes[:count],
                        args.steps)
    loop_seconds = time.perf_counter() - start
    start = time.perf_counter()
    faithfulness.score_maps(model, images[:count], reference_maps[:count], classes[:count],
                            args.steps)
    batched_per_image = (time.perf_counter() - start) / count
    difference = float(np.abs(looped - reference_scores.deletion_auc[:count]).max())
    print(f"plain loop, one pass per step: {1000 * loop_seconds / count:.1f} ms/image; "
          f"batched: {1000 * batched_per_image:.1f} ms/image "
          f"({loop_seconds / count / batched_per_image:.1f}x); largest deletion-AUC "
          f"difference {difference:.1e}")
    if not args.no_sanity:
        start = time.perf_counter()
        chosen = [method for method in methods if method.layer in ("", methods[0].layer)]
        rows = faithfulness.sanity_check(model, images, classes, chosen)
        print(f"sanity check of {len(chosen)} methods: {time.perf_counter() - start:.1f} s; "
              + ", ".join(f"{row['method']} {row['spearman']:.2f}" for row in rows))


if __name__ == "__main__":
    main()

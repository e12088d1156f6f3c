"""Seconds for 200 epochs of the Pokemon deck's MLP: stock Keras against toonvision's Trainer.

The workload of the deck: 3600 images of 64x64x3, 9 classes, Flatten -> Dense(256, relu) ->
Dense(128, relu) -> Dense(9, softmax), Adam 1e-3, batch 32, 200 epochs. The images here are
random (the timing does not depend on the pixels).

Stock: `model.fit(x, y, batch_size=32)` on a float32 array, float32 compute, one step per
compiled call. Ours: `Trainer` with the `mlp` config (early stopping off for the timing):
uint8 images in memory, XLA, `steps_per_execution`, float32 (bfloat16 was slower here).

By default a few epochs are timed and 200 epochs extrapolated from the steady epoch time
(printed as such); `--full` trains all 200 epochs with ours. The last lines are floors that
any exact float32 implementation at batch 32 pays on every step, times the steps of 200
epochs: the first layer's two matrix products alone (numpy's BLAS), and Adam's update of the
first layer's 3.1 million weights alone (Keras' Adam compiled with XLA, the update fused into
one pass over weights, gradient and both moments).

Usage:
    python benchmarks/bench_mlp.py [--epochs 5] [--full]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

IMAGES = 3600
IMAGE_SIZE = (64, 64)
CLASSES = 9
PROTOCOL_EPOCHS = 200


def epoch_clock() -> tuple[object, list[float], list[float]]:
    """A Keras callback recording each epoch's wall and process CPU seconds."""
    import keras

    walls: list[float] = []
    cpus: list[float] = []
    started = [0.0, 0.0]

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            started[:] = [time.perf_counter(), time.process_time()]

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            walls.append(time.perf_counter() - started[0])
            cpus.append(time.process_time() - started[1])

    return Clock(), walls, cpus


def stock(images: np.ndarray, y: np.ndarray, epochs: int) -> tuple[list[float], list[float]]:
    """The deck's MLP as plain Keras: float32 arrays, model.fit, batch 32."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(*IMAGE_SIZE, 3)),
        keras.layers.Rescaling(1.0 / 255),
        keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clock, walls, cpus = epoch_clock()
    model.fit(images.astype(np.float32), y, batch_size=32, epochs=epochs,
              callbacks=[clock], verbose=0)
    return walls, cpus


def ours(images: np.ndarray, y: np.ndarray, epochs: int) -> tuple[list[float], list[float]]:
    """The same MLP through toonvision's Trainer (mlp config, early stopping off)."""
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.trainer import Trainer

    config = BUILTIN_CONFIGS["mlp"].replace(epochs=epochs, early_stopping_patience=None)
    trainer = Trainer(config, CLASSES, IMAGE_SIZE)
    clock, walls, cpus = epoch_clock()
    split = {"train": np.arange(len(images))}
    trainer.run(images, y, split, seed=0, extra_callbacks=[clock])
    return walls, cpus


def first_layer_floor(repeats: int = 200) -> float:
    """Seconds per 200 epochs of the first layer's two matrix products alone, in numpy.

    Every training step of any exact implementation computes, for a batch X (32 x 12288) and
    the first layer's weights W (12288 x 256), the product X W and the gradient X^T dH: 200
    million multiply-adds. Timed with numpy's BLAS on all cores, this is a floor no framework
    can go under in float32 at batch 32, before the other layers and the optimizer.
    """
    rng = np.random.default_rng(0)
    inputs = rng.random((32, IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3), dtype=np.float32)
    weights = rng.random((inputs.shape[1], 256), dtype=np.float32)
    upstream = rng.random((32, 256), dtype=np.float32)
    inputs @ weights, inputs.T @ upstream
    start = time.perf_counter()
    for _ in range(repeats):
        inputs @ weights, inputs.T @ upstream
    step = (time.perf_counter() - start) / repeats
    return step * -(-IMAGES // 32) * PROTOCOL_EPOCHS


def first_layer_adam_floor(repeats: int = 200) -> float:
    """Seconds per 200 epochs of Adam's update of the first layer's weights alone.

    Each step reads the weights, their gradient and Adam's two moments (4 x 12.6 MB) and
    writes three of them back: memory traffic that no batch-32 Adam implementation avoids.
    Timed as Keras' own Adam compiled with XLA (as our Trainer runs it), `repeats` updates in
    one compiled loop.
    """
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    shape = (IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3, 256)
    weights = keras.Variable(rng.random(shape, dtype=np.float32))
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build([weights])
    gradient = tf.constant(rng.random(shape, dtype=np.float32))

    @tf.function(jit_compile=True)
    def updates(count: tf.Tensor) -> None:
        for _ in tf.range(count):
            optimizer.apply([gradient], [weights])

    updates(tf.constant(2))
    start = time.perf_counter()
    updates(tf.constant(repeats))
    step = (time.perf_counter() - start) / repeats
    return step * -(-IMAGES // 32) * PROTOCOL_EPOCHS


def report(label: str, walls: list[float], cpus: list[float], measured_epochs: int) -> float:
    """Prints the steady epoch time and the 200-epoch time; returns the latter (wall)."""
    steady_wall = statistics.median(walls[1:] or walls)
    steady_cpu = statistics.median(cpus[1:] or cpus)
    if measured_epochs >= PROTOCOL_EPOCHS:
        total, how = sum(walls), "measured"
    else:
        total, how = walls[0] + (PROTOCOL_EPOCHS - 1) * steady_wall, "extrapolated"
    print(f"{label:6} {steady_wall:8.3f} s/epoch wall {steady_cpu:8.3f} s/epoch cpu   "
          f"{PROTOCOL_EPOCHS} epochs: {total:7.1f} s ({how} from {measured_epochs} epochs)",
          flush=True)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs timed per implementation (default: 5)")
    parser.add_argument("--full", action="store_true",
                        help=f"train ours for all {PROTOCOL_EPOCHS} epochs")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(IMAGES, *IMAGE_SIZE, 3), dtype=np.uint8)
    y = rng.integers(0, CLASSES, size=IMAGES)
    print(f"{IMAGES} random {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}x3 images, {CLASSES} classes, "
          f"batch 32; cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} "
          "(other work on the machine inflates wall times)")
    stock_total = report("stock", *stock(images, y, args.epochs), args.epochs)
    our_epochs = PROTOCOL_EPOCHS if args.full else args.epochs
    our_total = report("ours", *ours(images, y, our_epochs), our_epochs)
    print(f"speedup {stock_total / our_total:.1f}x; target: ours under 90 s for "
          f"{PROTOCOL_EPOCHS} epochs")
    products, adam = first_layer_floor(), first_layer_adam_floor()
    print(f"floor  the first layer's X W and X^T dH alone (numpy BLAS, float32, batch 32): "
          f"{products:.1f} s for {PROTOCOL_EPOCHS} epochs")
    print(f"floor  Adam's update of the first layer's weights alone (Keras Adam, XLA): "
          f"{adam:.1f} s for {PROTOCOL_EPOCHS} epochs")
    print(f"floor  together {products + adam:.1f} s, before the other layers, the loss and "
          f"the feed (target: 90 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

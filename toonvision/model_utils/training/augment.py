"""Training-time augmentation as one fused affine warp per image, and the batches that feed it.

The article augments with Keras `RandomFlip("horizontal")`, `RandomRotation(0.075)` and
`RandomZoom(0.2)` layers. On a CPU, rotation and zoom cost about 5 ms per 600x200 image
each, more than the whole training step. Flip, rotation and zoom are all affine maps, so one
matrix per image and one `cv2.warpAffine` call (about 0.3 ms) give the same distribution of
images. The warp runs in the data feed (a `keras.utils.PyDataset`), which keeps the training
path free of `tf.*` so that it runs unchanged on the torch and JAX backends.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import cv2
import keras
import numpy as np

from toonvision import ToonvisionError

if TYPE_CHECKING:
    import tensorflow as tf

FLIP_PROBABILITY = 0.5
ROTATION_FACTOR = 0.075     # fraction of a full turn, as Keras RandomRotation: +/-27 degrees
ZOOM_FACTOR = 0.2           # as Keras RandomZoom: the view is 0.8x to 1.2x the image's size
AUGMENTATION_WORKERS = 2    # threads building augmented batches ahead of the training step


def random_affine_matrices(
    count: int,
    image_size: tuple[int, int],
    rng: np.random.Generator,
    flip_probability: float = FLIP_PROBABILITY,
    rotation_factor: float = ROTATION_FACTOR,
    zoom_factor: float = ZOOM_FACTOR,
) -> np.ndarray:
    """Draws one 2x3 affine matrix per image: horizontal flip, rotation and zoom about the centre.

    Args:
        count: how many matrices.
        image_size: (height, width) of the images.
        rng: the random generator (seeded by the caller).
        flip_probability: chance of a horizontal flip.
        rotation_factor: the largest rotation as a fraction of a full turn (either direction).
        zoom_factor: the largest zoom in or out; as Keras `RandomZoom`, a zoom of 1.2 shows a
            view 1.2 times the image's size (the content shrinks).

    Returns:
        A (count, 2, 3) float64 array mapping source pixels to output pixels (cv2 convention).
    """
    height, width = image_size
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    flips = rng.random(count) < flip_probability
    angles = rng.uniform(-rotation_factor, rotation_factor, count) * 360.0
    zooms = 1.0 + rng.uniform(-zoom_factor, zoom_factor, count)
    matrices = np.empty((count, 2, 3))
    for index in range(count):
        rotation = cv2.getRotationMatrix2D(centre, float(angles[index]), 1.0 / zooms[index])
        if flips[index]:
            # Flip first (x -> width - 1 - x), then rotate and zoom: compose the two maps.
            rotation = rotation @ np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0],
                                            [0.0, 0.0, 1.0]])
        matrices[index] = rotation
    return matrices


# The warp's interpolation, by the names Keras' RandomRotation and RandomZoom use.
_WARP_FLAGS: dict[str, int] = {"bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def augment_images(images: np.ndarray, rng: np.random.Generator, pool: bool = False,
                   interpolation: str = "bilinear") -> np.ndarray:
    """Returns randomly flipped, rotated and zoomed copies of `images` (one warp per image).

    Pixels that come from outside the image are filled by reflection, as the Keras layers do
    by default; interpolation is bilinear (the Keras layers' default) or nearest-neighbour
    (their other choice; about 3x cheaper here).

    With `pool`, the warped images come back 2x2 max-pooled (what the CNN's first
    `MaxPooling2D(2)` makes of them), computed without the full-size image: each of the four
    pixels of a pooling window lies on its own half-size grid, which is an affine image of the
    source too, so four half-size warps and an element-wise maximum give the pooled result
    (the same as `max_pool_2x2` of the full-size warp but for a rare difference of 1 from
    interpolation rounding), 1.4x faster than warping then pooling.

    Args:
        images: (N, height, width, channels) array, uint8 or float32.
        rng: the random generator (seeded by the caller).
        pool: return the warped images 2x2 max-pooled (an odd last row or column dropped).
        interpolation: "bilinear" or "nearest" (`configs.INTERPOLATIONS`).

    Returns:
        An array of the same dtype, of the same shape or, pooled, (N, height // 2,
        width // 2, channels).
    """
    if images.ndim != 4:
        raise ToonvisionError(f"images must be a (N, height, width, channels) array; got shape "
                              f"{images.shape}")
    if interpolation not in _WARP_FLAGS:
        raise ToonvisionError(f"interpolation must be one of {', '.join(_WARP_FLAGS)}; got "
                              f"{interpolation!r}")
    flags = _WARP_FLAGS[interpolation]
    height, width = images.shape[1:3]
    matrices = random_affine_matrices(len(images), (height, width), rng)
    if not pool:
        augmented = np.empty_like(images)
        for index, image in enumerate(images):
            augmented[index] = cv2.warpAffine(
                image, matrices[index], (width, height), flags=flags,
                borderMode=cv2.BORDER_REFLECT,
            ).reshape(image.shape)
        return augmented
    pooled = np.empty((len(images), height // 2, width // 2, images.shape[3]), images.dtype)
    for index, image in enumerate(images):
        # Maps an output pixel of the full-size warp back to the source pixel it samples.
        inverse = np.vstack([cv2.invertAffineTransform(matrices[index]), (0.0, 0.0, 1.0)])
        for window_index, (row, column) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            # Pooled pixel (x, y) holds output pixel (2x + column, 2y + row) of its window.
            grid = np.array([[2.0, 0.0, column], [0.0, 2.0, row], [0.0, 0.0, 1.0]])
            part = cv2.warpAffine(
                image, (inverse @ grid)[:2], (width // 2, height // 2),
                flags=flags | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT,
            ).reshape(pooled.shape[1:])
            if window_index == 0:
                pooled[index] = part
            else:
                np.maximum(pooled[index], part, out=pooled[index])
    return pooled


def max_pool_2x2(images: np.ndarray) -> np.ndarray:
    """2x2 max pooling of (N, height, width, channels) images, dropping an odd last row/column.

    The same as Keras `MaxPooling2D(2)`; because rescaling is monotonic, pooling the raw
    uint8 images gives exactly what the CNN's Rescaling + MaxPooling2D layers compute.
    """
    height, width = images.shape[1:3]
    even = images[:, : height - height % 2, : width - width % 2]
    rows = np.maximum(even[:, 0::2], even[:, 1::2])
    return np.maximum(rows[:, :, 0::2], rows[:, :, 1::2])


class TrainingFeed(keras.utils.PyDataset):
    """Shuffled (and optionally augmented) training batches from an in-memory image array, as
    one endless stream of epochs: batch `i` of the stream is position `i % len(self)` of epoch
    `i // len(self)` (`fit(feed, steps_per_epoch=len(feed))` reads it).

    Epoch e's image order comes from a generator seeded with (seed, e + 1), the order of its
    batches from Python's `random`, and batch b's augmentation from a generator seeded with
    (seed, e + 1, b): a run is reproducible from its seed whichever thread builds a batch.
    These are the draws of earlier versions, where Keras shuffled the batches of a finite
    `PyDataset` and ended an epoch of it as `fit` began (hence e + 1): a seed trains the same
    model it trained before (a test compares with that way of feeding).
    Batches keep the images' dtype and 0-255 range (the model rescales); uint8 batches are
    four times cheaper to move than float32.

    With augmentation the next batches are built ahead in `AUGMENTATION_WORKERS` threads
    (OpenCV releases the GIL), so the warp overlaps the training step, across the end of an
    epoch too (the next epoch's first batches are warped while the model validates). Written
    here rather than left to Keras' `workers=`: its enqueuer starts a thread pool at every
    epoch and waits 0.1 s for an empty queue when it stops, about 110 ms an epoch on this
    project's CPUs (a tenth of an optimized epoch at 600x200 where the CPU has bfloat16;
    benchmarks/README.md). Call `close` when training is done.

    Args:
        images: (N, height, width, 3) uint8 images.
        labels: (N,) class indices.
        batch_size: images per batch (the last batch of an epoch may be smaller).
        augment: apply the random flip, rotation and zoom.
        seed: seed (>= 0) for the order and the augmentation.
        pool: return each batch 2x2 max-pooled (`max_pool_2x2`), after augmentation
            (`augment_images(..., pool=True)`).
        interpolation: the warp's interpolation, "bilinear" or "nearest".
        epochs: the epochs `fit` will read (no batch beyond them is built ahead); None:
            no limit.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, augment: bool,
                 seed: int, pool: bool = False, interpolation: str = "bilinear",
                 epochs: int | None = None) -> None:
        super().__init__()      # workers=1: Keras starts no enqueuer (see above)
        if len(images) != len(labels):
            raise ToonvisionError(f"{len(images)} images but {len(labels)} labels")
        if len(images) == 0:
            raise ToonvisionError("no training images")
        if seed < 0:
            raise ToonvisionError(f"seed must be >= 0; got {seed}")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.augment = augment
        self.pool = pool
        self.interpolation = interpolation
        self.seed = int(seed)
        self._end = None if epochs is None else epochs * len(self)
        self._epochs: dict[int, tuple[np.ndarray, list[int]]] = {}
        self._ahead: dict[int, Future] = {}
        self._threads = (ThreadPoolExecutor(AUGMENTATION_WORKERS, "toonvision-augment")
                         if augment else None)
        self._lock = threading.Lock()       # tf.data reads in its thread; `close` in fit's

    def __len__(self) -> int:
        """Batches per epoch."""
        return math.ceil(len(self.images) / self.batch_size)

    @property
    def num_batches(self) -> None:
        """None: to Keras the stream is endless (`fit` counts epochs by `steps_per_epoch`)."""
        return None

    def epoch_order(self, epoch: int) -> tuple[np.ndarray, list[int]]:
        """Epoch `epoch`'s image order and the order of its batches (drawn in epoch order)."""
        while epoch not in self._epochs:
            drawn = len(self._epochs)
            batches = list(range(len(self)))
            random.shuffle(batches)
            self._epochs[drawn] = (
                np.random.default_rng((self.seed, drawn + 1)).permutation(len(self.images)),
                batches)
        return self._epochs[epoch]

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch `index` of the stream, built now (thread-safe once its epoch is drawn)."""
        epoch, position = divmod(index, len(self))
        order, batches = self._epochs[epoch]
        number = batches[position]
        batch_indices = order[number * self.batch_size:(number + 1) * self.batch_size]
        batch = self.images[batch_indices]
        if self.augment:
            batch = augment_images(batch, np.random.default_rng((self.seed, epoch + 1, number)),
                                   pool=self.pool, interpolation=self.interpolation)
        elif self.pool:
            batch = max_pool_2x2(batch)
        return batch, self.labels[batch_indices]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch `index` of the stream; with augmentation, the next ones start building."""
        with self._lock:
            if self._threads is not None:
                last = index + 2 * AUGMENTATION_WORKERS
                for ahead in range(index, last if self._end is None else min(last, self._end)):
                    if ahead not in self._ahead:
                        self.epoch_order(ahead // len(self))    # drawn here, in stream order
                        self._ahead[ahead] = self._threads.submit(self.batch, ahead)
            future = self._ahead.pop(index, None)
            if future is None:          # no threads, past the last epoch, or closed
                self.epoch_order(index // len(self))
        return self.batch(index) if future is None else future.result()

    def tensorflow_dataset(self) -> tf.data.Dataset:
        """The stream as a `tf.data.Dataset` that reads two batches ahead, without tf.data's
        autotuning (TensorFlow only).

        Keras reads a `PyDataset` without an enqueuer through `prefetch(AUTOTUNE)`; a fixed
        buffer of two was as fast or faster at every image size measured on a 2-core CPU,
        and autotuning made some 600x200 epochs of the optimized CNN 15-70% slower
        (benchmarks/README.md). The warps themselves are already built ahead (see above).
        """
        import tensorflow as tf

        height, width, channels = self.images.shape[1:]
        if self.pool:
            height, width = height // 2, width // 2
        signature = (tf.TensorSpec((None, height, width, channels), self.images.dtype),
                     tf.TensorSpec((None, *self.labels.shape[1:]), self.labels.dtype))
        dataset = tf.data.Dataset.from_generator(
            lambda: (self[index] for index in itertools.count()), output_signature=signature)
        return without_autotuning(dataset.prefetch(2))

    def close(self) -> None:
        """Stops building ahead (batches built and not read are dropped)."""
        with self._lock:
            threads, self._threads, self._end = self._threads, None, 0
            for future in self._ahead.values():
                future.cancel()
            self._ahead.clear()
        if threads is not None:
            threads.shutdown(wait=True)


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with tf.data's autotuning off (the trainer's datasets: this feed, the
    training arrays, validation).

    With autotuning on, tf.data tunes buffers and threads while the model trains on the same
    two cores: some 600x200 epochs of the optimized CNN were 15-70% slower, and fixed buffers
    were as fast or faster at every image size measured (benchmarks/README.md).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)

"""Tests of the fused affine augmentation and the training feed."""

from __future__ import annotations

import random
import threading

import cv2
import numpy as np
import pytest

from toonvision.model_utils.training.augment import (
    TrainingFeed,
    augment_images,
    max_pool_2x2,
    random_affine_matrices,
)


def striped_images(count: int = 6, height: int = 96, width: int = 48) -> np.ndarray:
    """Images whose left and right halves differ, so that flips, rotations and zooms show."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)
    images[:, :, : width // 2] //= 4
    return images


def test_pure_flip_matrix_mirrors_the_image_exactly() -> None:
    images = striped_images(count=2)
    matrices = random_affine_matrices(2, images.shape[1:3], np.random.default_rng(0),
                                      flip_probability=1.0, rotation_factor=0.0, zoom_factor=0.0)
    for image, matrix in zip(images, matrices, strict=True):
        warped = cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(warped, image[:, ::-1])


def test_rotations_and_zooms_stay_within_the_article_ranges() -> None:
    matrices = random_affine_matrices(2000, (600, 200), np.random.default_rng(1))
    # Each matrix is zoom * rotation (times a flip): its determinant's magnitude is 1/zoom^2
    # and its angle the rotation.
    scales = np.sqrt(np.abs(np.linalg.det(matrices[:, :, :2])))
    assert 1 / 1.2 - 1e-9 <= scales.min() and scales.max() <= 1 / 0.8 + 1e-9
    assert scales.max() - scales.min() > 0.3, "zooms should spread over the range"
    angles = np.degrees(np.arctan2(np.abs(matrices[:, 1, 0]), np.abs(matrices[:, 0, 0])))
    assert angles.max() <= 27.0 + 1e-6 and angles.max() > 25.0
    flipped = np.linalg.det(matrices[:, :, :2]) < 0
    assert 0.45 < flipped.mean() < 0.55


def test_augment_images_changes_images_but_keeps_shape_and_dtype() -> None:
    images = striped_images()
    augmented = augment_images(images, np.random.default_rng(2))
    assert augmented.shape == images.shape and augmented.dtype == images.dtype
    for original, changed in zip(images, augmented, strict=True):
        assert not np.array_equal(original, changed)


def test_pooled_augmentation_is_the_pooled_full_size_warp() -> None:
    # Smooth images, as real crops are, so that interpolation rounding shows as it would there.
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, size=(8 * 61, 40, 3), dtype=np.uint8)
    images = cv2.GaussianBlur(noise, (7, 7), 2).reshape(8, 61, 40, 3)
    pooled = augment_images(images, np.random.default_rng(4), pool=True)
    expected = max_pool_2x2(augment_images(images, np.random.default_rng(4)))
    assert pooled.shape == expected.shape == (8, 30, 20, 3) and pooled.dtype == np.uint8
    difference = np.abs(pooled.astype(int) - expected)
    assert difference.max() <= 1
    assert (difference > 0).mean() < 0.01
    # ... and it is really augmented: not the pooled originals.
    assert not np.array_equal(pooled, max_pool_2x2(images))


def test_nearest_interpolation_only_copies_source_pixels_and_pools_alike() -> None:
    # On noise, bilinear sampling blends neighbours into new colours; nearest never does.
    images = striped_images(count=4)
    for interpolation, only_source_colours in (("nearest", True), ("bilinear", False)):
        warped = augment_images(images, np.random.default_rng(5), interpolation=interpolation)
        for original, changed in zip(images, warped, strict=True):
            source = {tuple(pixel) for pixel in original.reshape(-1, 3)}
            copied = np.mean([tuple(pixel) in source for pixel in changed.reshape(-1, 3)])
            assert (copied == 1.0) == only_source_colours, interpolation
    pooled = augment_images(images, np.random.default_rng(6), pool=True, interpolation="nearest")
    expected = max_pool_2x2(augment_images(images, np.random.default_rng(6),
                                           interpolation="nearest"))
    assert (pooled != expected).any(axis=-1).mean() < 0.01
    with pytest.raises(ValueError, match="interpolation must be one of bilinear, nearest"):
        augment_images(images, np.random.default_rng(0), interpolation="cubic")


def test_training_feed_augments_only_when_asked_and_is_seeded() -> None:
    images = striped_images(count=10)
    labels = np.arange(10)
    plain = TrainingFeed(images, labels, batch_size=4, augment=False, seed=3)
    assert len(plain) == 3 and plain.num_batches is None      # an endless stream to Keras
    for epoch in range(2):
        seen = []
        for index in range(epoch * len(plain), (epoch + 1) * len(plain)):
            batch, batch_labels = plain[index]
            assert batch.dtype == np.uint8
            np.testing.assert_array_equal(batch, images[batch_labels])
            seen.extend(batch_labels.tolist())
        assert sorted(seen) == list(range(10))                 # each epoch: every image once

    augmented = TrainingFeed(images, labels, batch_size=4, augment=True, seed=3)
    again = TrainingFeed(images, labels, batch_size=4, augment=True, seed=3)
    try:
        random.seed(0)            # the batch order's draws (`fit`'s caller seeds them)
        batch, batch_labels = augmented[0]
        assert not np.array_equal(batch, images[batch_labels])
        random.seed(0)
        np.testing.assert_array_equal(batch, again[0][0])
        first_epoch = np.concatenate([augmented[index][1] for index in range(1, 3)])
        second_epoch = np.concatenate([augmented[index][1] for index in range(3, 6)])
        assert not np.array_equal(np.concatenate([batch_labels, first_epoch]), second_epoch)
    finally:
        augmented.close()
        again.close()


def test_augmented_batches_do_not_depend_on_the_thread_or_time_they_are_built() -> None:
    # The feed builds batches ahead in worker threads: batch b of epoch e must be the same
    # whenever and wherever it is built, and differ between epochs.
    images = striped_images(count=10)
    labels = np.arange(10)
    ahead = TrainingFeed(images, labels, batch_size=4, augment=True, seed=7)
    alone = TrainingFeed(images, labels, batch_size=4, augment=False, seed=7)
    alone.augment = True          # the same stream, every batch built in this thread, on demand
    try:
        random.seed(5)            # the batch order's draws (`fit`'s caller seeds them)
        streamed = [ahead[index] for index in range(2 * len(ahead))]
        random.seed(5)
        on_demand = [alone[index] for index in range(2 * len(alone))]
        for (batch, batch_labels), (other, other_labels) in zip(streamed, on_demand,
                                                                strict=True):
            np.testing.assert_array_equal(batch_labels, other_labels)
            np.testing.assert_array_equal(batch, other)
        first, second = streamed[:3], streamed[3:]
        assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, second, strict=True))
    finally:
        ahead.close()


def test_a_closed_feed_still_answers_and_builds_nothing_ahead() -> None:
    images = striped_images(count=10)
    feed = TrainingFeed(images, np.arange(10), batch_size=4, augment=True, seed=1, epochs=1)
    random.seed(2)
    expected = [feed[index] for index in range(3)]
    feed.close()
    assert not [thread for thread in threading.enumerate()
                if thread.name.startswith("toonvision-augment")]
    again = TrainingFeed(images, np.arange(10), batch_size=4, augment=True, seed=1, epochs=1)
    again.close()                      # closed before reading: builds each batch when asked
    random.seed(2)
    for index, (batch, batch_labels) in enumerate(expected):
        np.testing.assert_array_equal(again[index][0], batch)
        np.testing.assert_array_equal(again[index][1], batch_labels)


def test_max_pool_matches_keras_max_pooling_after_rescaling() -> None:
    import keras

    images = striped_images(count=3, height=31, width=20)
    pooled = max_pool_2x2(images)
    assert pooled.shape == (3, 15, 10, 3) and pooled.dtype == np.uint8
    rescaled = keras.layers.Rescaling(1 / 255)(images.astype(np.float32))
    expected = np.asarray(keras.layers.MaxPooling2D(2)(rescaled))
    np.testing.assert_array_equal(pooled.astype(np.float32) * np.float32(1 / 255), expected)
    feed = TrainingFeed(images, np.arange(3), batch_size=3, augment=False, seed=0, pool=True)
    batch, labels = feed[0]
    np.testing.assert_array_equal(batch, pooled[labels])

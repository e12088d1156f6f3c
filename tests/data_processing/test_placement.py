"""Tests of data_processing.placement and images.to_input: how a crop becomes a model input
(stretch or letterbox) and how a heatmap of that input maps back onto the crop."""

from __future__ import annotations

import numpy as np
import pytest

from toonvision import ToonvisionError
from toonvision.data_processing.images import letterbox, resize, to_input
from toonvision.data_processing.placement import PAD_VALUE, placement


def gradient_crop(height: int, width: int) -> np.ndarray:
    """A crop with no black pixel: every pixel 50..250, so padding is easy to tell."""
    rows = np.linspace(50, 250, height)[:, None, None]
    columns = np.linspace(50, 250, width)[None, :, None]
    return ((rows + columns) / 2 * np.ones((1, 1, 3))).astype(np.uint8)


def test_letterbox_keeps_the_aspect_ratio_and_pads_black_around_the_centred_crop():
    crop = gradient_crop(30, 90)                       # 1:3, into a square input
    boxed, where = letterbox(crop, (64, 64))
    assert boxed.shape == (64, 64, 3)
    assert (where.height, where.width) == (21, 64)     # 64 / 90 * 30 = 21.3
    assert where.top == (64 - 21) // 2 and where.left == 0
    assert where.width / where.height == pytest.approx(90 / 30, rel=0.03)
    assert (boxed[:where.top] == PAD_VALUE).all()
    assert (boxed[where.top + where.height:] == PAD_VALUE).all()
    content = where.content(boxed)
    assert content.min() >= 45                          # the crop, no padding inside
    np.testing.assert_array_equal(content, resize(crop, (21, 64)))


def test_a_tall_crop_is_padded_left_and_right():
    boxed, where = letterbox(gradient_crop(100, 20), (50, 50))
    assert (where.top, where.height, where.width) == (0, 50, 10)
    assert where.left == 20
    assert (boxed[:, :20] == 0).all() and (boxed[:, 30:] == 0).all()
    assert boxed[:, 20:30].min() > 0


@pytest.mark.parametrize(("source", "size"), [((40, 20), (80, 40)), ((60, 20), (90, 30)),
                                             ((600, 200), (600, 200))])
def test_a_crop_with_the_inputs_aspect_ratio_fills_it_exactly_as_stretch_does(source, size):
    crop = gradient_crop(*source)
    boxed, where = letterbox(crop, size)
    assert (where.top, where.left) == (0, 0) and (where.height, where.width) == size
    np.testing.assert_array_equal(boxed, resize(crop, size))
    if source == size:
        np.testing.assert_array_equal(boxed, crop)   # already that size: unchanged


def test_stretch_fills_the_input_and_is_the_default():
    crop = gradient_crop(30, 90)
    image, where = to_input(crop, (64, 64))
    assert (where.top, where.left, where.height, where.width) == (0, 0, 64, 64)
    np.testing.assert_array_equal(image, resize(crop, (64, 64), "stretch"))
    assert image.min() > 0


def test_an_unknown_mode_is_refused_with_a_suggestion():
    with pytest.raises(ToonvisionError, match="did you mean 'letterbox'"):
        resize(gradient_crop(10, 10), (8, 8), "letterbx")


def test_a_heatmap_hot_only_inside_the_content_lands_on_the_crops_content():
    """The object at the crop's right end: the heatmap over the letterboxed input is hot
    there, cold on the padding; mapped back it is hot on those pixels of the crop, and the
    crop's top and bottom rows (which the padding bordered) stay as hot as its middle."""
    crop = np.full((30, 90, 3), 100, np.uint8)
    crop[:, 60:] = 250                                  # the object: the right third
    boxed, where = letterbox(crop, (64, 64))
    heatmap = (boxed[..., 0] == 250).astype(np.float32)   # hot where the object is
    assert heatmap[:where.top].max() == 0                  # nothing on the padding
    on_crop = where.to_source(heatmap)
    assert on_crop.shape == crop.shape[:2]
    assert on_crop[:, 64:].min() > 0.95 and on_crop[:, :56].max() < 0.05
    np.testing.assert_allclose(on_crop[0], on_crop[15], atol=1e-6)
    # Resizing the whole input-sized map to the crop instead would smear the padding onto
    # the crop's top and bottom rows:
    import cv2

    naive = cv2.resize(heatmap, (90, 30), interpolation=cv2.INTER_LINEAR)
    assert naive[0, 80] < 0.5 < on_crop[0, 80]


def test_a_coarse_heatmap_is_resized_to_the_input_before_it_is_mapped():
    where = placement((30, 90), (64, 64), "letterbox")
    coarse = np.zeros((8, 8), np.float32)
    coarse[3:5, 6:] = 1.0                                  # the content's right, mid-height
    on_crop = where.to_source(coarse)
    assert on_crop.shape == (30, 90)
    assert np.unravel_index(on_crop.argmax(), on_crop.shape)[1] > 60

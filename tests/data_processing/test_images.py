"""Reading images by content in every colour mode, atomic writes, and drawing labelled boxes."""

import cv2
import numpy as np
import pytest

from toonvision.data_processing.images import (
    ImageReadError,
    draw_labelled_box,
    read_image,
    resize,
    write_image_atomic,
)


def test_roundtrip_keeps_rgb_order(tmp_path):
    image = np.zeros((4, 6, 3), dtype=np.uint8)
    image[..., 0] = 255  # pure red in RGB
    write_image_atomic(tmp_path / "red.png", image)
    on_disk = cv2.imread(str(tmp_path / "red.png"))  # BGR
    assert on_disk[0, 0].tolist() == [0, 0, 255]
    assert read_image(tmp_path / "red.png")[0, 0].tolist() == [255, 0, 0]


def test_decodes_by_content_not_extension(tmp_path):
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    ok, jpeg = cv2.imencode(".jpg", image)
    lying = tmp_path / "screenshot.png"
    lying.write_bytes(jpeg.tobytes())
    assert read_image(lying).shape == (8, 8, 3)


def test_grayscale_rgba_and_palette(tmp_path):
    from PIL import Image

    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.full((5, 5), 77, dtype=np.uint8))
    assert read_image(gray).shape == (5, 5, 3)

    rgba = np.zeros((5, 5, 4), dtype=np.uint8)
    rgba[..., 1] = 255
    rgba[0, 0, 3] = 255  # one opaque green pixel, the rest transparent
    write_image_atomic(tmp_path / "rgba.png", rgba)
    rgb = read_image(tmp_path / "rgba.png")
    assert rgb[0, 0].tolist() == [0, 255, 0]
    assert rgb[1, 1].tolist() == [0, 0, 0]
    assert read_image(tmp_path / "rgba.png", keep_alpha=True).shape == (5, 5, 4)

    palette = Image.new("P", (6, 4))
    palette.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    palette.save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png")[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_broken_files_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match="broken.png"):
        read_image(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_resize_is_height_then_width():
    assert resize(np.zeros((10, 20, 3), np.uint8), (6, 2)).shape == (6, 2, 3)


def test_atomic_write_leaves_no_temporary_on_failure(tmp_path, monkeypatch):
    import os

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_image_atomic(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ymin", [5, 150])
def test_labelled_box_draws_its_edges_and_a_label_band_without_covering_the_inside(ymin):
    color = (230, 40, 40)
    image = np.full((300, 400, 3), 255, np.uint8)
    draw_labelled_box(image, (100, ymin, 200, ymin + 100), "cog_bb_flunky", color)
    assert image[ymin + 50, 100].tolist() == list(color)          # left edge
    assert image[ymin + 50, 199].tolist() == list(color)          # right edge
    assert (image[ymin + 10:ymin + 90, 110:190] == 255).all()     # inside untouched
    # The label: a band of the colour with dark text, above the box where there is room
    # (ymin 150), below it at the top of the image (ymin 5).
    rows = slice(ymin - 20, ymin - 1) if ymin > 30 else slice(ymin + 101, ymin + 115)
    band = image[rows, 100:180]
    assert (band == color).all(axis=-1).mean() > 0.3
    assert (band.max(axis=-1) < 100).any()                        # black text on it

"""Background removal and centering (toonvision.preprocess) and the `preprocess` command."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from toonvision.cli import main
from toonvision.data_processing.dataset import from_csv
from toonvision.data_processing.images import read_image
from toonvision.data_processing.preprocess import (
    center_object,
    check_output_dir,
    check_steps,
    preprocess_dataset,
    preprocess_image,
    remove_background_steps,
    steps_columns,
    steps_examples,
)

SIDE = 32
RED = (200, 30, 30)


def blob_mask(center: tuple[int, int] = (16, 16), radius: int = 7) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), dtype=np.uint8)
    cv2.circle(mask, center, radius, 255, thickness=-1)
    return mask


def blob_on_white(center: tuple[int, int] = (16, 16)) -> tuple[np.ndarray, np.ndarray]:
    mask = blob_mask(center)
    image = np.full((SIDE, SIDE, 3), 255, dtype=np.uint8)
    image[mask > 0] = RED
    return image, mask


def border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def test_coloured_blob_on_white_keeps_the_blob_and_zeroes_the_background() -> None:
    image, mask = blob_on_white()

    stages = remove_background_steps(image)

    assert stages.background == (255, 255, 255)
    assert np.array_equal(stages.result[mask > 0], image[mask > 0])
    assert not border(stages.result).any()
    far_from_blob = cv2.dilate(mask, np.ones((5, 5), np.uint8)) == 0
    assert not stages.result[far_from_blob].any()


def test_closing_fills_a_background_coloured_hole_that_thresholding_leaves() -> None:
    image, mask = blob_on_white()
    cv2.circle(image, (16, 16), 1, (255, 255, 255), thickness=-1)  # a white eye
    eye = np.zeros((SIDE, SIDE), dtype=bool)
    eye[16, 16] = True

    without_closing = remove_background_steps(image, iterations=0)
    with_closing = remove_background_steps(image, iterations=3)

    assert without_closing.closed[eye].max() == 0
    assert with_closing.closed[eye].min() == 255
    assert np.array_equal(with_closing.result[eye], image[eye])


def test_rgba_blob_uses_the_alpha_channel() -> None:
    mask = blob_mask()
    generator = np.random.default_rng(0)
    rgba = generator.integers(0, 256, (SIDE, SIDE, 4), dtype=np.uint8)  # junk under alpha 0
    rgba[:, :, 3] = mask
    rgba[mask > 0, :3] = RED

    stages = remove_background_steps(rgba)

    assert np.array_equal(stages.result[mask > 0], rgba[mask > 0, :3])
    assert not stages.result[cv2.dilate(mask, np.ones((5, 5), np.uint8)) == 0].any()
    assert not border(stages.result).any()


def test_palette_png_with_a_transparent_colour(tmp_path: Path) -> None:
    mask = blob_mask()
    indices = np.where(mask > 0, 1, 0).astype(np.uint8)
    palette_image = Image.fromarray(indices, mode="P")
    palette_image.putpalette([0, 255, 0, *RED] + [0] * (3 * 254))  # background is green
    path = tmp_path / "palette.png"
    palette_image.save(path, transparency=0)
    assert Image.open(path).mode == "P"

    stages = remove_background_steps(read_image(path, keep_alpha=True))

    assert (stages.result[mask > 0] == RED).all()
    assert not stages.result[mask == 0].any()


def test_centering_moves_the_object_centre_to_the_image_centre() -> None:
    image, mask = blob_on_white(center=(8, 9))
    stages = remove_background_steps(image)

    centred = center_object(stages.result, stages.closed)

    rows, columns = np.nonzero(centred.max(axis=2))
    assert abs(rows.mean() - (SIDE - 1) / 2) <= 1.0
    assert abs(columns.mean() - (SIDE - 1) / 2) <= 1.0
    assert (centred.max(axis=2) > 0).sum() == (mask > 0).sum()


def test_preprocess_image_resizes_and_centre_alone_keeps_the_background() -> None:
    image, _ = blob_on_white(center=(8, 9))

    processed = preprocess_image(image, size=16)
    centred_only = preprocess_image(image, size=(20, 24), steps=["center"])

    assert processed.shape == (16, 16, 3)
    assert processed[0, 0].tolist() == [0, 0, 0]
    assert centred_only.shape == (20, 24, 3)
    assert centred_only[0, 0].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="remove-background, center"):
        check_steps(["sharpen"])


def flat_set_items(broken: bool = True) -> list[tuple[str, str, np.ndarray | bytes]]:
    """Four blobs on white (Water, Fire, Water, Fire), and a broken PNG labelled Fire."""
    items = [(f"p{index}", "Fire" if index % 2 else "Water",
              blob_on_white(center=(8 + 4 * index, 10))[0]) for index in range(4)]
    if broken:
        items.append(("broken", "Fire", b"\x89PNG\r\n\x1a\n not really"))
    return items


def test_preprocess_dataset_writes_a_dataset_and_skips_broken_images(
        tmp_path: Path, write_flat_set) -> None:
    labels, images = write_flat_set(tmp_path / "input", flat_set_items())
    source = from_csv(labels, images)
    out = tmp_path / "out"

    results = list(preprocess_dataset(source, out, size=16))

    assert [result.error is None for result in results] == [True, True, True, True, False]
    assert "broken.png" in results[-1].error
    processed = from_csv(out / "labels.csv", out / "images")
    assert processed.labels == source.labels[:4]
    assert [path.stem for path in processed.paths] == ["p0", "p1", "p2", "p3"]
    assert processed.skipped == []
    assert read_image(processed.paths[0]).shape == (16, 16, 3)


def test_output_folder_must_be_new_and_outside_the_input(tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    with pytest.raises(ValueError, match="inside the input"):
        check_output_dir(tmp_path / "input" / "out", [tmp_path / "input"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        check_output_dir(tmp_path / "full", [tmp_path / "input"])
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty", [tmp_path / "input"]).is_dir()


def test_steps_examples_give_one_panel_per_column_and_skip_unreadable_images(
    tmp_path: Path, write_flat_set,
) -> None:
    _, images = write_flat_set(tmp_path / "input", flat_set_items())
    done = []

    examples = steps_examples([images / "p0.png", images / "broken.png", images / "p1.png"],
                              iterations=3, trade_off=(1, 3), size=16,
                              progress=lambda count, total: done.append((count, total)))

    columns = steps_columns(3, (1, 3), 16)
    assert columns[3] == "3. close x3" and columns[5] == "centred 16x16"
    assert columns[-2:] == ["kept, close x1", "kept, close x3"]
    assert [example.name for example in examples] == ["p0", "p1"]
    assert all(len(example.panels) == len(columns) for example in examples)
    assert examples[0].panels[5].shape == (16, 16, 3)
    assert done == [(1, 2), (2, 2)]
    with pytest.raises(ValueError, match="no readable example"):
        steps_examples([images / "broken.png"])


def test_preprocess_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            write_flat_set) -> None:
    labels, images = write_flat_set(tmp_path / "input", flat_set_items())
    before = sorted((path.name, path.stat().st_mtime_ns) for path in images.iterdir())
    out = tmp_path / "out"
    arguments = ["preprocess", "--labels", str(labels), "--images", str(images),
                 "--out", str(out), "--size", "16", "--iterations", "3",
                 "--figure-iterations", "1,3"]

    assert main(arguments) == 0

    captured = capsys.readouterr()
    assert "4 of 5 images processed" in captured.out
    assert "broken.png" in captured.err
    assert (out / "preprocess_steps.png").stat().st_size > 1000
    assert len(list((out / "images").glob("*.png"))) == 4
    assert sorted((path.name, path.stat().st_mtime_ns) for path in images.iterdir()) == before
    assert main(arguments) == 2
    assert "not empty" in capsys.readouterr().err


def first_of_each_kind(images_dir: Path) -> dict[str, Path]:
    """One RGBA PNG, one palette PNG and one JPEG of the real set, found by their modes."""
    kinds: dict[str, Path] = {}
    for path in sorted(images_dir.iterdir()):
        with Image.open(path) as image:
            kind = {("PNG", "RGBA"): "rgba", ("PNG", "P"): "palette",
                    ("JPEG", "RGB"): "jpeg"}.get((image.format, image.mode))
        if kind and kind not in kinds:
            kinds[kind] = path
        if len(kinds) == 3:
            break
    return kinds


def test_real_pokemon_images_of_each_kind(shared_data: Path) -> None:
    kinds = first_of_each_kind(shared_data / "pokemon_types" / "images")
    assert sorted(kinds) == ["jpeg", "palette", "rgba"]
    for kind, path in kinds.items():
        image = read_image(path, keep_alpha=True)
        stages = remove_background_steps(image)
        assert not border(stages.result).any(), path
        if kind == "jpeg":
            distance = np.abs(image[:, :, :3].astype(int) - 255).max(axis=2)
            pokemon = distance > 60  # clearly not the white background
        else:
            pokemon = image[:, :, 3] > 0
        kept = (stages.closed[pokemon] > 0).mean()
        assert kept > 0.95, f"{path}: only {kept:.1%} of the Pokemon kept"
        background = cv2.dilate(pokemon.astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
        assert not stages.result[background].any(), path

"""Flat labelled sets (a CSV of ids and labels plus a folder of images) through `from_csv`."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from toonvision.data_processing.dataset import from_csv, load_task_data
from toonvision.labels import make_task

CHALLENGE_TYPES = {
    "Water": 114, "Normal": 105, "Grass": 78, "Bug": 72, "Fire": 53, "Rock": 46, "Poison": 34,
    "Ground": 32, "Fighting": 29,
}


def write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        image = np.full((12, 12, 3), 20 * index, dtype=np.uint8)
        assert cv2.imwrite(str(folder / name), image)


def test_challenge_form_finds_each_image_by_id_with_any_extension(tmp_path: Path) -> None:
    write_images(tmp_path / "images", ["0001.png", "0002.jpg", "0003.PNG"])
    labels = tmp_path / "train_labels.csv"
    labels.write_text("Id,label\n0001,Water\n0002,Fire\n0003,Water\n")

    dataset = from_csv(labels, tmp_path / "images")

    assert [path.name for path in dataset.paths] == ["0001.png", "0002.jpg", "0003.PNG"]
    assert dataset.labels == ["Water", "Fire", "Water"]
    assert dataset.skipped == []
    assert dataset.label_counts() == {"Fire": 1, "Water": 2}


def test_ids_keep_leading_zeros_and_may_carry_the_extension(tmp_path: Path) -> None:
    write_images(tmp_path / "images", ["007.png", "10.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("\ufeffId,label\n007,Bug\n10.png,Rock\n")  # a BOM, as Excel writes

    dataset = from_csv(labels, tmp_path / "images")

    assert [path.name for path in dataset.paths] == ["007.png", "10.png"]
    assert dataset.labels == ["Bug", "Rock"]


def test_named_columns_and_keep(tmp_path: Path) -> None:
    write_images(tmp_path / "images", ["bulbasaur.png", "charmander.png", "pidgey.png"])
    labels = tmp_path / "pokemon.csv"
    labels.write_text(
        "Name,Type1,Type2\nbulbasaur,Grass,Poison\ncharmander,Fire,\npidgey,Normal,Flying\n"
    )

    dataset = from_csv(labels, tmp_path / "images", id_column="Name", label_column="Type1",
                       keep=["Grass", "Fire"])

    assert [path.stem for path in dataset.paths] == ["bulbasaur", "charmander"]
    assert dataset.labels == ["Grass", "Fire"]
    second = from_csv(labels, tmp_path / "images", id_column="Name", label_column="Type2")
    assert second.labels == ["Poison", "Flying"]
    assert any("charmander" in message and "empty label" in message
               for message in second.skipped)


def test_rows_without_image_and_images_without_row_are_reported(tmp_path: Path) -> None:
    write_images(tmp_path / "images", ["a.png", "b.png", "stray.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("Id,label\na,X\nb,Y\nghost,X\n")

    dataset = from_csv(labels, tmp_path / "images")

    assert [path.name for path in dataset.paths] == ["a.png", "b.png"]
    assert len(dataset.skipped) == 2
    assert any("ghost" in message for message in dataset.skipped)
    assert any("stray.png" in message and "no row" in message for message in dataset.skipped)


def test_unknown_column_names_the_columns(tmp_path: Path) -> None:
    write_images(tmp_path / "images", ["a.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("Id,label\na,X\n")
    with pytest.raises(ValueError, match="Type1.*columns are"):
        from_csv(labels, tmp_path / "images", label_column="Type1")


def test_a_repeated_id_is_reported_not_loaded_twice(tmp_path: Path) -> None:
    write_images(tmp_path / "images", ["a.png", "b.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("Id,label\na,X\nb,Y\na,Y\n")

    dataset = from_csv(labels, tmp_path / "images")

    assert len(set(dataset.paths)) == len(dataset.paths)
    assert any("'a'" in message for message in dataset.skipped)


def test_loaded_flat_set_becomes_task_data(tmp_path: Path) -> None:
    write_images(tmp_path / "images", ["a.png", "b.png", "c.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("Id,label\na,Fire\nb,Water\nc,Fire\n")
    dataset = from_csv(labels, tmp_path / "images")

    data = load_task_data(dataset, make_task("label", dataset.labels), (16, 16),
                          cache_dir=tmp_path / "cache")

    assert data.images.shape == (3, 16, 16, 3)
    assert data.class_names == ("Fire", "Water")
    assert data.y.tolist() == [0, 1, 0]


def test_real_pokemon_set_gives_the_challenge_types(shared_data: Path) -> None:
    root = shared_data / "pokemon_types"
    dataset = from_csv(root / "pokemon.csv", root / "images", id_column="Name",
                       label_column="Type1", keep=list(CHALLENGE_TYPES))

    assert len(dataset) == 563
    assert dataset.label_counts() == dict(sorted(CHALLENGE_TYPES.items()))
    assert len(set(dataset.paths)) == 563
    assert all(path.is_file() for path in dataset.paths)
    assert dataset.skipped == []
    everything = from_csv(root / "pokemon.csv", root / "images", id_column="Name",
                          label_column="Type1")
    assert len(everything) == 809

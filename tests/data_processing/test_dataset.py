"""The dataset abstraction and its cached loader."""

import time

import numpy as np
import pytest

from toonvision.data_processing.dataset import (
    from_crops,
    from_csv,
    label_from_crop_name,
    load_images,
    load_task_data,
)
from toonvision.data_processing.images import write_image_atomic
from toonvision.labels import make_task


@pytest.mark.parametrize(
    ("name", "label"),
    [("cog_bb_flunky_12.png", "cog_bb_flunky"), ("toon_dog_0.png", "toon_dog"),
     ("king_3.png", "king"), ("odd.png", "odd"), ("a_b.png", "a_b")],
)
def test_label_from_crop_name(tmp_path, name, label):
    assert label_from_crop_name(tmp_path / name) == label


def test_from_crops_reads_labels_from_names(tmp_path, write_crops):
    write_crops(tmp_path, [("cog_bb_flunky", 10), ("toon_dog", 200), ("cog_lb_bigwig", 30)],
                size=(30, 12))
    (tmp_path / "unsorted" / "cog" / "notes.txt").write_text("not an image")
    dataset = from_crops(tmp_path)
    assert sorted(dataset.labels) == ["cog_bb_flunky", "cog_lb_bigwig", "toon_dog"]
    assert dataset.label_counts() == {"cog_bb_flunky": 1, "cog_lb_bigwig": 1, "toon_dog": 1}


def test_from_crops_without_crops_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="toonvision extract"):
        from_crops(tmp_path)


def test_load_task_data_maps_classes_and_skips_uncovered(tmp_path, write_crops):
    write_crops(tmp_path, [("cog_bb_flunky", 10), ("toon_dog", 200), ("king", 90)], size=(30, 12))
    data = load_task_data(from_crops(tmp_path), make_task("binary"), (16, 8), tmp_path / "cache")
    assert data.images.shape == (2, 16, 8, 3) and data.images.dtype == np.uint8
    assert [data.class_names[index] for index in data.y] == ["cog", "toon"]
    assert data.images[1].mean() == pytest.approx(200, abs=1)


def test_task_covering_nothing_is_a_clear_error(tmp_path, write_crops):
    write_crops(tmp_path, [("king", 1)], size=(30, 12))
    with pytest.raises(ValueError, match="covers no image") as raised:
        load_task_data(from_crops(tmp_path), make_task("suit"), (16, 8), tmp_path / "cache")
    # it names what is there and the options that would take it
    assert "labels found: king; --task label" in str(raised.value)
    assert "--task king keeps only those" in str(raised.value)


def test_unreadable_crop_is_skipped_and_reported(tmp_path, write_crops):
    paths = write_crops(tmp_path, [("cog_bb_flunky", 10), ("toon_dog", 200)], size=(30, 12))
    paths[0].write_bytes(b"garbage")
    data = load_task_data(from_crops(tmp_path), make_task("binary"), (16, 8), tmp_path / "cache")
    assert len(data) == 1 and data.class_names[data.y[0]] == "toon"
    assert any("cog_bb_flunky_0.png" in message for message in data.skipped)


def test_cache_is_hit_and_invalidated_by_content(tmp_path, write_crops):
    paths = write_crops(tmp_path, [("cog_bb_flunky", 10)] * 40 + [("toon_dog", 200)] * 40,
                size=(30, 12))
    cache = tmp_path / "cache"
    calls = []
    first, _ = load_images(paths, (64, 32), cache, lambda done, total: calls.append(done))
    assert len(calls) == 80
    calls.clear()
    start = time.perf_counter()
    second, _ = load_images(paths, (64, 32), cache, lambda done, total: calls.append(done))
    assert calls == []  # served from the cache: nothing decoded
    assert np.array_equal(first, second)
    assert time.perf_counter() - start < 5  # generous: a hit is milliseconds

    write_image_atomic(paths[0], np.full((30, 12, 3), 123, dtype=np.uint8))
    third, _ = load_images(paths, (64, 32), cache, lambda done, total: calls.append(done))
    assert len(calls) == 80 and third[0].mean() == pytest.approx(123, abs=1)

    other_size, _ = load_images(paths, (32, 16), cache)
    assert other_size.shape == (80, 32, 16, 3)
    names = sorted(path.name for path in cache.iterdir())
    assert len(names) == 6 and all(name.startswith("images-") for name in names)  # no temporary


def test_the_cache_keeps_stretched_and_letterboxed_images_apart(tmp_path, write_crops):
    """The same files at the same size in the two modes are two cache entries, each served
    back as it was decoded; stretch keeps the key it had before letterbox existed."""
    import hashlib

    from toonvision.data_processing.images import letterbox, read_image, resize

    paths = write_crops(tmp_path, [("cog_bb_flunky", 90), ("toon_dog", 200)], size=(30, 12))
    cache = tmp_path / "cache"
    stretched, _ = load_images(paths, (32, 32), cache)
    boxed, _ = load_images(paths, (32, 32), cache, resize_mode="letterbox")
    assert len(list(cache.glob("images-*.npy"))) == 2
    np.testing.assert_array_equal(stretched[1], resize(read_image(paths[1]), (32, 32)))
    np.testing.assert_array_equal(boxed[1], letterbox(read_image(paths[1]), (32, 32))[0])
    assert (boxed[:, :, :9] == 0).all() and (stretched > 0).all()   # 12 of 30 wide: padded
    calls = []
    again, _ = load_images(paths, (32, 32), cache, lambda done, total: calls.append(done),
                           "letterbox")
    assert calls == [] and np.array_equal(again, boxed)
    digest = hashlib.blake2b(b"v1:32x32", digest_size=20)
    for path in paths:
        digest.update(path.name.encode())
        digest.update(hashlib.blake2b(path.read_bytes(), digest_size=16).digest())
    assert (cache / f"images-{digest.hexdigest()}.npy").is_file()   # an old cache still hits


def test_an_unwritable_cache_only_costs_the_next_run_its_speed(tmp_path, write_crops):
    paths = write_crops(tmp_path, [("toon_dog", 200)] * 2, size=(30, 12))
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache folder should be")

    images, errors = load_images(paths, (16, 8), cache)

    assert images.shape == (2, 16, 8, 3) and errors == [None, None]


def test_from_csv_challenge_form(tmp_path):
    images = tmp_path / "images"
    for name, colour in [("1", 10), ("2", 20), ("3", 30)]:
        write_image_atomic(images / f"{name}.png", np.full((8, 8, 3), colour, np.uint8))
    (images / "4.jpg").write_bytes(b"")  # an image with no row
    (tmp_path / "train_labels.csv").write_text("Id,label\n1,Water\n2,Fire\n3,Water\n9,Grass\n")
    dataset = from_csv(tmp_path / "train_labels.csv", images)
    assert dataset.labels == ["Water", "Fire", "Water"]
    assert [path.name for path in dataset.paths] == ["1.png", "2.png", "3.png"]
    assert any("'9'" in message for message in dataset.skipped)
    assert any("4.jpg" in message for message in dataset.skipped)

    kept = from_csv(tmp_path / "train_labels.csv", images, keep=["Water"])
    assert kept.labels == ["Water", "Water"]


def test_from_csv_named_columns_and_errors(tmp_path):
    images = tmp_path / "images"
    write_image_atomic(images / "bulbasaur.png", np.zeros((8, 8, 3), np.uint8))
    csv = tmp_path / "pokemon.csv"
    csv.write_text("Name,Type1,Type2\nbulbasaur,Grass,Poison\n")
    dataset = from_csv(csv, images, id_column="Name", label_column="Type1")
    assert dataset.labels == ["Grass"]
    with pytest.raises(ValueError, match="no column 'Type3'"):
        from_csv(csv, images, label_column="Type3")
    with pytest.raises(FileNotFoundError):
        from_csv(tmp_path / "missing.csv", images)


def test_from_csv_same_id_with_two_extensions_and_unknown_keep(tmp_path):
    images = tmp_path / "images"
    write_image_atomic(images / "x.png", np.zeros((8, 8, 3), np.uint8))
    write_image_atomic(images / "x.jpg", np.zeros((8, 8, 3), np.uint8))
    csv = tmp_path / "labels.csv"
    csv.write_text("Id,label\nx,Fire\n")
    dataset = from_csv(csv, images)
    assert [path.name for path in dataset.paths] == ["x.jpg"]
    assert any("x.png: same id as x.jpg" in message for message in dataset.skipped)
    kept = from_csv(csv, images, keep=["Fire", "Watr"])
    assert any("'Watr' matches no row" in message for message in kept.skipped)

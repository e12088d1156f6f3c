"""Near duplicates: copies with small changes are paired, different crops are not."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from toonvision import ToonvisionError
from toonvision.data_processing.duplicates import (
    MAX_DISTANCE,
    Pairs,
    clusters,
    duplicate_groups,
    exact_duplicate_groups,
    hamming,
    hash_images,
    leak_share,
    near_duplicate_pairs,
)
from toonvision.data_processing.images import (
    decode_image,
    encode_image,
    read_image,
    write_image_atomic,
)


def _scene(seed: int, size=(96, 64)) -> np.ndarray:
    """A smooth random picture (blobs of colour), unlike any other seed's."""
    generator = np.random.default_rng(seed)
    small = generator.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (size[1], size[0]),
                                       interpolation=cv2.INTER_CUBIC), (0, 0), 3)


def _jpeg(image: np.ndarray, quality: int = 80) -> np.ndarray:
    return decode_image(encode_image(image, ".jpg", jpeg_quality=quality))


def _brighter(image: np.ndarray, amount: int = 8) -> np.ndarray:
    return np.clip(image.astype(np.int16) + amount, 0, 255).astype(np.uint8)


def _reference_pairs(words: np.ndarray, max_distance: int) -> set:
    """The plain pairwise search the vectorised one must agree with."""
    values = [(int(a), int(b)) for a, b in words]
    return {(i, j) for i in range(len(values)) for j in range(i + 1, len(values))
            if (values[i][0] ^ values[j][0]).bit_count()
            + (values[i][1] ^ values[j][1]).bit_count() <= max_distance}


def test_copies_with_small_changes_pair_with_their_original_and_nothing_else(tmp_path):
    originals = [_scene(seed) for seed in range(12)]
    copies = [_jpeg(originals[0]), _brighter(originals[1]), np.roll(originals[2], 1, axis=1),
              originals[3].copy()]
    paths = []
    for index, image in enumerate(originals + copies):
        paths.append(tmp_path / f"crop_{index}.png")
        write_image_atomic(paths[-1], image)
    pairs = near_duplicate_pairs(hash_images(paths))
    found = {(int(a), int(b)) for a, b in zip(pairs.first, pairs.second, strict=True)}
    assert found == {(0, 12), (1, 13), (2, 14), (3, 15)}
    assert pairs.exact.tolist() == [(a, b) == (3, 15) for a, b in
                                    zip(pairs.first, pairs.second, strict=True)]
    assert [group.tolist() for group in exact_duplicate_groups(hash_images(paths))] == [[3, 15]]


def test_vectorised_search_matches_the_plain_pairwise_one_across_blocks():
    generator = np.random.default_rng(0)
    words = generator.integers(0, 2**63, (1300, 2), dtype=np.uint64)
    for source, target in generator.integers(0, 1300, (40, 2)):
        flips = generator.integers(0, 64, generator.integers(0, 12))
        words[target] = words[source]
        words[target, int(flips.size) % 2] ^= np.uint64(sum(1 << int(bit) for bit in set(flips)))
    pairs = near_duplicate_pairs(words, 10)
    found = {(int(a), int(b)) for a, b in zip(pairs.first, pairs.second, strict=True)}
    assert found == _reference_pairs(words, 10) and len(found) >= 30
    assert np.array_equal(pairs.distance, hamming(words[pairs.first], words[pairs.second]))
    assert np.all(np.diff(pairs.distance) >= 0)


def test_unreadable_images_are_listed_and_never_paired(tmp_path):
    write_image_atomic(tmp_path / "a.png", _scene(1))
    (tmp_path / "b.png").write_bytes(b"not an image")
    (tmp_path / "c.png").write_bytes(b"not an image either")
    hashes = hash_images([tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"])
    assert hashes.readable.tolist() == [True, False, False] and len(hashes.skipped) == 2
    assert "b.png" in hashes.skipped[0] and len(near_duplicate_pairs(hashes)) == 0


def test_clusters_join_chains_and_number_by_first_image():
    pairs = Pairs(np.array([1, 2, 4]), np.array([2, 5, 6]), np.array([3, 4, 1]),
                  np.zeros(3, bool))
    assert clusters(7, pairs).tolist() == [0, 1, 1, 2, 3, 1, 3]


def test_leak_share_counts_test_crops_with_a_near_duplicate_in_training():
    pairs = Pairs(np.array([0, 1, 2]), np.array([5, 6, 7]), np.zeros(3, int), np.zeros(3, bool))
    # 5 is tested with 0 in training (a leak); 6's partner 1 is in test too (no leak).
    assert leak_share(pairs, train=np.array([0, 2, 3]), test=np.array([1, 5, 6, 8])) == (1, 4)


def test_duplicate_groups_keep_copies_together(tmp_path):
    paths = []
    for index, image in enumerate([_scene(1), _scene(2), _jpeg(_scene(1))]):
        paths.append(tmp_path / f"c_{index}.png")
        write_image_atomic(paths[-1], image)
    groups = duplicate_groups(paths)
    assert groups[0] == groups[2] != groups[1]


def test_distance_out_of_range_is_an_error():
    with pytest.raises(ToonvisionError, match="max_distance"):
        near_duplicate_pairs(np.zeros((2, 2), np.uint64), 129)


# ------------------------------------------------------------------------------------------
# Real crops: the playing cards of ../shared/data/cards_voc


@pytest.fixture(scope="module")
def card_data(shared_data, tmp_path_factory) -> Path:
    from toonvision.data_processing.extract import extract

    data_dir = tmp_path_factory.mktemp("cards") / "data"
    list(extract(shared_data / "cards_voc", data_dir))
    return data_dir


def _thumbnail(path: Path) -> np.ndarray:
    grey = cv2.cvtColor(read_image(path), cv2.COLOR_RGB2GRAY).astype(np.float32)
    values = cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).ravel()
    values -= values.mean()
    return values / (np.linalg.norm(values) + 1e-6)


def test_real_card_copies_are_all_paired_and_distinct_cards_never(card_data, tmp_path):
    from toonvision.data_processing.manifest import read_manifest

    records = [record for record in read_manifest(card_data / "manifest.csv")]
    generator = np.random.default_rng(13)
    chosen = generator.choice(len(records), 20, replace=False)
    originals, copies = [], []
    for number, index in enumerate(chosen):
        record = records[index]
        originals.append(card_data / record.crop)
        kind = number % 4
        if kind == 0:
            image = _jpeg(read_image(originals[-1]), quality=int(generator.integers(70, 90)))
        elif kind == 1:
            image = _brighter(read_image(originals[-1]), int(generator.choice([-8, 8])))
        else:   # the box drawn 1 or 2 pixels off, cropped again from the screenshot
            shift = 1 if kind == 2 else 2
            dx, dy = [(shift, 0), (0, shift), (-shift, 0), (0, -shift)][number // 4 % 4]
            screenshot = read_image(record.source)
            image = screenshot[max(0, record.ymin + dy):record.ymax + dy,
                               max(0, record.xmin + dx):record.xmax + dx]
        copies.append(tmp_path / f"copy_{number}.png")
        write_image_atomic(copies[-1], image)
    pairs = near_duplicate_pairs(hash_images(originals + copies))
    found = {(int(a), int(b)) for a, b in zip(pairs.first, pairs.second, strict=True)}
    missed = [number for number in range(20) if (number, 20 + number) not in found]
    assert not missed, f"copies not paired with their original: {missed}"

    # 200 distinct crops: from different photos, and no two alike on a plain (unshifted)
    # thumbnail correlation above 0.8 (the set holds repeated photos of one card, which
    # are real near duplicates and rightly paired).
    distinct, thumbnails, photos = [], [], set()
    for index in np.random.default_rng(0).permutation(len(records)):
        record = records[index]
        thumbnail = _thumbnail(card_data / record.crop)
        if record.source_sha256 in photos or any(thumbnail @ other > 0.8
                                                 for other in thumbnails):
            continue
        distinct.append(card_data / record.crop)
        thumbnails.append(thumbnail)
        photos.add(record.source_sha256)
        if len(distinct) == 200:
            break
    assert len(distinct) == 200
    pairs = near_duplicate_pairs(hash_images(distinct), MAX_DISTANCE)
    assert len(pairs) == 0, [(distinct[a].name, distinct[b].name)
                             for a, b in zip(pairs.first, pairs.second, strict=True)]

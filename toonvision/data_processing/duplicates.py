"""Near-duplicate crops: perceptual hashes, close pairs, clusters, and the leak they cause.

The same Cog cropped from ten consecutive screenshots gives ten crops that differ by a few
pixels; when some land in training and others in test, test accuracy measures memory, not
generalisation. This module finds them:

- `hash_images`: a 128-bit perceptual hash per crop, imagehash's DCT hash (`phash`, 64 bits)
  followed by its difference hash (`dhash`, 64 bits); a digest of the decoded pixels (equal
  digests are exact duplicates, whatever the file format); and a 16x16 grey thumbnail.
- `near_duplicate_pairs`: every pair within a Hamming distance, vectorised in blocks with
  `np.bitwise_count` (10,000 crops: 50 million pairs in about a second), each confirmed by
  the thumbnails: their correlation, allowing a shift of one thumbnail pixel, must reach
  `MIN_CORRELATION`.
- `clusters`: connected components of the pairs (`scipy.sparse.csgraph`), the groups that
  `splits.grouped_stratified_split` keeps whole (`split --group-by duplicates`).
- `leak_share`: the share of a split's test crops that have a near duplicate in its training
  part.

Why two hashes and a check: on the playing-card crops of `cards_voc` a DCT hash alone flips
up to a quarter of its bits under a 2-pixel shift (cards are point-symmetric, so the
antisymmetric DCT terms are near zero and their signs are noise), while crops of different
cards come as close as 6 bits. The gradient-based dhash halves the false pairs at the same
recall, and the thumbnail check removes the rest: at the defaults (20 of 128 bits,
correlation 0.9) copies of the 670 card crops re-encoded as JPEG, brightened, or cropped with
the box moved by 1 pixel are all found, with the box moved by 2 pixels 93%, and none of the
186,911 pairs of crops of different ranks is reported (`benchmarks/bench_duplicates.py`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toonvision import ToonvisionError, defaults
from toonvision.data_processing.images import ImageReadError, read_image

HASH_BITS = 128
MAX_DISTANCE = defaults.DUPLICATE_MAX_DISTANCE      # of 128 bits, see the module notes
MIN_CORRELATION = defaults.DUPLICATE_MIN_CORRELATION
THUMBNAIL = 16             # thumbnail side, pixels
_MARGIN = 2                # thumbnail pixels left out around the centre that is compared
_BLOCK = 512               # rows compared at once: a (512, N) distance block


@dataclass
class ImageHashes:
    """The hashes of a list of images.

    Attributes:
        hashes: (N, 2) uint64: the DCT hash, then the difference hash.
        digests: (N,) uint64 digests of the decoded pixels (0 for an unreadable image).
        readable: (N,) bool: False where the image could not be decoded (never paired).
        thumbnails: (N, 16, 16) float32 grey thumbnails (zeros where unreadable).
        skipped: one message per unreadable image, naming the file.
    """

    hashes: np.ndarray
    digests: np.ndarray
    readable: np.ndarray
    thumbnails: np.ndarray
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass
class Pairs:
    """Near-duplicate pairs: `first[k] < second[k]` are indices into the hashed images.

    Attributes:
        first: (P,) int64.
        second: (P,) int64.
        distance: (P,) Hamming distance of their 128-bit hashes.
        exact: (P,) bool: the decoded pixels are identical.
    """

    first: np.ndarray
    second: np.ndarray
    distance: np.ndarray
    exact: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


def hash_image(image: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """The 128-bit perceptual hash of an RGB image, the digest of its pixels, its thumbnail.

    Returns:
        ((2,) uint64 hash: phash bits then dhash bits, as imagehash orders them), digest,
        (16, 16) float32 grey thumbnail.
    """
    import cv2
    import imagehash
    from PIL import Image

    rgb = np.ascontiguousarray(image[..., :3])
    picture = Image.fromarray(rgb)
    words = [_bits_to_int(imagehash.phash(picture).hash),
             _bits_to_int(imagehash.dhash(picture).hash)]
    digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=8,
                             person=str(image.shape).encode()[:16]).digest()
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    thumbnail = cv2.resize(grey, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA)
    return np.asarray(words, dtype=np.uint64), int.from_bytes(digest, "little"), thumbnail


def _bits_to_int(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(np.asarray(bits, dtype=np.uint8).ravel()).tobytes(), "big")


def hash_images(paths: Sequence[str | os.PathLike],
                progress: Callable[[int, int], None] | None = None) -> ImageHashes:
    """Hashes every image (decoded by content, whatever its extension says).

    Args:
        paths: the image files.
        progress: called as `progress(done, total)` after each image.

    Returns:
        The hashes; unreadable images are marked, listed in `skipped`, and never paired.
    """
    hashes = np.zeros((len(paths), 2), dtype=np.uint64)
    digests = np.zeros(len(paths), dtype=np.uint64)
    readable = np.ones(len(paths), dtype=bool)
    thumbnails = np.zeros((len(paths), THUMBNAIL, THUMBNAIL), dtype=np.float32)
    skipped = []
    for index, path in enumerate(paths):
        try:
            hashes[index], digests[index], thumbnails[index] = hash_image(read_image(Path(path)))
        except ImageReadError as error:
            readable[index] = False
            skipped.append(str(error).replace("\n", " "))
        if progress is not None:
            progress(index + 1, len(paths))
    return ImageHashes(hashes, digests, readable, thumbnails, skipped)


def hamming(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Hamming distances between 128-bit hashes `(..., 2)` uint64 (broadcast)."""
    return (np.bitwise_count(first[..., 0] ^ second[..., 0]).astype(np.int16)
            + np.bitwise_count(first[..., 1] ^ second[..., 1]))


def near_duplicate_pairs(hashes: ImageHashes | np.ndarray, max_distance: int = MAX_DISTANCE,
                         min_correlation: float | None = MIN_CORRELATION) -> Pairs:
    """Every pair of images whose hashes are within `max_distance` bits (and look alike).

    The search compares a block of rows with every later row at once, so N images cost
    N^2/2 XOR-and-popcount operations in NumPy, not N^2/2 Python steps. Each candidate is
    then confirmed by `thumbnail_correlation` (with `hash_images` output only).

    Args:
        hashes: `hash_images` output, or a bare (N, 2) uint64 array.
        max_distance: the largest Hamming distance of a pair (0 to 128).
        min_correlation: the smallest thumbnail correlation of a pair; None: no check.

    Returns:
        The pairs, sorted by distance and then by index; exact duplicates have distance 0
        and `exact` set (with bare hashes, `exact` means equal hashes).

    Raises:
        ToonvisionError: for a distance outside 0..128 or hashes not of shape (N, 2).
    """
    if not 0 <= int(max_distance) <= HASH_BITS:
        raise ToonvisionError(f"max_distance must be from 0 to {HASH_BITS} bits; got "
                              f"{max_distance}")
    if isinstance(hashes, ImageHashes):
        words, digests, readable = hashes.hashes, hashes.digests, hashes.readable
    else:
        words = np.asarray(hashes, dtype=np.uint64)
        digests, readable = None, np.ones(len(words), dtype=bool)
    if words.ndim != 2 or words.shape[1] != 2:
        raise ToonvisionError(f"hashes must be (N, 2) uint64; got shape {words.shape}")
    kept = np.flatnonzero(readable)
    words = words[kept]
    firsts, seconds, distances = [], [], []
    for start in range(0, len(words), _BLOCK):
        block = words[start:start + _BLOCK]
        distance = hamming(block[:, None, :], words[None, start:, :])
        # Only pairs (i, j) with j > i: the block's own columns below the diagonal go.
        distance[np.tril_indices(len(block), 0, distance.shape[1])] = HASH_BITS + 1
        rows, columns = np.nonzero(distance <= max_distance)
        firsts.append(rows + start)
        seconds.append(columns + start)
        distances.append(distance[rows, columns])
    first = kept[np.concatenate(firsts)] if firsts else np.zeros(0, np.int64)
    second = kept[np.concatenate(seconds)] if seconds else np.zeros(0, np.int64)
    distance = np.concatenate(distances).astype(np.int64) if distances else np.zeros(0, np.int64)
    if digests is None:
        exact = distance == 0
    else:
        exact = (digests[first] == digests[second]) & (distance == 0)
        if min_correlation is not None:
            alike = exact | (thumbnail_correlation(hashes.thumbnails, first, second)
                             >= min_correlation)
            first, second, distance, exact = (first[alike], second[alike], distance[alike],
                                              exact[alike])
    order = np.lexsort((second, first, distance))
    return Pairs(first[order].astype(np.int64), second[order].astype(np.int64),
                 distance[order], exact[order])


def thumbnail_correlation(thumbnails: np.ndarray, first: np.ndarray,
                          second: np.ndarray) -> np.ndarray:
    """How alike the thumbnails of pairs are, allowing a shift of one thumbnail pixel.

    The centre of one thumbnail (without a 2-pixel margin) is correlated with the nine
    windows of the other shifted by -1, 0 or +1 pixel in each direction, and the other way
    round; the highest Pearson correlation counts. Flat thumbnails correlate 0 with any.

    Returns:
        (P,) correlations in [-1, 1].
    """
    size, margin = thumbnails.shape[1], _MARGIN
    windows = np.stack([thumbnails[:, margin + dy:size - margin + dy,
                                   margin + dx:size - margin + dx]
                        for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=1)
    windows = windows.reshape(len(thumbnails), 9, -1)
    windows = windows - windows.mean(axis=2, keepdims=True)
    norms = np.linalg.norm(windows, axis=2, keepdims=True)
    windows = np.divide(windows, norms, out=np.zeros_like(windows), where=norms > 1e-3)
    centre = windows[:, 4]
    result = np.empty(len(first), dtype=np.float32)
    for start in range(0, len(first), 65536):
        a, b = first[start:start + 65536], second[start:start + 65536]
        forward = np.einsum("pd,pkd->pk", centre[a], windows[b]).max(axis=1)
        backward = np.einsum("pd,pkd->pk", centre[b], windows[a]).max(axis=1)
        result[start:start + len(a)] = np.maximum(forward, backward)
    return result


def exact_duplicate_groups(hashes: ImageHashes) -> list[np.ndarray]:
    """The groups of readable images with identical pixels (two or more each), by first index."""
    readable = np.flatnonzero(hashes.readable)
    _, inverse, counts = np.unique(hashes.digests[readable], return_inverse=True,
                                   return_counts=True)
    groups = [readable[inverse == code] for code in np.flatnonzero(counts > 1)]
    return sorted(groups, key=lambda group: int(group[0]))


def clusters(count: int, pairs: Pairs) -> np.ndarray:
    """The connected components of the pair graph: (count,) cluster number per image.

    An image without a near duplicate is a cluster of its own. Numbers follow the first
    image of each cluster, so they are the same for the same pairs.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs.first, pairs.second)),
                       shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    _, first_seen = np.unique(labels, return_index=True)
    renumber = np.argsort(np.argsort(first_seen))   # the rank of each cluster's first image
    return renumber[labels]


def duplicate_groups(paths: Sequence[str | os.PathLike],
                     max_distance: int = MAX_DISTANCE) -> np.ndarray:
    """The near-duplicate cluster of every image (for `split --group-by duplicates`)."""
    hashes = hash_images(paths)
    return clusters(len(paths), near_duplicate_pairs(hashes, max_distance))


def leak_share(pairs: Pairs, train: np.ndarray, test: np.ndarray) -> tuple[int, int]:
    """How many test images have a near duplicate in the training part.

    Args:
        pairs: near-duplicate pairs over the images.
        train: indices of the training images.
        test: indices of the test images.

    Returns:
        (test images with a near duplicate in training, test images).
    """
    test = np.asarray(test, dtype=np.int64)
    size = int(max(pairs.first.max(initial=-1), pairs.second.max(initial=-1),
                   np.max(test, initial=-1), np.max(np.asarray(train), initial=-1))) + 1
    in_train = np.zeros(size, dtype=bool)
    in_train[np.asarray(train, dtype=np.int64)] = True
    in_test = np.zeros(size, dtype=bool)
    in_test[test] = True
    leaky = np.zeros(size, dtype=bool)
    leaky[pairs.first[in_test[pairs.first] & in_train[pairs.second]]] = True
    leaky[pairs.second[in_test[pairs.second] & in_train[pairs.first]]] = True
    return int(leaky[test].sum()), len(test)

"""Near-duplicate search: hashing and pair search for 10,000 crops, against a plain reference.

Hashes N generated crops (96x64 RGB, smooth random scenes, a tenth of them near copies:
JPEG re-encoded, shifted by 1-2 pixels with the edge repeated, or brightened) with
`duplicates.hash_images`, then finds every pair within the default distance with
`near_duplicate_pairs` (vectorised) and with the plain reference, a Python double loop over
the same hashes, and checks that both find the same candidate pairs. With
../shared/data/cards_voc present it also measures the quality on real crops: how many copies
with small changes are found per kind of change, and how many pairs of crops of different
cards are reported.
Run: .venv/bin/python benchmarks/bench_duplicates.py [--crops N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from toonvision.data_processing.duplicates import (
    MAX_DISTANCE,
    MIN_CORRELATION,
    hamming,
    hash_image,
    hash_images,
    near_duplicate_pairs,
)
from toonvision.data_processing.images import read_image, write_image_atomic

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def scene(generator: np.random.Generator) -> np.ndarray:
    small = generator.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (64, 96), interpolation=cv2.INTER_CUBIC),
                            (0, 0), 3)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def change(image: np.ndarray, kind: int, generator: np.random.Generator) -> np.ndarray:
    if kind == 0:
        return jpeg(image, int(generator.integers(70, 95)))
    if kind == 1:
        return np.clip(image.astype(np.int16) + int(generator.choice([-8, 8])), 0,
                       255).astype(np.uint8)
    shift = [0.0, 0.0]
    shift[int(generator.integers(2))] = float(generator.choice([-2, -1, 1, 2]))
    matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]),
                          borderMode=cv2.BORDER_REPLICATE)


def reference_pairs(words: np.ndarray, max_distance: int) -> set:
    values = [(int(a), int(b)) for a, b in words]
    return {(i, j) for i in range(len(values)) for j in range(i + 1, len(values))
            if (values[i][0] ^ values[j][0]).bit_count()
            + (values[i][1] ^ values[j][1]).bit_count() <= max_distance}


def speed(count: int) -> None:
    generator = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        paths, images, copies = [], [], []
        for index in range(count):
            if images and index % 10 == 0:
                source = int(generator.integers(len(images)))
                image = change(images[source], index % 3, generator)
                copies.append((source, index))
            else:
                image = scene(generator)
            images.append(image)
            paths.append(Path(folder) / f"crop_{index}.png")
            write_image_atomic(paths[-1], image)
        start = time.perf_counter()
        hashes = hash_images(paths)
        hash_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pairs = near_duplicate_pairs(hashes)
    search_seconds = time.perf_counter() - start
    start = time.perf_counter()
    candidates = near_duplicate_pairs(hashes.hashes, MAX_DISTANCE, None)
    bare_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reference = reference_pairs(hashes.hashes, MAX_DISTANCE)
    reference_seconds = time.perf_counter() - start
    found = {(int(a), int(b)) for a, b in zip(candidates.first, candidates.second, strict=True)}
    assert found == reference, "the vectorised search disagrees with the reference"
    paired = {(int(a), int(b)) for a, b in zip(pairs.first, pairs.second, strict=True)}
    recall = np.mean([(min(pair), max(pair)) in paired for pair in copies])
    print(f"{count} crops: hashing {hash_seconds:.1f} s ({1000 * hash_seconds / count:.2f} ms "
          f"per crop, decoding included); pair search {search_seconds:.2f} s with the "
          f"thumbnail check ({len(pairs)} pairs; {100 * recall:.1f}% of the {len(copies)} "
          f"copies paired with their source), {bare_seconds:.2f} s without "
          f"({len(candidates)} candidates); plain Python reference {reference_seconds:.1f} s "
          f"(same {len(reference)} candidates, {reference_seconds / bare_seconds:.0f}x slower)")


def quality() -> None:
    """Copies of every real card crop with one small change; pairs among different cards."""
    from toonvision.data_processing.extract import extract
    from toonvision.data_processing.manifest import read_manifest

    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        list(extract(SHARED / "cards_voc", data_dir))
        records = read_manifest(data_dir / "manifest.csv")
        generator = np.random.default_rng(1)
        found = {"JPEG 70-95": [], "brightness +-8": [], "box moved 1 px": [],
                 "box moved 2 px": []}
        originals = []
        for number, record in enumerate(records):
            crop = read_image(data_dir / record.crop)
            original = hash_image(crop)
            originals.append(original)
            screenshot = read_image(record.source)
            for kind in found:
                if kind.startswith("JPEG"):
                    changed = cv2.cvtColor(jpeg(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                                                int(generator.integers(70, 95))),
                                           cv2.COLOR_BGR2RGB)
                elif kind.startswith("bright"):
                    changed = np.clip(crop.astype(np.int16) + int(generator.choice([-8, 8])),
                                      0, 255).astype(np.uint8)
                else:
                    shift = int(kind.split()[2])
                    dx, dy = [(shift, 0), (0, shift), (-shift, 0), (0, -shift)][number % 4]
                    changed = screenshot[max(0, record.ymin + dy):record.ymax + dy,
                                         max(0, record.xmin + dx):record.xmax + dx]
                copy = hash_image(changed)
                pair = near_duplicate_pairs(_bundle([original, copy]))
                found[kind].append(len(pair) == 1)
        print(f"real card crops ({len(records)}), each copied once per kind of change, "
              f"defaults {MAX_DISTANCE} bits and correlation {MIN_CORRELATION}:")
        for kind, hits in found.items():
            print(f"  {kind}: {100 * np.mean(hits):.1f}% of the copies paired with their "
                  "original")
        bundle = _bundle(originals)
        pairs = near_duplicate_pairs(bundle)
        labels = np.array([record.label for record in records])
        different = labels[pairs.first] != labels[pairs.second]
        total = len(records) * (len(records) - 1) // 2
        same_label_total = sum(int(n) * (int(n) - 1) // 2
                               for n in np.unique(labels, return_counts=True)[1])
        bare = hamming(bundle.hashes[:, None], bundle.hashes[None]) <= MAX_DISTANCE
        print(f"  pairs among the {len(records)} crops: {int(different.sum())} of "
              f"{total - same_label_total} pairs of different cards (ranks), "
              f"{int((~different).sum())} of {same_label_total} pairs of the same rank "
              f"(many are repeated photos of one card); hash alone: "
              f"{int((np.triu(bare, 1)).sum())} pairs")


def _bundle(items: list) -> object:
    from toonvision.data_processing.duplicates import ImageHashes

    return ImageHashes(np.stack([item[0] for item in items]),
                       np.array([item[1] for item in items], dtype=np.uint64),
                       np.ones(len(items), dtype=bool), np.stack([item[2] for item in items]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=10_000)
    args = parser.parse_args()
    speed(args.crops)
    if (SHARED / "cards_voc").is_dir():
        quality()


if __name__ == "__main__":
    main()

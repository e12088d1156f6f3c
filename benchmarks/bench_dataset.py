"""Dataset loading and re-splitting: ours vs the plain way, side by side.

Measures, on ~700 crops (the article's dataset size):
  - first load (decode + resize + write the cache) and cached load of `load_task_data`;
  - building the train/validate/test arrays of one new split (what each of 200 runs needs);
  - the plain reference: each run copies files into split folders and decodes them again,
    as the article's split-by-moving-files + image_dataset_from_directory workflow does.

Uses real crops from ../shared/data/cards_voc when present (crops cut with OpenCV straight
from the VOC boxes), else generated crops. Run: .venv/bin/python benchmarks/bench_dataset.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from lxml import etree

from toonvision.data_processing.dataset import from_crops, load_task_data
from toonvision.data_processing.images import read_image, resize, write_image_atomic
from toonvision.data_processing.splits import stratified_split
from toonvision.labels import make_task

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGE_SIZE = (600, 200)


def make_crops(data_dir: Path) -> str:
    cards = SHARED / "cards_voc"
    if cards.is_dir():
        index = 0
        for xml_path in sorted(cards.rglob("*.xml")):
            image_path = next(
                (p for p in xml_path.parent.glob(xml_path.stem + ".*") if p.suffix != ".xml"), None
            )
            if image_path is None:
                continue
            image = read_image(image_path)
            for obj in etree.parse(str(xml_path)).findall("object"):
                box = [int(float(obj.findtext(f"bndbox/{k}"))) for k in
                       ("xmin", "ymin", "xmax", "ymax")]
                crop = image[max(box[1], 0):box[3], max(box[0], 0):box[2]]
                if crop.size:
                    write_image_atomic(
                        data_dir / "unsorted" / obj.findtext("name") /
                        f"{obj.findtext('name')}_{index}.png", crop)
                    index += 1
        return f"{index} real crops from cards_voc"
    rng = np.random.default_rng(0)
    for index in range(700):
        label = ("king", "queen", "ace")[index % 3]
        size = (int(rng.integers(80, 200)), int(rng.integers(40, 100)))
        write_image_atomic(data_dir / "unsorted" / label / f"{label}_{index}.png",
                           rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    return "700 generated crops (../shared/data absent)"


def reference_split_and_load(dataset, y, seed: int, work: Path) -> float:
    """The plain way: copy files into split folders, then decode every file again."""
    start = time.perf_counter()
    split = stratified_split(y, seed=seed)
    folder = work / f"split{seed}"
    for name, indices in split.items():
        for index in indices:
            target = folder / name / str(y[index]) / dataset.paths[index].name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(dataset.paths[index], target)
    for name in split:
        images = [resize(read_image(path), IMAGE_SIZE) for path in (folder / name).rglob("*.png")]
        np.stack(images)
    shutil.rmtree(folder)
    return time.perf_counter() - start


def main() -> int:
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        source = make_crops(work / "data")
        dataset = from_crops(work / "data")
        task = make_task("label", dataset.labels)
        cache = work / "cache"

        start = time.perf_counter()
        data = load_task_data(dataset, task, IMAGE_SIZE, cache)
        first = time.perf_counter() - start
        start = time.perf_counter()
        data = load_task_data(dataset, task, IMAGE_SIZE, cache)
        cached = time.perf_counter() - start

        index_timings = []
        for seed in range(200):
            start = time.perf_counter()
            stratified_split(data.y, seed=seed)
            index_timings.append(time.perf_counter() - start)
        per_split_indices = float(np.median(index_timings))
        timings = []
        for seed in range(20):
            start = time.perf_counter()
            split = stratified_split(data.y, seed=seed)
            arrays = {name: data.images[indices] for name, indices in split.items()}
            timings.append(time.perf_counter() - start)
        per_split = float(np.median(timings))
        reference = float(np.median([reference_split_and_load(dataset, data.y, seed, work)
                                     for seed in range(2)]))

        megabytes = data.images.nbytes / 2**20
        print(f"data: {source}; {len(data)} images at {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} "
              f"({megabytes:.0f} MiB as uint8); {sum(len(a) for a in arrays.values())} in a split")
        print(f"{'measure':44s} {'seconds':>10s}")
        print(f"{'first load (decode, resize, write cache)':44s} {first:10.3f}")
        print(f"{'cached load (content hash + read cache)':44s} {cached:10.3f}")
        print(f"{'ours: one new split, indices only':44s} {per_split_indices:10.5f}")
        print(f"{'ours: one new split, arrays gathered':44s} {per_split:10.4f}")
        print(f"{'reference: copy to folders + decode again':44s} {reference:10.3f}")
        print(f"one new split: {reference / per_split:,.0f}x faster than the reference; "
              f"200 runs: {200 * per_split:.1f} s vs {200 * reference / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

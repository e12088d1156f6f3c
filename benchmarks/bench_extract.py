"""Extraction speed: `toonvision extract` vs a plain script, side by side, on the real VOC sets.

For each of ../shared/data/{toontown,cards_voc,fruit_voc} it times, into fresh folders:
  - ours: `data_processing.extract` (safe XML parsing, content hash, manifest, clipping, every
    file written to a temporary name, fsync'ed and renamed);
  - ours without fsync: the same with `os.fsync` replaced by a no-op, to show what durability
    costs on this disk (a benchmark-only trick; the tool always syncs);
  - plain: what a first script does (xml.etree + cv2.imread + cv2.imwrite, no checks, no
    manifest, no temporary files, no sync). It crashes on bad input, so it is only fair on
    sets it can read; all three sets qualify.

The figures are crops per second of wall-clock time (best of --repeat). The machine this was
written on has 2 cores shared with other work, so figures are noisy; compare columns within
one run rather than across runs.

Run: .venv/bin/python benchmarks/bench_extract.py [--repeat 3] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import cv2

from toonvision.data_processing import extract as data_processing

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS: tuple[str, ...] = ("toontown", "cards_voc", "fruit_voc")


def ours(screenshots: Path, data_dir: Path) -> int:
    return sum(len(result.crops) for result in data_processing.extract(screenshots, data_dir))


@contextmanager
def fsync_disabled():
    real_fsync = os.fsync
    os.fsync = lambda descriptor: None
    try:
        yield
    finally:
        os.fsync = real_fsync


def ours_without_fsync(screenshots: Path, data_dir: Path) -> int:
    with fsync_disabled():
        return ours(screenshots, data_dir)


def plain(screenshots: Path, data_dir: Path) -> int:
    """The reference: no safety, no manifest, no atomic writes."""
    written = 0
    for xml_path in sorted(screenshots.rglob("*.xml")):
        image_path = next((xml_path.with_suffix(suffix) for suffix in
                           (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
                           if xml_path.with_suffix(suffix).exists()), None)
        if image_path is None:
            continue
        image = cv2.imread(str(image_path))
        for element in ElementTree.parse(xml_path).getroot().iter("object"):
            label = element.findtext("name")
            xmin, ymin, xmax, ymax = (int(element.findtext(f"bndbox/{name}"))
                                      for name in ("xmin", "ymin", "xmax", "ymax"))
            folder = data_dir / "unsorted" / label
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{label}_{written}.png"), image[ymin:ymax, xmin:xmax])
            written += 1
    return written


def best_time(method: Callable[[Path, Path], int], screenshots: Path, repeat: int,
              scratch: Path) -> tuple[float, int]:
    best, crops = float("inf"), 0
    for attempt in range(repeat):
        data_dir = scratch / f"{method.__name__}_{attempt}"
        started = time.perf_counter()
        crops = method(screenshots, data_dir)
        best = min(best, time.perf_counter() - started)
        shutil.rmtree(data_dir)
    return best, crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED,
                        help="folder holding toontown/, cards_voc/, fruit_voc/ "
                             "(default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per method and set; the best is kept (default: %(default)s)")
    args = parser.parse_args()
    methods = (ours, ours_without_fsync, plain)
    header = (f"{'set':<10} {'crops':>6}  " + "  ".join(f"{m.__name__:>22}" for m in methods)
              + f"  {'time ours/plain':>15}")
    print("crops per second (seconds)")
    print(header)
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as scratch:
        for name in SETS:
            screenshots = args.data / name
            if not screenshots.is_dir():
                print(f"{name:<10} skipped: {screenshots} not found")
                continue
            timings = [best_time(method, screenshots, args.repeat, Path(scratch))
                       for method in methods]
            crops = {count for _, count in timings}
            assert len(crops) == 1, f"{name}: the methods disagree on the crop count {crops}"
            count = crops.pop()
            cells = "  ".join(f"{count / seconds:>12.0f} ({seconds:6.2f}s)"
                              for seconds, _ in timings)
            print(f"{name:<10} {count:>6}  {cells}  {timings[0][0] / timings[2][0]:>14.1f}x")


if __name__ == "__main__":
    main()

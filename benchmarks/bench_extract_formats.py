"""Extraction speed per annotation format, on the real VOC sets converted to every format.

For each of ../shared/data/{cards_voc,fruit_voc} the VOC boxes are written as YOLO
(data.yaml), COCO (one file per split), labelme, Label Studio and CVAT exports with the
test suite's converters (tests/data_processing/test_annotation_formats.py), then each
export is extracted into a fresh folder with `data_processing.extract`. The figures are
crops per second of wall-clock time (best of --repeat), beside the VOC figure; converting
is not timed. Images are linked, not copied, where the file system allows.

Run: .venv/bin/python benchmarks/bench_extract_formats.py [--repeat 3] [--limit 0]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "data_processing")]

from test_annotation_formats import WRITERS, Shot  # noqa: E402

from toonvision.data_processing import voc  # noqa: E402
from toonvision.data_processing.extract import extract  # noqa: E402
from toonvision.data_processing.extract_results import ExtractionSummary  # noqa: E402
from toonvision.data_processing.images import is_image_file, read_image  # noqa: E402

FORMATS = ("yolo data.yaml list", "coco", "labelme", "labelstudio", "cvat")


def voc_shots(folder: Path, limit: int) -> tuple[list[Shot], list[Path]]:
    """The VOC boxes of a real set (images whose XML parses), and the VOC files themselves."""
    shots, files = [], []
    for xml in sorted(folder.rglob("*.xml")):
        images = [path for path in xml.parent.iterdir()
                  if path.stem == xml.stem and is_image_file(path)]
        if len(images) != 1:
            continue
        height, width = read_image(images[0]).shape[:2]
        boxes = [(item.label, *item.box) for item in voc.parse_annotation(xml).objects]
        shots.append((images[0], width, height, boxes))
        files += [images[0], xml]
        if limit and len(shots) >= limit:
            break
    return shots, files


def timed(folder: Path, repeat: int) -> tuple[float, int]:
    best, crops = float("inf"), 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as data_dir:
            summary = ExtractionSummary()
            start = time.perf_counter()
            for result in extract(folder, data_dir):
                summary.add(result)
            best = min(best, time.perf_counter() - start)
            crops = summary.crops_written
    return best, crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="screenshots per set (0: all)")
    args = parser.parse_args()
    print("set        format                crops  seconds  crops/s")
    for name in ("cards_voc", "fruit_voc"):
        shots, files = voc_shots(args.data / name, args.limit)
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            (work / "voc").mkdir()
            for path in files:
                shutil.copy(path, work / "voc" / path.name)
            exports = {"voc": work / "voc"}
            for format_name in FORMATS:
                exports[format_name] = work / format_name.split()[0]
                WRITERS[format_name](shots, exports[format_name])
            for format_name, folder in exports.items():
                seconds, crops = timed(folder, args.repeat)
                print(f"{name:<10} {format_name:<20} {crops:>6} {seconds:>8.2f} "
                      f"{crops / seconds:>8.0f}")


if __name__ == "__main__":
    main()

"""Crop every labelled object of your screenshots into the dataset.

Searches SCREENSHOTS_DIR (and its sub-folders) for screenshots (.png, .jpg, .jpeg, .bmp,
.webp, any case) with boxes, in the format the folder holds: labelImg Pascal VOC XML beside
each image (same name, .xml; the XML's <filename> decides between shot.png and shot.jpg), a
YOLO export (labels/ beside images/, or .txt beside the images; names from data.yaml,
classes.txt or obj.names), COCO JSON (one file, or one per split), labelme JSON, a Label
Studio JSON export, or CVAT for images 1.1 XML (docs/extract.md). Each box becomes
DATA_DIR/unsorted/<cog|toon|label>/<label>_<index>.png. Numbers are never reused, and a
screenshot extracted before adds nothing (DATA_DIR/manifest.csv remembers every crop).

Files that cannot be used are reported one per line and skipped; the batch goes on. The exit
status is 1 when anything was skipped, 0 otherwise.

examples:
  toonvision extract screenshots/
  toonvision extract screenshots/ --data-dir data --move --draw runs/drawn
  toonvision extract roboflow_export/ --dry-run
  toonvision extract cvat_task/ --format cvat
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toonvision import defaults
from toonvision.data_processing.annotations import FORMATS, find_annotated
from toonvision.data_processing.extract import (
    check_move,
    dry_run_screenshots,
    extract_screenshots,
    output_folders,
)
from toonvision.data_processing.extract_results import ExtractionSummary
from toonvision.data_processing.images import IMAGE_EXTENSIONS
from toonvision.progress import progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the extract options to `parser`."""
    parser.add_argument("screenshots_dir", metavar="SCREENSHOTS_DIR", type=Path,
                        help="folder of screenshots and their annotations, searched "
                             "recursively; no path inside an annotation leads out of it")
    parser.add_argument("--data-dir", type=Path, default=defaults.DATA_DIR,
                        help="data folder that receives unsorted/ crops, manifest.csv and, "
                             "with --move, raw/processed/ (default: %(default)s)")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="the annotation format to read (default: detected from what "
                             "the folder holds; an error names the files when it holds "
                             "several)")
    parser.add_argument("--dry-run", action="store_true",
                        help="read everything and print what would be extracted (screenshots, "
                             "boxes per label, every problem by file); write nothing at all")
    parser.add_argument("--move", action="store_true",
                        help="move each screenshot and its XML to DATA_DIR/raw/processed/ once "
                             "all its crops are safely written; screenshots with a skipped "
                             "object stay in place; labelImg VOC only (default: leave them "
                             "where they are)")
    parser.add_argument("--draw", type=Path, default=None, metavar="DIR",
                        help="also write a copy of each screenshot with its labelled boxes "
                             "drawn to DIR, mirroring the sub-folders (default: no drawings)")


def run(args: argparse.Namespace) -> int:
    """Runs the extraction with a progress bar and prints the summary; returns the status."""
    draw = None if args.dry_run else args.draw
    found = find_annotated(args.screenshots_dir, output_folders(args.data_dir, draw),
                           args.format)
    check_move(args.move and not args.dry_run, found.format)
    if not found.pairs and not found.problems:
        print(f"{args.screenshots_dir}: nothing to extract (no {', '.join(IMAGE_EXTENSIONS)} "
              "with annotations in it or below it)", file=sys.stderr)
    summary = ExtractionSummary(dry_run=args.dry_run)
    summary.skipped.extend(found.problems)
    summary.notes.extend(found.notes)
    for problem in found.problems:
        print(problem, file=sys.stderr)
    if args.dry_run:
        results = dry_run_screenshots(found.pairs, args.data_dir)
    else:
        results = extract_screenshots(found.pairs, args.data_dir, move=args.move, draw_dir=draw)
    try:
        with progress_bar(results, total=len(found.pairs), desc="extracting",
                          unit="screenshot") as progress:
            for result in progress:
                summary.add(result)
                for problem in result.skipped:
                    progress.write(str(problem), file=sys.stderr)
    except OSError as error:
        print(summary.format())
        print(f"toonvision extract: error: {error}; fix it and run the same command again to "
              "finish (nothing is extracted twice)", file=sys.stderr)
        return 2
    print(f"format: {found.format}")
    print(summary.format())
    return 1 if summary.skipped else 0

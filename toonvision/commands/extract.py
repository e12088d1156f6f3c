"""Crop every labelled object of your screenshots into the dataset.

Searches SCREENSHOTS_DIR (and its sub-folders) for screenshots (.png, .jpg, .jpeg, .bmp,
.webp, any case) that have a labelImg Pascal VOC XML beside them (same name, .xml; the XML's
<filename> decides between shot.png and shot.jpg), and writes each labelled box as
DATA_DIR/unsorted/<cog|toon|label>/<label>_<index>.png. Numbers are never reused, and a
screenshot extracted before adds nothing (DATA_DIR/manifest.csv remembers every crop).

Files that cannot be used are reported one per line and skipped; the batch goes on. The exit
status is 1 when anything was skipped, 0 otherwise.

examples:
  toonvision extract screenshots/
  toonvision extract screenshots/ --data-dir data --move --draw runs/drawn
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from toonvision import defaults
from toonvision.data_processing.extract import (
    extract_screenshots,
    find_screenshots,
    output_folders,
)
from toonvision.data_processing.extract_results import ExtractionSummary
from toonvision.data_processing.images import IMAGE_EXTENSIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the extract options to `parser`."""
    parser.add_argument("screenshots_dir", metavar="SCREENSHOTS_DIR", type=Path,
                        help="folder of screenshots and their VOC XML, searched recursively")
    parser.add_argument("--data-dir", type=Path, default=defaults.DATA_DIR,
                        help="data folder that receives unsorted/ crops, manifest.csv and, "
                             "with --move, raw/processed/ (default: %(default)s)")
    parser.add_argument("--move", action="store_true",
                        help="move each screenshot and its XML to DATA_DIR/raw/processed/ once "
                             "all its crops are safely written; screenshots with a skipped "
                             "object stay in place (default: leave them where they are)")
    parser.add_argument("--draw", type=Path, default=None, metavar="DIR",
                        help="also write a copy of each screenshot with its labelled boxes "
                             "drawn to DIR, mirroring the sub-folders (default: no drawings)")


def run(args: argparse.Namespace) -> int:
    """Runs the extraction with a progress bar and prints the summary; returns the status."""
    pairs, problems = find_screenshots(args.screenshots_dir,
                                       exclude=output_folders(args.data_dir, args.draw))
    if not pairs and not problems:
        print(f"{args.screenshots_dir}: nothing to extract (no {', '.join(IMAGE_EXTENSIONS)} "
              "or .xml files in it or below it)", file=sys.stderr)
    summary = ExtractionSummary()
    summary.skipped.extend(problems)
    for problem in problems:
        print(problem, file=sys.stderr)
    results = extract_screenshots(pairs, args.data_dir, move=args.move, draw_dir=args.draw)
    try:
        with tqdm(results, total=len(pairs), unit="screenshot", file=sys.stderr,
                  disable=None) as progress:
            for result in progress:
                summary.add(result)
                for problem in result.skipped:
                    progress.write(str(problem), file=sys.stderr)
    except OSError as error:
        print(summary.format())
        print(f"toonvision extract: error: {error}; fix it and run the same command again to "
              "finish (nothing is extracted twice)", file=sys.stderr)
        return 2
    print(summary.format())
    return 1 if summary.skipped else 0

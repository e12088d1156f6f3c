"""Find mislabelled, always-wrong and near-duplicate crops of a comparison (a page + CSVs).

Reads a comparison folder (runs/NAME/): the per-crop out-of-sample predictions its runs
stored, averaged over runs and configurations, ranked by cleanlab's label-quality score;
the crops wrong in at least half of their appearances; near-duplicate pairs by perceptual
hash, and the share of test crops that had a near duplicate in training (the leak). Writes
OUT/index.html, OUT/label_issues.csv (every crop, most suspicious first, with its part in
each kept best model's split: best_<config>_part) and
OUT/duplicates.csv (every pair). The data is the comparison's own unless --data-dir (or
--labels and --images) names another copy of it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NEEDS_KERAS = True   # for the Grad-CAM heatmaps under the best model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from toonvision.data_processing.duplicates import MAX_DISTANCE

    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="the comparison folder written by 'toonvision compare'")
    parser.add_argument("--data-dir", type=Path,
                        help="the crops the comparison ran on (default: the folder its "
                             "comparison.json names)")
    parser.add_argument("--labels", type=Path, metavar="CSV",
                        help="for a flat set: its CSV of ids and labels (with --images)")
    parser.add_argument("--images", type=Path, metavar="DIR", help="for a flat set: its images")
    parser.add_argument("--id-column", metavar="NAME", help="CSV column of the image ids")
    parser.add_argument("--label-column", metavar="NAME", help="CSV column of the labels")
    parser.add_argument("--out", type=Path,
                        help="where to write the page and CSV files (default: RUN_DIR/doctor)")
    parser.add_argument("--max-distance", type=int, default=MAX_DISTANCE, metavar="BITS",
                        help="near duplicates: the largest Hamming distance of 128 hash bits "
                             "(default: %(default)s)")
    parser.add_argument("--top", type=int, default=24, metavar="N",
                        help="crops and pairs shown with pictures per section (default: "
                             "%(default)s)")
    parser.add_argument("--no-gradcam", action="store_true",
                        help="leave out the Grad-CAM heatmaps (no model is loaded)")


def run(args: argparse.Namespace) -> int:
    from toonvision import ToonvisionError
    from toonvision.data_visualization.doctor_page import write_doctor_page
    from toonvision.model_utils.dataset_doctor import (
        comparison_crops,
        diagnose,
        weak_models_note,
    )
    from toonvision.model_utils.doctor_tables import write_tables

    if (args.labels is None) != (args.images is None):
        raise ToonvisionError("--labels and --images go together: give both or neither")
    crops = comparison_crops(args.run_dir, args.data_dir, args.labels, args.images,
                             args.id_column, args.label_column)
    diagnosis = diagnose(args.run_dir, crops.names, crops.paths, crops.raw_labels, crops.y,
                         crops.class_names, crops.source, crops.records, args.max_distance,
                         runs=crops.runs, model_parts=crops.model_parts)
    out = args.out or args.run_dir / "doctor"
    tables = write_tables(diagnosis, out)
    page = write_doctor_page(diagnosis, out, args.top, gradcam=not args.no_gradcam)
    for note in diagnosis.notes:
        print(f"note: {note}", file=sys.stderr)
    weak = weak_models_note(diagnosis.oos, diagnosis.y)
    if weak is not None:
        print(f"warning: {weak}", file=sys.stderr)
    print(f"{int(diagnosis.is_issue.sum())} likely label errors, "
          f"{int(diagnosis.always_wrong.sum())} always wrong, {len(diagnosis.pairs)} "
          "near-duplicate pairs"
          + (f", leak {100 * diagnosis.leak:.1f}% of test crops" if diagnosis.leak is not None
             else ""))
    print("files: " + ", ".join(str(path) for path in [page, *tables]))
    return 0

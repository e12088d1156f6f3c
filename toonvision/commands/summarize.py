"""Recompute a comparison's summary, verdicts and figures from its runs, without training.

PATH is a comparison's folder (runs/NAME, as `compare` writes it) or a file of results laid out
as the ToonVision article's evaluations_all.json: [[config, [[test_loss, test_accuracy], ...]],
...], runs paired by index. Such a file holds no split sizes, which the corrected intervals
need: give them with --split-sizes (the article's: 410 137 137). Prints one verdict sentence
per pair of configurations and the summary; writes summary.csv, per_class.csv (when the runs
logged confusion matrices) and the figures to --out (default: the comparison folder itself;
for a results file nothing is written without --out). See docs/compare.md, "Reading the
verdict".

examples:
  toonvision summarize runs/article
  toonvision summarize ../shared/data/toontown/evaluations_all.json --split-sizes 410 137 137
  toonvision summarize evaluations_all.json --split-sizes 410 137 137 --out runs/author
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toonvision import ToonvisionError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH",
                        help="a comparison folder, or an evaluations_all.json-style file")
    parser.add_argument(
        "--split-sizes", type=int, nargs=3, metavar=("TRAIN", "VALIDATE", "TEST"),
        help="images per run in each split part; required for a results file, and for a "
             "folder they replace the sizes its runs logged (default: the folder's)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR",
        help="folder for summary.csv, per_class.csv and the figures (default: the comparison "
             "folder; for a results file, none: only printed)",
    )


def run(args: argparse.Namespace) -> int:
    from toonvision.data_visualization.comparison_figures import write_run_figures
    from toonvision.model_utils.comparison.runlog import select_best
    from toonvision.model_utils.comparison.summary import (
        format_summary,
        load_runs,
        summarize,
        write_summary_files,
    )

    if args.split_sizes is not None and min(args.split_sizes) < 1:
        raise ToonvisionError(f"--split-sizes must be positive; got {args.split_sizes}")
    runs = load_runs(args.path, None if args.split_sizes is None else tuple(args.split_sizes))
    summary = summarize(runs.records, runs.config_names, **runs.options)
    print(format_summary(summary))
    out_dir = args.out or (args.path if runs.settings is not None else None)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        files = write_summary_files(out_dir, summary)
        files += write_run_figures(out_dir, runs.records, runs.config_names,
                                   select_best(runs.records, summary.select), summary.table)
        print()
        print("files: " + ", ".join(str(path) for path in files))
    return 0

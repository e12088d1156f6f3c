"""Show how balanced the dataset is: counts per class and split, as a table and figures.

Writes the article's balance figures to --out: split_balance.png (images per class in each
split, with the desired and average lines), taxonomy.png (Cogs per suit and Toons per
animal, for ToonTown data), class_shares.png (a pie chart), and counts.csv. No image is
decoded, so this is quick on any dataset size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toonvision import defaults
from toonvision.commands._common import (
    add_dataset_arguments,
    add_split_arguments,
    dataset_from_args,
    print_skipped,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser, image_size=False)
    add_split_arguments(parser, seed_help="split seed (default: %(default)s)")
    parser.add_argument(
        "--out", type=Path, default=defaults.REPORTS_DIR / "stats",
        help="folder for the figures and counts.csv (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from toonvision.data_processing.balance import split_counts
    from toonvision.data_processing.dataset import select_for_task
    from toonvision.data_processing.splits import stratified_split
    from toonvision.data_visualization.dataset_figures import write_balance_figures
    from toonvision.fileio import write_text_atomic
    from toonvision.labels import make_task

    dataset = dataset_from_args(args)
    print_skipped(dataset.skipped)
    task = make_task(args.task, dataset.labels)
    paths, labels, y = select_for_task(dataset, task)
    split = stratified_split(y, args.ratio, args.seed)
    table = split_counts(task.classes, y, split)

    written = write_balance_figures(table, labels, args.out)
    write_text_atomic(args.out / "counts.csv", table.to_csv())
    print(f"{len(paths)} images for task {task.name!r} from {dataset.source}")
    if dataset.corrected:
        print(f"{dataset.corrected} labels corrected by {args.data_dir}/corrections.csv "
              "('toonvision relabel'; delete a line there to undo it)")
    print(table.to_string())
    for path in [*written, args.out / "counts.csv"]:
        print(f"wrote {path}")
    return 0

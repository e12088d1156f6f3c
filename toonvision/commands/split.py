"""Make a stratified train/validate/test split, stored as a manifest (no file is moved).

Each class is divided by the ratios with a seed, so the same seed always gives the same
split. The split is written as a CSV (path,label,class,split). With --materialize, the
article's folder layout DIR/{train,validate,test}/<class>/ is also built (hard links where
possible, else copies) for keras.utils.image_dataset_from_directory.

With --group-by screenshot (every crop of one screenshot, from DATA_DIR/manifest.csv) or
--group-by duplicates (every crop of one near-duplicate cluster), or --group-column NAME
for a CSV set, groups are kept whole: no group straddles two parts, so nothing leaks from
training into test, and each part stays as stratified as the groups allow. The manifest then
has a fifth column, group.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toonvision.commands._common import (
    add_dataset_arguments,
    add_grouping_arguments,
    add_split_arguments,
    dataset_from_args,
    grouping_from_options,
    groups_from_args,
    print_skipped,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser, image_size=False)
    add_split_arguments(parser, seed_help="split seed (default: %(default)s)")
    add_grouping_arguments(parser)
    parser.add_argument(
        "--out", type=Path,
        help="where to write the split CSV (default: DATA_DIR/splits/<task>-seed<seed>.csv, "
             "or ./splits/... for a --labels CSV source)",
    )
    parser.add_argument(
        "--materialize", type=Path, metavar="DIR",
        help="also build DIR/{train,validate,test}/<class>/ (DIR must not exist yet)",
    )


def run(args: argparse.Namespace) -> int:
    from toonvision.data_processing.balance import split_counts
    from toonvision.data_processing.dataset import select_for_task
    from toonvision.data_processing.splits import (
        describe_groups,
        grouped_stratified_split,
        materialize,
        split_table,
        write_split_manifest,
    )
    from toonvision.labels import make_task

    dataset = dataset_from_args(args)
    print_skipped(dataset.skipped)
    task = make_task(args.task, dataset.labels)
    paths, labels, y = select_for_task(dataset, task)
    grouping = grouping_from_options(args.group_by, args.group_column)
    groups = groups_from_args(args, paths, grouping)
    split = grouped_stratified_split(y, groups, args.ratio, args.seed)

    root = args.data_dir if args.labels is None else Path(".")
    safe_task = "".join(c if c.isalnum() or c in "-_" else "_" for c in args.task)[:60]
    out = args.out or root / "splits" / f"{safe_task}-seed{args.seed}.csv"
    table = split_table(paths, labels, task.classes, y, split, groups=groups)
    written = write_split_manifest(out, table)

    print(split_counts(task.classes, y, split).to_string())
    if groups is not None:
        print(f"{describe_groups(grouping, groups)}, each in one split")
    print(f"split manifest: {written}")
    if args.materialize is not None:
        print(f"folders: {materialize(args.materialize, paths, task.classes, y, split)}")
    return 0

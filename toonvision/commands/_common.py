"""Options and helpers shared by the commands that read a dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from toonvision import ToonvisionError, defaults
from toonvision.data_processing.dataset import (
    Dataset,
    TaskData,
    from_crops,
    from_csv,
    load_task_data,
)
from toonvision.labels import make_task

TASK_HELP = (
    "what to classify: binary (cog/toon), suit (4 cog suits), name (32 cog names), animal "
    "(11 toon animals), label (every label as its own class), or a class list such as "
    "'king,queen,jack' or 'king=face,queen=face,ace=number' (default: %(default)s)"
)


def add_dataset_arguments(
    parser: argparse.ArgumentParser,
    image_size: bool = True,
    task_default: str | None = defaults.TASK,
    task_help: str = TASK_HELP,
) -> None:
    """Adds the options that choose a data source and a task.

    Args:
        parser: the command's parser.
        image_size: also add --image-size (commands that decode images).
        task_default: the --task default; None lets the command decide (e.g. from a model).
        task_help: the --task help text.
    """
    group = parser.add_argument_group(
        "data",
        "Either extracted crops (--data-dir) or a flat labelled set (--labels CSV --images DIR).",
    )
    group.add_argument(
        "--data-dir", type=Path, default=defaults.DATA_DIR,
        help="data root written by 'toonvision extract'; crops are read from "
             "DATA_DIR/unsorted/ (default: %(default)s)",
    )
    group.add_argument(
        "--labels", type=Path, metavar="CSV",
        help="a CSV of image ids and labels (the Pokemon challenge form 'Id,label'); "
             "use with --images instead of --data-dir",
    )
    group.add_argument(
        "--images", type=Path, metavar="DIR",
        help="the folder of images named by the CSV's ids (file = id + any image extension)",
    )
    group.add_argument(
        "--id-column", metavar="NAME",
        help="CSV column holding the image id (default: the first column)",
    )
    group.add_argument(
        "--label-column", metavar="NAME",
        help="CSV column holding the label (default: the second column)",
    )
    group.add_argument(
        "--keep", metavar="LABELS",
        help="comma-separated labels to keep from the CSV, e.g. Water,Normal,Grass "
             "(default: all)",
    )
    group.add_argument("--task", default=task_default, help=task_help)
    if image_size:
        group.add_argument(
            "--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
            default=list(defaults.IMAGE_SIZE),
            help="size the images are resized to, height then width (default: %(default)s; "
                 "the article's is 600 200)",
        )
    group.add_argument(
        "--cache-dir", type=Path,
        help="where decoded images are cached (default: $TOONVISION_CACHE or "
             "~/.cache/toonvision)",
    )


def add_split_arguments(group: argparse._ActionsContainer, seed_help: str | None) -> None:
    """Adds --ratio and, unless `seed_help` is None, --seed (defaults from `defaults`)."""
    group.add_argument(
        "--ratio", type=float, nargs=3, metavar=("TRAIN", "VALIDATE", "TEST"),
        default=list(defaults.RATIOS),
        help=f"shares of each split (default: {' '.join(map(str, defaults.RATIOS))})",
    )
    if seed_help is not None:
        group.add_argument("--seed", type=int, default=defaults.SEED, help=seed_help)


def dataset_from_args(args: argparse.Namespace) -> Dataset:
    """Returns the dataset the options name."""
    if args.labels is not None or args.images is not None:
        if args.labels is None or args.images is None:
            raise ToonvisionError("--labels and --images go together: give both or neither")
        keep = [label for label in args.keep.split(",") if label.strip()] if args.keep else None
        return from_csv(args.labels, args.images, args.id_column, args.label_column, keep)
    return from_crops(args.data_dir)


def task_data_from_args(args: argparse.Namespace, show_progress: bool = True) -> TaskData:
    """Loads the dataset the options name for their task, with a progress bar when decoding."""
    dataset = dataset_from_args(args)
    task = make_task(args.task, dataset.labels)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="decoding images", unit="img", file=sys.stderr,
                       disable=not show_progress)
        bar.update(done - bar.n)

    image_size = tuple(getattr(args, "image_size", defaults.IMAGE_SIZE))
    try:
        return load_task_data(dataset, task, image_size, args.cache_dir, progress)
    finally:
        if bar is not None:
            bar.close()


def print_skipped(skipped: list[str], limit: int = 20) -> None:
    """Prints skipped-file messages to stderr, at most `limit` of them and a count."""
    for message in skipped[:limit]:
        print(f"skipped: {message}", file=sys.stderr)
    if len(skipped) > limit:
        print(f"... and {len(skipped) - limit} more skipped", file=sys.stderr)

"""Options and helpers shared by the commands that read a dataset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toonvision import ToonvisionError, defaults
from toonvision.data_processing.splits import COLUMN_GROUPING
from toonvision.model_utils.comparison import settings as schema
from toonvision.model_utils.comparison.data_source import DataSource

if TYPE_CHECKING:
    import numpy as np

    from toonvision.data_processing.dataset import Dataset, TaskData
    from toonvision.model_utils.engine.protocols import Engine

TASK_HELP = schema.TASK_HELP + " (default: %(default)s)"
ENGINE_GROUP = schema.ENGINE_GROUP


def add_dataset_arguments(
    parser: argparse.ArgumentParser,
    image_size: bool = True,
    task_default: str | None = defaults.TASK,
    task_help: str = TASK_HELP,
    task: bool = True,
) -> None:
    """Adds the options that choose a data source and a task.

    Args:
        parser: the command's parser.
        image_size: also add --image-size (commands that decode images).
        task_default: the --task default; None lets the command decide (e.g. from a model).
        task_help: the --task help text.
        task: also add --task (compare adds it, and --image-size, from its settings schema).
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
    if task:
        group.add_argument("--task", default=task_default, help=task_help)
    if image_size:
        flag, options = schema.option("image_size", typed_only=False)
        group.add_argument(flag, **{**options, "default": list(defaults.IMAGE_SIZE)})
    group.add_argument(
        "--cache-dir", type=Path,
        help="where decoded images are cached (default: $TOONVISION_CACHE or "
             "~/.cache/toonvision)",
    )


def add_split_arguments(group: argparse._ActionsContainer, seed_help: str | None) -> None:
    """Adds --ratio and, unless `seed_help` is None, --seed (defaults from `defaults`)."""
    flag, options = schema.option("ratios", typed_only=False)
    group.add_argument(flag, **{**options, "dest": "ratio", "default": list(defaults.RATIOS)})
    if seed_help is not None:
        group.add_argument("--seed", type=int, default=defaults.SEED, help=seed_help)


def add_grouping_arguments(group: argparse._ActionsContainer, typed_only: bool = False) -> None:
    """Adds --group-by and --group-column (splits that keep screenshots or clusters whole).

    Args:
        group: the parser or argument group.
        typed_only: --group-by is in the parsed options only when typed (compare's settings,
            `settings.typed_settings`).
    """
    schema.add_setting_options(group, ["group_by"], typed_only)
    group.add_argument(
        "--group-column", metavar="NAME",
        help="with --labels: keep the images of each value of this CSV column together "
             "(instead of --group-by)",
    )


def grouping_from_options(group_by: str | None, group_column: str | None) -> str | None:
    """One grouping name (`splits.check_grouping`) from --group-by and --group-column.

    Returns:
        `column:NAME` for --group-column, else `group_by` (None: neither was given).

    Raises:
        ToonvisionError: if both name a grouping.
    """
    if group_column is None:
        return group_by
    if group_by not in (None, "none"):
        raise ToonvisionError("--group-column names a column of a --labels CSV, instead of "
                              f"--group-by; got both (--group-by {group_by})")
    return f"{COLUMN_GROUPING}{group_column}"


def source_from_args(args: argparse.Namespace) -> DataSource:
    """The data source the data options name (`add_dataset_arguments`)."""
    keep = tuple(label for label in args.keep.split(",") if label.strip()) if args.keep else None
    return DataSource(data_dir=args.data_dir, labels=args.labels, images=args.images,
                      id_column=args.id_column, label_column=args.label_column, keep=keep,
                      cache_dir=getattr(args, "cache_dir", None))


def groups_from_args(args: argparse.Namespace, paths: Sequence[Path],
                     grouping: str) -> np.ndarray | None:
    """The group of every image of `paths` under `grouping` (`DataSource.groups`)."""
    return source_from_args(args).groups(grouping, paths)


def dataset_from_args(args: argparse.Namespace) -> Dataset:
    """Returns the dataset the options name."""
    return source_from_args(args).dataset()


def task_data_from_args(args: argparse.Namespace, show_progress: bool = True,
                        classes: Sequence[str] | None = None) -> TaskData:
    """The options' dataset for their task (`classes`: `DataSource.load`), bar when decoding."""
    from toonvision.progress import decode_bar

    progress, close = decode_bar(show_progress)
    try:
        return source_from_args(args).load(
            args.task, tuple(getattr(args, "image_size", defaults.IMAGE_SIZE)), progress,
            getattr(args, "resize", defaults.RESIZE), classes)
    finally:
        close()


def print_skipped(skipped: list[str], limit: int = 20) -> None:
    """Prints skipped-file messages to stderr, at most `limit` of them and a count."""
    for message in skipped[:limit]:
        print(f"skipped: {message}", file=sys.stderr)
    if len(skipped) > limit:
        print(f"... and {len(skipped) - limit} more skipped", file=sys.stderr)


def add_engine_arguments(parser: argparse.ArgumentParser, typed_only: bool = False) -> None:
    """Adds --workers, --threads-per-worker, --address and --gpus-per-worker, as one group.

    compare, optimizers, ablate and search train on the same engines (`engine.make_engine`),
    so they present the same options, with the help and defaults of the settings schema
    (`settings.ComparisonPlan`).

    Args:
        parser: the command's parser.
        typed_only: the options are in the parsed namespace only when typed (compare's, so
            that only typed ones override its --settings file).
    """
    schema.add_setting_options(parser.add_argument_group(ENGINE_GROUP), schema.ENGINE_KEYS,
                               typed_only)


def engine_from_args(args: argparse.Namespace, configs: Sequence[Any], num_classes: int,
                     image_size: Sequence[int]) -> Engine:
    """The engine the engine options name, with `configs` checked before anything is written
    (`comparison.run.prepare_engine`).

    Raises:
        ToonvisionError: for a bad engine option, Ray missing, or a configuration that
            cannot be built.
    """
    from toonvision.model_utils.comparison.run import prepare_engine
    from toonvision.model_utils.engine.choose import make_engine

    # A study's run count is not known up front, so it keeps the --workers rule of
    # `make_engine` (one worker per CPU with Ray); only compare chooses by measurement.
    engine = make_engine(args.workers, args.threads_per_worker, args.address,
                         args.gpus_per_worker)
    return prepare_engine(args.workers, args.threads_per_worker, args.address,
                          args.gpus_per_worker, configs, num_classes, image_size, engine)[0]

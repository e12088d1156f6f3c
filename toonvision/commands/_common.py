"""Options and helpers shared by the commands that read a dataset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from toonvision import ToonvisionError, defaults
from toonvision.data_processing.dataset import (
    Dataset,
    TaskData,
    from_crops,
    from_csv,
    load_task_data,
)
from toonvision.data_processing.splits import COLUMN_GROUPING, GROUPINGS
from toonvision.labels import make_task

if TYPE_CHECKING:
    import numpy as np

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


def add_grouping_arguments(group: argparse._ActionsContainer, default: Any = "none") -> None:
    """Adds --group-by and --group-column (splits that keep screenshots or clusters whole).

    Args:
        group: the parser or argument group.
        default: the --group-by default (compare's tells a typed value from the default).
    """
    group.add_argument(
        "--group-by", choices=GROUPINGS, default=default,
        help="keep groups whole: every crop of one screenshot (from DATA_DIR/manifest.csv), "
             "or of one near-duplicate cluster, goes to the same split (default: %(default)s)",
    )
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


def groups_from_args(args: argparse.Namespace, paths: Sequence[Path],
                     grouping: str) -> np.ndarray | None:
    """The group of every image of `paths` under `grouping`, from the data options' source.

    Screenshots come from DATA_DIR's manifest, a column from the --labels CSV
    (`splits.split_groups`); None for `none`.
    """
    from toonvision.data_processing.splits import split_groups

    csv_set = args.labels is not None
    return split_groups(grouping, paths, data_dir=None if csv_set else args.data_dir,
                        labels_csv=args.labels, id_column=args.id_column)


def describe_groups(grouping: str, groups: Sequence[object]) -> str:
    """`grouped by screenshot: 40 groups` (or `by column scene`), for a command's output."""
    how = grouping.replace(COLUMN_GROUPING, "column ", 1)
    return f"grouped by {how}: {len(set(groups))} groups"


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
            # disable=None: none off a terminal, where each redraw would be a log line.
            bar = tqdm(total=total, desc="decoding images", unit="img", file=sys.stderr,
                       disable=None if show_progress else True)
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


ENGINE_GROUP = "engine (where the runs train; docs/parallel.md)"


def add_engine_arguments(parser: argparse.ArgumentParser,
                         default: Callable[[Any], Any] = lambda value: value) -> None:
    """Adds --workers, --threads-per-worker, --address and --gpus-per-worker, as one group.

    compare, optimizers, ablate and search train on the same engines (`engine.make_engine`),
    so they present the same options with the same defaults (from `defaults`).

    Args:
        parser: the command's parser.
        default: wraps every default (compare's `NotTyped`, which tells a typed option from
            a default so that only typed ones override its --settings file).
    """
    engine = parser.add_argument_group(ENGINE_GROUP)
    engine.add_argument(
        "--workers", type=int, metavar="N", default=default(defaults.WORKERS),
        help="runs trained at once, on Ray workers; 1: in this process, without Ray "
             "(default: one per CPU / --threads-per-worker when Ray is installed, else 1)",
    )
    engine.add_argument(
        "--threads-per-worker", type=int, metavar="T",
        default=default(defaults.THREADS_PER_WORKER),
        help="TensorFlow intra-op threads (and CPUs asked of Ray) per worker; inter-op "
             "threads are 1 (default: 1 on Ray workers; all cores with --workers 1)",
    )
    engine.add_argument(
        "--address", metavar="auto|HOST:PORT", default=default(defaults.RAY_ADDRESS),
        help="join this Ray cluster ('auto': the one started on this machine with `ray start "
             "--head`) instead of starting a local Ray instance (default: a local one)",
    )
    engine.add_argument(
        "--gpus-per-worker", type=float, metavar="G",
        default=default(defaults.GPUS_PER_WORKER),
        help="GPU share each Ray worker asks for, e.g. 0.5 puts two workers on a GPU "
             "(default: %(default)s)",
    )


def engine_from_args(args: argparse.Namespace, configs: Sequence[Any], num_classes: int,
                     image_size: Sequence[int]) -> Any:
    """The engine the engine options name, with `configs` checked before anything is written.

    The serial engine pins this process's threads first (TensorFlow takes its thread counts
    when it runs its first operation). Every configuration's model is then built once, so a
    configuration that cannot train on this data (an image too small for its pooling, say)
    fails here, not after a folder was made or hours of other runs (Ray workers build their
    own trainers; the serial engine builds its trainers when it trains).

    Args:
        args: the parsed options (`add_engine_arguments`).
        configs: the `TrainingConfig`s the command will train.
        num_classes: the number of classes.
        image_size: (height, width).

    Raises:
        ToonvisionError: for a bad engine option, Ray missing, or a configuration that
            cannot be built.
    """
    return checked_engine(args.workers, args.threads_per_worker, args.address,
                          args.gpus_per_worker, configs, num_classes, image_size)


def checked_engine(workers: int | None, threads_per_worker: int | None, address: str | None,
                   gpus_per_worker: float, configs: Sequence[Any], num_classes: int,
                   image_size: Sequence[int]) -> Any:
    """`engine_from_args` from the values themselves (`compare` reads them from its plan,
    where a settings file may give them)."""
    from toonvision.model_utils.engine.choose import make_engine
    from toonvision.model_utils.engine.serial import SerialEngine, pin_threads
    from toonvision.model_utils.training.models import make_model

    engine = make_engine(workers, threads_per_worker, address, gpus_per_worker)
    if isinstance(engine, SerialEngine):
        pin_threads(engine.threads)
    for config in configs:
        make_model(config, num_classes, tuple(image_size))
    return engine

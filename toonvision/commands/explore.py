"""Explore a labelled image set: counts per label, duplicates, sizes, colour modes, samples.

Prints the number of images and labels, the images per label (count and percent), the image
sizes and colour modes found in the files' content (a folder of PNGs can mix RGBA, palette
and RGB images), and the groups of files holding the same pixels. Writes to --out:
summary.json (everything above, plus unreadable and skipped files), label_counts.csv,
duplicates.csv, label_counts_pie.png (shares with percentages: imbalance at a glance),
label_counts_bar.png and samples.png (a few random images per label).

Example, the 9 types of the Pokemon challenge:
  toonvision explore --labels pokemon.csv --images images --id-column Name \\
      --label-column Type1 --keep Water,Normal,Grass,Bug,Fire,Rock,Poison,Ground,Fighting
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toonvision import ToonvisionError, defaults
from toonvision.commands._common import add_dataset_arguments, dataset_from_args, print_skipped
from toonvision.progress import progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser, image_size=False)
    parser.set_defaults(task="label")
    parser.add_argument(
        "--out", type=Path, default=defaults.REPORTS_DIR / "explore",
        help="folder for the summary, tables and figures (default: %(default)s)",
    )
    parser.add_argument(
        "--samples", type=int, default=6,
        help="sample images per label in samples.png (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from toonvision.data_processing.dataset import Dataset, select_for_task
    from toonvision.data_processing.explore import explore, inspect_images, write_exploration
    from toonvision.data_visualization.dataset_figures import write_exploration_figures
    from toonvision.labels import make_task

    if args.samples < 1:
        raise ToonvisionError(f"--samples must be at least 1, got {args.samples}")
    source = dataset_from_args(args)
    task = make_task(args.task, source.labels)
    paths, _, y = select_for_task(source, task)
    dataset = Dataset(paths, [task.classes[index] for index in y], source.source, source.skipped)
    infos = list(progress_bar(inspect_images(dataset), total=len(dataset),
                              desc="reading images", unit="img"))
    exploration = explore(dataset, infos)
    written = write_exploration(exploration, args.out)
    written += write_exploration_figures(exploration, args.out, args.samples)

    print_skipped(exploration.skipped + exploration.unreadable)
    summary = exploration.summary()
    print(f"{summary['images']} images, {summary['labels']} labels from {dataset.source}")
    print(exploration.counts_table().to_string())
    if summary["imbalance_ratio"] is not None:
        print(f"largest / smallest label: {summary['imbalance_ratio']}x")
    print("sizes: " + ", ".join(f"{size} ({count})" for size, count in exploration.sizes.items()))
    print("modes: " + ", ".join(f"{mode} ({count})" for mode, count in exploration.modes.items()))
    print(f"duplicates: {summary['duplicate_images']} images repeat another "
          f"({len(exploration.duplicates)} groups)")
    for group in exploration.duplicates[:10]:
        print("  same pixels: " + ", ".join(str(path) for path in group))
    if exploration.unreadable:
        print(f"unreadable: {len(exploration.unreadable)} files")
    for path in written:
        print(f"wrote {path}")
    return 0

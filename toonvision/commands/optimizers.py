"""Train the same model with each optimizer and plot their loss and accuracy curves.

The ToonVision article's optimizer comparison: the baseline model (or --config) trained on one
stratified split with Adam, Adamax, Nadam, RMSprop, SGD, Adadelta, Adagrad and Ftrl, all at the
same learning rate, from the same initial weights. Writes OUT/optimizers.png (training and
validation loss and accuracy per epoch) and OUT/optimizers.csv (one row per optimizer and
epoch, with its final test metrics).

The optimizers train on the engine of `compare`: --workers N trains N at once on Ray workers
(the default when Ray is installed: one single-thread worker per CPU), --workers 1 in this
process; --threads-per-worker, --address and --gpus-per-worker as for compare. The results
do not depend on the engine (the same split and seed for each optimizer; equal with the same
threads per worker). See docs/parallel.md.

examples:
  toonvision optimizers --data-dir data --epochs 20 --out runs/optimizers
  toonvision optimizers --data-dir data --epochs 20 --workers 1 --out runs/optimizers
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toonvision import ToonvisionError, defaults
from toonvision.commands._common import (
    add_dataset_arguments,
    add_engine_arguments,
    add_split_arguments,
    print_skipped,
)

NEEDS_KERAS = True  # the CLI imports TensorFlow quietly before `run` (see cli.py)
FIGURE_FILE = "optimizers.png"
TABLE_FILE = "optimizers.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    group = parser.add_argument_group("optimizers")
    group.add_argument("--epochs", type=int, default=defaults.OPTIMIZER_EPOCHS,
                       help="epochs per optimizer (default: %(default)s)")
    group.add_argument("--optimizers", default=None,
                       help="comma-separated optimizers (default: adam,adamax,nadam,rmsprop,"
                            "sgd,adadelta,adagrad,ftrl)")
    group.add_argument("--learning-rate", type=float,
                       default=defaults.OPTIMIZER_LEARNING_RATE,
                       help="the learning rate of every optimizer (default: %(default)s)")
    group.add_argument("--config", default="baseline",
                       help="the configuration the optimizers are plugged into "
                            "(default: %(default)s)")
    group.add_argument("--config-file", type=Path, metavar="FILE",
                       help="a TOML file defining more configurations (default: none)")
    add_split_arguments(group, seed_help="seed of the split and of the initial weights "
                                           "(default: %(default)s)")
    group.add_argument("--out", type=Path, default=defaults.RUNS_DIR / "optimizers",
                       help="folder for optimizers.png and optimizers.csv "
                            "(default: %(default)s)")
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from toonvision.commands._common import engine_from_args, task_data_from_args
    from toonvision.data_visualization.comparison_figures import optimizers_figure
    from toonvision.data_visualization.figures import save_figure
    from toonvision.fileio import write_text_atomic
    from toonvision.model_utils.studies.optimizers import (
        compare_optimizers,
        optimizer_configs,
        optimizer_table,
    )
    from toonvision.model_utils.training.configs import OPTIMIZERS, resolve_configs
    from toonvision.progress import RunProgress

    names = tuple(OPTIMIZERS) if not args.optimizers else tuple(
        name.strip().lower() for name in args.optimizers.split(",") if name.strip())
    unknown = [name for name in names if name not in OPTIMIZERS]
    if unknown or not names:
        raise ToonvisionError(f"unknown optimizer(s) {unknown or args.optimizers!r}; use some of "
                              f"{', '.join(OPTIMIZERS)}")
    if args.epochs < 1:
        raise ToonvisionError(f"--epochs must be at least 1; got {args.epochs}")
    base = resolve_configs([args.config], args.config_file)[0].replace(epochs=args.epochs)
    task_data = task_data_from_args(args)
    print_skipped(task_data.skipped)
    engine = engine_from_args(args, optimizer_configs(base, names, args.learning_rate),
                              len(task_data.class_names), task_data.images.shape[1:3])
    print(f"{len(names)} optimizers on {len(task_data)} images; training {engine.describe()}",
          file=sys.stderr)

    results = {}
    with RunProgress(len(names), unit="optimizer",
                     activity=engine.activity) as progress:
        for optimizer, result in compare_optimizers(task_data, base, names, args.learning_rate,
                                                    args.seed, args.ratio, engine=engine):
            results[optimizer] = result
            validation = result.validation_metrics
            progress.finished(f"{optimizer} done: val acc "
                              f"{validation.get('accuracy', float('nan')):.3f} after "
                              f"{result.epochs_run} epochs")

    table = optimizer_table(results)
    write_text_atomic(args.out / TABLE_FILE, table.to_csv(index=False))
    save_figure(optimizers_figure(results), args.out / FIGURE_FILE)
    print(f"{'optimizer':<10} {'val acc':>8} {'val loss':>9} {'test acc':>9} {'test loss':>10}")
    for optimizer, result in results.items():
        validation, test = result.validation_metrics, result.test_metrics
        print(f"{optimizer:<10} {validation.get('accuracy', float('nan')):>8.4f} "
              f"{validation.get('loss', float('nan')):>9.4f} "
              f"{test.get('accuracy', float('nan')):>9.4f} {test.get('loss', float('nan')):>10.4f}")
    print(f"files: {args.out / FIGURE_FILE}, {args.out / TABLE_FILE}")
    return 0


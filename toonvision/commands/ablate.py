"""Run the Pokemon deck's MLP study: which parts of the MLP matter, as one table.

Trains the builtin `mlp` configuration (Flatten -> Dense 256 relu -> Dense 128 relu ->
softmax, Adam 1e-3, batch 32, early stopping on validation loss with patience 5) and its
variants: hidden layers 512-256, 1024-512-256, 1024-512 and 256-128-64; ReLU removed (linear
hidden layers); sigmoid instead of ReLU; no softmax (logits with a from-logits loss); a single
hidden layer. Every variant trains on the same seeded stratified splits (seed 0..SEEDS-1).
Prints and writes OUT/ablation.csv (validation accuracy and macro F1 as mean and standard
deviation over seeds, test accuracy and macro F1, epochs run and the epoch early stopping
restored), OUT/ablation_runs.csv (one row per variant and seed) and OUT/tracking.jsonl (plus
an MLflow store in OUT/mlruns when MLflow is installed).

Here the image size defaults to 64 64 (the deck's) and the task to `label`.

The runs (one per variant and seed) train on the engine of `compare`: --workers N trains N at
once on Ray workers (the default when Ray is installed: one single-thread worker per CPU),
--workers 1 in this process; --threads-per-worker, --address and --gpus-per-worker as for
compare. The tables do not depend on the engine (the same splits and seeds; equal with the
same threads per worker). See docs/parallel.md.

examples:
  toonvision ablate --labels data/pokemon_64/labels.csv --images data/pokemon_64/images \\
      --seeds 3 --balance undersample --out runs/ablation_64
  toonvision ablate --labels data/pokemon_64/labels.csv --images data/pokemon_64/images \\
      --seeds 3 --workers 1 --out runs/ablation_64_serial
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
from pathlib import Path

from toonvision import ExistingFileError, ToonvisionError, defaults
from toonvision.commands._common import (
    add_dataset_arguments,
    add_engine_arguments,
    add_split_arguments,
    print_skipped,
)

NEEDS_KERAS = True  # the CLI imports TensorFlow quietly before `run` (see cli.py)
ABLATION_FILE = "ablation.csv"
RUNS_FILE = "ablation_runs.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    parser.set_defaults(task="label", image_size=list(defaults.ABLATION_IMAGE_SIZE))
    group = parser.add_argument_group("study")
    group.add_argument("--seeds", type=int, default=defaults.ABLATION_SEEDS,
                       help="number of seeds (splits and initialisations) per variant "
                            "(default: %(default)s)")
    group.add_argument("--epochs", type=int,
                       help="most epochs per run (default: the mlp configuration's 200; early "
                            "stopping usually stops far sooner)")
    group.add_argument("--patience", type=int,
                       help="early-stopping patience in epochs (default: the mlp "
                            "configuration's 5)")
    group.add_argument("--variants",
                       help="comma-separated subset of variants (default: all: 256-128, "
                            "512-256, 1024-512-256, 1024-512, 256-128-64, no-relu, sigmoid, "
                            "no-softmax, single-256)")
    group.add_argument("--balance", choices=("none", "undersample", "oversample"),
                       default=defaults.BALANCE,
                       help="balance each training split (never validation or test): "
                            "undersample to the rarest class (the deck's choice) or "
                            "oversample (default: %(default)s)")
    add_split_arguments(group, seed_help=None)
    group.add_argument("--out", type=Path,
                       help="a new or empty folder for the tables and the run records "
                            "(default: runs/ablation-<UTC timestamp>)")
    group.add_argument("--no-tracking", action="store_true",
                       help="do not record runs in OUT/tracking.jsonl and MLflow")
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from toonvision.commands._common import engine_from_args, task_data_from_args
    from toonvision.commands._progress import RunProgress
    from toonvision.data_processing.splits import check_ratios
    from toonvision.fileio import write_text_atomic
    from toonvision.model_utils.studies.ablation import (
        ablation_table,
        format_table,
        run_ablation,
        select_variants,
    )
    from toonvision.model_utils.tracking import RunTracker
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    if args.seeds < 1:
        raise ToonvisionError(f"--seeds must be at least 1, got {args.seeds}")
    check_ratios(args.ratio)
    variants = select_variants(args.variants.split(",") if args.variants else None)
    changes = {}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.patience is not None:
        changes["early_stopping_patience"] = args.patience
    base = BUILTIN_CONFIGS["mlp"].replace(**changes)
    if args.out is None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        args.out = defaults.RUNS_DIR / f"ablation-{stamp}"
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise ExistingFileError(f"--out {args.out} exists and is not an empty folder; "
                                "choose a new one")

    task_data = task_data_from_args(args)
    print_skipped(task_data.skipped)
    engine = engine_from_args(args, [variant.config(base) for variant in variants],
                              len(task_data.class_names), args.image_size)
    counts = ", ".join(f"{name} {count}" for name, count in task_data.class_counts().items())
    print(f"ablation of {len(variants)} variants x {args.seeds} seeds on {len(task_data)} "
          f"images ({counts}), {args.image_size[0]}x{args.image_size[1]}; training "
          f"{engine.describe()}", file=sys.stderr)
    tracker = None if args.no_tracking else RunTracker(args.out, experiment="ablation")
    total = len(variants) * args.seeds
    runs = []
    # One line per finished run in a log; on a terminal a bar with what each worker trains.
    with RunProgress(total, unit="run", activity=getattr(engine, "activity", None)) as progress:
        for result in run_ablation(task_data.images, task_data.y, len(task_data.class_names),
                                   list(range(args.seeds)), variants, base, args.ratio,
                                   args.balance, engine=engine):
            runs.append(result)
            progress.finished(f"{result.variant} seed {result.seed} done: val acc "
                              f"{result.validation_accuracy:.3f}, test acc "
                              f"{result.test_accuracy:.3f}")
            if tracker is not None:
                variant = next(item for item in variants if item.name == result.variant)
                config = variant.config(base)
                tracker.log_run(
                    f"{result.variant}-seed{result.seed}",
                    {**dataclasses.asdict(config), "seed": result.seed, "balance": args.balance,
                     "task": args.task, "image_size": list(args.image_size),
                     "source": task_data_source_text(args)},
                    result.history,
                    {"validation_accuracy": result.validation_accuracy,
                     "validation_macro_f1": result.validation_macro_f1,
                     "test_accuracy": result.test_accuracy, "test_macro_f1": result.test_macro_f1,
                     "epochs_run": result.epochs_run, "best_epoch": result.best_epoch},
                )

    import pandas as pd

    table = ablation_table(runs, variants)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / ABLATION_FILE, table.to_csv(index=False))
    run_rows = pd.DataFrame([
        {key: value for key, value in vars(result).items() if key != "history"}
        for result in runs
    ])
    write_text_atomic(args.out / RUNS_FILE, run_rows.to_csv(index=False))
    print(format_table(table))
    print(f"wrote {args.out / ABLATION_FILE} and {args.out / RUNS_FILE}")
    if tracker is not None:
        print(f"run records: {tracker.records_path}")
    return 0


def task_data_source_text(args: argparse.Namespace) -> str:
    """The data source the options name, as text for the run records."""
    if args.labels is not None:
        return f"{args.labels} + {args.images}"
    return str(args.data_dir)

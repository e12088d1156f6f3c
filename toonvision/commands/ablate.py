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
    from toonvision.commands._common import engine_from_args, source_from_args, task_data_from_args
    from toonvision.data_processing.splits import check_ratios
    from toonvision.model_utils.studies.ablation import format_table, select_variants
    from toonvision.model_utils.studies.ablation_study import AblationStudy
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.progress import RunProgress

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
    out = args.out or defaults.RUNS_DIR / (
        f"ablation-{datetime.datetime.now(datetime.UTC).strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):   # before decoding
        raise ExistingFileError(f"--out {out} exists and is not an empty folder; choose a "
                                "new one")
    task_data = task_data_from_args(args)
    print_skipped(task_data.skipped)
    engine = engine_from_args(args, [variant.config(base) for variant in variants],
                              len(task_data.class_names), args.image_size)
    study = AblationStudy(out, task_data, range(args.seeds), variants, base, args.ratio,
                          args.balance, engine=engine, tracking=not args.no_tracking,
                          context={"task": args.task, "image_size": list(args.image_size),
                                   "source": source_from_args(args).describe()})
    counts = ", ".join(f"{name} {count}" for name, count in task_data.class_counts().items())
    print(f"ablation of {len(variants)} variants x {args.seeds} seeds on {len(task_data)} "
          f"images ({counts}), {args.image_size[0]}x{args.image_size[1]}; training "
          f"{engine.describe()}", file=sys.stderr)
    # One line per finished run in a log; on a terminal a bar with what each worker trains.
    with RunProgress(study.total, unit="run", activity=engine.activity) as progress:
        for result in study.run():
            progress.finished(f"{result.variant} seed {result.seed} done: val acc "
                              f"{result.validation_accuracy:.3f}, test acc "
                              f"{result.test_accuracy:.3f}")
    table, files = study.finish()
    print(format_table(table))
    print(f"wrote {' and '.join(str(path) for path in files)}")
    if study.tracker is not None:
        print(f"run records: {study.tracker.records_path}")
    return 0

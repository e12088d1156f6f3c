"""Compare training configurations over N paired, freshly split runs and keep the best models.

The ToonVision article's protocol (there: baseline vs optimized, 200 runs x 25 epochs). Run r
draws a stratified split with seed SEED + r and trains every configuration from fresh weights on
that same split, so the configurations are compared on the same images. After each run one
record per configuration is appended to OUT/runs.jsonl and synced; the best model of each
configuration is kept as OUT/best_<config>.keras (with best_<config>.json, its run record).

A stopped comparison loses at most the run in progress: run the same command again with
--resume. At the end: learning_curves.png, best_run_curves.png, boxplots.png and summary.csv
(median, quartiles, min, max, mean with a 95% CI per configuration, and the paired difference
between configurations with a bootstrap CI); the table is also printed. See docs/compare.md.

examples:
  toonvision compare --data-dir data --runs 200 --epochs 25 --out runs/article
  toonvision compare --data-dir data --runs 200 --epochs 25 --out runs/article --resume
  toonvision compare --labels train_labels.csv --images images --task label \\
      --configs mlp,baseline --balance undersample --early-stopping 5 --image-size 64 64
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
from pathlib import Path

from toonvision import ToonvisionError, defaults
from toonvision.commands._common import add_dataset_arguments, add_split_arguments, print_skipped

NEEDS_KERAS = True  # the CLI imports TensorFlow quietly before `run` (see cli.py)
DEFAULT_CONFIGS = ",".join(defaults.CONFIGS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    group = parser.add_argument_group("comparison")
    group.add_argument(
        "--configs", default=DEFAULT_CONFIGS,
        help="comma-separated configurations to compare: built-in ones (baseline, optimized, "
             "optimized_1e-4, optimized_1e-5, mlp) or names from --config-file "
             "(default: %(default)s)",
    )
    group.add_argument(
        "--config-file", type=Path, metavar="FILE",
        help="a TOML file of [configs.NAME] tables defining more configurations, each may "
             "start from another with base = \"optimized\" (default: none)",
    )
    group.add_argument("--runs", type=int, default=defaults.RUNS,
                       help="number of runs, each on a new split (default: %(default)s)")
    group.add_argument(
        "--epochs", type=int,
        help="epochs per run for every configuration (default: each configuration's own, "
             "25 for the article's)",
    )
    group.add_argument(
        "--early-stopping", type=int, metavar="PATIENCE",
        help="stop a run after PATIENCE epochs without a lower validation loss and restore "
             "the best weights, for every configuration (default: each configuration's own; "
             "off for the article's, as in the article)",
    )
    add_split_arguments(group, seed_help="run r splits and initialises with seed SEED + r "
                            "(default: %(default)s)")
    group.add_argument(
        "--select", choices=("test", "val_loss"), default=defaults.SELECT,
        help="best-model rule: 'test' (the article's: a run replaces the best when its test "
             "loss is lower AND its test accuracy higher) or 'val_loss' (lowest validation "
             "loss; never looks at the test set) (default: %(default)s)",
    )
    group.add_argument(
        "--balance", choices=("none", "undersample", "oversample"), default=defaults.BALANCE,
        help="balance the classes of each run's training split (never validation or test): "
             "undersample to the rarest class or oversample to the most common "
             "(default: %(default)s)",
    )
    group.add_argument(
        "--out", type=Path,
        help="the comparison's folder; must be new or empty unless --resume "
             "(default: runs/<task>-<configs>-<UTC timestamp>)",
    )
    group.add_argument(
        "--resume", action="store_true",
        help="continue the comparison in --out (the same options; --runs may grow): "
             "finished runs are kept, an unfinished one is trained again",
    )
    group.add_argument(
        "--no-tracking", action="store_true",
        help="do not record runs with toonvision.tracking (a JSONL file, and MLflow when "
             "installed)",
    )


def default_out(task: str, configs: str) -> Path:
    """`runs/<task>-<configs>-<UTC timestamp>`, with characters unsafe in names replaced."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{task}-{configs.replace(',', '-')}")[:80]
    return defaults.RUNS_DIR / f"{name}-{stamp}"


def make_tracker(out_dir: Path, disabled: bool):
    """A `tracking.RunTracker` for the comparison, or None when off or not available."""
    if disabled:
        return None
    try:
        from toonvision.model_utils.tracking import RunTracker
    except ModuleNotFoundError as error:
        if error.name != "toonvision.tracking":
            raise
        return None
    return RunTracker(out_dir, experiment=f"compare-{out_dir.name}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from toonvision.commands._common import task_data_from_args
    from toonvision.model_utils.compare import Comparison, check_out_dir, settings_for
    from toonvision.model_utils.comparison_summary import format_summary
    from toonvision.model_utils.configs import resolve_configs
    from toonvision.model_utils.trainer import Trainer

    if args.resume and args.out is None:
        raise ToonvisionError("--resume needs --out, the folder of the comparison to continue")
    if args.runs < 1:
        raise ToonvisionError(f"--runs must be at least 1; got {args.runs}")
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    configs = resolve_configs(names, args.config_file)
    changes = {}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.early_stopping is not None:
        changes["early_stopping_patience"] = args.early_stopping
    configs = [config.replace(**changes) for config in configs]
    out_dir = args.out or default_out(args.task, args.configs)
    check_out_dir(out_dir, args.resume)

    task_data = task_data_from_args(args)
    print_skipped(task_data.skipped)
    settings = settings_for(task_data, args.task, configs, args.runs, task_data_source(args),
                            args.ratio, args.seed, args.select, args.balance)
    # Built (and so checked) before anything is written: a configuration that cannot train
    # on this data fails here, not after the folder was created.
    trainers = {config.name: Trainer(config, len(task_data.class_names), settings.image_size)
                for config in configs}
    for trainer in trainers.values():
        trainer.model  # noqa: B018 (builds and traces the model)
    comparison = Comparison.start(out_dir, settings, resume=args.resume)
    done = len(comparison.completed_runs())
    counts = ", ".join(f"{name} {count}" for name, count in task_data.class_counts().items())
    print(f"comparing {', '.join(names)} on {len(task_data)} images ({counts}), "
          f"{settings.image_size[0]}x{settings.image_size[1]}, {args.runs} runs; "
          f"{done} already done; writing to {out_dir}", file=sys.stderr)

    tracker = make_tracker(out_dir, args.no_tracking)
    bar = tqdm(total=args.runs, initial=done, unit="run", file=sys.stderr, desc="runs",
               dynamic_ncols=True)

    def on_epoch(name: str, run_index: int, epoch: int, logs: dict) -> None:
        epochs = next(config.epochs for config in configs if config.name == name)
        bar.set_description(f"run {run_index + 1}/{args.runs} {name} epoch {epoch + 1}/{epochs}")

    try:
        updates = comparison.run(
            task_data, configs, trainer_factory=lambda config, *_: trainers[config.name],
            tracker=tracker, epoch_callback=on_epoch,
        )
        for update in updates:
            bar.update(1)
            medians = {
                name: statistics.median(record["test_metrics"]["accuracy"]
                                        for record in comparison.records
                                        if record["config"] == name)
                for name in names
            }
            bar.set_description(f"run {update.completed}/{update.total}")
            bar.set_postfix_str(
                " ".join(f"{name} acc {value:.3f}" for name, value in medians.items())
                + f" | {update.seconds:.0f} s/run"
            )
    finally:
        bar.close()

    outputs = comparison.write_outputs()
    print(format_summary(outputs.summary))
    print()
    for name, record in comparison.best_records().items():
        test = record["test_metrics"]
        print(f"best {name}: run {record['run']} (split seed {record['split_seed']}), test "
              f"accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f} -> "
              f"{comparison.best_model_path(name)}")
    per_run = _seconds_per_run(comparison.records)
    print(f"{per_run:.1f} s per run of {len(names)} configuration(s) on this machine; "
          f"{args.runs} runs take about {_duration(per_run * args.runs)}")
    print(f"log: {comparison.log_path}")
    print("files: " + ", ".join(str(path) for path in outputs.files))
    return 0


def task_data_source(args: argparse.Namespace) -> str:
    """A description of the data source the options name."""
    if args.labels is not None:
        return f"{args.labels} + {args.images}"
    return str(args.data_dir)


def _seconds_per_run(records: list[dict]) -> float:
    """Mean set-up plus training time of one run of every configuration, from the log."""
    per_run: dict[int, float] = {}
    for record in records:
        per_run[record["run"]] = per_run.get(record["run"], 0.0) + record["setup_seconds"] + \
            record["train_seconds"]
    return statistics.fmean(per_run.values()) if per_run else 0.0


def _duration(seconds: float) -> str:
    """`45 s`, `12 min` or `4.7 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

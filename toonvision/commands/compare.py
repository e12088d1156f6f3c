"""Compare training configurations over N paired, freshly split runs and keep the best models.

The ToonVision article's protocol (there: baseline vs optimized, 200 runs x 25 epochs). Run r
draws a stratified split with seed SEED + r and trains every configuration from fresh weights on
that same split, so the configurations are compared on the same images. After each run one
record per configuration is appended to OUT/runs.jsonl and synced; the best model of each
configuration is kept as OUT/best_<config>.keras (with best_<config>.json, its run record).

A stopped comparison loses at most the run in progress: run the same command again with
--resume. At the end: one verdict sentence per pair of configurations, then summary.csv (per
configuration, and per pair B - A on test accuracy, loss and macro F1: the mean difference
with its interval corrected for overlapping splits and the re-split interval, P(B > A), effect
size, detectable difference and floor), per_class.csv, learning_curves.png,
best_run_curves.png, boxplots.png and forest.png. See docs/compare.md, "Reading the verdict".

--until-decided (or --runs auto) looks at test accuracy, the second configuration against the
first, every --look-every runs and stops as soon as the answer is known: the corrected
interval excludes zero, lies inside +-EQUIVALENCE, or the effect is under what the test split
can resolve; --runs is then the most runs (the cap). stopped.json says why and when.

--cv K replaces the fresh split per run by stratified K-fold cross-validation repeated --runs
times with new seeds: each fold is the test set once, the validation part is drawn from the
other folds; the records name their repetition and fold, and the intervals are corrected for
the R x K overlapping folds (docs/compare.md, "Cross-validation").

--group-by screenshot (every crop of one screenshot, from DATA_DIR/manifest.csv) or
--group-by duplicates (one near-duplicate cluster), or --group-column NAME for a --labels CSV,
keeps each group in one part of every run's split (and of every fold with --cv), so that no
crop is tested beside a sibling it was trained on (docs/compare.md, "Splits that do not leak").

The comparison's settings (task, configs, config_file, runs, epochs, early_stopping,
image_size, ratios, seed, select, balance, until_decided, look_every, equivalence, cv,
group_by) can come from a TOML file, --settings FILE; the comparison.json of an earlier
comparison's folder is such a file too. Flags you type win over the file, and the file wins
over the defaults.

--workers N trains N runs at once on Ray workers (`pip install 'toonvision[parallel]'`),
each pinned to --threads-per-worker threads; the default is one single-thread worker per CPU
when Ray is installed (measured fastest: the article's CNN does not scale over threads, runs
do), and --workers 1 trains in this process as before. --address joins a Ray cluster
(`ray start --head` on one machine, `ray start --address HOST:PORT` on the others) instead
of starting a local one; --gpus-per-worker asks Ray for a GPU share per worker. Only this
process writes the folder, in run order: the log, the best models, --resume and the summary
are the same whatever the engine. A worker killed mid-run is restarted and its run tried
again. See docs/parallel.md.

examples:
  toonvision compare --data-dir data --runs 200 --epochs 25 --out runs/article
  toonvision compare --data-dir data --runs 200 --epochs 25 --workers 2 --out runs/article
  toonvision compare --data-dir data --runs 200 --epochs 25 --out runs/article --resume
  toonvision compare --data-dir data --until-decided --runs 200 --out runs/article-auto
  toonvision compare --labels train_labels.csv --images images --task label \\
      --configs mlp,baseline --balance undersample --early-stopping 5 --image-size 64 64
  toonvision compare --data-dir data --settings runs/article/comparison.json --runs 20 \\
      --out runs/article-again
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toonvision import ExistingFileError, ToonvisionError, defaults
from toonvision.commands._common import (
    add_dataset_arguments,
    add_engine_arguments,
    add_grouping_arguments,
    add_split_arguments,
    grouping_from_options,
    print_skipped,
)

if TYPE_CHECKING:
    from toonvision.model_utils.comparison.runlog import RunRecord
    from toonvision.model_utils.tracking import RunTracker

NEEDS_KERAS = True  # the CLI imports TensorFlow quietly before `run` (see cli.py)
DEFAULT_CONFIGS = ",".join(defaults.CONFIGS)
# Each option that sets a comparison setting, as its argparse `dest` -> its settings key.
SETTING_OPTIONS = {
    "task": "task", "configs": "configs", "config_file": "config_file", "runs": "runs",
    "epochs": "epochs", "early_stopping": "early_stopping", "image_size": "image_size",
    "ratio": "ratios", "seed": "seed", "select": "select", "balance": "balance",
    "until_decided": "until_decided", "look_every": "look_every", "equivalence": "equivalence",
    "cv": "cv", "group_by": "group_by",
    "workers": "workers", "threads_per_worker": "threads_per_worker", "address": "address",
    "gpus_per_worker": "gpus_per_worker",
}
AUTO_RUNS = "auto"  # --runs auto: --until-decided with the default cap


@dataclass(frozen=True)
class NotTyped:
    """The default of a settings option: --help shows its value; `run` knows it was not typed.

    Only typed options override a --settings file, so the defaults must be told apart.
    """

    value: Any

    def __str__(self) -> str:
        return str(self.value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    group = parser.add_argument_group("comparison")
    group.add_argument(
        "--settings", type=Path, metavar="FILE",
        help="a TOML file of comparison settings (keys: task, configs, config_file, runs, "
             "epochs, early_stopping, image_size, ratios, seed, select, balance, "
             "until_decided, look_every, equivalence, cv, group_by, workers, "
             "threads_per_worker, address, gpus_per_worker), or the "
             "comparison.json of an earlier comparison to run it again; options typed here "
             "override it (default: none)",
    )
    group.add_argument(
        "--configs", default=NotTyped(DEFAULT_CONFIGS),
        help="comma-separated configurations to compare: built-in ones (baseline, optimized, "
             "optimized_1e-4, optimized_1e-5, mlp) or names from --config-file "
             "(default: %(default)s)",
    )
    group.add_argument(
        "--config-file", type=Path, metavar="FILE",
        help="a TOML file of [configs.NAME] tables defining more configurations, each may "
             "start from another with base = \"optimized\" (default: none)",
    )
    group.add_argument("--runs", type=_runs, default=NotTyped(defaults.RUNS),
                       help="number of runs, each on a new split; with --until-decided the "
                            "most runs; 'auto' is --until-decided with the default cap "
                            "(default: %(default)s)")
    group.add_argument(
        "--until-decided", action="store_true", default=NotTyped(defaults.UNTIL_DECIDED),
        help="look at test accuracy (the second configuration against the first) every "
             "--look-every runs and stop when the answer is known: decided, equivalent, or "
             "undecidable at this data size (a group-sequential rule that keeps its 5%% error "
             "rate over all looks)",
    )
    group.add_argument("--look-every", type=int, metavar="K",
                       default=NotTyped(defaults.LOOK_EVERY),
                       help="with --until-decided: paired runs between two looks "
                            "(default: %(default)s)")
    group.add_argument(
        "--equivalence", type=float, metavar="DELTA", default=NotTyped(defaults.EQUIVALENCE),
        help="practical-difference margin in test accuracy (0.04 = 4 points): a corrected "
             "interval inside +-DELTA decides 'no practical difference' (default: %(default)s, "
             "none)",
    )
    group.add_argument(
        "--cv", type=int, metavar="K",
        help="stratified K-fold cross-validation instead of a fresh split per run, repeated "
             "--runs times with new seeds (R x K paired runs): each fold is the test set once, "
             "validation is drawn from the other folds with the validate share of --ratio "
             "(default: none)",
    )
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
        "--select", choices=("test", "val_loss"), default=NotTyped(defaults.SELECT),
        help="best-model rule: 'test' (the article's: a run replaces the best when its test "
             "loss is lower AND its test accuracy higher) or 'val_loss' (lowest validation "
             "loss; never looks at the test set) (default: %(default)s)",
    )
    group.add_argument(
        "--balance", choices=("none", "undersample", "oversample"),
        default=NotTyped(defaults.BALANCE),
        help="balance the classes of each run's training split (never validation or test): "
             "undersample to the rarest class or oversample to the most common "
             "(default: %(default)s)",
    )
    add_grouping_arguments(group, default=NotTyped(defaults.GROUP_BY))
    add_engine_arguments(parser, NotTyped)
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
    # The shared data and split options, told apart from typed ones too.
    parser.set_defaults(task=NotTyped(defaults.TASK),
                        image_size=NotTyped(list(defaults.IMAGE_SIZE)),
                        ratio=NotTyped(list(defaults.RATIOS)), seed=NotTyped(defaults.SEED))


def default_out(task: str, configs: str) -> Path:
    """`runs/<task>-<configs>-<UTC timestamp>`, with characters unsafe in names replaced."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{task}-{configs.replace(',', '-')}")[:80]
    return defaults.RUNS_DIR / f"{name}-{stamp}"


def make_tracker(out_dir: Path, disabled: bool) -> RunTracker | None:
    """A `tracking.RunTracker` for the comparison, or None when tracking is off."""
    if disabled:
        return None
    from toonvision.model_utils.tracking import RunTracker

    return RunTracker(out_dir, experiment=f"compare-{out_dir.name}")


def _runs(text: str) -> int | str:
    """The value of --runs: a whole number, or `auto`."""
    if text == AUTO_RUNS:
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number or 'auto'; got {text!r}") from None


def typed_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the user typed as options (those left at their defaults are not typed)."""
    typed = {}
    for dest, key in SETTING_OPTIONS.items():
        value = getattr(args, dest)
        if value is None or isinstance(value, NotTyped):
            continue
        if key == "configs":
            value = [name.strip() for name in value.split(",") if name.strip()]
        if key == "runs" and value == AUTO_RUNS:
            typed["until_decided"] = True
            continue
        typed[key] = value
    grouping = grouping_from_options(typed.get("group_by"), args.group_column)
    if grouping is not None:   # --group-column NAME is the setting group_by = "column:NAME"
        typed["group_by"] = grouping
    return typed


def run(args: argparse.Namespace) -> int:
    from toonvision.commands._common import (
        checked_engine,
        describe_groups,
        groups_from_args,
        task_data_from_args,
    )
    from toonvision.commands._progress import RunProgress, duration
    from toonvision.data_visualization.comparison_figures import write_comparison_figures
    from toonvision.model_utils.comparison.runlog import read_stop
    from toonvision.model_utils.comparison.runner import Comparison
    from toonvision.model_utils.comparison.settings import plan_comparison
    from toonvision.model_utils.comparison.stored_settings import (
        SETTINGS_FILE,
        ResumeError,
        check_out_dir,
        settings_for,
    )
    from toonvision.model_utils.comparison.summary import PER_CLASS_FILE, format_summary
    from toonvision.model_utils.training.trainer import Trainer

    if args.resume and args.out is None:
        raise ToonvisionError("--resume needs --out, the folder of the comparison to continue")
    if isinstance(args.runs, int) and args.runs < 1:
        raise ToonvisionError(f"--runs must be at least 1; got {args.runs}")
    plan = plan_comparison(typed_settings(args), args.settings)
    names, configs = plan.config_names, list(plan.configs)
    out_dir = args.out or default_out(plan.task, ",".join(names))
    try:
        check_out_dir(out_dir, args.resume)
    except ExistingFileError:
        raise ExistingFileError(
            f"{out_dir} already exists and is not empty; add --resume to continue the "
            "comparison there, or choose another --out (nothing was changed)"
        ) from None

    data_args = argparse.Namespace(**{**vars(args), "task": plan.task,
                                      "image_size": list(plan.image_size)})
    task_data = task_data_from_args(data_args)
    print_skipped(task_data.skipped)
    task_data.groups = groups_from_args(args, task_data.paths, plan.group_by)
    settings = settings_for(task_data, plan.task, configs, plan.runs, task_data_source(args),
                            plan.ratios, plan.seed, plan.select, plan.balance,
                            until_decided=plan.until_decided, look_every=plan.look_every,
                            equivalence=plan.equivalence, cv=plan.cv, group_by=plan.group_by,
                            groups=task_data.groups)
    # Checked before anything is written: a configuration that cannot train on this data
    # fails here, not after the folder was created. Trainers are built and traced when they
    # first train (one per configuration, kept for every run), so tracing is spread over the
    # runs and TensorFlow's retracing warning does not mistake the builds for a loop.
    engine = checked_engine(plan.workers, plan.threads_per_worker, plan.address,
                            plan.gpus_per_worker, configs, len(task_data.class_names),
                            settings.image_size)
    try:
        comparison = Comparison.start(out_dir, settings, resume=args.resume)
    except ResumeError as error:
        hint = (f"--settings {out_dir / SETTINGS_FILE} repeats them, --out chooses another "
                "folder" if error.differences else "--runs may grow, not shrink")
        raise ResumeError(f"{error} ({hint})", error.differences) from None
    done = len(comparison.completed_runs())
    counts = ", ".join(f"{name} {count}" for name, count in task_data.class_counts().items())
    runs = (f"until decided, looking every {plan.look_every} runs, at most {plan.runs} runs"
            if plan.until_decided else f"{plan.runs} runs")
    if plan.cv:
        runs = f"{plan.runs} x {plan.cv}-fold cross-validation ({settings.run_count} runs)"
    if task_data.groups is not None:
        runs += f", {describe_groups(plan.group_by, task_data.groups)}"
    print(f"comparing {', '.join(names)} on {len(task_data)} images ({counts}), "
          f"{settings.image_size[0]}x{settings.image_size[1]}, {runs}; "
          f"{done} already done; writing to {out_dir}; training {engine.describe()}",
          file=sys.stderr)

    tracker = make_tracker(out_dir, args.no_tracking)
    # One line per run in a log; on a terminal a bar with the medians and the workers.
    with RunProgress(settings.run_count, done=done, capped=plan.until_decided,
                     activity=getattr(engine, "activity", None)) as progress:
        updates = comparison.run(task_data, configs, trainer_factory=Trainer,
                                 tracker=tracker, engine=engine)
        for update in updates:
            medians = "/".join(f"{statistics.median(values):.3f}" for values in (
                [record.test_metrics["accuracy"] for record in comparison.records
                 if record.config == name] for name in names))
            accuracy = ", ".join(f"{record.config} acc {record.test_metrics['accuracy']:.3f}"
                                 for record in update.records)
            # The run's own training time: with several workers runs overlap, so the wall
            # time between two logged runs says little (the ETA comes from their rate).
            seconds = sum(record.total_seconds for record in update.records)
            look = update.decision
            progress.finished(
                f"done in {seconds:.0f} s: {accuracy} (medians {medians})"
                + (f"; look {look.look}/{look.looks}: {look.state}" if look else ""),
                status=f"medians {medians}", completed=update.completed)

    stop = read_stop(comparison.stop_path)
    if stop is not None:
        print(f"stopped after {stop['runs']} of at most {plan.runs} runs ({stop['state']}): "
              f"{stop['reason']}", file=sys.stderr)
    summary = comparison.write_summary()
    files = [path for path in (comparison.summary_path, comparison.out_dir / PER_CLASS_FILE)
             if path.is_file()]
    files += write_comparison_figures(comparison, summary)
    print(format_summary(summary))
    print()
    for name, record in comparison.best_records().items():
        test = record.test_metrics
        print(f"best {name}: run {record.run} (split seed {record.split_seed}), test "
              f"accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f} -> "
              f"{comparison.best_model_path(name)}")
    # Workers train runs side by side: a run's wall time is its training time over them.
    per_run = _seconds_per_run(comparison.records) / max(1, getattr(engine, "started", 1))
    print(f"{per_run:.1f} s per run of {len(names)} configuration(s) on this machine; "
          f"{settings.run_count} runs take about {duration(per_run * settings.run_count)}"
          + (f", these {len(comparison.completed_runs())} took "
             f"{duration(per_run * len(comparison.completed_runs()))}" if stop else ""))
    print(f"log: {comparison.log_path}")
    print("files: " + ", ".join(str(path) for path in files))
    return 0


def task_data_source(args: argparse.Namespace) -> str:
    """A description of the data source the options name."""
    if args.labels is not None:
        return f"{args.labels} + {args.images}"
    return str(args.data_dir)


def _seconds_per_run(records: list[RunRecord]) -> float:
    """Mean set-up plus training time of one run of every configuration, from the log."""
    per_run: dict[int, float] = {}
    for record in records:
        per_run[record.run] = per_run.get(record.run, 0.0) + record.total_seconds
    return statistics.fmean(per_run.values()) if per_run else 0.0

"""Compare training configurations over N paired, freshly split runs and keep the best models.

The ToonVision article's protocol (there: baseline vs optimized, 200 runs x 25 epochs). Run r
draws a stratified split with seed SEED + r and trains every configuration from fresh weights on
that same split, so the configurations are compared on the same images. After each run one
record per configuration is appended to OUT/runs.jsonl and synced; the best model of each
configuration is kept as OUT/best_<config>.keras (with best_<config>.json, its run record, and
best_<config>.keras.confidence.npz, its confidence rule: the temperature that calibrates its
probabilities and the threshold under which 'predict' answers 'unknown', fitted on that run's
own train and validate crops; see docs/compare.md, "Unknown crops").

A stopped comparison loses at most the run in progress: run the same command again with
--resume. At the end: one verdict sentence per pair of configurations, then summary.csv (per
configuration, and per pair B - A on test accuracy, loss, macro F1, expected calibration
error (ece) and Brier score: the mean difference
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

Every option of the "comparison" and "engine" groups below is a setting, and can come from a
TOML file, --settings FILE: its key is the option's name with underscores (--look-every is
look_every, --ratio is ratios), and `configs` may hold tables of configuration fields. The
comparison.json of an earlier comparison's folder is such a file too. Flags you type win over
the file, and the file wins over the defaults. See docs/compare.md, "Settings files".

--runs 1 trains one run of every configuration and keeps its models: the summary gives its
metrics, and says that intervals and verdicts need at least two runs (--resume --runs N adds
more).

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
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from toonvision import ExistingFileError
from toonvision.commands._common import (
    add_dataset_arguments,
    add_engine_arguments,
    add_grouping_arguments,
    grouping_from_options,
    print_skipped,
)
from toonvision.model_utils.comparison import settings as schema

if TYPE_CHECKING:
    from toonvision.model_utils.comparison.run import ComparisonResult, ComparisonSession

NEEDS_KERAS = True  # the CLI imports TensorFlow quietly before `run` (see cli.py)
# The settings of the "comparison" group (the engine's have their own; --group-by comes with
# --group-column), in the schema's order.
COMPARISON_OPTIONS = tuple(key for key in schema.SETTING_KEYS
                           if key not in schema.ENGINE_KEYS and key != "group_by")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser, image_size=False, task=False)
    group = parser.add_argument_group(
        "comparison", "Each option is also a key of a --settings file (dashes as underscores).")
    group.add_argument(
        "--settings", type=Path, metavar="FILE",
        help=f"a TOML file of comparison settings (keys: {', '.join(schema.SETTING_KEYS)}), "
             "or the comparison.json of an earlier comparison to run it again; options typed "
             "here override it (default: none)",
    )
    schema.add_setting_options(group, COMPARISON_OPTIONS)
    add_grouping_arguments(group, typed_only=True)
    add_engine_arguments(parser, typed_only=True)
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


def typed_settings(args: argparse.Namespace) -> dict:
    """The settings the user typed as options (`settings.typed_settings`), --group-column
    being the setting group_by = "column:NAME"."""
    typed = schema.typed_settings(args)
    grouping = grouping_from_options(typed.get("group_by"), args.group_column)
    if grouping is not None:
        typed["group_by"] = grouping
    return typed


def run(args: argparse.Namespace) -> int:
    from toonvision.commands._common import decode_bar, source_from_args
    from toonvision.model_utils.comparison.run import start_comparison
    from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE, ResumeError

    plan = schema.plan_comparison(typed_settings(args), args.settings)
    progress, close = decode_bar()
    try:
        session = start_comparison(
            plan, source_from_args(args), args.out, resume=args.resume,
            tracking=not args.no_tracking, decode_progress=progress,
            ray_log=not logging.getLogger().isEnabledFor(logging.DEBUG),
            on_measure=lambda: print("measuring once whether a second process pays on this "
                                     "CPU (about 30 s; kept for next time)", file=sys.stderr))
    except ExistingFileError as error:
        raise ExistingFileError(f"{str(error).split(';')[0]}; add --resume to continue the "
                                "comparison there, or choose another --out (nothing was "
                                "changed)") from None
    except ResumeError as error:
        folder = args.out / SETTINGS_FILE
        hint = (f"--settings {folder} repeats them, --out chooses another folder"
                if error.differences else "--runs may grow, not shrink")
        raise ResumeError(f"{error} ({hint})", error.differences) from None
    finally:
        close()
    print(session.engine_reason, file=sys.stderr)
    print_skipped(session.task_data.skipped)
    print(describe_session(session), file=sys.stderr)
    train(session)
    print_result(session.finish())
    return 0


def describe_session(session: ComparisonSession) -> str:
    """The line that says what will be trained, on what, and where."""
    from toonvision.commands._common import describe_groups

    plan, task_data, settings = session.plan, session.task_data, session.settings
    counts = ", ".join(f"{name} {count}" for name, count in task_data.class_counts().items())
    runs = (f"until decided, looking every {plan.look_every} runs, at most {plan.runs} runs"
            if plan.until_decided else f"{plan.runs} runs")
    if plan.cv:
        runs = f"{plan.runs} x {plan.cv}-fold cross-validation ({settings.run_count} runs)"
    if task_data.groups is not None:
        runs += f", {describe_groups(plan.group_by, task_data.groups)}"
    return (f"comparing {', '.join(plan.config_names)} on {len(task_data)} images ({counts}), "
            f"{settings.image_size[0]}x{settings.image_size[1]}"
            f"{' letterboxed' if settings.resize == 'letterbox' else ''}, {runs}; {session.done} "
            f"already done; writing to {session.out_dir}; training {session.engine.describe()}")


def train(session: ComparisonSession) -> None:
    """Trains the session's runs: one line per run in a log; on a terminal a bar with the
    medians and the workers."""
    import statistics

    from toonvision.commands._progress import RunProgress

    comparison, names = session.comparison, session.plan.config_names
    with RunProgress(session.settings.run_count, done=session.done,
                     capped=session.plan.until_decided,
                     activity=session.engine.activity) as progress:
        for update in session.run():
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


def print_result(result: ComparisonResult) -> None:
    """Prints the verdicts, the summary, the kept models and the time; draws the figures."""
    from toonvision.commands._progress import duration
    from toonvision.data_visualization.comparison_figures import write_comparison_figures
    from toonvision.model_utils.comparison.summary import format_summary

    comparison, settings, stop = result.comparison, result.comparison.settings, result.stop
    if stop is not None:
        print(f"stopped after {stop['runs']} of at most {settings.runs} runs "
              f"({stop['state']}): {stop['reason']}", file=sys.stderr)
    files = result.files + write_comparison_figures(comparison, result.summary)
    print(format_summary(result.summary))
    print()
    for name, record in result.best.items():
        test = record.test_metrics
        print(f"best {name}: run {record.run} (split seed {record.split_seed}), test "
              f"accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f} -> "
              f"{comparison.best_model_path(name)}")
    per_run, done = result.seconds_per_run, len(comparison.completed_runs())
    print(f"{per_run:.1f} s per run of {len(settings.config_names)} configuration(s) on this "
          f"machine; {settings.run_count} runs take about "
          f"{duration(per_run * settings.run_count)}"
          + (f", these {done} took {duration(per_run * done)}" if stop else ""))
    print(f"log: {comparison.log_path}")
    print("files: " + ", ".join(str(path) for path in files))

"""Compare training configurations over N paired, freshly split runs and keep the best models.

The ToonVision article's protocol (there: baseline vs optimized, 200 runs x 25 epochs). Run r
draws a stratified split with seed SEED + r and trains every configuration from fresh weights on
that same split. After each run one record per configuration is appended to OUT/runs.jsonl;
the best model of each configuration is kept as OUT/best_<config>.keras, with its record
(.json) and its confidence rule (.keras.confidence.npz: the temperature and the threshold under
which 'predict' answers 'unknown'; docs/compare.md, "Unknown crops"). A stopped comparison
loses at most the run in progress: run the same command again with --resume.

At the end: a verdict per pair, each configuration against the majority class, summary.csv,
per_class.csv and figures (docs/compare.md, "Reading the verdict").

--until-decided stops as soon as the answer is known (--runs is then the cap); --cv K repeats
stratified K-fold cross-validation; --group-by keeps screenshots or clusters in one part. Each
option below is also a key of a TOML --settings file, such as an earlier comparison.json.

Without --workers the engine chooses itself: Ray workers only where the comparison has enough
runs and a second process measured on this machine gains (cached per machine), else this
process; the first line says which and why. --workers 1 or N forces it (docs/parallel.md).

examples:
  toonvision compare --data-dir data --runs 200 --epochs 25 --out runs/article [--resume]
  toonvision compare --data-dir data --until-decided --runs 200 --out runs/article-auto
  toonvision compare --labels train_labels.csv --images images --task label \\
      --configs mlp,baseline --balance undersample --early-stopping 5 --image-size 64 64
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
    from toonvision.commands._common import source_from_args
    from toonvision.model_utils.comparison.run import start_comparison
    from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE, ResumeError
    from toonvision.progress import decode_bar

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
    from toonvision.data_processing.splits import describe_groups

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

    from toonvision.progress import RunProgress

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
    from toonvision.data_visualization.comparison_figures import write_comparison_figures
    from toonvision.model_utils.comparison.summary import format_summary
    from toonvision.progress import duration

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

"""Search configurations: every trial is R paired runs against a reference, as in compare.

The search space is a TOML file: ranges ({low = ..., high = ..., log = true}) or lists of
choices for any configuration field, the architecture's included, with the configuration a
trial starts from (base), the one it is compared with (reference), the budget (trials, or
timeout = "2h") and runs_per_trial; any comparison setting (task, epochs, image_size, ratios,
seed, ...) may be set there too. Optuna's TPE sampler proposes the trials; a trial whose
running mean paired difference falls below the median of earlier trials is pruned.

Everything goes to OUT: study.db (Optuna's SQLite storage: optuna-dashboard sqlite:///OUT/
study.db shows it), trials/trial_N/ (a comparison folder per trial: toonvision summarize
and report --run-dir open it), trials.csv, best_configs.toml (for compare --config-file) and
trials.png. A stopped search loses at most the trial in progress: run the same command again
with --resume. See docs/training.md, "Search".

A trial's paired runs train on the engine of `compare`: --workers N trains N at once on Ray
workers (the default when Ray is installed: one single-thread worker per CPU), kept for the
whole search, --workers 1 in this process; --threads-per-worker, --address and
--gpus-per-worker as for compare. Trials run one at a time, and the pruner sees every run of
a trial as it is logged (docs/parallel.md).

examples:
  toonvision search configs/search_example.toml --data-dir data --out runs/search
  toonvision search space.toml --data-dir data --out runs/search --resume --trials 40
  toonvision compare --data-dir data --config-file runs/search/best_configs.toml \\
      --configs optimized,trial_7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toonvision import defaults
from toonvision.commands._common import add_dataset_arguments, add_engine_arguments, print_skipped

NEEDS_KERAS = True  # the CLI imports TensorFlow quietly before `run` (see cli.py)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", type=Path, metavar="SPACE_TOML",
                        help="the search file: [space] of fields, base, reference, budget")
    add_dataset_arguments(parser)
    group = parser.add_argument_group("search")
    group.add_argument("--trials", type=int,
                       help=f"trials to finish, over every invocation (default: the file's, "
                            f"else {defaults.SEARCH_TRIALS})")
    group.add_argument("--timeout", metavar="DURATION",
                       help="stop starting trials after this long in this invocation, e.g. "
                            "2h, 90m (default: the file's, else none)")
    group.add_argument("--runs-per-trial", type=int, metavar="R",
                       help=f"paired runs per trial (default: the file's, else "
                            f"{defaults.SEARCH_RUNS_PER_TRIAL})")
    group.add_argument("--out", type=Path, required=True,
                       help="the search's folder; must be new or empty unless --resume")
    group.add_argument("--resume", action="store_true",
                       help="continue the search in --out: finished trials are kept, the one "
                            "a kill interrupted is run again")
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from toonvision.commands._common import engine_from_args, source_from_args
    from toonvision.model_utils.studies.search import (
        STUDY_FILE,
        load_search_file,
        plan_trials,
        run_search,
    )
    from toonvision.model_utils.studies.search_results import BEST_CONFIGS_FILE, best_trials
    from toonvision.progress import SEPARATOR, RunProgress, decode_bar

    overrides = {key: value for key, value in (("trials", args.trials),
                                               ("timeout", args.timeout),
                                               ("runs_per_trial", args.runs_per_trial))
                 if value is not None}
    spec = load_search_file(args.space, overrides)
    # The search file's task and image size, when it sets them; else the flags'.
    task = spec.comparison.get("task", args.task)
    size = spec.comparison.get("image_size", args.image_size)
    source = source_from_args(args)
    decoding, close = decode_bar()
    try:
        task_data = source.load(task, size, decoding,
                                spec.comparison.get("resize", defaults.RESIZE))
    finally:
        close()
    print_skipped(task_data.skipped)
    spec = type(spec)(**{**spec.__dict__, "comparison": {**spec.comparison, "task": task,
                                                         "image_size": list(size)}})
    # The reference and the base build on this data before the search writes anything.
    engine = engine_from_args(args, plan_trials(spec).configs, len(task_data.class_names),
                              size)
    budget = f"{spec.trials} trials" if spec.trials else f"{spec.timeout:.0f} s"
    print(f"searching {', '.join(d.name for d in spec.space)} from {spec.base} against "
          f"{spec.reference} on {len(task_data)} images, {budget} x {spec.runs_per_trial} "
          f"paired runs; writing to {args.out}; training {engine.describe()}", file=sys.stderr)
    # One line per finished trial in a log; on a terminal a bar with the trial's run, the best
    # so far and what each worker trains.
    with RunProgress(spec.trials, unit="trial",
                     activity=engine.activity) as bar:
        seen = [0]

        def progress(state) -> None:
            best = ("" if state.best_trial is None
                    else f"best trial {state.best_trial} {state.best_value:+.4f}")
            if state.finished > seen[0]:
                seen[0] = state.finished
                bar.finished(f"done{': ' + best if best else ''}", status=best,
                             completed=state.finished)
            elif state.trial is not None:
                bar.set_status(SEPARATOR.join(part for part in (
                    f"trial {state.trial} run {state.run}/{state.runs}", best) if part))

        study = run_search(args.out, spec, task_data, source.describe(),
                           resume=args.resume, progress=progress, engine=engine)
    from toonvision.data_visualization.figures import save_figure
    from toonvision.data_visualization.search_figures import trials_figure

    figure = trials_figure(study)
    if figure is not None:
        save_figure(figure, args.out / "trials.png")
    for trial in best_trials(study, spec.best):
        attrs = trial.user_attrs
        print(f"trial_{trial.number}: {trial.value:+.4f} test accuracy against "
              f"{spec.reference} (corrected 95% interval {attrs.get('ci_low', float('nan')):+.4f}"
              f"..{attrs.get('ci_high', float('nan')):+.4f}, {attrs.get('runs')} runs) "
              f"{attrs.get('config')}")
    print(f"configurations: {args.out / BEST_CONFIGS_FILE} "
          f"(toonvision compare --config-file {args.out / BEST_CONFIGS_FILE} ...)")
    print(f"study: optuna-dashboard sqlite:///{args.out / STUDY_FILE}")
    return 0

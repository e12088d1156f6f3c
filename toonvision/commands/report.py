"""Write a heatmap report: what a model sees, as one static HTML page.

Evaluates MODEL on the test part of a dataset's split (the split the model was trained,
validated and tested on: for a model kept by 'compare', its run's (and fold's) split as its
sidecar or comparison.json records it; else a stratified split with its recorded seed, or
--split-seed), or on explicit inputs (--inputs: crops named <label>_<index>.png, folders of
them, or screenshots with their labelImg XML, cropped box by box), and writes OUT/index.html
with PNG figures beside it: metrics and confusion matrix, confidence histograms, the wrong
predictions ranked by error, Grad-CAM heatmaps, intermediate activations, convnet filters
and the architecture; with --run-dir also the comparison's curves, box plots and summary
table. The page opens from disk. OUT/metrics.json holds accuracy, loss, macro F1, per-class
scores, every crop's prediction and where the split came from, and calibration: ECE raw and
after the model's temperature, Brier score, and the share of crops its confidence rule
(MODEL.confidence.npz, kept by 'compare') recognises, with the accuracy among those; the page
shows the reliability diagram.

Examples:
  toonvision report models/best.keras --data-dir data --run-dir runs/compare --out reports/best
  toonvision report author.h5 --inputs screenshots/ crops/toon_dog_3.png --out reports/author
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toonvision import ToonvisionError, defaults
from toonvision.commands._common import add_dataset_arguments, print_skipped

NEEDS_KERAS = True  # the CLI imports TensorFlow quietly before `run` (see cli.py)
DEFAULT_OUT = defaults.REPORTS_DIR / "latest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the report options."""
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="the model file (.keras with its .json sidecar, or a legacy .h5)")
    add_dataset_arguments(
        parser, image_size=False, task_default=None,
        task_help="what the model classifies, as for 'toonvision compare' (binary, suit, name, "
                  "animal, label or a class list); default: the task recorded with the model, "
                  "binary for models without a sidecar",
    )
    parser.add_argument(
        "--inputs", type=Path, nargs="+", metavar="PATH",
        help="report on these files instead of a dataset's test split: crops (label = file "
             "name without _<index>), folders of crops, or screenshots with a labelImg .xml "
             "of the same name beside them (each box is cropped and labelled from the XML)",
    )
    parser.add_argument(
        "--split-seed", type=int, default=None,
        help="re-split with this seed (plain stratified split) and evaluate its test part "
             "(default: the model's own split, recorded with it; 0 for a model without one)",
    )
    parser.add_argument(
        "--run-dir", type=Path, metavar="DIR",
        help="a 'toonvision compare' output folder: its learning_curves.png, "
             "best_run_curves.png, boxplots.png and summary.csv are shown when present",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the report folder; index.html and PNGs go there, files of an "
                             "earlier report in it are replaced (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=defaults.REPORT_SAMPLES,
                        help="images shown with Grad-CAM heatmaps, and most confident mistakes "
                             "shown with theirs (default: %(default)s)")
    parser.add_argument("--filters", type=int, default=defaults.REPORT_FILTERS,
                        help="filters drawn per convolution layer by gradient ascent "
                             "(default: %(default)s)")
    parser.add_argument("--explain", type=int, default=defaults.REPORT_EXPLAIN, metavar="N",
                        help="images on which every explanation method (Grad-CAM, Grad-CAM++, "
                             "saliency, a random map) is scored by deletion/insertion AUC, "
                             "average drop and increase in confidence, with the "
                             "weight-randomisation sanity check; writes faithfulness.csv and "
                             "sanity.csv beside the page; 0: skip (default: %(default)s)")
    parser.add_argument("--explain-steps", type=int, default=defaults.EXPLAIN_STEPS, metavar="N",
                        help="deletion and insertion steps per image, each removing 1/N of the "
                             "pixels (default: %(default)s)")
    parser.add_argument("--explain-baseline", choices=("auto", "blur", "mean"), default="auto",
                        help="what a removed pixel becomes in those scores: the pixel of a "
                             "blurred copy of the image, the image's mean colour, or auto: the "
                             "one under which removing every pixel changes more of the "
                             "model's answers, blur on a tie (a map can be checked only where "
                             "removing pixels changes the answer) (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=defaults.BATCH_SIZE,
                        help="images per forward pass (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Loads the model and the images, writes the report, prints the page's path."""
    from toonvision.data_visualization import evaluation, report
    from toonvision.labels import make_task
    from toonvision.model_utils.comparison.provenance import (
        grouping_of_model,
        seen_crops,
        split_of_model,
    )
    from toonvision.model_utils.training import model_io
    from toonvision.model_utils.training.confidence import load_confidence
    from toonvision.progress import progress_bar

    if args.samples < 1 or args.filters < 1 or args.batch_size < 1 or args.explain_steps < 1:
        raise ToonvisionError("--samples, --filters, --batch-size and --explain-steps must be "
                              "at least 1")
    if args.explain < 0:
        raise ToonvisionError(f"--explain must be 0 or more; got {args.explain}")
    model, info = model_io.load_model(args.model)
    task_spec = args.task or info.task
    description = [f"model: {args.model} ({model.count_params():,} parameters)",
                   f"task: {task_spec}, classes {', '.join(info.class_names)}, input "
                   f"{info.image_size[0]}x{info.image_size[1]} (height x width, "
                   f"{info.resize})"]
    if args.inputs:
        task = make_task(task_spec, info.class_names)
        _check_classes(task.classes, info.class_names, task_spec)
        data = evaluation.load_inputs(args.inputs, info.class_names, info.image_size, task,
                                      info.resize, seen=seen_crops(info, args.model))
        description.append("evaluated on the given inputs")
        trained = data.parts.count("train")
        if trained:
            warning = (f"{trained} of these {len(data)} inputs were in the model's training "
                       "part: its metrics on them are not a test of new data ('predict' "
                       "marks which)")
            print(f"warning: {warning}", file=sys.stderr)
            description.append(f"WARNING: {warning}")
    else:
        from toonvision.commands._common import groups_from_args, task_data_from_args

        args.task = task_spec
        args.image_size, args.resize = info.image_size, info.resize
        task_data = task_data_from_args(args, classes=info.class_names)
        _check_classes(task_data.class_names, info.class_names, task_spec)
        # The crops the model was tested on: one answer for every command (provenance).
        split = split_of_model(info, task_data,
                               groups_from_args(args, task_data.paths, grouping_of_model(info)),
                               seed=args.split_seed,
                               comparison_dirs=(args.run_dir, args.model.parent))
        test = split.parts["test"]
        if len(test) == 0:
            raise ToonvisionError(f"the test split of {len(task_data)} images is empty; give more "
                                  "data or use --inputs")
        data = evaluation.LabelledImages(
            images=task_data.images[test], y=task_data.y[test],
            class_names=tuple(info.class_names),
            names=[task_data.paths[index].name for index in test],
            labels=[task_data.labels[index] for index in test],
            source=f"test part of {split.describe()} of {len(task_data)} images",
            skipped=list(task_data.skipped),
        )
        description.append(f"split: {split.describe()}")
        for warning in split.warnings:
            print(f"warning: {warning}", file=sys.stderr)
            description.append(f"WARNING: {warning}")
    print_skipped(data.skipped)
    with progress_bar(total=len(report.REPORT_STEPS), desc="report", unit="step") as bar:
        def progress(step: str) -> None:
            bar.set_postfix_str(step)
            bar.update(1)

        page = report.write_report(
            model, data, args.out, model_description="\n".join(description),
            samples=args.samples, run_dir=args.run_dir, filters=args.filters,
            batch_size=args.batch_size, progress=progress, explain=args.explain,
            explain_steps=args.explain_steps, explain_baseline=args.explain_baseline,
            split=None if args.inputs else split.to_dict(),
            confidence=load_confidence(args.model),
        )
    print(f"report on {len(data)} images written to {page}")
    return 0


def _check_classes(task_classes: tuple[str, ...], model_classes: tuple[str, ...],
                   spec: str) -> None:
    if tuple(task_classes) != tuple(model_classes):
        raise ToonvisionError(
            f"task {spec!r} gives classes {', '.join(task_classes)} but the model predicts "
            f"{', '.join(model_classes)}; pass the --task (and --keep) the model was trained "
            "with"
        )

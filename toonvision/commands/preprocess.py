"""Remove the background and centre the object of every image: the Pokemon challenge's recipe.

Background removal takes four OpenCV steps: fix the border (every border pixel is background),
threshold (background black, object white; images with transparency use their alpha channel,
opaque images the distance from the border's colour, so JPGs on white work), morphological
closing with --iterations iterations of a 3x3 kernel to fill holes in the mask (too many let
background in between limbs), then the mask applied to the original. Centering moves the
bounding rectangle of the mask to the middle. Every image is then resized to --size.

Writes --out/images/<id>.png, --out/labels.csv (Id,label: the output is itself a labelled
set for every command) and --out/preprocess_steps.png (each step on a few examples and the
iteration trade-off). Never writes into the input folder and refuses a non-empty --out. A
broken image is reported and skipped; the batch goes on.

Example:
  toonvision preprocess --labels pokemon.csv --images images --id-column Name \\
      --label-column Type1 --out data/pokemon_64
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toonvision import ToonvisionError
from toonvision.commands._common import add_dataset_arguments, dataset_from_args, print_skipped
from toonvision.data_processing.preprocess import (
    DEFAULT_ITERATIONS,
    DEFAULT_SIZE,
    LABELS_FILE,
    STEPS,
    STEPS_FIGURE,
    TRADE_OFF_ITERATIONS,
)
from toonvision.progress import progress_bar

FIGURE_EXAMPLES = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser, image_size=False)
    parser.set_defaults(task="label")
    parser.add_argument(
        "--out", type=Path, required=True,
        help="new or empty folder for the processed set (required; never the input folder)",
    )
    parser.add_argument(
        "--size", type=int, default=DEFAULT_SIZE,
        help="side of the square output images in pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--steps", default=",".join(STEPS),
        help="comma-separated steps, applied in this order: " + ", ".join(STEPS)
             + " (default: %(default)s)",
    )
    parser.add_argument(
        "--iterations", type=int, default=DEFAULT_ITERATIONS,
        help="iterations of the morphological closing that fills the mask; more fill bigger "
             "holes but let background in (default: %(default)s)",
    )
    parser.add_argument(
        "--figure-iterations", default=",".join(str(count) for count in TRADE_OFF_ITERATIONS),
        help="closing iterations compared in the steps figure (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from toonvision.data_processing.dataset import Dataset, select_for_task
    from toonvision.data_processing.preprocess import (
        check_output_dir,
        check_steps,
        preprocess_dataset,
        steps_columns,
        steps_examples,
    )
    from toonvision.data_visualization.dataset_figures import preprocess_steps_figure
    from toonvision.data_visualization.figures import save_figure
    from toonvision.labels import make_task

    if args.size < 8:
        raise ToonvisionError(f"--size must be at least 8 pixels, got {args.size}")
    if args.iterations < 0:
        raise ToonvisionError(f"--iterations must be 0 or more, got {args.iterations}")
    steps = check_steps(args.steps.split(","))
    try:
        trade_off = [int(count) for count in args.figure_iterations.split(",") if count.strip()]
    except ValueError as error:
        raise ToonvisionError(f"--figure-iterations must be integers: {error}") from error
    source = dataset_from_args(args)
    out_dir = check_output_dir(args.out, [args.images or args.data_dir])
    task = make_task(args.task, source.labels)
    paths, labels, y = select_for_task(source, task)
    dataset = Dataset(paths, labels, source.source, source.skipped)
    print_skipped(dataset.skipped)

    failed, done = [], []
    results = preprocess_dataset(dataset, out_dir, args.size, steps, args.iterations)
    for result in progress_bar(results, total=len(dataset), desc="preprocessing", unit="img"):
        if result.error is None:
            done.append(result.source)
        else:
            failed.append(result.error)
    print_skipped(failed)

    figure_path = None
    if done:
        generator = np.random.default_rng(0)
        chosen = generator.choice(len(done), size=min(FIGURE_EXAMPLES, len(done)), replace=False)
        examples = steps_examples([done[index] for index in sorted(chosen)], args.iterations,
                                  trade_off, args.size)
        columns = steps_columns(args.iterations, trade_off, args.size)
        figure_path = save_figure(preprocess_steps_figure(columns, examples),
                                  out_dir / STEPS_FIGURE)
    written = len(done)
    print(f"{written} of {len(dataset)} images processed ({', '.join(steps)}, "
          f"{args.size}x{args.size}, closing x{args.iterations}) into {out_dir / 'images'}")
    if failed:
        print(f"{len(failed)} unreadable images skipped")
    print(f"wrote {out_dir / LABELS_FILE} (Id,label); use it with "
          f"--labels {out_dir / LABELS_FILE} --images {out_dir / 'images'}")
    if figure_path is not None:
        print(f"wrote {figure_path}")
    return 0 if written else 1

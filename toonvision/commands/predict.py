"""Classify crops, folders of crops, or annotated screenshots with a trained model.

PATH is a crop image, a folder of images (searched recursively), a screenshot with its
labelImg XML beside it (same name, .xml), or that XML, or a folder holding a YOLO, COCO,
labelme, Label Studio or CVAT export: then every box is classified and its true label is
shown beside the prediction. Crops named like extracted crops
(cog_sb_coldcaller_12.png) have their true label read from the name. Works with our .keras
models and with legacy Keras 2 HDF5 models such as the ToonVision author's (taken as binary
cog/toon). For a model kept by 'toonvision compare', crops of the data it was compared on,
and the screenshot boxes they were extracted from, get a part column (train, validate or test
of the model's own split) and their label in that data (a flat set's images: the CSV's), and
a warning says how many it trained on and how it does on the others: only validate and test
crops show how it does on new ones.

A model kept by 'toonvision compare' has a confidence rule beside it
(MODEL.confidence.npz): its probabilities are then calibrated, each crop gets a novelty score
(column novelty: how much it looks like the model's training crops) and a crop the model
does not recognise is answered 'unknown' (column accepted = 0; grey in --draw, named unknown
in --save-voc). --accept sets the share of the model's own validation crops that must pass
(the rest of crops like them are called unknown too: the rule's price). Models without the file
(older comparisons, legacy .h5) answer with their raw probabilities and never 'unknown'.

examples:
  toonvision predict runs/article/best_optimized.keras data/unsorted/toon
  toonvision predict model.h5 screenshots/sample_img0.png --draw predicted/
  toonvision predict model.keras crops/ --format csv > predictions.csv
  toonvision predict model.keras new_shots/ --save-voc named/   # fix in labelImg, extract
  toonvision predict runs/article/best_optimized.keras shots/ --accept 0.99  # fewer unknown
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from toonvision import ToonvisionError, defaults

NEEDS_KERAS = True  # the CLI imports TensorFlow quietly before `run` (see cli.py)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="a .keras model saved by toonvision, or a Keras 2 .h5 model")
    parser.add_argument("paths", type=Path, nargs="+", metavar="PATH",
                        help="crop images, folders of them, or screenshots with their XML beside "
                             "them (or the XML files)")
    parser.add_argument(
        "--task",
        help="how true labels map to the model's classes (binary, suit, ...; see "
             "'toonvision compare --help'); default: the task stored with the model, binary "
             "for legacy models",
    )
    parser.add_argument("--format", choices=("table", "csv"), default="table",
                        help="table: aligned text with right/wrong marks; csv: columns "
                             "source,xmin,ymin,xmax,ymax,label,predicted,confidence,part,"
                             "novelty,accepted (default: %(default)s)")
    parser.add_argument("--draw", type=Path, metavar="DIR",
                        help="also write each screenshot with its boxes, predicted classes and "
                             "confidences drawn, as DIR/<name>_predicted.png (default: off)")
    parser.add_argument("--save-voc", type=Path, metavar="DIR",
                        help="also write one labelImg XML per screenshot to DIR (DIR/<name>.xml) "
                             "with the same boxes, each named with its predicted class, the "
                             "screenshot beside it (a hard link, else a copy) and "
                             "DIR/predictions.csv with the confidences: open DIR in labelImg, "
                             "fix the names, then 'toonvision extract DIR'; an existing XML, or "
                             "another picture of the XML's name, is never overwritten "
                             "(default: off)")
    parser.add_argument("--accept", type=float, default=defaults.ACCEPT, metavar="SHARE",
                        help="for a model with a confidence rule: the share of its own "
                             "validation crops it must recognise; crops less familiar than the "
                             "least familiar of those are answered 'unknown'. Higher: fewer "
                             "'unknown' answers, more wrong ones on crops unlike the training "
                             "data; 1.0 accepts all but the strangest (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=defaults.BATCH_SIZE,
                        help="crops per forward pass (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from toonvision.model_utils.comparison.provenance import seen_crops
    from toonvision.model_utils.prediction import (
        predict_paths,
        predictions_csv,
        predictions_table,
        write_drawings,
        write_voc,
    )
    from toonvision.model_utils.training.confidence import UNKNOWN, load_confidence
    from toonvision.model_utils.training.model_io import load_model
    from toonvision.progress import progress_bar

    if args.batch_size < 1:
        raise ToonvisionError(f"--batch-size must be at least 1; got {args.batch_size}")
    if not 0 < args.accept <= 1:
        raise ToonvisionError(f"--accept must be in (0, 1], e.g. 0.95; got {args.accept}")
    model, info = load_model(args.model)
    rule = load_confidence(args.model)
    if rule is None:
        print(f"note: {args.model.name} has no confidence rule (no "
              f"{args.model.name}.confidence.npz): raw probabilities, never unknown",
              file=sys.stderr)
    else:
        rule = rule.with_accept(args.accept)
    with progress_bar(desc="classifying", unit="crop", leave=False) as bar:
        results = predict_paths(model, info, args.paths, args.task, args.batch_size,
                                progress=lambda done: bar.update(done - bar.n),
                                parts=seen_crops(info, args.model), confidence=rule)
    for message in results.skipped:
        print(f"skipped: {message}", file=sys.stderr)
    if args.format == "csv":
        sys.stdout.write(predictions_csv(results.predictions))
    else:
        print(predictions_table(results.predictions))
    counts = Counter(item.predicted for item in results.predictions)
    summary = ", ".join(f"{counts[name]} {name}"
                        for name in (*info.class_names, UNKNOWN) if counts[name])
    accuracy = results.accuracy()
    known = sum(item.correct is not None for item in results.predictions)
    line = f"{len(results.predictions)} predictions ({summary or 'none'})"
    if accuracy is not None:
        accepted = " accepted" if counts[UNKNOWN] else ""
        line += f"; {accuracy:.1%} correct of the {known}{accepted} with a known label"
    print(line, file=sys.stderr)
    trained = sum(item.part == "train" for item in results.predictions)
    if trained:
        unseen = ("validate", "test")
        held_out = results.accuracy(unseen)
        print(f"warning: {trained} of these crops were in the model's training part (column "
              "part): its answers on them say nothing about new crops"
              + ("" if held_out is None else
                 f"; {held_out:.1%} correct of the {results.count(unseen)} accepted crops it "
                 "never trained on (validate, test)"), file=sys.stderr)
    if args.draw is not None:
        for path in write_drawings(results.predictions, args.draw):
            print(f"drawn: {path}", file=sys.stderr)
    if args.save_voc is not None:
        for path in write_voc(results.predictions, args.save_voc):
            print(f"saved: {path}", file=sys.stderr)
    return 0 if results.predictions else 1

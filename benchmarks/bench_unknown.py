"""How well each novelty score tells a model's own crops from crops of other real sets.

Trains the article's `baseline` CNN briefly on one real set of ../shared/data, fits the
temperature and both rejection rules on its validation split (threshold: 95% accepted), and
scores its own test crops against the crops of the other sets: AUROC per score and the share
of each other set rejected at the threshold. The figures choose the default score
(docs/compare.md, "Unknown crops"); a plain reference (no calibration, max softmax) is the
`max_probability` row at T=1.

    python benchmarks/bench_unknown.py [--train cards] [--size 96 64] [--epochs 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VOC_SETS = {"cards": SHARED / "cards_voc", "fruit": SHARED / "fruit_voc",
            "toontown": SHARED / "toontown"}


def crops_of(name: str, work: Path, size: tuple[int, int]):
    """The task data of a real set at `size` (VOC sets extracted into `work` first)."""
    from toonvision.data_processing.dataset import from_crops, from_csv, load_task_data
    from toonvision.data_processing.extract import extract
    from toonvision.labels import make_task

    if name == "pokemon":
        dataset = from_csv(SHARED / "pokemon_types" / "pokemon.csv",
                           SHARED / "pokemon_types" / "images", id_column="Name",
                           label_column="Type1")
    else:
        data_dir = work / name
        for _ in extract(VOC_SETS[name], data_dir):
            pass
        dataset = from_crops(data_dir)
    return load_task_data(dataset, make_task("label", dataset.labels), size,
                          cache_dir=work / "cache")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default="cards", choices=("cards", "fruit", "pokemon"))
    parser.add_argument("--size", type=int, nargs=2, default=(96, 64))
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"needs the real sets in {SHARED}", file=sys.stderr)
        return 1

    from toonvision.data_processing.splits import stratified_split
    from toonvision.model_utils.statistics.calibration import (
        acceptance_threshold,
        apply_temperature,
        expected_calibration_error,
        fit_temperature,
        separation_auroc,
    )
    from toonvision.model_utils.statistics.novelty import (
        max_probability_scores,
        nearest_neighbour_scores,
        normalise_features,
    )
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.features import extract_features
    from toonvision.model_utils.training.models import predict_probabilities
    from toonvision.model_utils.training.trainer import Trainer

    size = tuple(args.size)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        own = crops_of(args.train, work, size)
        others = {name: crops_of(name, work, size)
                  for name in ("cards", "fruit", "pokemon", "toontown") if name != args.train}
        split = stratified_split(own.y, seed=0)
        trainer = Trainer(BUILTIN_CONFIGS["baseline"].replace(epochs=args.epochs),
                          len(own.class_names), size)
        start = time.perf_counter()
        result = trainer.run(own.images, own.y, split, seed=0)
        print(f"trained baseline on {args.train} ({len(own.y)} crops, "
              f"{len(own.class_names)} classes) at {size[0]}x{size[1]}, {args.epochs} epochs "
              f"in {time.perf_counter() - start:.0f} s: test accuracy "
              f"{result.test_metrics['accuracy']:.3f}")
        model = trainer.model
        parts = {part: own.images[np.asarray(split[part])] for part in split}
        y_val, y_test = own.y[split["validate"]], own.y[split["test"]]
        raw_val = predict_probabilities(model, parts["validate"])
        raw_test = predict_probabilities(model, parts["test"])
        temperature = fit_temperature(raw_val, y_val)
        print(f"temperature {temperature:.3f}; test ECE raw "
              f"{expected_calibration_error(raw_test, y_test):.3f}, calibrated "
              f"{expected_calibration_error(apply_temperature(raw_test, temperature), y_test):.3f}")
        reference = normalise_features(extract_features(model, parts["train"]))

        def scores(images: np.ndarray) -> dict[str, np.ndarray]:
            probabilities = predict_probabilities(model, images)
            return {
                "max_probability (T=1)": max_probability_scores(probabilities),
                "max_probability": max_probability_scores(
                    apply_temperature(probabilities, temperature)),
                "nearest_neighbour": nearest_neighbour_scores(
                    reference, extract_features(model, images)),
            }

        validation, test = scores(parts["validate"]), scores(parts["test"])
        print(f"{'score':24s} {'own test accepted':>18s} " + " ".join(
            f"{name + ' AUROC/rejected':>26s}" for name in others))
        for score in validation:
            threshold = acceptance_threshold(validation[score], 0.95)
            accepted = (test[score] >= threshold).mean()
            cells = []
            for data in others.values():
                other = scores(data.images)[score]
                cells.append(f"{separation_auroc(test[score], other):.3f} / "
                             f"{(other < threshold).mean():.3f}")
            print(f"{score:24s} {accepted:18.3f} " + " ".join(f"{cell:>26s}" for cell in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())

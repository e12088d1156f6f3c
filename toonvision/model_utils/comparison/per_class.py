"""Per-class precision, recall and F1 of a comparison's runs: `per_class.csv`.

Every run record keeps its test confusion matrix; `class_scores` turns one into per-class
scores, and `per_class_table` gathers them over the runs of each configuration: the median
with the 2.5-97.5% percentile range of the runs (see there why a range of the runs and not an
interval of the mean). Logs written before confusion matrices were kept give no table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from toonvision.model_utils.comparison.runlog import RunRecord

PER_CLASS_FILE = "per_class.csv"
PER_CLASS_SCORES: tuple[str, ...] = ("precision", "recall", "f1")
# Each score's median over the runs, then the 2.5th and 97.5th percentiles of the runs
# (`per_class_table` says why a percentile range and not a t interval of the mean).
PER_CLASS_RANGE: tuple[float, float] = (2.5, 97.5)
PER_CLASS_COLUMNS: tuple[str, ...] = (
    "config", "class", "runs",
    *(f"{score}{suffix}" for score in PER_CLASS_SCORES for suffix in ("", "_low", "_high")),
    "support")


def class_scores(confusion: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support of a confusion matrix (rows true classes).

    An undefined ratio (no prediction or no image of a class) is 0, as scikit-learn's
    `zero_division=0` has it.

    Example:
        >>> class_scores([[8, 2], [1, 9]])["recall"].tolist()
        [0.8, 0.9]
    """
    matrix = np.asarray(confusion, dtype=float)
    hits, predicted, actual = np.diag(matrix), matrix.sum(axis=0), matrix.sum(axis=1)

    def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                         where=denominator > 0)

    precision, recall = ratio(hits, predicted), ratio(hits, actual)
    return {"precision": precision, "recall": recall,
            "f1": ratio(2 * precision * recall, precision + recall), "support": actual}


def per_class_table(records: Sequence[RunRecord], config_names: Sequence[str],
                    class_names: Sequence[str] | None = None) -> Any:
    """Per-class precision, recall and F1 over runs, with their range, per configuration.

    Each score is the median over the runs (`score`) with the 2.5th and 97.5th percentiles of
    the runs (`score_low`, `score_high`; numpy's linear interpolation, so with few runs the
    range is close to the minimum and maximum). A percentile range of the runs, not a t
    interval of the mean: a class's precision or recall is bounded by 1 and often piled
    against it, so a symmetric normal interval would cross 1; and the runs re-split the same
    images, so an interval of the mean over them would look far surer than it is (the
    summary's corrected t interval treats accuracy; GUIDE). The range says instead what one
    training run gives for that class, 95 times in 100. Support is the median.

    Returns:
        A DataFrame with columns `PER_CLASS_COLUMNS`, or None when a configuration's records
        hold no test confusion matrix (logs written before they were kept).

    Example:
        >>> table = per_class_table(records, ["baseline"], ["cog", "toon"])  # doctest: +SKIP
        >>> table.loc[0, ["recall", "recall_low", "recall_high"]]            # doctest: +SKIP
    """
    import pandas as pd

    rows = []
    for name in config_names:
        matrices = [record.test_confusion for record in records
                    if record.config == name and record.test_confusion]
        if not matrices:
            return None
        scores = [class_scores(matrix) for matrix in matrices]
        for index in range(len(matrices[0])):
            label = class_names[index] if class_names else str(index)
            row = {"config": name, "class": label, "runs": len(scores), "support": float(
                np.median([score["support"][index] for score in scores]))}
            for key in PER_CLASS_SCORES:
                values = [score[key][index] for score in scores]
                low, high = np.percentile(values, PER_CLASS_RANGE)
                row.update({key: float(np.median(values)), f"{key}_low": float(low),
                            f"{key}_high": float(high)})
            rows.append(row)
    return pd.DataFrame(rows, columns=list(PER_CLASS_COLUMNS))


def majority_share(records: Sequence[RunRecord]) -> float | None:
    """The share of the most common class in the test split, median over the records.

    What a model that always answers the most common class scores: the accuracy a model must
    beat to have learned anything. Read from the test confusion matrices (row sums are the
    true classes' counts); None when no record has one.
    """
    shares = []
    for record in records:
        matrix = np.asarray(record.test_confusion, dtype=float)
        if matrix.ndim == 2 and matrix.sum() > 0:
            counts = matrix.sum(axis=1)
            shares.append(counts.max() / counts.sum())
    return float(np.median(shares)) if shares else None

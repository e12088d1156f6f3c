"""The statistics of a comparison's run log: the summary table and per-epoch history tables.

Everything here reads run records (`runlog.RunRecord`, the lines of `runs.jsonl`) and returns
numbers or a pandas DataFrame; nothing is written to disk. The figures drawn from the same
records are in `data_visualization.comparison_figures`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from toonvision.model_utils.runlog import RunRecord

SUMMARY_METRICS: tuple[str, ...] = ("accuracy", "loss", "macro_f1")
CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 10_000


def history_table(history: dict[str, list[float]]) -> Any:
    """A history as a DataFrame: `epoch` (from 1), loss, accuracy, val_loss, val_accuracy, then
    the other metrics in alphabetical order."""
    import pandas as pd

    first = [key for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in history]
    keys = first + sorted(set(history) - set(first))
    table = pd.DataFrame({key: pd.Series(history[key], dtype=float) for key in keys})
    table.insert(0, "epoch", np.arange(1, len(table) + 1))
    return table


# ----------------------------------------------------------------------------------------------
# Statistics


def metric_values(records: Sequence[RunRecord], config_name: str, metric: str
                  ) -> dict[int, float]:
    """`{run: value}` of one test metric of one configuration."""
    return {int(record.run): float(record.test_metrics[metric])
            for record in records
            if record.config == config_name and metric in record.test_metrics}


def describe(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, float]:
    """Median, quartiles, min, max, mean and a t confidence interval of the mean."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) > 1 and values.std() > 0:
        low, high = stats.t.interval(confidence, len(values) - 1, loc=mean,
                                     scale=stats.sem(values))
    elif len(values) > 1:
        low = high = mean
    else:
        low = high = float("nan")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"n": len(values), "median": float(median), "q1": float(q1), "q3": float(q3),
            "min": float(values.min()), "max": float(values.max()), "mean": mean,
            "ci_low": float(low), "ci_high": float(high)}


def bootstrap_mean_interval(values: Sequence[float], confidence: float = CONFIDENCE,
                            samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
                            ) -> tuple[float, float]:
    """A percentile bootstrap confidence interval of the mean of `values` (seeded; scipy).

    A single value has no interval: (nan, nan).
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    interval = stats.bootstrap((values,), np.mean, confidence_level=confidence,
                               n_resamples=samples, method="percentile",
                               rng=np.random.default_rng(seed)).confidence_interval
    return float(interval.low), float(interval.high)


def summarize(records: Sequence[RunRecord], config_names: Sequence[str],
              confidence: float = CONFIDENCE, samples: int = BOOTSTRAP_SAMPLES) -> Any:
    """The summary table of test metrics, per configuration and per pair of configurations.

    Per configuration and metric: n, median, quartiles (q1, q3), min, max, mean and a
    `confidence` t interval of the mean. Per pair `B - A` (A listed before B) and metric: the
    same figures of the per-run differences (paired on the run, hence on the split), with a
    percentile bootstrap interval of the mean difference, and how often B beat A.

    Returns:
        A pandas DataFrame with columns `metric, config, n, median, q1, q3, min, max, mean,
        ci_low, ci_high, ci_method, b_better` (`b_better`: fraction of runs where B did better
        than A, empty for single configurations).
    """
    import pandas as pd

    rows = []
    metrics = [metric for metric in SUMMARY_METRICS
               if all(metric_values(records, name, metric) for name in config_names)]
    for metric in metrics:
        values = {name: metric_values(records, name, metric) for name in config_names}
        for name in config_names:
            rows.append({"metric": metric, "config": name,
                         **describe(list(values[name].values()), confidence),
                         "ci_method": "t", "b_better": float("nan")})
        for index, first in enumerate(config_names):
            for second in config_names[index + 1:]:
                runs = sorted(set(values[first]) & set(values[second]))
                if not runs:
                    continue
                differences = np.array([values[second][run] - values[first][run]
                                        for run in runs])
                statistics = describe(differences, confidence)
                low, high = bootstrap_mean_interval(differences, confidence, samples)
                statistics.update(ci_low=low, ci_high=high)
                better = differences < 0 if metric == "loss" else differences > 0
                rows.append({"metric": metric, "config": f"{second} - {first}", **statistics,
                             "ci_method": "paired bootstrap",
                             "b_better": float(better.mean())})
    return pd.DataFrame(rows, columns=["metric", "config", "n", "median", "q1", "q3", "min",
                                       "max", "mean", "ci_low", "ci_high", "ci_method",
                                       "b_better"])


def format_summary(summary: Any) -> str:
    """The summary table as aligned text for a terminal."""
    shown = summary.drop(columns=["ci_method"]).rename(columns={"b_better": "B better"})
    return shown.to_string(index=False, float_format=lambda value: f"{value:.4f}",
                           na_rep="")

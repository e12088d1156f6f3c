"""The statistics of a comparison's run log: the summary with its verdicts, per-class metrics.

Everything here reads run records (`runlog.RunRecord`, the lines of `runs.jsonl`, or
`runlog.evaluation_records` of the article's results) and returns numbers, text or pandas
DataFrames; only `write_summary_files` writes files (summary.csv,
per_class.csv). `summarize` gives the `Summary`: the table of
`summary.csv` (per configuration and per pair B - A, on test accuracy, loss, macro F1, ECE
and Brier score, with the corrected and the re-split intervals in named columns, see
`verdict.Verdict.row`), one verdict sentence per pair, per-class precision, recall and F1
(`per_class`), and the optimism of the kept best models. `stopping_decision` is the look of
`compare --until-decided`. The figures drawn from the same records are in
`data_visualization.comparison_figures`.

Example:
    >>> summary = summarize(records, ["baseline", "optimized"])     # doctest: +SKIP
    >>> print(format_summary(summary))                             # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision import MissingFileError, ToonvisionError, defaults
from toonvision.fileio import write_text_atomic
from toonvision.model_utils.comparison.per_class import (
    PER_CLASS_COLUMNS,
    PER_CLASS_FILE,
    class_scores,
    majority_share,
    per_class_table,
)
from toonvision.model_utils.comparison.runlog import (
    LOG_FILE,
    complete_runs,
    evaluation_records,
    read_log,
    select_best,
    split_sizes,
)
from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE, ComparisonSettings

if TYPE_CHECKING:
    from toonvision.model_utils.comparison.runlog import RunRecord
    from toonvision.model_utils.statistics.paired import Optimism
    from toonvision.model_utils.statistics.sequential import Decision
    from toonvision.model_utils.statistics.verdict import Verdict

SUMMARY_FILE = "summary.csv"
# Brier score and ECE (`calibration.calibration_scores`) are in the records written since
# issue 23; a log without them in every run is summarised on the others.
SUMMARY_METRICS: tuple[str, ...] = ("accuracy", "loss", "macro_f1", "ece", "brier")
LOWER_IS_BETTER: frozenset[str] = frozenset({"loss", "ece", "brier"})
PRIMARY_METRIC = "accuracy"  # the metric of the verdict sentences and of the stopping rule
CI_METHOD = "corrected t (Nadeau-Bengio)"
SUMMARY_COLUMNS: tuple[str, ...] = (
    "metric", "config", "n", "median", "q1", "q3", "min", "max", "mean", "sd",
    "ci_low", "ci_high", "ci_method", "resplit_ci_low", "resplit_ci_high",
    "p_better", "p_better_low", "p_better_high", "wins", "ties", "losses",
    "effect_size", "detectable", "floor", "under_floor", "state", "decision_low",
    "decision_high", "reason", "verdict", "kept", "expected_best", "optimism",
    "n_test", "n_train",
)
MIN_RUNS_FOR_INTERVALS = 2
ONE_RUN_NOTE = ("intervals and verdicts need at least two runs: with one run this summary "
                "gives its metrics only (run more with --resume --runs N)")


@dataclass
class Summary:
    """What a comparison's runs show (see `summarize`).

    Attributes:
        table: the rows of `summary.csv`, columns `SUMMARY_COLUMNS`.
        verdicts: the verdict of every pair `(A, B)` and metric, keyed `(A, B, metric)`.
        sentences: one verdict sentence per pair, on test accuracy, in table order.
        per_class: per-class precision, recall and F1 per configuration, each the median
            over the runs with the 2.5-97.5% percentile range of the runs, and the median
            support (`PER_CLASS_COLUMNS`), or None when the records hold no confusion matrices.
        kept: per configuration, the kept best model's test accuracy against what one run and
            the best of N runs are expected to give.
        kept_runs: the run of each kept best model.
        select: the rule that chose the kept models.
        n_test, n_train: the split sizes the intervals were corrected with.
        note: a sentence on what the summary cannot say (`ONE_RUN_NOTE` for fewer than two
            runs per configuration, whose interval and verdict columns are empty), or "".
        majority: the share of the test split's most common class, median over the runs
            (`majority_share`): the accuracy of a model that always answers that class; None
            when the records hold no confusion matrices.
    """

    table: Any
    verdicts: dict[tuple[str, str, str], Verdict]
    sentences: list[str]
    per_class: Any
    kept: dict[str, Optimism]
    kept_runs: dict[str, int]
    select: str
    n_test: int
    n_train: int
    note: str = ""
    majority: float | None = None


@dataclass
class PairedRuns:
    """Paired runs to summarise, read from a comparison folder or the article's results.

    Attributes:
        records: the complete runs' records.
        config_names: the configurations, in comparison order.
        options: the keyword arguments of `summarize` that the source decides.
        settings: the comparison's settings (None for the article's results).
    """

    records: list[RunRecord]
    config_names: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    settings: ComparisonSettings | None = None


def load_runs(path: str | os.PathLike,
              sizes: tuple[int, int, int] | None = None) -> PairedRuns:
    """Reads the runs of a comparison folder, or of the article's `evaluations_all.json`.

    Args:
        path: a comparison's folder (with `comparison.json` and `runs.jsonl`), or a file
            laid out as `[[config, [[test_loss, test_accuracy], ...]], ...]`, runs paired by
            index (`verdict.read_evaluations`).
        sizes: training, validation and test images per run; needed for such a file (the
            article's: 410, 137, 137), and for a folder they replace the records' own.

    Raises:
        MissingFileError: if `path` does not exist.
        ToonvisionError: if a folder is not a comparison's, or a file comes without `sizes`.
    """
    from toonvision.model_utils.statistics.verdict import read_evaluations

    path = Path(path)
    if path.is_dir():
        if not (path / SETTINGS_FILE).is_file():
            raise ToonvisionError(f"{path} is not a comparison folder (no {SETTINGS_FILE})")
        settings = ComparisonSettings.from_json((path / SETTINGS_FILE).read_text("utf-8"))
        records = complete_runs(read_log(path / LOG_FILE)[0], settings.config_names)
        options = summary_options(settings)
        if sizes is not None:
            options["sizes"] = (sizes[2], sizes[0])
        return PairedRuns(records, settings.config_names, options, settings)
    if not path.is_file():
        raise MissingFileError(f"{path} not found: give a comparison folder or an "
                               "evaluations file")
    if sizes is None:
        raise ToonvisionError(f"{path} holds no split sizes, which the corrected intervals "
                              "need: give the training, validation and test images per run "
                              "(the article's: 410 137 137)")
    evaluations = read_evaluations(path)
    split = dict(zip(("train", "validate", "test"), sizes, strict=True))
    return PairedRuns(evaluation_records(evaluations, split), list(evaluations),
                      {"select": "test"})


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
# Per-run values


def metric_values(records: Sequence[RunRecord], config_name: str, metric: str
                  ) -> dict[int, float]:
    """`{run: value}` of one test metric of one configuration.

    Binary runs log precision and recall, not macro F1: for them `macro_f1` comes from the
    run's test confusion matrix when the record holds one.
    """
    values = {}
    for record in records:
        if record.config != config_name:
            continue
        value = record.test_metrics.get(metric)
        if value is None and metric == "macro_f1" and record.test_confusion:
            value = class_scores(record.test_confusion)["f1"].mean()
        if value is not None:
            values[int(record.run)] = float(value)
    return values


def describe(values: Sequence[float]) -> dict[str, float]:
    """n, median, quartiles, min, max, mean and standard deviation of `values`."""
    values = np.asarray(values, dtype=float)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"n": len(values), "median": float(median), "q1": float(q1), "q3": float(q3),
            "min": float(values.min()), "max": float(values.max()),
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan")}


# ----------------------------------------------------------------------------------------------
# The summary


def summary_options(settings: ComparisonSettings) -> dict[str, Any]:
    """The keyword arguments of `summarize` that a comparison's settings decide."""
    options: dict[str, Any] = {"select": settings.select, "class_names": settings.class_names}
    if settings.until_decided:
        options.update(look_every=settings.look_every, max_runs=settings.runs,
                       equivalence=settings.equivalence)
    return options


def summarize(records: Sequence[RunRecord], config_names: Sequence[str], *,
              select: str = defaults.SELECT, sizes: tuple[int, int] | None = None,
              look_every: int | None = None, max_runs: int | None = None,
              equivalence: float = defaults.EQUIVALENCE,
              class_names: Sequence[str] | None = None) -> Summary:
    """Everything the runs show, per configuration and per pair B - A (A listed before B).

    Per configuration and metric: the spread of its runs, the mean with its corrected and
    re-split intervals, and the kept best model against the expected best of N. Per pair and
    metric: `verdict.paired_verdict` of the paired runs, and its sentence.

    Args:
        records: the run records (complete runs).
        config_names: the configurations, in comparison order.
        select: the rule that chose the kept best models (`runlog.SELECTION_RULES`).
        sizes: `(n_test, n_train)` (default: from the records' split sizes).
        look_every, max_runs: the plan of a comparison run until decided (default: one look
            at the runs at hand).
        equivalence: the practical-difference margin in test accuracy (0: none).
        class_names: names of the confusion matrices' classes (default: their indices).

    With a single run per configuration (`compare --runs 1`, or a comparison stopped after
    one run) the summary holds each run's metrics, the paired differences of that run, and
    `Summary.note` says that intervals and verdicts need at least two runs: their columns are
    empty (NaN) and `verdicts` is empty.

    Raises:
        ToonvisionError: if a configuration has no run, or no split sizes are known.
    """
    import pandas as pd

    from toonvision.model_utils.statistics.paired import paired_difference, selection_optimism
    from toonvision.model_utils.statistics.verdict import paired_verdict, verdict_sentence

    n_test, n_train = sizes or split_sizes(records)
    best = select_best(records, select)
    rows, verdicts, sentences, kept = [], {}, [], {}
    few_runs = False
    logged = {name: {int(record.run) for record in records if record.config == name}
              for name in config_names}
    # A metric some runs lack (`ece` in a log begun before it was recorded) is left out.
    for metric in [metric for metric in SUMMARY_METRICS
                   if all(logged[name]
                          and set(metric_values(records, name, metric)) == logged[name]
                          for name in config_names)]:
        higher_is_better = metric not in LOWER_IS_BETTER
        values = {name: metric_values(records, name, metric) for name in config_names}
        for name in config_names:
            runs = np.array(list(values[name].values()))
            if len(runs) < 1:
                raise ToonvisionError(f"{name!r} has no run of {metric}; a summary needs one")
            optimism = selection_optimism(runs, values[name][best[name].run], higher_is_better)
            if metric == PRIMARY_METRIC:
                kept[name] = optimism
            row = {"metric": metric, "config": name, **describe(runs), "ci_method": CI_METHOD,
                   "kept": optimism.kept, "expected_best": optimism.expected_best,
                   "optimism": optimism.optimism, "n_test": n_test, "n_train": n_train}
            if len(runs) >= MIN_RUNS_FOR_INTERVALS:
                mean = paired_difference(np.zeros_like(runs), runs, n_test, n_train)  # B - 0
                row.update(ci_low=mean.corrected.low, ci_high=mean.corrected.high,
                           resplit_ci_low=mean.resplit.low, resplit_ci_high=mean.resplit.high)
            else:
                few_runs = True
            rows.append(row)
        for index, first in enumerate(config_names):
            for second in config_names[index + 1:]:
                common = sorted(set(values[first]) & set(values[second]))
                a = np.array([values[first][run] for run in common])
                b = np.array([values[second][run] for run in common])
                if len(common) < MIN_RUNS_FOR_INTERVALS:
                    few_runs = True
                    sentence = _one_run_sentence(b - a, first, second, metric)
                    if metric == PRIMARY_METRIC:
                        sentences.append(sentence)
                    rows.append({"metric": metric, "config": f"{second} - {first}",
                                 **describe(b - a), "ci_method": CI_METHOD,
                                 "verdict": sentence, "n_test": n_test, "n_train": n_train})
                    continue
                verdict = paired_verdict(
                    a, b, n_test, n_train, higher_is_better=higher_is_better,
                    equivalence=equivalence if metric == PRIMARY_METRIC else 0.0,
                    look_every=look_every, max_runs=max_runs)
                sentence = verdict_sentence(verdict, first, second, metric)
                verdicts[(first, second, metric)] = verdict
                if metric == PRIMARY_METRIC:
                    sentences.append(sentence)
                row = verdict.row()
                row.pop("runs")
                rows.append({"metric": metric, "config": f"{second} - {first}",
                             **describe(b - a), **row, "ci_method": CI_METHOD,
                             "verdict": sentence, "n_test": n_test, "n_train": n_train})
    return Summary(pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)), verdicts, sentences,
                   per_class_table(records, config_names, class_names), kept,
                   {name: int(record.run) for name, record in best.items()}, select, n_test,
                   n_train, ONE_RUN_NOTE if few_runs else "", majority_share(records))


def majority_line(summary: Summary) -> str:
    """How far each configuration's median test accuracy is above the majority share."""
    table = summary.table
    medians = table[(table.metric == PRIMARY_METRIC)
                    & ~table.config.str.contains(" - ", regex=False)]
    above = ", ".join(f"{row.config} {100 * (row.median - summary.majority):+.1f}"
                      for row in medians.itertuples())
    return (f"majority class: {100 * summary.majority:.1f}% of the test split (median over "
            "runs), what always answering the most common class scores; median test "
            f"accuracy against it, in points: {above}")


def _one_run_sentence(differences: np.ndarray, first: str, second: str, metric: str) -> str:
    """The sentence of a pair with a single paired run: its difference, and no verdict."""
    difference = float(np.mean(differences))
    shown = (f"{difference:+.4f} {metric}" if metric in LOWER_IS_BETTER
             else f"{difference * 100:+.1f} {metric} points")
    return (f"{second} vs {first}: {shown} in "
            f"{len(differences)} run; no interval or verdict (they need at least two runs).")


def stopping_decision(records: Sequence[RunRecord], settings: ComparisonSettings) -> Decision:
    """The look of a comparison run until decided: test accuracy, the second configuration
    against the first, on the settings' plan (`sequential.sequential_decision`)."""
    from toonvision.model_utils.statistics.sequential import sequential_decision

    first, second = settings.config_names[:2]
    a = metric_values(records, first, PRIMARY_METRIC)
    b = metric_values(records, second, PRIMARY_METRIC)
    differences = [b[run] - a[run] for run in sorted(set(a) & set(b))]
    n_test, n_train = split_sizes(records)
    return sequential_decision(differences, n_test, n_train, settings.look_every,
                               settings.runs, settings.equivalence)


# ----------------------------------------------------------------------------------------------
# As text


_CONFIG_COLUMNS = ("metric", "config", "n", "median", "q1", "q3", "mean", "ci_low", "ci_high",
                   "resplit_ci_low", "resplit_ci_high")
_PAIR_COLUMNS = ("metric", "config", "mean", "ci_low", "ci_high", "resplit_ci_low",
                 "resplit_ci_high", "p_better", "p_better_low", "p_better_high",
                 "effect_size", "detectable", "floor", "state")


def format_summary(summary: Summary) -> str:
    """The summary for a terminal: the verdict sentences, then the tables and the kept models."""
    table = summary.table
    pairs = table[table.config.str.contains(" - ", regex=False)]
    lines = [*summary.sentences, *([summary.note] if summary.note else [])]
    if summary.majority is not None:
        lines.append(majority_line(summary))
    for (first, second, metric), verdict in summary.verdicts.items():
        if metric == PRIMARY_METRIC and verdict.resolution.under_floor:
            lines.append(_floor_note(verdict, first, second, summary))
    lines += ["", f"per configuration: test metrics over the runs; ci: {CI_METHOD} for "
              f"{summary.n_test} test and {summary.n_train} training images, resplit_ci: the "
              "spread over re-splits of this data set only",
              _text(table[~table.index.isin(pairs.index)], _CONFIG_COLUMNS)]
    if len(pairs):
        lines += ["", "paired differences B - A (p_better: P(B beats A in a run), ties half)",
                  _text(pairs.rename(columns={"config": "pair"}),
                        ("pair" if column == "config" else column for column in _PAIR_COLUMNS))]
    lines += ["", *kept_lines(summary)]
    if summary.per_class is not None:
        lines += ["", "per class: median over runs, _low/_high the 2.5-97.5% percentiles "
                  "of the runs",
                  _text(summary.per_class, PER_CLASS_COLUMNS)]
    return "\n".join(lines)


def kept_lines(summary: Summary) -> list[str]:
    """One line per kept best model: its test accuracy beside the optimism of picking it."""
    lines = []
    for name, optimism in summary.kept.items():
        head = (f"kept best {name} (run {summary.kept_runs[name]}, --select {summary.select}): "
                f"test accuracy {optimism.kept:.4f}; one run is expected to give "
                f"{optimism.expected_single:.4f}")
        if optimism.runs < MIN_RUNS_FOR_INTERVALS:
            lines.append(f"kept best {name} (run {summary.kept_runs[name]}): test accuracy "
                         f"{optimism.kept:.4f}, its only run")
        elif summary.select == "test":
            lines.append(f"{head}, the best of {optimism.runs} runs {optimism.expected_best:.4f}"
                         f": {optimism.optimism * 100:+.1f} points are the luck of picking the "
                         "best on the test split; --select val_loss gives the honest estimate")
        else:
            lines.append(f"{head}; chosen on validation loss, its test accuracy is an honest "
                         "estimate")
    return lines


def _floor_note(verdict: Verdict, first: str, second: str, summary: Summary) -> str:
    import textwrap

    floor = verdict.resolution.floor * 100
    return textwrap.fill(
        f"{second} vs {first}: the effect {verdict.difference.mean * 100:+.1f} points is under "
        f"the floor of {floor:.1f} points that no number of runs can pass with "
        f"{summary.n_test} test and {summary.n_train} training images: more runs will not "
        "decide it; more labelled data per class (a larger test set, not a larger test share) "
        "would.", width=100, initial_indent="  ", subsequent_indent="    ")


def _text(table: Any, columns: Iterable[str]) -> str:
    return table[list(columns)].to_string(
        index=False, na_rep="", float_format=lambda value: f"{value:.4f}")


def write_summary_files(out_dir: str | os.PathLike, summary: Summary) -> list[Path]:
    """Writes `summary.csv` and, when there are per-class metrics, `per_class.csv`."""
    paths = [Path(out_dir) / SUMMARY_FILE]
    write_text_atomic(paths[0], summary.table.to_csv(index=False))
    if summary.per_class is not None:
        paths.append(Path(out_dir) / PER_CLASS_FILE)
        write_text_atomic(paths[1], summary.per_class.to_csv(index=False))
    return paths

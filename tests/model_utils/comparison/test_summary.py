"""Tests of comparison.summary: statistics of a run log equal to hand computations.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    record,
)

from toonvision.model_utils.comparison.runlog import (
    select_best,
)
from toonvision.model_utils.comparison.summary import (
    SUMMARY_COLUMNS,
    class_scores,
    describe,
    format_summary,
    summarize,
)
from toonvision.model_utils.statistics.paired import paired_difference, selection_optimism
from toonvision.model_utils.statistics.verdict import paired_verdict, verdict_sentence

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_describe_on_known_numbers():
    statistics = describe([1, 2, 3, 4, 5])
    assert statistics["n"] == 5
    assert (statistics["median"], statistics["q1"], statistics["q3"]) == (3, 2, 4)
    assert (statistics["min"], statistics["max"], statistics["mean"]) == (1, 5, 3)
    assert statistics["sd"] == pytest.approx(np.sqrt(2.5))


def test_class_scores_of_a_hand_checked_confusion_matrix():
    scores = class_scores([[8, 2], [1, 9]])
    assert scores["precision"].tolist() == pytest.approx([8 / 9, 9 / 11])
    assert scores["recall"].tolist() == pytest.approx([0.8, 0.9])
    assert scores["f1"][0] == pytest.approx(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8))
    assert scores["support"].tolist() == [10, 10]
    assert class_scores([[0, 3], [0, 3]])["precision"].tolist() == [0.0, 0.5]  # 0, not nan


def test_summary_rows_are_the_verdict_functions_of_the_paired_runs():
    accuracies_a = [0.90, 0.92, 0.88, 0.91, 0.93]
    records = [record("a", run, 0.3, accuracy) for run, accuracy in enumerate(accuracies_a)]
    records += [record("b", run, 0.2 + 0.01 * run, accuracy + 0.01 * (run % 3))
                for run, accuracy in enumerate(accuracies_a)]
    summary = summarize(records, ["a", "b"])
    table = summary.table
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    rows = {(row.metric, row.config): row._asdict() for row in table.itertuples(index=False)}
    assert set(rows) == {(metric, config) for metric in ("accuracy", "loss")
                         for config in ("a", "b", "b - a")}   # no macro F1 logged
    a = np.array(accuracies_a)
    b = np.array([item.test_metrics["accuracy"] for item in records[5:]])
    expected = paired_verdict(a, b, n_test=6, n_train=18)
    row = rows[("accuracy", "b - a")]
    for key, value in expected.row().items():
        if key != "runs":
            assert row[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert row["verdict"] == verdict_sentence(expected, "a", "b") == summary.sentences[0]
    assert (row["n_test"], row["n_train"], row["n"]) == (6, 18, 5)
    assert row["ci_low"] < row["resplit_ci_low"] < row["resplit_ci_high"] < row["ci_high"]
    loss = paired_verdict([0.3] * 5, [0.2, 0.21, 0.22, 0.23, 0.24], 6, 18,
                          higher_is_better=False)
    assert rows[("loss", "b - a")]["p_better"] == loss.wins.probability == 1.0  # lower wins
    mean = paired_difference(np.zeros(5), b, 6, 18)
    assert (rows[("accuracy", "b")]["ci_low"], rows[("accuracy", "b")]["resplit_ci_high"]) == \
        pytest.approx((mean.corrected.low, mean.resplit.high))
    kept = select_best(records)["b"]   # the article's rule: lower loss AND higher accuracy
    optimism = selection_optimism(b, kept.test_metrics["accuracy"])
    assert rows[("accuracy", "b")]["kept"] == optimism.kept
    assert rows[("accuracy", "b")]["optimism"] == pytest.approx(optimism.optimism)
    assert summary.kept["b"] == optimism and summary.per_class is None



def test_one_run_gives_its_metrics_and_says_intervals_need_two():
    from toonvision.model_utils.comparison.summary import ONE_RUN_NOTE, format_summary

    records = [record("baseline", 0, 0.40, 0.80), record("optimized", 0, 0.30, 0.875)]
    summary = summarize(records, ["baseline", "optimized"])
    table = summary.table.set_index(["metric", "config"])
    assert table.loc[("accuracy", "baseline"), "mean"] == 0.80
    assert table.loc[("accuracy", "optimized - baseline"), "mean"] == pytest.approx(0.075)
    assert table.loc[("loss", "optimized - baseline"), "mean"] == pytest.approx(-0.10)
    assert table[["ci_low", "ci_high", "resplit_ci_low", "p_better", "effect_size"]
                 ].isna().all().all()
    assert summary.verdicts == {} and summary.note == ONE_RUN_NOTE
    assert summary.sentences == ["optimized vs baseline: +7.5 accuracy points in 1 run; no "
                                 "interval or verdict (they need at least two runs)."]
    text = format_summary(summary)
    assert ONE_RUN_NOTE in text
    assert "kept best optimized (run 0): test accuracy 0.8750, its only run" in text


def test_a_log_resumed_across_versions_is_summarised_without_the_metrics_old_runs_lack():
    """Runs logged before issue 23 have no `ece`/`brier`; a resumed comparison adds runs that
    have them: the summary leaves those two out rather than fail on the old best run."""
    from types import SimpleNamespace

    from toonvision.model_utils.comparison.summary import summarize

    def record(config: str, run: int, accuracy: float, new: bool):
        extra = {"ece": 0.1, "brier": 0.2} if new else {}
        return SimpleNamespace(config=config, run=run, seed=run, test_confusion=[],
                               split_sizes={"train": 60, "validate": 20, "test": 20},
                               validation_metrics={"loss": 0.5, "accuracy": accuracy},
                               test_metrics={"loss": 0.5, "accuracy": accuracy, **extra})

    records = [record(config, run, 0.8 + 0.01 * run + (0.05 if config == "b" else 0),
                      new=run == 2) for run in range(3) for config in ("a", "b")]
    table = summarize(records, ["a", "b"]).table
    assert set(table.metric) == {"accuracy", "loss"}
    for item in records:
        item.test_metrics.update(ece=0.1, brier=0.2)
    assert {"ece", "brier"} <= set(summarize(records, ["a", "b"]).table.metric)


def test_the_majority_share_is_the_test_splits_most_common_class_median_over_runs():
    # Test splits of 10 crops: 7, 6 and 8 of the most common class (rows: true classes).
    confusions = [[[6, 1], [2, 1]], [[1, 3], [0, 6]], [[8, 0], [1, 1]]]
    records = []
    for run, confusion in enumerate(confusions):
        for config, accuracy in (("a", 0.8), ("b", 0.6 + 0.01 * run)):
            item = record(config, run, 0.3, accuracy)
            item.test_confusion = confusion
            records.append(item)
    summary = summarize(records, ["a", "b"])
    assert summary.majority == pytest.approx(0.7)          # median of 0.7, 0.6, 0.8
    line = next(line for line in format_summary(summary).splitlines()
                if line.startswith("majority class"))
    # Median accuracies 0.80 and 0.61 against 0.70: +10.0 and -9.0 points.
    assert "70.0% of the test split" in line and "a +10.0, b -9.0" in line
    # Records without confusion matrices (the article's results): no majority, no line.
    plain = summarize([record("a", run, 0.3, 0.8) for run in range(3)]
                      + [record("b", run, 0.3, 0.7) for run in range(3)], ["a", "b"])
    assert plain.majority is None
    assert "majority class" not in format_summary(plain)

"""Tests of comparison.per_class: per-class scores over runs with their range (per_class.csv)."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import record

from toonvision.model_utils.comparison.per_class import PER_CLASS_COLUMNS, per_class_table


def with_confusion(config: str, run: int, confusion: list[list[int]]):
    return dataclasses.replace(record(config, run, 0.5, 0.8), test_confusion=confusion)


def test_each_score_is_the_median_of_the_runs_with_their_2_5_to_97_5_percentiles():
    # Toon recall 2/4, 3/4, 4/4 over three runs; cog precision 2/2, 2/3, 2/4 with it.
    records = [with_confusion("a", 0, [[2, 0], [2, 2]]),
               with_confusion("a", 1, [[2, 0], [1, 3]]),
               with_confusion("a", 2, [[2, 0], [0, 4]])]
    table = per_class_table(records, ["a"], ["cog", "toon"])
    assert list(table.columns) == list(PER_CLASS_COLUMNS)
    toon = table.set_index("class").loc["toon"]
    # By hand: sorted values 0.5, 0.75, 1.0; numpy's linear percentile p sits at position
    # p/100 * (n - 1) = 0.05 and 1.95 of them.
    assert toon.recall == pytest.approx(0.75)
    assert toon.recall_low == pytest.approx(0.5 + 0.05 * 0.25)
    assert toon.recall_high == pytest.approx(0.75 + 0.95 * 0.25)
    cog = table.set_index("class").loc["cog"]
    precisions = sorted([2 / 4, 2 / 3, 2 / 2])
    assert cog.precision == pytest.approx(precisions[1])
    assert cog.precision_low == pytest.approx(precisions[0] + 0.05 * (precisions[1]
                                                                      - precisions[0]))
    assert cog.precision_high == pytest.approx(precisions[1] + 0.95 * (precisions[2]
                                                                       - precisions[1]))
    f1 = sorted(2 * 1.0 * recall / (1.0 + recall) for recall in (0.5, 0.75, 1.0))
    assert (toon.f1, toon.f1_low) == pytest.approx((f1[1], f1[0] + 0.05 * (f1[1] - f1[0])))
    assert cog.recall == cog.recall_low == cog.recall_high == 1.0   # no spread, no range
    assert toon.support == 4 and toon.runs == 3


def test_one_run_has_a_range_of_one_value_and_old_logs_give_no_table():
    table = per_class_table([with_confusion("a", 0, [[3, 1], [0, 4]])], ["a"])
    assert list(table["class"]) == ["0", "1"]
    assert table.precision_low[1] == table.precision[1] == table.precision_high[1] == 0.8
    assert per_class_table([record("a", 0, 0.5, 0.8)], ["a"]) is None   # no confusion kept

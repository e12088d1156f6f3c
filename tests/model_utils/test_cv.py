"""Tests of cross-validation in comparisons (`compare --cv K`): the folds, the run loop and the
corrected statistics over repeated folds.

The comparison is driven by the fake trainer of conftest.py (no Keras), which here also
records the split it was given, so that the folds can be checked image by image.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CONFIGS, TASK_DATA, FakeTrainer, comparable, fake_settings
from scipy import stats

from toonvision import ToonvisionError
from toonvision.data_processing.folds import cross_validation_split
from toonvision.model_utils.comparison.run_splits import split_for_run
from toonvision.model_utils.comparison.runlog import LOG_FILE, RunRecord, read_log
from toonvision.model_utils.comparison.runner import Comparison
from toonvision.model_utils.comparison.settings import plan_comparison
from toonvision.model_utils.comparison.stored_settings import ComparisonSettings, ResumeError
from toonvision.model_utils.comparison.summary import summarize

FOLDS = 5


class RecordingTrainer(FakeTrainer):
    """A fake trainer that remembers the test indices of every run it trained."""

    splits: list[dict[str, np.ndarray]] = []

    def run(self, images, y, split, seed, epoch_callback=None):
        RecordingTrainer.splits.append({name: indices.copy() for name, indices in split.items()})
        return super().run(images, y, split, seed, epoch_callback)


def run_cv(out_dir, runs=2, resume=False, trainer=FakeTrainer, **changes) -> Comparison:
    comparison = Comparison.start(out_dir, fake_settings(runs, cv=FOLDS, **changes),
                                  resume=resume)
    for _ in comparison.run(TASK_DATA, CONFIGS, trainer_factory=trainer):
        pass
    return comparison


def test_every_item_is_tested_once_per_repetition_in_stratified_folds():
    y = np.array([0] * 23 + [1] * 12 + [2] * 7)
    for seed in (0, 1):
        splits = [cross_validation_split(y, FOLDS, fold, seed=seed) for fold in range(FOLDS)]
        tested = np.concatenate([split["test"] for split in splits])
        assert sorted(tested) == list(range(len(y)))
        for split in splits:
            parts = [split["train"], split["validate"], split["test"]]
            assert sorted(np.concatenate(parts)) == list(range(len(y)))   # disjoint, complete
            counts = np.bincount(y[split["test"]], minlength=3)
            assert np.all(np.abs(counts - np.bincount(y) / FOLDS) < 1)    # stratified
            rest = len(split["train"]) + len(split["validate"])
            assert len(split["validate"]) == pytest.approx(rest / 4, abs=3)  # 20 of 80
            assert set(y[split["validate"]]) == {0, 1, 2}
    first = cross_validation_split(y, FOLDS, 0, seed=0)["test"]
    assert not np.array_equal(first, cross_validation_split(y, FOLDS, 0, seed=1)["test"])


def test_bad_folds_are_refused():
    y = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ToonvisionError, match="smallest class has 3"):
        cross_validation_split(y, 4, 0)
    with pytest.raises(ToonvisionError, match="at least 2 folds"):
        cross_validation_split(y, 1, 0)
    with pytest.raises(ToonvisionError, match="fold must be"):
        cross_validation_split(y, 3, 3)
    with pytest.raises(ToonvisionError, match="cv must be"):
        plan_comparison({"cv": 1})
    with pytest.raises(ToonvisionError, match="until_decided"):
        plan_comparison({"cv": 5, "until_decided": True})
    assert plan_comparison({"cv": 5, "runs": 3}).cv == 5


def test_split_for_run_without_cv_is_the_fresh_split_of_before():
    settings = fake_settings(3)
    split_seed, split, folds = split_for_run(settings, TASK_DATA.y, 2)
    assert split_seed == 2 and folds == {}
    assert {name: len(indices) for name, indices in split.items()} == {
        "train": 18, "validate": 6, "test": 6}


def test_cv_comparison_tests_every_crop_once_per_repetition_and_names_folds(tmp_path):
    RecordingTrainer.splits = []
    comparison = run_cv(tmp_path / "out", runs=2, trainer=RecordingTrainer)
    records, _ = read_log(tmp_path / "out" / LOG_FILE)
    assert comparison.settings.run_count == 10 and len(records) == 20
    assert [(item.run, item.repetition, item.fold) for item in records[::2]] == [
        (run, run // FOLDS, run % FOLDS) for run in range(10)]
    assert [item.split_seed for item in records[::2]] == [0] * 5 + [1] * 5
    assert len({item.seed for item in records[::2]}) == 10      # fresh weights per fold
    test_sets = [split["test"] for split in RecordingTrainer.splits[::2]]  # one per run
    for repetition in range(2):
        tested = np.concatenate(test_sets[repetition * FOLDS:(repetition + 1) * FOLDS])
        assert sorted(tested) == list(range(len(TASK_DATA.y)))
    for split in RecordingTrainer.splits:
        assert list(np.bincount(TASK_DATA.y[split["test"]])) == [3, 3]
    for first, second in zip(RecordingTrainer.splits[::2], RecordingTrainer.splits[1::2],
                             strict=True):
        assert np.array_equal(first["test"], second["test"])       # paired: the same fold
    line = json.loads((tmp_path / "out" / LOG_FILE).read_text().splitlines()[0])
    assert line["repetition"] == 0 and line["fold"] == 0
    assert json.loads((tmp_path / "out" / "comparison.json").read_text())["cv"] == FOLDS


def test_cv_comparison_killed_and_resumed_gives_the_same_log(tmp_path):
    reference, _ = read_log(run_cv(tmp_path / "whole", runs=2).log_path)
    calls = {"count": 0}

    class Crash(Exception):
        pass

    class CrashingTrainer(FakeTrainer):
        def run(self, *args, **kwargs):
            calls["count"] += 1
            if calls["count"] == 8:    # in the middle of run 3 (4 calls per 2 runs)
                raise Crash()
            return super().run(*args, **kwargs)

    with pytest.raises(Crash):
        run_cv(tmp_path / "killed", runs=2, trainer=CrashingTrainer)
    assert len(read_log(tmp_path / "killed" / LOG_FILE)[0]) == 6
    run_cv(tmp_path / "killed", runs=1, resume=True)   # fewer repetitions than done: fine
    resumed = run_cv(tmp_path / "killed", runs=2, resume=True)
    assert comparable(resumed.records) == comparable(reference)
    assert [(item.repetition, item.fold) for item in resumed.records] == [
        (item.repetition, item.fold) for item in reference]
    with pytest.raises(ResumeError, match="cv"):
        Comparison.start(tmp_path / "killed", fake_settings(2, cv=3), resume=True)


def test_logs_and_settings_written_before_cv_still_read():
    line = {"config": "a", "run": 0, "seed": 0, "split_seed": 0, "history": {},
            "validation_metrics": {}, "test_metrics": {"accuracy": 1.0}, "epochs_run": 1,
            "setup_seconds": 0.0, "train_seconds": 0.0}
    record = RunRecord.from_dict(line)
    assert record.repetition is None and record.fold is None
    stored = json.loads(fake_settings(2).to_json())
    del stored["cv"]
    assert ComparisonSettings.from_json(json.dumps(stored)).cv is None
    assert fake_settings(2).differences(ComparisonSettings.from_json(json.dumps(stored))) == []


def test_cv_summary_uses_the_corrected_repeated_kfold_interval(tmp_path):
    comparison = run_cv(tmp_path / "out", runs=3)
    summary = comparison.write_summary()
    a = [item.test_metrics["accuracy"] for item in comparison.records if item.config == "baseline"]
    b = [item.test_metrics["accuracy"] for item in comparison.records if item.config == "optimized"]
    differences = np.subtract(b, a)
    folds = len(differences)
    assert folds == 15
    # Bouckaert & Frank (2004): (1/(k r) + n_test/n_train) s^2 over all k r paired folds,
    # n_test/n_train from the folds' sizes: 6 test and 18 training images here.
    assert (summary.n_test, summary.n_train) == (6, 18)
    half = stats.t.ppf(0.975, folds - 1) * np.sqrt(
        (1 / folds + 6 / 18) * differences.var(ddof=1))
    row = summary.table[(summary.table.config == "optimized - baseline")
                        & (summary.table.metric == "accuracy")].iloc[0]
    assert row.n == folds
    assert row.ci_low == pytest.approx(differences.mean() - half)
    assert row.ci_high == pytest.approx(differences.mean() + half)
    again = summarize(comparison.records, comparison.settings.config_names)
    assert again.table.equals(summary.table)

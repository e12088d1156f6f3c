"""Tests of model_utils.search and the search figure: a search of 4 trials x 2 paired runs
with the fake trainer of conftest.py (no Keras), killed in the middle of a trial and resumed,
and its best configurations read back by `compare`'s configuration loader.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pandas as pd
import pytest
from conftest import FakeTrainer
from optuna.trial import TrialState

from toonvision import ToonvisionError
from toonvision.model_utils.comparison.runlog import LOG_FILE, read_log
from toonvision.model_utils.comparison.runner import Comparison
from toonvision.model_utils.studies.search import (
    STUDY_FILE,
    STUDY_NAME,
    load_search_file,
    parse_duration,
    run_search,
)
from toonvision.model_utils.studies.search_results import BEST_CONFIGS_FILE, TRIALS_CSV
from toonvision.model_utils.training.configs import load_config_file, resolve_configs

SPACE = """
base = "optimized"
reference = "optimized"
trials = 4
runs_per_trial = 2
epochs = 3

[space]
dropout = {low = 0.0, high = 0.9}
padding = ["valid", "same"]
conv_filters = [[16, 32, 32], [8, 16, 16]]
"""
TASK_DATA = SimpleNamespace(images=np.zeros((30, 4, 4, 3), np.uint8), y=np.arange(30) % 2,
                            class_names=("cog", "toon"), labels=["cog", "toon"] * 15,
                            paths=[Path(f"crop{index}.png") for index in range(30)])


class Crash(Exception):
    pass


class DropoutTrainer(FakeTrainer):
    """Accuracy rises with the configuration's dropout: something for the search to find."""

    calls = 0
    crash_at = 0

    def run(self, images, y, split, seed, epoch_callback=None):
        DropoutTrainer.calls += 1
        if DropoutTrainer.calls == DropoutTrainer.crash_at:
            raise Crash()
        result = super().run(images, y, split, seed, epoch_callback)
        accuracy = min(1.0, 0.6 + 0.3 * self.config.dropout + 0.01 * (seed % 3))
        result.test_metrics = {"loss": 1 - accuracy, "accuracy": accuracy}
        return result


def search_file(tmp_path: Path, text: str = SPACE) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def search(tmp_path: Path, resume: bool = False, crash_at: int = 0, **overrides):
    DropoutTrainer.calls, DropoutTrainer.crash_at = 0, crash_at
    spec = load_search_file(search_file(tmp_path), overrides)
    events = []
    study = run_search(tmp_path / "out", spec, TASK_DATA, "fake", resume=resume,
                       trainer_factory=DropoutTrainer, progress=events.append)
    return study, events


def finished(study) -> list:
    return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_search_completes_and_writes_configs_compare_accepts(tmp_path):
    study, events = search(tmp_path)
    trials = finished(study)
    assert len(trials) == 4 and len(study.trials) == 4
    out = tmp_path / "out"
    assert (out / STUDY_FILE).is_file() and (out / TRIALS_CSV).is_file()
    assert not (out / "trials.png").exists()   # the library draws nothing; the command does
    from toonvision.data_visualization.figures import save_figure
    from toonvision.data_visualization.search_figures import trials_figure

    assert save_figure(trials_figure(study), out / "trials.png").read_bytes()[:4] == b"\x89PNG"
    for trial in trials:   # every trial is a comparison folder of its own
        comparison = Comparison.load(out / trial.user_attrs["run_dir"])
        assert comparison.settings.config_names == ["optimized", f"trial_{trial.number}"]
        assert len(comparison.completed_runs()) == trial.user_attrs["runs"]
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    for trial in complete:
        summary = pd.read_csv(out / trial.user_attrs["run_dir"] / "summary.csv")
        pair = summary[(summary.metric == "accuracy") & summary.config.str.contains(" - ")]
        low, high = trial.user_attrs["ci_low"], trial.user_attrs["ci_high"]
        if math.isnan(low):
            # Tiny data: the runs repeated one difference, which gives no interval.
            assert math.isnan(high) and float(pair["sd"].iloc[0]) < 1e-6
        else:
            assert low <= trial.value <= high
            assert float(pair["ci_low"].iloc[0]) == pytest.approx(low)
    configs = load_config_file(out / BEST_CONFIGS_FILE)
    best = max(complete, key=lambda trial: trial.value)
    assert next(iter(configs)) == f"trial_{best.number}"
    config = resolve_configs([f"trial_{best.number}"], out / BEST_CONFIGS_FILE)[0]
    assert config.dropout == pytest.approx(best.params["dropout"])
    assert config.epochs == 3 and config.augmentation    # the base's fields and the settings
    assert {event.best_trial for event in events[-1:]} == {best.number}
    assert optuna.load_study(study_name=STUDY_NAME,
                             storage=f"sqlite:///{out / STUDY_FILE}").best_trial.number == \
        best.number


def test_search_killed_in_a_trial_resumes_to_the_same_trials(tmp_path):
    with pytest.raises(Crash):   # 4 trainer calls per trial: this is trial 2's second run
        search(tmp_path, crash_at=11)
    study = optuna.load_study(study_name=STUDY_NAME,
                              storage=f"sqlite:///{tmp_path / 'out' / STUDY_FILE}")
    before = {trial.number: (trial.params, trial.value) for trial in finished(study)}
    assert sorted(before) == [0, 1]
    killed = study.trials[2]
    assert killed.state == TrialState.FAIL
    # A kill (SIGKILL) leaves its trial RUNNING: make one that way too.
    left = study.ask(killed.distributions)
    study, _ = search(tmp_path, resume=True)
    trials = finished(study)
    assert len(trials) == 4
    assert {trial.number: (trial.params, trial.value) for trial in trials
            if trial.number in before} == before          # nothing done before is redone
    retried = [trial for trial in trials if trial.user_attrs.get("retry_of") == 2]
    assert len(retried) == 1 and retried[0].params == killed.params
    assert study.trials[left.number].state == TrialState.FAIL
    assert [trial.params for trial in trials if trial.user_attrs.get("retry_of") ==
            left.number] == [left.params]
    assert not [trial for trial in study.trials if trial.state == TrialState.WAITING]
    params = [tuple(sorted(trial.params.items())) for trial in trials]
    assert len(set(params)) == len(params)                # none twice
    for trial in trials:
        records, _ = read_log(tmp_path / "out" / trial.user_attrs["run_dir"] / LOG_FILE)
        assert len(records) == 2 * trial.user_attrs["runs"]
    assert load_config_file(tmp_path / "out" / BEST_CONFIGS_FILE)
    again, _ = search(tmp_path, resume=True)              # finished: trains nothing more
    assert DropoutTrainer.calls == 0 and len(again.trials) == len(study.trials)


def test_resuming_with_another_space_is_refused(tmp_path):
    search(tmp_path, trials=1)
    with pytest.raises(ToonvisionError, match="runs_per_trial"):
        search(tmp_path, resume=True, runs_per_trial=3)
    study, _ = search(tmp_path, resume=True, trials=2)    # the budget may grow
    assert len(finished(study)) == 2


def test_search_files_are_checked_with_did_you_mean(tmp_path):
    with pytest.raises(ToonvisionError, match="did you mean 'dropout'"):
        load_search_file(search_file(tmp_path, "[space]\ndropuot = {low = 0.0, high = 0.5}\n"))
    with pytest.raises(ToonvisionError, match="did you mean 'trials'"):
        load_search_file(search_file(tmp_path, "trails = 3\n[space]\ndropout = [0.1]\n"))
    with pytest.raises(ToonvisionError, match="low must be"):
        load_search_file(search_file(tmp_path, "[space]\ndropout = {low = 0.5, high = 0.1}\n"))
    spec = load_search_file(search_file(tmp_path, "[space]\npadding = ['valid', 'sane']\n"))
    with pytest.raises(ToonvisionError, match="padding"):
        run_search(tmp_path / "bad", spec, TASK_DATA, "fake", trainer_factory=DropoutTrainer)
    assert not (tmp_path / "bad").exists()
    assert parse_duration("1h30m") == 5400 and parse_duration(90) == 90
    assert load_search_file(search_file(tmp_path, 'timeout = "2h"\n[space]\ndropout = [0.1]\n')
                            ).trials is None

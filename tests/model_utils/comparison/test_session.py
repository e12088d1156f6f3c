"""Tests of comparison.run: a whole comparison from a plan and a data source, as a library
call (what `toonvision compare` does), with the fakes of conftest.py typed as the protocols."""

from __future__ import annotations

import json

import pytest
from conftest import FakeEngine, FakeTrainer, fake_settings, write_easy_crops

from toonvision import ExistingFileError, ToonvisionError
from toonvision.model_utils.comparison.data_source import DataSource
from toonvision.model_utils.comparison.run import run_comparison, start_comparison
from toonvision.model_utils.comparison.runlog import LOG_FILE, read_log
from toonvision.model_utils.comparison.runner import Comparison
from toonvision.model_utils.comparison.settings import plan_comparison
from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE
from toonvision.model_utils.engine.protocols import Engine, Tracker


def test_the_fakes_and_the_real_engines_and_tracker_follow_the_protocols(tmp_path):
    from toonvision.model_utils.engine.serial import SerialEngine
    from toonvision.model_utils.tracking import RunTracker

    assert isinstance(FakeEngine(), Engine) and isinstance(SerialEngine(), Engine)
    assert isinstance(RunTracker(tmp_path / "tracked", experiment="test"), Tracker)
    assert not isinstance(object(), Engine)


def test_run_comparison_from_a_plan_and_a_source(tmp_path):
    write_easy_crops(tmp_path / "data", per_class=10)
    plan = plan_comparison({"runs": 2, "image_size": [48, 48], "epochs": 2})
    source = DataSource(tmp_path / "data", cache_dir=tmp_path / "cache")
    engine, updates = FakeEngine(), []
    result = run_comparison(plan, source, tmp_path / "out", engine=engine, tracking=False,
                            trainer_factory=FakeTrainer, on_update=updates.append)
    assert [update.run for update in updates] == [0, 1]
    assert engine.trained == [(0, "baseline"), (0, "optimized"), (1, "baseline"),
                              (1, "optimized")]
    stored = json.loads((tmp_path / "out" / SETTINGS_FILE).read_text())
    assert stored["source"] == str(tmp_path / "data") and stored["num_images"] == 20
    assert stored["configs"][0]["epochs"] == 2 and "workers" not in stored
    assert len(read_log(tmp_path / "out" / LOG_FILE)[0]) == 4
    assert sorted(result.best) == ["baseline", "optimized"] and result.stop is None
    assert result.summary.verdicts and not result.summary.note
    assert [path.name for path in result.files] == ["summary.csv", "per_class.csv"]
    assert not (tmp_path / "out" / "tracking.jsonl").exists()


def test_a_used_folder_is_refused_before_the_data_is_read(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    plan = plan_comparison({"runs": 1})
    missing = DataSource(tmp_path / "no-data")
    with pytest.raises(ExistingFileError, match="already exists and is not empty"):
        start_comparison(plan, missing, tmp_path / "out")
    with pytest.raises(ToonvisionError, match="resuming needs the folder"):
        start_comparison(plan, missing, None, resume=True)
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_a_folder_without_finished_runs_has_no_summary(tmp_path):
    comparison = Comparison.start(tmp_path / "out", fake_settings(2))
    with pytest.raises(ToonvisionError, match="needs a finished run; none is logged"):
        comparison.write_summary()

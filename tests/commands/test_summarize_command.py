"""Tests of `toonvision summarize`: a comparison folder or the article's results, re-read.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import (
    run_fake,
)

from toonvision.data_visualization.comparison_figures import (
    BOXPLOTS_FILE,
    FOREST_FILE,
)
from toonvision.model_utils.comparison.summary import (
    PER_CLASS_FILE,
    SUMMARY_FILE,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_summarize_on_a_run_folder_reproduces_its_summary(tmp_path, capsys):
    from toonvision.cli import main

    comparison = run_fake(tmp_path / "out", runs=4)
    summary = comparison.write_summary()
    written = comparison.summary_path.read_text()
    per_class = (tmp_path / "out" / PER_CLASS_FILE).read_text()
    comparison.summary_path.unlink()
    assert main(["summarize", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert comparison.summary_path.read_text() == written
    assert (tmp_path / "out" / PER_CLASS_FILE).read_text() == per_class
    assert printed.splitlines()[0] == summary.sentences[0]
    assert (tmp_path / "out" / FOREST_FILE).is_file()
    assert main(["summarize", str(tmp_path / "out"), "--split-sizes", "36", "12", "12",
                 "--out", str(tmp_path / "again")]) == 0
    again = pd.read_csv(tmp_path / "again" / SUMMARY_FILE)
    assert set(again.n_test) == {12} and set(again.n_train) == {36}


def test_summarize_refuses_what_it_cannot_read(tmp_path, capsys):
    from toonvision.cli import main

    (tmp_path / "evaluations.json").write_text(json.dumps([["a", [[0.1, 0.9], [0.2, 0.8]]]]))
    assert main(["summarize", str(tmp_path / "evaluations.json")]) == 2
    assert "holds no split sizes" in capsys.readouterr().err
    assert main(["summarize", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["summarize", str(tmp_path)]) == 2
    assert "is not a comparison folder" in capsys.readouterr().err


def test_summarize_gives_the_authors_runs_the_same_verdict(shared_data, tmp_path, capsys):
    from toonvision.cli import main

    path = shared_data / "toontown" / "evaluations_all.json"
    if not path.is_file():
        pytest.skip(f"author's evaluations not found at {path}")
    assert main(["summarize", str(path), "--split-sizes", "410", "137", "137",
                 "--out", str(tmp_path / "author")]) == 0
    lines = capsys.readouterr().out.splitlines()
    sentence = next(line for line in lines if line.startswith("optimized_1e-5 vs baseline:"))
    assert sentence == ("optimized_1e-5 vs baseline: +1.1 accuracy points (95% CI -0.7 to +2.9, "
                        "corrected; +0.9 to +1.4 uncorrected); optimized_1e-5 won 70% of runs, "
                        "tied 16%; not decided: the effect is under what this test split can "
                        "resolve.")
    table = pd.read_csv(tmp_path / "author" / SUMMARY_FILE)
    pair = table[(table.metric == "accuracy")
                 & (table.config == "optimized_1e-5 - baseline")].iloc[0]
    assert pair.resplit_ci_low > 0 and pair.ci_low < 0 < pair.ci_high   # naive vs corrected
    assert pair.state == "undecidable" and pair.under_floor and pair.n == 200
    assert any(line.startswith("kept best optimized_1e-5 (run 12, --select test): test "
                               "accuracy 1.0000") for line in lines)   # the author's run12.h5
    assert sorted(path.name for path in (tmp_path / "author").iterdir()) == [
        BOXPLOTS_FILE, FOREST_FILE, SUMMARY_FILE]   # no histories: no learning curves



"""Nothing a user has breaks: a comparison folder written by an earlier version
(`tests/data/compare_v1`, see its README) still summarizes, resumes with its records unchanged,
reports and doctors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("keras")

from toonvision import cli  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "compare_v1"


@pytest.fixture
def old_folder(tmp_path: Path) -> Path:
    """A copy of the old comparison (`comparison/`) and its crops (`data/`) in tmp_path."""
    shutil.copytree(FIXTURE, tmp_path / "v1")
    return tmp_path / "v1"


def test_an_old_comparison_summarizes(old_folder: Path, capsys) -> None:
    run_dir = old_folder / "comparison"
    before = (run_dir / "runs.jsonl").read_bytes()
    assert cli.main(["summarize", str(run_dir), "--out", str(old_folder / "summary")]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "optimized" in out
    assert (old_folder / "summary" / "summary.csv").is_file()
    assert (run_dir / "runs.jsonl").read_bytes() == before


def test_an_old_comparison_resumes_and_keeps_its_records(old_folder: Path, capsys) -> None:
    run_dir = old_folder / "comparison"
    before = (run_dir / "runs.jsonl").read_bytes()
    status = cli.main(["compare", "--data-dir", str(old_folder / "data"), "--cache-dir",
                       str(old_folder / "cache"), "--image-size", "48", "48", "--configs",
                       "baseline,optimized", "--runs", "3", "--epochs", "1", "--workers", "1",
                       "--no-tracking", "--out", str(run_dir), "--resume"])
    assert status == 0, capsys.readouterr().err
    after = (run_dir / "runs.jsonl").read_bytes()
    assert after.startswith(before)
    new = [json.loads(line) for line in after[len(before):].splitlines()]
    assert [(record["run"], record["config"]) for record in new] == \
        [(2, "baseline"), (2, "optimized")]


def test_an_old_comparisons_model_reports_its_run_exactly(old_folder: Path, capsys) -> None:
    """An old sidecar records no split; the comparison.json beside the model gives it."""
    run_dir = old_folder / "comparison"
    out = old_folder / "report"
    status = cli.main(["report", str(run_dir / "best_baseline.keras"), "--data-dir",
                       str(old_folder / "data"), "--cache-dir", str(old_folder / "cache"),
                       "--out", str(out), "--samples", "1", "--filters", "1"])
    assert status == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    record = json.loads((run_dir / "best_baseline.json").read_text(encoding="utf-8"))
    assert metrics["split"]["origin"] == "comparison"
    assert len(metrics["crops"]) == record["split_sizes"]["test"]
    assert metrics["accuracy"] == pytest.approx(record["test_metrics"]["accuracy"], rel=1e-6)
    assert metrics["loss"] == pytest.approx(record["test_metrics"]["loss"], rel=1e-5)


def test_an_old_comparison_doctors(old_folder: Path, capsys) -> None:
    run_dir = old_folder / "comparison"
    out = old_folder / "doctor"
    status = cli.main(["doctor", str(run_dir), "--data-dir", str(old_folder / "data"),
                       "--out", str(out), "--no-gradcam"])
    assert status == 0, capsys.readouterr().err
    assert (out / "index.html").is_file()
    import pandas as pd

    table = pd.read_csv(out / "label_issues.csv")
    assert len(table) == 24   # every crop
    # Each crop's part in the kept model's split: that run's split, from comparison.json.
    record = json.loads((run_dir / "best_baseline.json").read_text(encoding="utf-8"))
    assert table["best_baseline_part"].value_counts().to_dict() == record["split_sizes"]

"""Experiment tracking (toonvision.tracking): the JSONL record and the local MLflow store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from toonvision.model_utils.tracking import (
    TRACKING_FILE,
    RunTracker,
    mlflow_available,
    read_records,
)


def test_jsonl_record_is_always_written(tmp_path: Path) -> None:
    artifact = tmp_path / "curve.png"
    artifact.write_bytes(b"png")
    tracker = RunTracker(tmp_path / "out", "study", use_mlflow=False)

    tracker.log_run("mlp-seed0", {"hidden_units": (256, 128), "path": tmp_path, "seed": 0},
                    {"loss": [2.0, 1.5], "val_accuracy": [0.2, 0.3]},
                    {"accuracy": 0.31, "macro_f1": float("nan")},
                    [artifact, tmp_path / "missing.png"])
    tracker.log_run("mlp-seed1", {"seed": 1}, {"loss": [1.0]}, {"accuracy": 0.4})

    records = read_records(tmp_path / "out")
    assert [record["run"] for record in records] == ["mlp-seed0", "mlp-seed1"]
    first = records[0]
    assert first["experiment"] == "study"
    assert first["params"] == {"hidden_units": [256, 128], "path": str(tmp_path), "seed": 0}
    assert first["history"]["val_accuracy"] == [0.2, 0.3]
    assert first["metrics"] == {"accuracy": 0.31, "macro_f1": None}
    assert first["artifacts"] == [str(artifact)]
    assert first["mlflow_run_id"] is None
    for line in (tmp_path / "out" / TRACKING_FILE).read_text().splitlines():
        json.loads(line)  # strict JSON: no NaN


def test_torn_last_line_is_left_out(tmp_path: Path) -> None:
    tracker = RunTracker(tmp_path, "study", use_mlflow=False)
    tracker.log_run("a", {}, {}, {"accuracy": 0.5})
    with open(tmp_path / TRACKING_FILE, "a") as handle:
        handle.write('{"run": "b", "metr')
    assert [record["run"] for record in read_records(tmp_path / TRACKING_FILE)] == ["a"]


def test_mlflow_failure_never_stops_training(tmp_path: Path) -> None:
    if not mlflow_available():
        pytest.skip("MLflow is not installed (pip install 'toonvision[tracking]')")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the store should be")
    tracker = RunTracker(tmp_path / "out", "study", tracking_uri=blocker.as_uri())

    tracker.log_run("a", {"seed": 0}, {"loss": [1.0]}, {"accuracy": 0.5})

    record = read_records(tmp_path / "out")[0]
    assert record["mlflow_run_id"] is None
    assert record["mlflow_error"]


def test_two_epoch_run_reads_back_from_the_mlflow_store(tmp_path: Path) -> None:
    if not mlflow_available():
        pytest.skip("MLflow is not installed (pip install 'toonvision[tracking]')")
    import dataclasses

    from mlflow.tracking import MlflowClient

    from toonvision.data_processing.splits import stratified_split
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.trainer import Trainer

    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    y = np.arange(24) % 3
    config = BUILTIN_CONFIGS["mlp"].replace(epochs=2, hidden_units=(8,),
                                            early_stopping_patience=None)
    result = Trainer(config, 3, (8, 8)).run(images, y, stratified_split(y, seed=0), seed=0)
    artifact = tmp_path / "epochs.csv"
    artifact.write_text("epoch,loss\n1,1.0\n")
    tracker = RunTracker(tmp_path / "out", "tiny")

    tracker.log_run("mlp-seed0", {**dataclasses.asdict(config), "seed": 0}, result.history,
                    {f"validation_{key}": value
                     for key, value in result.validation_metrics.items()}, [artifact])

    record = read_records(tmp_path / "out")[0]
    assert record["mlflow_run_id"]
    assert (tmp_path / "out" / "mlruns").is_dir()
    client = MlflowClient(tracking_uri=(tmp_path / "out" / "mlruns").as_uri())
    run = client.get_run(record["mlflow_run_id"])
    assert run.info.run_name == "mlp-seed0"
    assert run.info.status == "FINISHED"
    assert run.data.params["hidden_units"] == "[8]"
    assert run.data.params["epochs"] == "2"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [metric.step for metric in history] == [1, 2]
    assert all(math.isclose(metric.value, value) for metric, value in
               zip(history, result.history["val_loss"], strict=True))
    assert math.isclose(run.data.metrics["validation_accuracy"],
                        result.validation_metrics["accuracy"])
    assert [item.path for item in client.list_artifacts(run.info.run_id)] == ["epochs.csv"]
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None and run.info.experiment_id == experiment.experiment_id

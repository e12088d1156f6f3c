"""Experiment tracking: a plain JSONL record always, and a local MLflow store when installed.

Every training run records its parameters, its per-epoch metrics, its final metrics and its
artifacts (figures, models). The record that is always written is one JSON line per run in
`<out_dir>/tracking.jsonl`, appended with a single write and synced, so a crash loses at
most the run being written. When MLflow is importable (the optional extra
`toonvision[tracking]`; `mlflow-skinny` is enough to log, the full `mlflow` adds `mlflow ui`)
the same run also goes to a local, file-based MLflow store, `<out_dir>/mlruns` unless
`MLFLOW_TRACKING_URI` names another. No server is involved; `mlflow ui --backend-store-uri
<out_dir>/mlruns` shows the runs.

MLflow 3 keeps its file store in "maintenance mode" and refuses it unless
`MLFLOW_ALLOW_FILE_STORE=true`; the tracker sets that variable (if unset) for a `file:` store,
because a folder of files next to the run's other outputs is what a user without a server
wants. A database URI (`sqlite:///mlflow.db`, with the full `mlflow`) works through
`MLFLOW_TRACKING_URI` too.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from toonvision import MissingFileError, ToonvisionError
from toonvision.fileio import append_jsonl, read_jsonl

logger = logging.getLogger(__name__)

TRACKING_FILE = "tracking.jsonl"
MLRUNS_FOLDER = "mlruns"
TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
ALLOW_FILE_STORE_VARIABLE = "MLFLOW_ALLOW_FILE_STORE"
FINAL_PREFIX = "final_"
# MLflow's per-request limits of `log_batch`.
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_LENGTH = 6000


def mlflow_available() -> bool:
    """Returns whether MLflow can be imported, without importing it (that takes seconds)."""
    return importlib.util.find_spec("mlflow") is not None


def _plain(value: object) -> object:
    """Returns `value` as JSON-ready data: paths and tuples made plain, non-finite floats None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return _plain(value.item())
    return str(value)


class RunTracker:
    """Records training runs of one experiment.

    Args:
        out_dir: the folder of `tracking.jsonl` and, by default, of the MLflow store `mlruns/`.
        experiment: the experiment name (e.g. the command and its output folder).
        tracking_uri: the MLflow store; default `$MLFLOW_TRACKING_URI`, else
            `<out_dir>/mlruns` as a `file:` URI.
        use_mlflow: False to write only the JSONL record; default: when MLflow is importable.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        experiment: str,
        tracking_uri: str | None = None,
        use_mlflow: bool | None = None,
    ) -> None:
        if not experiment.strip():
            raise ToonvisionError("the experiment name must not be empty")
        self.out_dir = Path(out_dir)
        self.experiment = experiment
        self.tracking_uri = (
            tracking_uri
            or os.environ.get(TRACKING_URI_VARIABLE)
            or (self.out_dir / MLRUNS_FOLDER).resolve().as_uri()
        )
        self.use_mlflow = mlflow_available() if use_mlflow is None else use_mlflow
        self._client = None
        self._experiment_id: str | None = None

    @property
    def records_path(self) -> Path:
        """The JSONL file of every run's record."""
        return self.out_dir / TRACKING_FILE

    def log_run(
        self,
        name: str,
        params: Mapping[str, object],
        history: Mapping[str, Sequence[float]],
        metrics: Mapping[str, float],
        artifacts: Sequence[str | os.PathLike] = (),
    ) -> None:
        """Records one finished run.

        The JSONL line is always appended, even when MLflow fails (the failure is logged as a
        warning and noted in the line as `mlflow_error`): tracking never stops a comparison.

        Args:
            name: the run's name, e.g. `mlp_seed3`.
            params: its parameters (configuration fields, seed, data source...).
            history: per-epoch metrics, e.g. `{"loss": [...], "val_accuracy": [...]}`; epoch
                `i` (from 0) is logged to MLflow at step `i + 1`.
            metrics: final metrics; a name that is also in `history` is logged to MLflow as
                `final_<name>` so that the two do not mix in one chart.
            artifacts: files or folders to attach; missing ones are left out with a warning.
        """
        artifacts = [Path(path) for path in artifacts]
        missing = [path for path in artifacts if not path.exists()]
        for path in missing:
            logger.warning("run %s: artifact %s does not exist; not attached", name, path)
        present = [path for path in artifacts if path.exists()]
        record = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "experiment": self.experiment,
            "run": name,
            "params": _plain(dict(params)),
            "history": _plain({key: list(values) for key, values in history.items()}),
            "metrics": _plain(dict(metrics)),
            "artifacts": [str(path) for path in present],
            "mlflow_run_id": None,
        }
        if self.use_mlflow:
            try:
                record["mlflow_run_id"] = self._log_to_mlflow(
                    name, params, history, metrics, present
                )
                record["mlflow_tracking_uri"] = self.tracking_uri
            except Exception as error:  # tracking must never stop training
                logger.warning("run %s: MLflow logging failed: %s", name, error)
                record["mlflow_error"] = f"{type(error).__name__}: {error}"
        append_jsonl(self.records_path, [record])

    def _mlflow_client(self):
        if self._client is None:
            if self.tracking_uri.startswith("file:"):
                os.environ.setdefault(ALLOW_FILE_STORE_VARIABLE, "true")
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=self.tracking_uri)
            experiment = client.get_experiment_by_name(self.experiment)
            if experiment is None:
                try:
                    self._experiment_id = client.create_experiment(self.experiment)
                except Exception:
                    # Another process may have created it in the meantime.
                    experiment = client.get_experiment_by_name(self.experiment)
                    if experiment is None:
                        raise
                    self._experiment_id = experiment.experiment_id
            else:
                self._experiment_id = experiment.experiment_id
            self._client = client
        return self._client

    def _log_to_mlflow(
        self,
        name: str,
        params: Mapping[str, object],
        history: Mapping[str, Sequence[float]],
        metrics: Mapping[str, float],
        artifacts: Sequence[Path],
    ) -> str:
        from mlflow.entities import Metric, Param

        client = self._mlflow_client()
        run = client.create_run(self._experiment_id, run_name=name)
        run_id = run.info.run_id
        status = "FAILED"
        try:
            timestamp = int(datetime.now(UTC).timestamp() * 1000)
            param_entities = [
                Param(str(key), _param_text(value)) for key, value in params.items()
            ]
            metric_entities = [
                Metric(str(key), float(value), timestamp, epoch + 1)
                for key, values in history.items()
                for epoch, value in enumerate(values)
            ]
            metric_entities += [
                Metric(
                    f"{FINAL_PREFIX}{key}" if key in history else str(key),
                    float(value), timestamp, 0,
                )
                for key, value in metrics.items()
            ]
            for start in range(0, len(param_entities), MAX_PARAMS_PER_BATCH):
                client.log_batch(
                    run_id, params=param_entities[start:start + MAX_PARAMS_PER_BATCH]
                )
            for start in range(0, len(metric_entities), MAX_METRICS_PER_BATCH):
                client.log_batch(
                    run_id, metrics=metric_entities[start:start + MAX_METRICS_PER_BATCH]
                )
            for path in artifacts:
                if path.is_dir():
                    client.log_artifacts(run_id, str(path), artifact_path=path.name)
                else:
                    client.log_artifact(run_id, str(path))
            status = "FINISHED"
        finally:
            client.set_terminated(run_id, status)
        return run_id


def _param_text(value: object) -> str:
    """Returns a parameter as MLflow stores it: text, cut to MLflow's length limit."""
    plain = _plain(value)
    text = plain if isinstance(plain, str) else json.dumps(plain)
    return text[:MAX_PARAM_LENGTH]


def read_records(path: str | os.PathLike) -> list[dict]:
    """Reads the runs of a `tracking.jsonl` file (or of the folder holding one).

    A torn last line (a kill in the middle of a write) is left out, with a warning.

    Raises:
        MissingFileError: if the file does not exist.
        ToonvisionError: if a line before the last is damaged (the message names it).
    """
    path = Path(path)
    if path.is_dir():
        path = path / TRACKING_FILE
    if not path.is_file():
        raise MissingFileError(f"tracking record {path} not found")
    records, torn = read_jsonl(path)
    if torn:
        logger.warning("%s: a torn last line (an interrupted write) was left out", path)
    return records

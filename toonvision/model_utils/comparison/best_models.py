"""The kept best models of a comparison folder, and how they stay in step with its log.

Each configuration keeps `best_<config>.keras` (with its `ModelInfo` sidecar
`best_<config>.keras.json` and its confidence rule `best_<config>.keras.confidence.npz`,
fitted on that run's own train and validate crops: `training.confidence`) and
`best_<config>.json`, the run record of that model. A new
best model is first saved under `.pending/`; `promote` moves it into place only after its
run's records are in the log, the record file last, so that it marks the end. On resume,
`reconcile` moves a pending model whose run made it into the log into place, deletes any other
pending file, and refuses a folder whose best files no longer match the log's best runs. So
`best_<config>.*` is always the model of the best run in the log.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision import ToonvisionError
from toonvision.fileio import write_text_atomic
from toonvision.model_utils.comparison.provenance import record_split
from toonvision.model_utils.training.confidence import confidence_path

if TYPE_CHECKING:
    from toonvision.model_utils.comparison.runlog import RunRecord
    from toonvision.model_utils.comparison.stored_settings import ComparisonSettings

logger = logging.getLogger(__name__)

PENDING_FOLDER = ".pending"


class BestModels:
    """The best-model files of the comparison folder `out_dir`."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)

    def model_path(self, config_name: str) -> Path:
        """Where the best model of a configuration is kept."""
        return self.out_dir / f"best_{config_name}.keras"

    def record_path(self, config_name: str) -> Path:
        """Where the run record of that model is kept."""
        return self.out_dir / f"best_{config_name}.json"

    def _pending_paths(self, config_name: str) -> tuple[Path, Path, Path, Path]:
        """The model, its sidecar, its confidence rule and the record under `.pending/`."""
        pending = self.out_dir / PENDING_FOLDER
        model = pending / f"best_{config_name}.keras"
        return (model, _sidecar(model), confidence_path(model),
                pending / f"best_{config_name}.json")

    def _final_paths(self, config_name: str) -> tuple[Path, Path, Path, Path]:
        model = self.model_path(config_name)
        return model, _sidecar(model), confidence_path(model), self.record_path(config_name)

    def save_pending(self, model: Any, record: RunRecord, settings: ComparisonSettings,
                     data: tuple[np.ndarray, np.ndarray, Mapping[str, np.ndarray]] | None = None,
                     ) -> None:
        """Saves a new best model, its confidence rule and its run record under `.pending/`.

        Args:
            model: the trained model, or anything whose `save(path)` writes its `.keras`
                file (a Ray worker's `ModelFile`: the rule is then fitted on the model loaded
                back from that file).
            record: its run record.
            settings: the comparison's settings.
            data: `(images, y, split)`, the images and classes the comparison trains on and
                the run's split: the rule (`confidence.fit_confidence`) is fitted on its
                train and validate parts, one forward pass over them. None: no rule (the
                model then answers with raw probabilities, as an older comparison's).
        """
        from toonvision.model_utils.training.model_io import ModelInfo, save_model_atomic

        model_path, _, _, record_path = self._pending_paths(record.config)
        info = ModelInfo(
            class_names=tuple(settings.class_names),
            image_size=tuple(settings.image_size),
            resize=settings.resize,
            task=settings.task,
            config=record.config,
            split_seed=record.split_seed,
            ratios=tuple(settings.ratios),
            extra={"run": record.run, "validation_metrics": record.validation_metrics,
                   "test_metrics": record.test_metrics, "comparison": str(self.out_dir),
                   "group_by": settings.group_by},
        )
        record_split(info, settings, record.run, self.out_dir)
        save_model_atomic(model, model_path, info)
        if data is not None:
            _save_confidence(model, model_path, *data)
        write_text_atomic(record_path, json.dumps(record.to_dict(), indent=2))

    def promote(self, config_name: str) -> None:
        """Moves a pending best model into place; the record file, moved last, marks the end.

        A pending model without a confidence rule takes the place of one with a rule: the
        old rule, fitted for the old model, is deleted with it.
        """
        pending_paths = self._pending_paths(config_name)
        if pending_paths[0].exists() and not pending_paths[2].exists():
            self._final_paths(config_name)[2].unlink(missing_ok=True)
        for pending, final in zip(pending_paths, self._final_paths(config_name), strict=True):
            if pending.exists():
                os.replace(pending, final)

    def clear_pending(self) -> None:
        """Deletes `.pending/` and whatever is left in it."""
        shutil.rmtree(self.out_dir / PENDING_FOLDER, ignore_errors=True)

    def reconcile(self, best: Mapping[str, RunRecord], config_names: Sequence[str]) -> None:
        """Makes `best_<config>.*` match `best`, the best records of the log.

        Raises:
            ToonvisionError: if the files of a configuration's best model are missing or
                describe another run than the log's best.
        """
        for name in config_names:
            expected = best.get(name)
            pending_record = self._pending_paths(name)[3]
            if expected is not None and pending_record.is_file():
                if json.loads(pending_record.read_text(encoding="utf-8"))["run"] == \
                        expected.run:
                    self.promote(name)
            if expected is None:
                continue
            model, sidecar, _, record = self._final_paths(name)   # a rule is optional
            problem = _best_files_problem(model, sidecar, record, expected.run)
            if problem:
                raise ToonvisionError(
                    f"cannot resume {self.out_dir}: the best model of {name!r} should be run "
                    f"{expected.run} of the log, but {problem}. The folder was changed "
                    "outside toonvision; restore it or start a new comparison"
                )
        self.clear_pending()


def _sidecar(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def _save_confidence(model: Any, model_path: Path, images: np.ndarray, y: np.ndarray,
                     split: Mapping[str, np.ndarray]) -> None:
    """Fits the confidence rule of the model saved at `model_path` and saves it beside it.

    A split without validation crops, or a model that is not a Keras model (a trainer of
    one's own, a test's stand-in), gets no rule (logged): the model keeps its raw
    probabilities and never answers `unknown`.
    """
    from toonvision.model_utils.engine.ray_engine import ModelFile
    from toonvision.model_utils.training.confidence import fit_confidence, save_confidence

    if not len(split.get("validate", ())):
        logger.warning("%s: no validation crops, so no confidence rule (raw probabilities, "
                       "never unknown)", model_path.name)
        return
    started = time.perf_counter()
    if isinstance(model, ModelFile):   # a Ray worker's model file: load it back
        import zipfile

        from toonvision.model_utils.training.model_io import load_model

        if not zipfile.is_zipfile(model_path):   # a stand-in trainer's bytes, no .keras zip
            logger.info("%s is not a Keras model file: no confidence rule", model_path.name)
            return
        try:
            model = load_model(model_path)[0]
        except ValueError as error:   # Keras cannot read it: not a Keras model
            logger.warning("%s: no confidence rule (%s)", model_path.name, error)
            return
    elif not hasattr(model, "layers"):
        logger.info("%s is not a Keras model: no confidence rule", model_path.name)
        return
    save_confidence(model_path, fit_confidence(model, images, y, split))
    logger.info("confidence rule of %s fitted in %.2f s on %d train + %d validate crops",
                model_path.name, time.perf_counter() - started, len(split["train"]),
                len(split["validate"]))


def _best_files_problem(model: Path, sidecar: Path, record: Path, run: int) -> str:
    """Says what is wrong with the best-model files of one configuration, or ''."""
    for path in (model, sidecar, record):
        if not path.is_file():
            return f"{path.name} is missing"
    record_run = json.loads(record.read_text(encoding="utf-8")).get("run")
    if record_run != run:
        return f"{record.name} holds run {record_run}"
    sidecar_run = json.loads(sidecar.read_text(encoding="utf-8")).get("extra", {}).get("run")
    if sidecar_run != run:
        return f"{sidecar.name} describes run {sidecar_run}"
    return ""

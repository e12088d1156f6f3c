"""Which crops a saved model trained, validated and was tested on: one answer for every command.

A comparison decides each run's split in `run_splits.split_for_run`. The best model it keeps
carries, in its sidecar (`ModelInfo.split`), a `SplitRecord`: what `split_for_run` needs to
cut that run's split again (the comparison's seed, ratios, balancing, cross-validation,
grouping and the run number) and fingerprints of the data and groups it was cut from.
`split_of_model` rebuilds the split from it, so that `report`, `doctor` and `predict` speak of
exactly the crops the model was trained, validated and tested on, also after `compare --cv`.

Models saved before the record existed (a sidecar with only `split_seed`, `ratios`,
`extra.group_by` and `extra.run`) still work: when the folder of their comparison
(`comparison.json`) is at hand and agrees with the sidecar, the split is rebuilt from it
(exactly); otherwise by the rule of their time, a stratified split with seed `split_seed`.
A model without a sidecar (the ToonVision author's `.h5`) gets that rule with seed 0.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision import defaults
from toonvision.data_processing.splits import grouped_stratified_split
from toonvision.model_utils.comparison.run_splits import split_for_run
from toonvision.model_utils.comparison.stored_settings import (
    SETTINGS_FILE,
    ComparisonSettings,
    data_fingerprint,
)

if TYPE_CHECKING:
    from toonvision.model_utils.training.model_io import ModelInfo

PARTS: tuple[str, ...] = ("train", "validate", "test")
# Where a split came from (`ModelSplit.origin`).
RECORDED, COMPARISON, SEED, CHOSEN = "recorded", "comparison", "seed", "chosen"


@dataclass(frozen=True)
class SplitRecord:
    """What a kept model's sidecar records so that its run's split can be cut again.

    Attributes:
        comparison: the comparison folder the model was kept in (absolute).
        run: the run that trained the model.
        seed: the comparison's seed (run `r` splits with `seed + r`, or with cross-validation
            repetition `r // cv` does).
        ratios: train, validate and test shares.
        balance: how the training part was balanced (`splits.BALANCE_METHODS`).
        cv: the folds of cross-validation, or None.
        group_by: what the split kept whole (`none`, `screenshot`, `duplicates`,
            `column:NAME`).
        groups_fingerprint: the hash of the groups (`stored_settings.groups_fingerprint`).
        data_fingerprint: the hash of the images' names, labels and classes
            (`stored_settings.data_fingerprint`).
        num_images: the number of images the comparison ran on.
    """

    comparison: str
    run: int
    seed: int
    ratios: tuple[float, float, float] = defaults.RATIOS
    balance: str = defaults.BALANCE
    cv: int | None = None
    group_by: str = defaults.GROUP_BY
    groups_fingerprint: str = ""
    data_fingerprint: str = ""
    num_images: int = 0

    @classmethod
    def from_settings(cls, settings: ComparisonSettings, run: int,
                      comparison: str | os.PathLike) -> SplitRecord:
        """The record of run `run` of a comparison with `settings`, kept in `comparison`."""
        return cls(comparison=str(Path(comparison).resolve()), run=int(run),
                   seed=int(settings.seed), ratios=tuple(settings.ratios),
                   balance=settings.balance, cv=settings.cv, group_by=settings.group_by,
                   groups_fingerprint=settings.groups_fingerprint,
                   data_fingerprint=settings.data_fingerprint, num_images=settings.num_images)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitRecord:
        """Reads a record as `to_dict` wrote it; unknown keys are ignored."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["ratios"] = tuple(known.get("ratios", defaults.RATIOS))
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values, with the fold (and repetition) under --cv."""
        data = dataclasses.asdict(self)
        data["ratios"] = list(self.ratios)
        if self.cv:
            data["repetition"], data["fold"] = divmod(self.run, self.cv)
        return data


@dataclass
class ModelSplit:
    """A model's split of the data it is asked about, and where that split came from.

    Attributes:
        parts: index arrays of `train`, `validate` and `test` into the data given.
        origin: `recorded` (the sidecar's `SplitRecord`), `comparison` (an older sidecar,
            rebuilt from its comparison's `comparison.json`), `seed` (an older sidecar's
            `split_seed`, re-split by the rule of its time) or `chosen` (a seed the caller
            chose, or 0 for a model that recorded none).
        seed: the seed the split was cut with.
        ratios: its train, validate and test shares.
        group_by: what the split kept whole.
        record: the `SplitRecord` used (for `recorded` and `comparison`).
        warnings: what a user must know (the data changed since the model was trained).
    """

    parts: dict[str, np.ndarray]
    origin: str
    seed: int
    ratios: tuple[float, ...] = defaults.RATIOS
    group_by: str = "none"
    record: SplitRecord | None = None
    warnings: list[str] = field(default_factory=list)

    def part_names(self, count: int) -> np.ndarray:
        """The part (`train`, `validate`, `test`, or '' for none) of each of `count` images."""
        names = np.full(count, "", dtype=object)
        for part in PARTS:
            names[self.parts.get(part, np.zeros(0, dtype=np.int64))] = part
        return names

    def describe(self) -> str:
        """One line for people: `run 3 (repetition 0, fold 3 of 5) of the comparison runs/x
        (split seed 0, ratios ...)`, or `split seed 3 (recorded with the model), ratios ...`."""
        if self.record is not None:
            record = self.record
            fold = (f" (repetition {record.run // record.cv}, fold {record.run % record.cv} of "
                    f"{record.cv})" if record.cv else "")
            text = (f"run {record.run}{fold} of the comparison {record.comparison} (split seed "
                    f"{self.seed}, ratios {tuple(record.ratios)}")
            text += f", balance {record.balance}" if record.balance != "none" else ""
        else:
            how = ("recorded with the model" if self.origin == SEED else "chosen")
            text = f"split seed {self.seed} ({how}), ratios {tuple(self.ratios)}"
        if self.group_by != "none":
            text += f", grouped by {self.group_by}"
        return text + (")" if self.record is not None else "")

    def to_dict(self) -> dict[str, Any]:
        """Where the split came from, as JSON values (the report's `metrics.json` `split`)."""
        data: dict[str, Any] = {"origin": self.origin, "split_seed": self.seed,
                                "ratios": list(self.ratios), "group_by": self.group_by,
                                "sizes": {part: int(len(self.parts[part])) for part in PARTS}}
        if self.record is not None:
            data.update(self.record.to_dict())
        data["warnings"] = list(self.warnings)
        return data


def record_split(info: ModelInfo, settings: ComparisonSettings, run: int,
                 comparison: str | os.PathLike) -> None:
    """Writes into `info` (a kept model's sidecar) the record of run `run`'s split."""
    info.split = SplitRecord.from_settings(settings, run, comparison).to_dict()


def grouping_of_model(info: ModelInfo) -> str:
    """What the model's split kept whole (the caller computes these groups for `split_of_model`)."""
    if info.split:
        return str(info.split.get("group_by", "none"))
    return str(info.extra.get("group_by", "none"))


def split_of_model(info: ModelInfo, data: Any, groups: Sequence[object] | np.ndarray | None
                   = None, *, seed: int | None = None,
                   comparison_dirs: Sequence[str | os.PathLike | None] = ()) -> ModelSplit:
    """The split a model was trained, validated and tested on, over `data`.

    Args:
        info: the model's `ModelInfo`.
        data: the images asked about, with `paths`, `labels`, `y` and `class_names`
            (`dataset.TaskData`, loaded as the comparison loaded them).
        groups: the group of every image under `grouping_of_model(info)`; None when it is
            `none`.
        seed: re-split with this seed instead (by the plain rule, origin `chosen`).
        comparison_dirs: folders that may hold the comparison of a model whose sidecar
            predates `SplitRecord` (e.g. `report --run-dir`, the model's own folder).

    Returns:
        The split, with a warning when the data differs from the data the model was trained on
        (then the parts are not the ones it saw).

    Raises:
        ToonvisionError: if the groups are not the ones the comparison was made with.
    """
    y = np.asarray(data.y)
    grouping = grouping_of_model(info)
    if seed is None:
        record = (SplitRecord.from_dict(info.split) if info.split
                  else _record_from_comparison(info, data, comparison_dirs))
        if record is not None:
            split_seed, parts, _ = split_for_run(record, y, record.run, groups)
            return ModelSplit(parts, RECORDED if info.split else COMPARISON, split_seed,
                              tuple(record.ratios), record.group_by, record,
                              _data_warnings(record, data))
    origin = CHOSEN if seed is not None or info.split_seed is None else SEED
    seed = seed if seed is not None else (info.split_seed or 0)
    parts = grouped_stratified_split(y, groups, info.ratios, seed)
    return ModelSplit(parts, origin, seed, tuple(info.ratios), grouping)


def _fingerprint(data: Any) -> str:
    return data_fingerprint(data.paths, data.labels, np.asarray(data.y), data.class_names)


def _data_warnings(record: SplitRecord, data: Any) -> list[str]:
    if not record.data_fingerprint or _fingerprint(data) == record.data_fingerprint:
        return []
    return [f"the data changed since the model was trained: {len(data.y)} images now, "
            f"{record.num_images} in its comparison (or other names, labels or classes); the "
            "split is cut from today's data, so its parts are not the crops the model saw"]


def _record_from_comparison(info: ModelInfo, data: Any,
                            folders: Sequence[str | os.PathLike | None]) -> SplitRecord | None:
    """A `SplitRecord` for an older sidecar, from its comparison's `comparison.json`.

    Taken only when the folder agrees with the sidecar: the same data fingerprint, the
    sidecar's run and configuration in it, and that run's split seed the sidecar's.
    """
    run = info.extra.get("run")
    if run is None or info.split_seed is None:
        return None
    for folder in folders:
        path = Path(folder) / SETTINGS_FILE if folder is not None else None
        if path is None or not path.is_file():
            continue
        try:
            settings = ComparisonSettings.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, TypeError, json.JSONDecodeError):
            continue
        record = SplitRecord.from_settings(settings, int(run), path.parent)
        repetition = int(run) // settings.cv if settings.cv else int(run)
        if (settings.data_fingerprint == _fingerprint(data)
                and info.config in settings.config_names
                and settings.seed + repetition == info.split_seed
                and settings.group_by == grouping_of_model(info)):
            return record
    return None


def kept_model_parts(run_dir: str | os.PathLike, config_names: Sequence[str], data: Any,
                     groups: Sequence[object] | np.ndarray | None = None
                     ) -> dict[str, np.ndarray]:
    """Per kept model `best_<config>.keras` of a comparison, the part of each image in its split.

    Only the sidecars are read (no Keras). A configuration without a kept model is left out.

    Args:
        run_dir: the comparison folder.
        config_names: its configurations.
        data: the images (`paths`, `labels`, `y`, `class_names`), as for `split_of_model`.
        groups: their groups under the comparison's grouping (None: ungrouped).

    Returns:
        `{config: (N,) array of "train", "validate", "test"}`.
    """
    from toonvision.model_utils.training.model_io import ModelInfo, sidecar_path

    parts = {}
    for name in config_names:
        sidecar = sidecar_path(Path(run_dir) / f"best_{name}.keras")
        if sidecar.is_file():
            info = ModelInfo.from_json(sidecar.read_text(encoding="utf-8"))
            split = split_of_model(info, data, groups, comparison_dirs=(run_dir,))
            parts[name] = split.part_names(len(data.y))
    return parts


@dataclass(frozen=True)
class SeenCrops:
    """Which part of a kept model's split each crop of its data was in, found by the crop's
    file or by the screenshot box it was cut from, so that `predict` knows a crop it is given
    again either way.

    Attributes:
        files: `{resolved crop file: part}`.
        boxes: `{(screenshot SHA-256, xmin, ymin, xmax, ymax): part}`, from the data folder's
            extraction manifest (the same screenshot bytes and box give the same crop).
        labels: `{resolved crop file: its label in the model's data}` (a flat set's images
            are named by id, not label: the CSV says what they are).
    """

    files: dict[Path, str] = field(default_factory=dict)
    boxes: dict[tuple[str, int, int, int, int], str] = field(default_factory=dict)
    labels: dict[Path, str] = field(default_factory=dict)

    def label_of(self, crop: Any) -> str:
        """A crop's true label (`data_processing.inputs.Crop`): for a crop file of the
        model's data, the label that data gives it (a flat set's images are named by id; a
        corrected crop); else the crop's own (its file name, or its box's annotation)."""
        if crop.box is not None:
            return crop.label
        return self.labels.get(Path(crop.source).resolve(), crop.label)

    def part_of(self, source: str | os.PathLike, box: Sequence[int] | None) -> str:
        """The part of the crop in file `source` (`box` None) or of `box` in screenshot
        `source`; '' when the model's data does not hold it."""
        if box is None:
            return self.files.get(Path(source).resolve(), "")
        if not self.boxes:
            return ""
        source = Path(source).resolve()
        try:
            stat = source.stat()
        except OSError:
            return ""
        return self.boxes.get((_content_sha256(source, stat.st_mtime_ns, stat.st_size),
                               *map(int, box)), "")


@functools.lru_cache(maxsize=4)
def _content_sha256(source: Path, mtime_ns: int, size: int) -> str:
    """A screenshot's SHA-256 as the manifest records it ('' when it cannot be read); cached
    (by file, time and size: a changed file is hashed again) for the few boxes of one
    screenshot that `predict` classifies one after another."""
    import hashlib

    from toonvision.data_processing.extractor import screenshot_bytes

    try:
        return hashlib.sha256(screenshot_bytes(source)).hexdigest()
    except (OSError, ValueError):
        return ""


def seen_crops(info: ModelInfo, model_path: str | os.PathLike) -> SeenCrops:
    """The part (`train`, `validate`, `test`) of every crop of a kept model's data, by file
    and, for a data folder with an extraction manifest, by screenshot box.

    The comparison is the one the sidecar records, else the model's own folder when it holds
    a `comparison.json`; its data is read where that file says (labels only, no images).

    Returns:
        The parts; empty when the model's comparison or its data is not at hand.
    """
    from types import SimpleNamespace

    from toonvision.data_processing.dataset import select_for_task
    from toonvision.data_processing.manifest import MANIFEST_NAME, read_manifest
    from toonvision.labels import make_task
    from toonvision.model_utils.comparison.data_source import DataSource

    folders = [Path(info.split["comparison"])] if info.split else []
    folders.append(Path(model_path).parent)
    folder = next((item for item in folders if (item / SETTINGS_FILE).is_file()), None)
    if folder is None or (info.split is None and info.extra.get("run") is None):
        return SeenCrops()
    try:
        settings = ComparisonSettings.from_json((folder / SETTINGS_FILE).read_text("utf-8"))
        source = DataSource.of_comparison(settings)   # its CSV columns, its classes
        task = make_task(settings.task, settings.class_names)
        paths, labels, y = select_for_task(source.dataset(), task)
        data = SimpleNamespace(paths=paths, labels=labels, y=y, class_names=task.classes)
        groups = source.groups(settings.group_by, paths)
        split = split_of_model(info, data, groups, comparison_dirs=(folder,))
    except (OSError, ValueError):   # the data moved or changed: the parts are unknown
        return SeenCrops()
    if split.origin not in (RECORDED, COMPARISON) or split.warnings:
        return SeenCrops()
    names = split.part_names(len(y))
    files = {Path(path).resolve(): str(part) for path, part in zip(paths, names, strict=True)}
    boxes = {}
    manifest = None if source.is_flat else source.data_dir / MANIFEST_NAME
    if manifest is not None and manifest.is_file():
        try:
            for record in read_manifest(manifest):
                part = files.get((source.data_dir / record.crop).resolve())
                if part is not None:
                    boxes[(record.source_sha256, record.xmin, record.ymin, record.xmax,
                           record.ymax)] = part
        except (OSError, ValueError):   # a damaged manifest: the crop files still answer
            boxes = {}
    return SeenCrops(files, boxes, {Path(path).resolve(): str(label)
                                    for path, label in zip(paths, labels, strict=True)})

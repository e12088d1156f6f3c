"""The dataset doctor: which crops are mislabelled, duplicated, or leaking between splits.

A comparison of many re-split runs predicts every crop out of sample in about 40% of its
runs (its validation and test parts), which is what label-error finders need and users
otherwise make by hand with cross-validation. From a comparison folder and its data,
`diagnose` computes (nothing here draws; `data_visualization.doctor_page` does):

- per crop, the probabilities averaged over all its out-of-sample appearances in every run
  and configuration (`out_of_sample`), how often it appeared and how often it was wrong;
- a label-quality score per crop (cleanlab's `get_label_quality_scores`, self-confidence:
  the averaged probability of the given class) and cleanlab's `find_label_issues` flags,
  with the suggested label (the most probable class);
- "always wrong" crops: wrong in at least half of at least `MIN_APPEARANCES` appearances
  (the article's cat_20);
- near duplicates (`data_processing.duplicates`) and the leak: the share of each run's test
  crops that had a near duplicate in the same run's training part.

The CSV files beside the page are written by `doctor_tables` (label issues, duplicates, relabel).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from toonvision import ToonvisionError, defaults
from toonvision.data_processing.duplicates import (
    MAX_DISTANCE,
    ImageHashes,
    Pairs,
    clusters,
    exact_duplicate_groups,
    hash_images,
    leak_share,
    near_duplicate_pairs,
)
from toonvision.model_utils.comparison.predictions import PART_NAMES, Predictions, PredictionStore

MIN_APPEARANCES = defaults.DOCTOR_MIN_APPEARANCES
LEARNED_SHARE = defaults.DOCTOR_LEARNED_SHARE
_TEST = PART_NAMES.index("test")


@dataclass
class OutOfSample:
    """Per-crop predictions aggregated over runs and configurations.

    Attributes:
        probabilities: (N, classes) mean out-of-sample probabilities (NaN: never predicted).
        appearances: (N,) out-of-sample predictions of each crop, all configurations.
        errors: (N,) how many of those were wrong (most probable class not the given one).
        per_config: per configuration, (appearances, errors) arrays.
        parts: (runs, N) int8 part of each crop in each run (-1: train or unknown), from the
            first configuration (every configuration of a run shares its split).
        runs: the run numbers of the rows of `parts`.
        history: every appearance: `crop`, `config` (index), `run`, `part`, `predicted`,
            `given_probability` arrays, for the page's error histories.
        unmatched: stored predictions whose crop is not in the data any more.
    """

    probabilities: np.ndarray
    appearances: np.ndarray
    errors: np.ndarray
    per_config: dict[str, tuple[np.ndarray, np.ndarray]]
    parts: np.ndarray
    runs: list[int]
    history: dict[str, np.ndarray]
    unmatched: int = 0


def out_of_sample(predictions: Mapping[str, Predictions], ids: np.ndarray, y: np.ndarray,
                  num_classes: int) -> OutOfSample:
    """Averages the stored predictions of every crop over runs and configurations.

    Crops are matched by (id, true class): files with identical bytes and label share their
    statistics; an identical file under another label keeps its own.

    Args:
        predictions: per configuration, its stored predictions (`PredictionStore.read`).
        ids: (N,) the crops' ids (`dataset.crop_ids`).
        y: (N,) the crops' classes.
        num_classes: the number of classes.

    Returns:
        The aggregate; rows of the prediction files that match no crop are counted in
        `unmatched` and left out.
    """
    count = len(ids)
    key_of = {}
    for index, (crop_id, label) in enumerate(zip(ids.tolist(), np.asarray(y).tolist(),
                                                 strict=True)):
        key_of.setdefault((crop_id, label), []).append(index)
    sums = np.zeros((count, num_classes))
    appearances, errors = np.zeros(count, np.int64), np.zeros(count, np.int64)
    per_config, history_parts, unmatched = {}, [], 0
    runs = sorted({run for item in predictions.values() for run in item.runs()})
    parts = np.full((len(runs), count), -1, dtype=np.int8)
    run_row = {run: row for row, run in enumerate(runs)}
    for config_index, (name, item) in enumerate(predictions.items()):
        if len(item) and item.probabilities.shape[1] != num_classes:
            raise ToonvisionError(f"predictions of {name!r} have {item.probabilities.shape[1]} "
                                  f"classes, the comparison {num_classes}")
        rows, crops = [], []
        for row, key in enumerate(zip(item.ids.tolist(), item.y.tolist(), strict=True)):
            for crop in key_of.get(key, ()):
                rows.append(row)
                crops.append(crop)
        unmatched += len(item) - len(set(rows))
        rows, crops = np.asarray(rows, np.int64), np.asarray(crops, np.int64)
        probabilities = item.probabilities[rows]
        predicted = probabilities.argmax(axis=1) if len(rows) else np.zeros(0, np.int64)
        wrong = predicted != item.y[rows]
        np.add.at(sums, crops, probabilities)
        config_appearances = np.bincount(crops, minlength=count)
        config_errors = np.bincount(crops, weights=wrong, minlength=count).astype(np.int64)
        per_config[name] = (config_appearances, config_errors)
        appearances += config_appearances
        errors += config_errors
        if config_index == 0:
            parts[[run_row[run] for run in item.run[rows]], crops] = item.part[rows]
        history_parts.append({
            "crop": crops, "config": np.full(len(rows), config_index), "run": item.run[rows],
            "part": item.part[rows], "predicted": predicted,
            "given_probability": probabilities[np.arange(len(rows)), item.y[rows]]
            if len(rows) else np.zeros(0)})
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / appearances[:, None]
    mean[appearances == 0] = np.nan
    history = {key: np.concatenate([part[key] for part in history_parts])
               if history_parts else np.zeros(0) for key in
               ("crop", "config", "run", "part", "predicted", "given_probability")}
    return OutOfSample(mean, appearances, errors, per_config, parts, runs, history, unmatched)


def label_quality(y: np.ndarray, probabilities: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks labels with cleanlab, on the crops that were predicted out of sample.

    Args:
        y: (N,) given classes.
        probabilities: (N, classes) averaged out-of-sample probabilities (NaN rows: never
            predicted).

    Returns:
        (quality (N,) in [0, 1], NaN when never predicted; suggested class (N,), -1 when
        never predicted; is_issue (N,) bool, cleanlab's `find_label_issues`).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.asarray(y, dtype=np.int64)
    known = ~np.isnan(probabilities).any(axis=1)
    quality = np.full(len(y), np.nan)
    suggested = np.full(len(y), -1, dtype=np.int64)
    is_issue = np.zeros(len(y), dtype=bool)
    if not known.any():
        return quality, suggested, is_issue
    pred_probs = np.clip(probabilities[known], 1e-6, None)
    pred_probs = pred_probs / pred_probs.sum(axis=1, keepdims=True)
    labels = y[known]
    quality[known] = get_label_quality_scores(labels, pred_probs)
    suggested[known] = pred_probs.argmax(axis=1)
    if len(np.unique(labels)) == pred_probs.shape[1] and len(labels) > pred_probs.shape[1]:
        is_issue[known] = find_label_issues(labels, pred_probs, n_jobs=1)
    else:   # cleanlab needs every class among the labels; flag the confidently contradicted
        is_issue[known] = (suggested[known] != labels) & (quality[known] < 0.5)
    return quality, suggested, is_issue


def weak_models_note(oos: OutOfSample, y: np.ndarray) -> str | None:
    """A warning when the out-of-sample predictions come from models that learned little:
    they remove less than `LEARNED_SHARE` of the errors of always answering the most common
    class (accuracy counted over every appearance; a share of the errors rather than points,
    so that it means the same on a balanced and on a 95%-majority set). Confident learning
    reads a label as wrong where a model that learned the task disagrees with it; a model
    near chance disagrees everywhere. None when the models learned, or nothing was
    predicted."""
    total = oos.appearances.sum()
    if total == 0:
        return None
    accuracy = 1 - oos.errors.sum() / total
    majority = np.bincount(y, weights=oos.appearances).max() / total
    if majority >= 1 or (accuracy - majority) / (1 - majority) >= LEARNED_SHARE:
        return None
    return (f"the comparison's models are right on {accuracy:.1%} of their out-of-sample "
            f"predictions, against {majority:.1%} for always answering the most common class "
            f"(they remove less than {LEARNED_SHARE:.0%} of its errors): they have learned "
            "little, so their label-error and always-wrong flags say little about the labels "
            "(train more epochs or runs, then run the doctor again)")


@dataclass
class Diagnosis:
    """Everything the doctor found in one comparison (see the module notes).

    Attributes:
        run_dir: the comparison folder.
        source: where the data came from.
        names: each crop's id as its data source names it (crop path below the data
            folder, or the CSV's id).
        paths: the image files.
        raw_labels: each crop's raw label.
        y: (N,) given classes.
        class_names: the task's classes.
        configs: the configurations with predictions.
        oos: the aggregated out-of-sample predictions.
        quality, suggested, is_issue: see `label_quality`.
        always_wrong: (N,) wrong in at least half of at least `MIN_APPEARANCES` appearances.
        ranking: crop indices, most suspicious first (lowest quality; never predicted last).
        hashes: the crops' perceptual hashes.
        pairs: near-duplicate pairs.
        cluster: (N,) near-duplicate cluster per crop.
        exact_groups: groups of crops with identical pixels.
        leaks: per run, (test crops with a near duplicate in training, test crops).
        max_distance: the near-duplicate distance used.
        records: per crop, its extraction manifest record, or None.
        notes: what could not be done and why.
        model_parts: per kept model `best_<config>`, each crop's part (`train`, `validate`,
            `test`) in the split that model was trained on.
    """

    run_dir: Path
    source: str
    names: list[str]
    paths: list[Path]
    raw_labels: list[str]
    y: np.ndarray
    class_names: tuple[str, ...]
    configs: list[str]
    oos: OutOfSample
    quality: np.ndarray
    suggested: np.ndarray
    is_issue: np.ndarray
    always_wrong: np.ndarray
    ranking: np.ndarray
    hashes: ImageHashes
    pairs: Pairs
    cluster: np.ndarray
    exact_groups: list[np.ndarray]
    leaks: list[tuple[int, int]]
    max_distance: int = MAX_DISTANCE
    records: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model_parts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def leak(self) -> float | None:
        """The mean share of a run's test crops with a near duplicate in training."""
        shares = [leaky / tests for leaky, tests in self.leaks if tests]
        return float(np.mean(shares)) if shares else None

    def error_rate(self) -> np.ndarray:
        """(N,) errors / appearances (NaN when never predicted out of sample)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.oos.appearances > 0,
                            self.oos.errors / np.maximum(self.oos.appearances, 1), np.nan)


@dataclass
class ComparisonCrops:
    """The crops of a comparison, as it saw them (`comparison_crops`).

    Attributes:
        names: each crop's id as its data source names it.
        paths: the files.
        raw_labels: the raw labels.
        y: the classes.
        class_names: the task's classes.
        source: where they came from.
        records: per crop, its manifest record (None for a CSV set or an unlisted crop).
        runs: the complete runs of the comparison's log.
        model_parts: per kept model `best_<config>`, each crop's part in the split it was
            trained on (`provenance.kept_model_parts`).
    """

    names: list[str]
    paths: list[Path]
    raw_labels: list[str]
    y: np.ndarray
    class_names: tuple[str, ...]
    source: str
    records: list[Any]
    runs: list[int]
    model_parts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """The raw labels (as `TaskData.labels`, for `provenance.split_of_model`)."""
        return self.raw_labels


def comparison_crops(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                     labels_csv: str | os.PathLike | None = None,
                     images_dir: str | os.PathLike | None = None, id_column: str | None = None,
                     label_column: str | None = None) -> ComparisonCrops:
    """Loads the data a comparison ran on: its settings' source unless another is given.

    Raises:
        ToonvisionError: if `run_dir` is not a comparison folder, or the data's classes are
            not the comparison's.
    """
    from toonvision.data_processing.dataset import select_for_task
    from toonvision.data_processing.manifest import MANIFEST_NAME, read_manifest
    from toonvision.labels import make_task
    from toonvision.model_utils.comparison.data_source import DataSource
    from toonvision.model_utils.comparison.provenance import kept_model_parts
    from toonvision.model_utils.comparison.runner import Comparison

    comparison = Comparison.load(run_dir)
    settings = comparison.settings
    source = DataSource.of_comparison(settings)
    if labels_csv is not None:       # another flat set; the columns the comparison read
        source = DataSource(labels=Path(labels_csv),
                            images=None if images_dir is None else Path(images_dir),
                            id_column=id_column or settings.csv_columns.get("id_column"),
                            label_column=label_column or settings.csv_columns.get(
                                "label_column"))
    elif data_dir is not None:
        source = DataSource(data_dir=Path(data_dir))
    elif source.is_flat:             # the comparison's own CSV, with the columns given
        source = replace(source, id_column=id_column or source.id_column,
                         label_column=label_column or source.label_column)
    dataset = source.dataset()
    labels_csv, data_dir = source.labels, source.data_dir
    # For the `label` task the comparison's classes are the labels it covered: the data may
    # hold more (labels extracted since, or a flat set's labels that `compare --keep` left out).
    task = make_task(settings.task, settings.class_names)
    if list(task.classes) != list(settings.class_names):
        raise ToonvisionError(f"{dataset.source} gives the classes {list(task.classes)}, but "
                              f"{run_dir} compared {settings.class_names}: pass the data it "
                              "ran on (--data-dir, or --labels and --images)")
    paths, raw_labels, y = select_for_task(dataset, task)
    absent = [name for index, name in enumerate(task.classes) if not np.any(y == index)]
    if absent:
        raise ToonvisionError(f"{dataset.source} has no image of the classes {absent} that "
                              f"{run_dir} compared: pass the data it ran on (--data-dir, or "
                              "--labels and --images)")
    if labels_csv is not None:
        names, records = [path.stem for path in paths], [None] * len(paths)
    else:
        names = [Path(os.path.relpath(path, data_dir)).as_posix() for path in paths]
        by_crop = {record.crop: record for record in read_manifest(data_dir / MANIFEST_NAME)}
        records = [by_crop.get(name) for name in names]
    crops = ComparisonCrops(names, paths, raw_labels, y, tuple(task.classes), dataset.source,
                            records, comparison.completed_runs())
    groups = source.groups(settings.group_by, paths)
    crops.model_parts = kept_model_parts(run_dir, settings.config_names, crops, groups)
    return crops


def diagnose(run_dir: str | os.PathLike, names: Sequence[str], paths: Sequence[Path],
             raw_labels: Sequence[str], y: np.ndarray, class_names: Sequence[str],
             source: str = "", records: Sequence[Any] | None = None,
             max_distance: int = MAX_DISTANCE, runs: Sequence[int] | None = None,
             model_parts: Mapping[str, np.ndarray] | None = None) -> Diagnosis:
    """Runs every check of the doctor on one comparison's crops.

    Args:
        run_dir: the comparison folder (its `predictions_<config>.npzlog` files are read).
        names: each crop's id as its data source names it.
        paths: the crops' files, in the comparison's order.
        raw_labels: their raw labels.
        y: their classes.
        class_names: the task's classes.
        source: where the data came from (for the page).
        records: per crop, its manifest record or None (for the page).
        max_distance: the near-duplicate Hamming distance.
        runs: the runs to read (the runs in the log); default: every stored run.
        model_parts: per kept model, each crop's part in its split (`ComparisonCrops`).

    Returns:
        The diagnosis.
    """
    from toonvision.data_processing.dataset import crop_ids

    run_dir, y = Path(run_dir), np.asarray(y, dtype=np.int64)
    store = PredictionStore(run_dir)
    predictions = store.read_all(runs)
    notes = []
    if not any(len(item) for item in predictions.values()):
        notes.append(f"{run_dir} holds no per-crop predictions (a comparison made before they "
                     "were recorded, or with no finished run): label issues need them; near "
                     "duplicates are shown anyway")
    oos = out_of_sample(predictions, crop_ids(paths), y, len(class_names))
    if oos.unmatched:
        notes.append(f"{oos.unmatched} stored predictions belong to crops that are no longer "
                     "in the data (changed or removed since the comparison)")
    quality, suggested, is_issue = label_quality(y, oos.probabilities)
    error_rate = np.where(oos.appearances > 0, oos.errors / np.maximum(oos.appearances, 1), 0)
    always_wrong = (oos.appearances >= MIN_APPEARANCES) & (error_rate >= 0.5)
    ranking = np.lexsort((-error_rate, np.nan_to_num(quality, nan=np.inf)))
    hashes = hash_images(paths)
    notes.extend(f"not hashed: {message}" for message in hashes.skipped)
    pairs = near_duplicate_pairs(hashes, max_distance)
    train_masks = oos.parts < 0
    leaks = [leak_share(pairs, np.flatnonzero(train_masks[row]),
                        np.flatnonzero(oos.parts[row] == _TEST))
             for row in range(len(oos.runs))]
    return Diagnosis(
        run_dir=run_dir, source=source, names=list(names), paths=list(paths),
        raw_labels=list(raw_labels), y=y, class_names=tuple(class_names),
        configs=[name for name, item in predictions.items() if len(item)], oos=oos,
        quality=quality, suggested=suggested, is_issue=is_issue, always_wrong=always_wrong,
        ranking=ranking, hashes=hashes, pairs=pairs, cluster=clusters(len(paths), pairs),
        exact_groups=exact_duplicate_groups(hashes), leaks=leaks, max_distance=max_distance,
        records=list(records) if records is not None else [None] * len(paths), notes=notes,
        model_parts=dict(model_parts or {}),
    )

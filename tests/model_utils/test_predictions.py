"""The per-crop prediction store: compact, crash-safe, and exact on resume."""

import os

import numpy as np
import pytest

from toonvision import ToonvisionError
from toonvision.data_processing.dataset import crop_ids
from toonvision.model_utils.comparison.predictions import PART_NAMES, PredictionStore

CLASSES = 3


def _run(run, count=40, seed=None):
    """A run's split, ids, classes and probabilities of its validation and test parts."""
    generator = np.random.default_rng(run if seed is None else seed)
    order = generator.permutation(count)
    split = {"train": order[:24], "validate": order[24:32], "test": order[32:]}
    ids = np.arange(1000, 1000 + count, dtype=np.uint64)
    y = np.arange(count) % CLASSES
    probabilities = {name: generator.dirichlet(np.ones(CLASSES), len(split[name]))
                     for name in ("validate", "test")}
    return ids, y, split, probabilities


def test_a_run_reads_back_as_written(tmp_path):
    store = PredictionStore(tmp_path)
    ids, y, split, probabilities = _run(0)
    store.append("baseline", 0, ids, y, split, probabilities)
    read = store.read("baseline")
    assert store.configs() == ["baseline"] and read.runs() == [0] and len(read) == 16
    assert read.part_names().tolist() == ["validate"] * 8 + ["test"] * 8
    expected = np.concatenate([split["validate"], split["test"]])
    assert np.array_equal(read.ids, ids[expected]) and np.array_equal(read.y, y[expected])
    stored = np.concatenate([probabilities["validate"], probabilities["test"]])
    assert np.allclose(read.probabilities, stored, atol=1e-3)   # float16 on disk


def test_running_a_run_again_replaces_it_and_runs_can_be_filtered(tmp_path):
    store = PredictionStore(tmp_path)
    for run in range(3):
        store.append("optimized", run, *_run(run))
    again = _run(1, seed=99)
    store.append("optimized", 1, *again)
    read = store.read("optimized")
    assert read.runs() == [0, 1, 2] and len(read) == 3 * 16
    run_one = read.run == 1
    assert np.allclose(read.probabilities[run_one][:8], again[3]["validate"], atol=1e-3)
    assert store.read("optimized", runs=[0, 2]).runs() == [0, 2]


def test_a_torn_last_frame_is_dropped_and_cut_off_by_the_next_append(tmp_path):
    store = PredictionStore(tmp_path)
    store.append("baseline", 0, *_run(0))
    store.append("baseline", 1, *_run(1))
    path = store.path("baseline")
    size = path.stat().st_size
    os.truncate(path, size - 50)                      # a kill in the middle of run 1's write
    assert store.read("baseline").runs() == [0]
    store.append("baseline", 1, *_run(1))             # the resumed run
    assert store.read("baseline").runs() == [0, 1] and path.stat().st_size == size


def test_damage_before_the_last_frame_is_an_error_naming_the_file(tmp_path):
    store = PredictionStore(tmp_path)
    for run in range(2):
        store.append("baseline", run, *_run(run))
    data = bytearray(store.path("baseline").read_bytes())
    data[30] ^= 0xFF                                  # inside run 0's payload
    store.path("baseline").write_bytes(bytes(data))
    with pytest.raises(ToonvisionError, match="predictions_baseline.npzlog: damaged frame"):
        store.read("baseline")


def test_keep_runs_drops_runs_missing_from_the_log_and_duplicates(tmp_path):
    store = PredictionStore(tmp_path)
    for run in (0, 1, 1, 2):
        store.append("baseline", run, *_run(run))
    store.keep_runs([0, 1])
    assert store.read("baseline").runs() == [0, 1]
    size = store.path("baseline").stat().st_size
    store.keep_runs([0, 1])                            # already compact: untouched
    assert store.path("baseline").stat().st_size == size


def test_mismatched_shapes_and_unknown_parts_are_errors(tmp_path):
    store = PredictionStore(tmp_path)
    ids, y, split, probabilities = _run(0)
    with pytest.raises(ToonvisionError, match="part 'test' has 8 images"):
        store.append("baseline", 0, ids, y, split, {"test": probabilities["test"][:3]})
    with pytest.raises(ToonvisionError, match="unknown split part"):
        store.append("baseline", 0, ids, y, {"holdout": [0]}, {"holdout": np.ones((1, 3))})
    assert not store.path("baseline").exists() and "train" in PART_NAMES


def test_two_hundred_runs_of_a_thousand_crops_take_a_few_megabytes(tmp_path):
    generator = np.random.default_rng(0)
    ids = generator.integers(0, 2**63, 1000).astype(np.uint64)
    y = generator.integers(0, 2, 1000)
    store = PredictionStore(tmp_path)
    for run in range(200):
        order = generator.permutation(1000)
        split = {"validate": order[:200], "test": order[200:400]}
        probabilities = {name: np.stack([1 - p, p], axis=1) for name, p in
                         (("validate", generator.random(200)), ("test", generator.random(200)))}
        store.append("baseline", run, ids, y, split, probabilities)
    assert store.path("baseline").stat().st_size < 3_000_000
    assert len(store.read("baseline")) == 200 * 400


def test_crop_ids_follow_the_content_not_the_name(tmp_path):
    (tmp_path / "a.png").write_bytes(b"one")
    (tmp_path / "b.png").write_bytes(b"two")
    first = crop_ids([tmp_path / "a.png", tmp_path / "b.png"])
    (tmp_path / "a.png").rename(tmp_path / "renamed.png")
    assert crop_ids([tmp_path / "renamed.png"])[0] == first[0] and first[0] != first[1]
    assert first.dtype == np.uint64

"""Splits are stratified, reproducible, complete, and never move a file."""

import numpy as np
import pytest

from toonvision.data_processing.splits import balance_indices, materialize, stratified_split


def _labels():
    return np.array([0] * 118 + [1] * 100 + [2] * 46 + [3] * 7)


def test_split_is_a_partition():
    y = _labels()
    split = stratified_split(y, seed=1)
    joined = np.concatenate(list(split.values()))
    assert sorted(joined.tolist()) == list(range(len(y)))


def test_split_is_stratified_per_class():
    y = _labels()
    split = stratified_split(y, (0.6, 0.2, 0.2), seed=2)
    for class_index, total in enumerate(np.bincount(y)):
        counts = [np.sum(y[split[name]] == class_index) for name in ("train", "validate", "test")]
        for count, ratio in zip(counts, (0.6, 0.2, 0.2), strict=True):
            assert abs(count - ratio * total) <= 1


def test_split_is_reproducible_and_seed_dependent():
    y = _labels()
    first, again, other = (stratified_split(y, seed=s) for s in (5, 5, 6))
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["test"], other["test"])


def test_tiny_class_lands_in_train_first():
    split = stratified_split(np.array([0] * 10 + [1]), seed=0)
    assert 10 in split["train"]


@pytest.mark.parametrize("ratios", [(0.5, 0.5), (-0.1, 0.6, 0.5), (0, 0.5, 0.5)])
def test_bad_ratios(ratios):
    with pytest.raises(ValueError, match="ratios"):
        stratified_split(_labels(), ratios)


def test_undersample_cuts_to_rarest_and_keeps_only_given_indices():
    y = _labels()
    train = stratified_split(y, seed=0)["train"]
    balanced = balance_indices(train, y, "undersample", seed=0)
    counts = np.bincount(y[balanced])
    assert len(set(counts.tolist())) == 1 and counts[0] == np.bincount(y[train]).min()
    assert set(balanced.tolist()) <= set(train.tolist())


def test_oversample_repeats_up_to_most_common():
    y = _labels()
    train = stratified_split(y, seed=0)["train"]
    balanced = balance_indices(train, y, "oversample", seed=3)
    assert np.bincount(y[balanced]).tolist() == [np.bincount(y[train]).max()] * 4
    assert set(balanced.tolist()) == set(train.tolist())


def test_unknown_balance_method():
    with pytest.raises(ValueError, match="balance"):
        balance_indices([0, 1], [0, 1], "smote")


def test_materialize_builds_layout_with_links_and_refuses_existing(tmp_path):
    sources = []
    for index in range(10):
        path = tmp_path / "crops" / f"c_{index}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * index)
        sources.append(path)
    y = np.array([0] * 5 + [1] * 5)
    split = stratified_split(y, seed=0)
    out = materialize(tmp_path / "layout", sources, ("cog", "toon"), y, split)
    files = sorted(out.rglob("*.png"))
    assert len(files) == 10
    assert {path.parent.parent.name for path in files} == {"train", "validate", "test"}
    assert all(path.parent.name in ("cog", "toon") for path in files)
    assert all(path.exists() for path in sources)  # nothing moved
    with pytest.raises(FileExistsError):
        materialize(out, sources, ("cog", "toon"), y, split)
    assert len(sorted(out.rglob("*.png"))) == 10

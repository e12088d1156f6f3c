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


# ------------------------------------------------------------------------------------------
# Grouped splits: groups stay whole, parts stay stratified


def _grouped_labels(seed=0):
    """Items in groups of 1-5, each group mostly of one class."""
    generator = np.random.default_rng(seed)
    y, groups = [], []
    for group in range(120):
        size = int(generator.integers(1, 6))
        main = int(generator.integers(0, 3))
        y.extend(main if generator.random() < 0.8 else int(generator.integers(0, 3))
                 for _ in range(size))
        groups.extend([f"g{group}"] * size)
    return np.array(y), np.array(groups)


def test_grouped_split_keeps_groups_whole_and_classes_near_the_ratios():
    from toonvision.data_processing.splits import grouped_stratified_split

    y, groups = _grouped_labels()
    split = grouped_stratified_split(y, groups, (0.6, 0.2, 0.2), seed=4)
    joined = np.concatenate(list(split.values()))
    assert sorted(joined.tolist()) == list(range(len(y)))
    part_of = {}
    for name, indices in split.items():
        for group in set(groups[indices].tolist()):
            assert part_of.setdefault(group, name) == name, f"group {group} straddles parts"
    for class_index, total in enumerate(np.bincount(y)):
        for name, ratio in zip(("train", "validate", "test"), (0.6, 0.2, 0.2), strict=True):
            share = np.sum(y[split[name]] == class_index) / total
            assert abs(share - ratio) < 0.05, (class_index, name, share)


def test_grouped_split_is_reproducible_and_seed_dependent_and_none_is_the_plain_split():
    from toonvision.data_processing.splits import grouped_stratified_split

    y, groups = _grouped_labels()
    first, again, other = (grouped_stratified_split(y, groups, seed=s) for s in (5, 5, 6))
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["test"], other["test"])
    plain = grouped_stratified_split(y, None, seed=5)
    assert all(np.array_equal(plain[k], stratified_split(y, seed=5)[k]) for k in plain)


def test_grouped_split_needs_one_group_per_item():
    from toonvision.data_processing.splits import grouped_stratified_split

    with pytest.raises(ValueError, match="one group per item"):
        grouped_stratified_split([0, 1, 0], ["a", "b"])


def test_split_table_records_the_groups(tmp_path):
    from toonvision.data_processing.splits import split_table

    y = np.array([0, 1])
    plain = split_table([tmp_path / "a.png", tmp_path / "b.png"], ["x", "y"], ("x", "y"), y,
                        {"train": np.array([0]), "test": np.array([1])}, root=tmp_path)
    grouped = split_table([tmp_path / "a.png", tmp_path / "b.png"], ["x", "y"], ("x", "y"), y,
                          {"train": np.array([0]), "test": np.array([1])}, root=tmp_path,
                          groups=["s1", "s2"])
    assert plain.splitlines() == ["path,label,class,split", "a.png,x,x,train", "b.png,y,y,test"]
    assert grouped.splitlines()[0] == "path,label,class,split,group"
    assert grouped.splitlines()[2] == "b.png,y,y,test,s2"


def test_split_command_groups_by_screenshot_and_by_csv_column(tmp_path, write_screenshot,
                                                              write_flat_set, capsys):
    import csv

    from toonvision.cli import main
    from toonvision.data_processing.extract import extract

    for shot in range(12):
        boxes = [("toon_dog" if (shot + box) % 2 else "cog_bb_flunky", 4 + 20 * box, 4,
                  20 + 20 * box, 40) for box in range(3)]
        write_screenshot(tmp_path / "shots", f"shot_{shot}", boxes, seed=shot)
    list(extract(tmp_path / "shots", tmp_path / "data"))
    assert main(["split", "--data-dir", str(tmp_path / "data"), "--group-by", "screenshot",
                 "--out", str(tmp_path / "split.csv")]) == 0
    assert "grouped by screenshot: 12 groups" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "split.csv").open()))
    assert len(rows) == 36 and {len({row["split"] for row in rows if row["group"] == group})
                                for group in {row["group"] for row in rows}} == {1}

    generator = np.random.default_rng(0)
    items = [(f"p{index}", "Water" if index % 2 else "Fire",
              generator.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for index in range(20)]
    labels, images = write_flat_set(tmp_path / "flat", items)
    with labels.open("w") as handle:   # a scene column: five images per scene
        handle.write("Id,label,scene\n" + "".join(f"{image_id},{label},s{index // 5}\n"
                                                  for index, (image_id, label, _) in
                                                  enumerate(items)))
    assert main(["split", "--labels", str(labels), "--images", str(images), "--task", "label",
                 "--group-column", "scene", "--out", str(tmp_path / "flat.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "flat.csv").open()))
    assert {row["group"] for row in rows} == {f"scene:s{index}" for index in range(4)}
    assert main(["split", "--labels", str(labels), "--images", str(images), "--task", "label",
                 "--group-by", "screenshot"]) == 2


def test_real_card_photos_are_never_split_and_classes_stay_near_60_20_20(shared_data,
                                                                          tmp_path):
    from toonvision.data_processing.dataset import from_crops, select_for_task
    from toonvision.data_processing.extract import extract
    from toonvision.data_processing.splits import grouped_stratified_split, screenshot_groups
    from toonvision.labels import make_task

    list(extract(shared_data / "cards_voc", tmp_path / "data"))
    dataset = from_crops(tmp_path / "data")
    paths, _, y = select_for_task(dataset, make_task("label", dataset.labels))
    groups = screenshot_groups(paths, tmp_path / "data")
    assert len(set(groups.tolist())) == 363 and len(y) == 670   # several cards per photo
    for seed in range(3):
        split = grouped_stratified_split(y, groups, (0.6, 0.2, 0.2), seed)
        parts = [set(groups[split[name]].tolist()) for name in ("train", "validate", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        for class_index, total in enumerate(np.bincount(y)):
            for name, ratio in zip(("train", "validate", "test"), (0.6, 0.2, 0.2),
                                   strict=True):
                share = np.sum(y[split[name]] == class_index) / total
                assert abs(share - ratio) < 0.03, (seed, class_index, name, share)

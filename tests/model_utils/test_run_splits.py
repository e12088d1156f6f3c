"""Tests of the one place that decides each comparison run's split (`run_splits.split_for_run`),
grouped (`compare --group-by screenshot|duplicates`, `--group-column`) and not.

The comparisons are driven by the fake trainers of conftest.py (no Keras), which record the
split they were given, so that every run can be checked crop by crop.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS, TASK_DATA, FakeTrainer, RecordingTrainer, fake_settings

from toonvision import ToonvisionError
from toonvision.model_utils.comparison.run_splits import split_for_run
from toonvision.model_utils.comparison.runlog import LOG_FILE, read_log
from toonvision.model_utils.comparison.runner import Comparison
from toonvision.model_utils.comparison.settings import plan_comparison
from toonvision.model_utils.comparison.stored_settings import (
    SETTINGS_FILE,
    ComparisonSettings,
    groups_fingerprint,
)

PARTS = ("train", "validate", "test")
RATIOS = (0.6, 0.2, 0.2)


def screenshots(count: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Classes and screenshots of crops: 1 to 6 crops per screenshot, mostly of one class."""
    generator = np.random.default_rng(seed)
    y, groups = [], []
    for shot in range(count):
        size = int(generator.integers(1, 7))
        main = int(generator.integers(0, 3))
        y.extend(main if generator.random() < 0.8 else int(generator.integers(0, 3))
                 for _ in range(size))
        groups.extend([f"shot{shot}"] * size)
    return np.array(y), np.array(groups, dtype=object)


def grouped_settings(y: np.ndarray, groups: np.ndarray, runs: int = 20,
                     **changes) -> ComparisonSettings:
    return fake_settings(runs, num_images=len(y), group_by="screenshot",
                         groups_fingerprint=groups_fingerprint(groups), **changes)


def assert_groups_whole(split: dict[str, np.ndarray], groups: np.ndarray, size: int) -> None:
    """The parts cover every item once, and no group has items in two parts."""
    assert sorted(np.concatenate([split[name] for name in PARTS]).tolist()) == list(range(size))
    seen = [set(groups[split[name]].tolist()) for name in PARTS]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


def test_grouped_runs_never_split_a_screenshot_and_keep_class_shares_near_60_20_20():
    y, groups = screenshots()
    plain = split_for_run(fake_settings(1, num_images=len(y)), y, 0)[1]
    assert set(groups[plain["train"]]) & set(groups[plain["test"]])   # what grouping prevents
    settings = grouped_settings(y, groups)
    tests = []
    for run in range(settings.runs):
        split_seed, split, folds = split_for_run(settings, y, run, groups)
        assert split_seed == run and folds == {}
        assert_groups_whole(split, groups, len(y))
        for class_index, total in enumerate(np.bincount(y)):
            for name, ratio in zip(PARTS, RATIOS, strict=True):
                share = np.sum(y[split[name]] == class_index) / total
                assert abs(share - ratio) < 0.04, (run, class_index, name, share)
        tests.append(split["test"])
    assert len({tuple(test) for test in tests}) == settings.runs   # a fresh split per run
    again = split_for_run(settings, y, 7, groups)[1]
    assert all(np.array_equal(again[name], split_for_run(settings, y, 7, groups)[1][name])
               for name in PARTS)


def test_grouped_runs_balance_only_the_training_part():
    y, groups = screenshots()
    settings = grouped_settings(y, groups, balance="undersample")
    plain = split_for_run(grouped_settings(y, groups), y, 3, groups)[1]
    _, split, _ = split_for_run(settings, y, 3, groups)
    assert len(set(np.bincount(y[split["train"]]).tolist())) == 1
    assert set(split["train"]) <= set(plain["train"])
    assert all(np.array_equal(split[name], plain[name]) for name in ("validate", "test"))


def test_grouped_cross_validation_tests_every_crop_once_per_repetition_groups_whole():
    y, groups = screenshots()
    settings = grouped_settings(y, groups, runs=2, cv=5)
    for repetition in range(2):
        tested = []
        for fold in range(5):
            split_seed, split, folds = split_for_run(settings, y, repetition * 5 + fold, groups)
            assert split_seed == repetition and folds == {"repetition": repetition,
                                                          "fold": fold}
            assert_groups_whole(split, groups, len(y))
            assert len(split["validate"]) == pytest.approx(len(y) * 0.2, rel=0.25)
            shares = np.bincount(y[split["test"]], minlength=3) / np.bincount(y)
            assert np.all(np.abs(shares - 0.2) < 0.06), shares     # stratified as groups allow
            tested.append(split["test"])
        assert sorted(np.concatenate(tested).tolist()) == list(range(len(y)))
    first = split_for_run(settings, y, 0, groups)[1]["test"]
    assert not np.array_equal(first, split_for_run(settings, y, 5, groups)[1]["test"])


def test_groups_that_do_not_match_the_settings_are_refused():
    y, groups = screenshots(30)
    settings = grouped_settings(y, groups)
    with pytest.raises(ToonvisionError, match="group_by screenshot.*no groups were given"):
        split_for_run(settings, y, 0)
    with pytest.raises(ToonvisionError, match="does not keep groups whole"):
        split_for_run(fake_settings(2, num_images=len(y)), y, 0, groups)
    with pytest.raises(ToonvisionError, match="one group per image"):
        split_for_run(settings, y, 0, groups[:-1])
    moved = groups.copy()
    moved[0] = "another screenshot"
    with pytest.raises(ToonvisionError, match="groups_fingerprint differs"):
        split_for_run(settings, y, 0, moved)
    with pytest.raises(ToonvisionError, match="needs at least 5 groups; there are 3"):
        split_for_run(grouped_settings(y, np.array(["a", "b", "c"] * 10, dtype=object),
                                       runs=1, cv=5), np.arange(30) % 2, 0,
                      np.array(["a", "b", "c"] * 10, dtype=object))


def test_group_by_names_are_checked_with_a_did_you_mean():
    with pytest.raises(ToonvisionError, match=r"unknown grouping 'screenshots' \(did you mean "
                                              r"'screenshot'\?\)"):
        plan_comparison({"group_by": "screenshots"})
    with pytest.raises(ToonvisionError, match="unknown grouping 'column:'"):
        fake_settings(2, group_by="column:")
    assert plan_comparison({"group_by": "column:scene"}).group_by == "column:scene"
    assert plan_comparison().group_by == "none"


def test_a_comparison_json_written_before_group_by_existed_still_resumes(tmp_path):
    """comparison.json of an older version has no group_by: it was an ungrouped comparison."""
    out_dir = tmp_path / "out"
    for _ in Comparison.start(out_dir, fake_settings(2)).run(TASK_DATA, CONFIGS,
                                                             trainer_factory=FakeTrainer):
        pass
    stored = json.loads((out_dir / SETTINGS_FILE).read_text())
    assert (stored.pop("group_by"), stored.pop("groups_fingerprint")) == ("none", "")
    (out_dir / SETTINGS_FILE).write_text(json.dumps(stored, indent=2))
    old = ComparisonSettings.from_json((out_dir / SETTINGS_FILE).read_text())
    assert (old.group_by, old.groups_fingerprint) == ("none", "")
    comparison = Comparison.start(out_dir, fake_settings(3), resume=True)
    for _ in comparison.run(TASK_DATA, CONFIGS, trainer_factory=FakeTrainer):
        pass
    assert sorted({record.run for record in read_log(out_dir / LOG_FILE)[0]}) == [0, 1, 2]
    assert plan_comparison(settings_file=out_dir / SETTINGS_FILE).group_by == "none"


# ------------------------------------------------------------------------------------------
# The command: compare --group-by, on extracted crops with several objects per screenshot


def extracted_crops(tmp_path: Path, write_screenshot, shots: int = 12) -> Path:
    """Extracts 3 crops from each of `shots` screenshots; returns the data folder."""
    from toonvision.data_processing.extract import extract

    for shot in range(shots):
        boxes = [("toon_dog" if (shot + box) % 2 else "cog_bb_flunky", 4 + 20 * box, 4,
                  20 + 20 * box, 40) for box in range(3)]
        write_screenshot(tmp_path / "shots", f"shot_{shot}", boxes, seed=shot)
    list(extract(tmp_path / "shots", tmp_path / "data"))
    return tmp_path / "data"


def test_compare_group_by_screenshot_keeps_every_screenshot_in_one_part_and_resumes(
        tmp_path, monkeypatch, capsys, write_screenshot):
    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main
    from toonvision.commands._common import task_data_from_args
    from toonvision.data_processing.splits import screenshot_groups

    monkeypatch.setattr(model_utils, "Trainer", RecordingTrainer)
    RecordingTrainer.made = []
    data_dir = extracted_crops(tmp_path, write_screenshot)
    out_dir = tmp_path / "out"
    common = ["compare", "--data-dir", str(data_dir), "--image-size", "48", "48", "--epochs",
              "1", "--workers", "1", "--no-tracking", "--cache-dir", str(tmp_path / "cache"),
              "--out", str(out_dir)]
    assert main([*common, "--group-by", "screenshot", "--runs", "2"]) == 0
    assert "grouped by screenshot: 12 groups" in capsys.readouterr().err
    stored = json.loads((out_dir / SETTINGS_FILE).read_text())
    assert stored["group_by"] == "screenshot" and len(stored["groups_fingerprint"]) == 32
    sidecar = json.loads((out_dir / "best_baseline.keras.json").read_text())
    assert sidecar["extra"]["group_by"] == "screenshot"

    # What the trainer was given: no screenshot's crops in two parts, in any run.
    from toonvision.cli import build_parser

    args = build_parser().parse_args([*common, "--group-by", "screenshot"])
    args.task, args.image_size = "binary", [48, 48]
    task_data = task_data_from_args(args, show_progress=False)
    groups = screenshot_groups(task_data.paths, data_dir)
    assert len(task_data) == 36 and len(set(groups)) == 12
    settings = Comparison.load(out_dir).settings
    for trainer in RecordingTrainer.made:
        assert [seed for seed, _ in trainer.splits] == [0, 1]
        for run, (_, split) in enumerate(trainer.splits):
            assert_groups_whole(split, groups, len(groups))
            again = split_for_run(settings, task_data.y, run, groups)[1]
            assert all(np.array_equal(split[name], again[name]) for name in PARTS)

    assert main([*common, "--group-by", "screenshot", "--runs", "3", "--resume"]) == 0
    assert len(read_log(out_dir / LOG_FILE)[0]) == 6
    capsys.readouterr()
    assert main([*common, "--runs", "3", "--resume"]) == 2   # ungrouped now
    error = capsys.readouterr().err
    assert 'group_by: "screenshot" there, "none" now' in error
    assert main([*common, "--group-by", "duplicates", "--runs", "3", "--resume"]) == 2
    assert 'group_by: "screenshot" there, "duplicates" now' in capsys.readouterr().err

    # A manifest that now says another screenshot for a crop: another grouping, refused.
    manifest = data_dir / "manifest.csv"
    rows = list(csv.DictReader(manifest.open(newline="")))
    rows[0]["source_sha256"] = rows[-1]["source_sha256"]
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    assert main([*common, "--group-by", "screenshot", "--runs", "3", "--resume"]) == 2
    assert "groups_fingerprint:" in capsys.readouterr().err
    assert len(read_log(out_dir / LOG_FILE)[0]) == 6


def test_compare_takes_group_by_from_a_settings_file_and_group_column_for_csv_sets(
        tmp_path, monkeypatch, capsys, write_screenshot, write_flat_set):
    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main

    monkeypatch.setattr(model_utils, "Trainer", RecordingTrainer)
    RecordingTrainer.made = []
    data_dir = extracted_crops(tmp_path, write_screenshot)
    engine = ["--workers", "1", "--no-tracking", "--cache-dir", str(tmp_path / "cache")]
    study = tmp_path / "study.toml"
    study.write_text('group_by = "screenshot"\nruns = 2\nepochs = 1\nimage_size = [48, 48]\n')
    assert main(["compare", "--data-dir", str(data_dir), "--settings", str(study), *engine,
                 "--out", str(tmp_path / "from-file")]) == 0
    assert json.loads((tmp_path / "from-file" / SETTINGS_FILE).read_text())["group_by"] == \
        "screenshot"
    study.write_text('group_by = "screenshots"\n')
    assert main(["compare", "--data-dir", str(data_dir), "--settings", str(study), *engine,
                 "--out", str(tmp_path / "bad")]) == 2
    assert "unknown grouping 'screenshots' (did you mean 'screenshot'?)" in \
        capsys.readouterr().err
    assert main(["compare", "--data-dir", str(data_dir), "--group-column", "scene", *engine,
                 "--out", str(tmp_path / "no-csv")]) == 2
    assert "needs a flat set (--labels CSV --images DIR)" in capsys.readouterr().err

    generator = np.random.default_rng(0)
    items = [(f"p{index}", "Water" if index % 2 else "Fire",
              generator.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for index in range(30)]
    labels, images = write_flat_set(tmp_path / "flat", items)
    with labels.open("w") as handle:   # a scene column: three images per scene
        handle.write("Id,label,scene\n" + "".join(f"{image_id},{label},s{index // 3}\n"
                                                  for index, (image_id, label, _) in
                                                  enumerate(items)))
    RecordingTrainer.made = []
    flat = ["compare", "--labels", str(labels), "--images", str(images), "--task", "label",
            "--image-size", "8", "8", "--configs", "mlp", "--runs", "2", "--epochs", "1", *engine]
    assert main([*flat, "--group-column", "scene", "--out", str(tmp_path / "scenes")]) == 0
    assert "grouped by column scene: 10 groups" in capsys.readouterr().err
    assert json.loads((tmp_path / "scenes" / SETTINGS_FILE).read_text())["group_by"] == \
        "column:scene"
    scenes = np.array([f"s{index // 3}" for index in range(30)], dtype=object)
    for _, split in RecordingTrainer.made[0].splits:
        assert_groups_whole(split, scenes, 30)
    assert main([*flat, "--group-column", "scene", "--group-by", "duplicates",
                 "--out", str(tmp_path / "both")]) == 2
    assert "instead of --group-by" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# Real photos: several cards per photo


def test_real_card_photos_stay_whole_in_grouped_runs_and_folds(shared_data, tmp_path):
    from toonvision.data_processing.dataset import from_crops, select_for_task
    from toonvision.data_processing.extract import extract
    from toonvision.data_processing.splits import screenshot_groups
    from toonvision.labels import make_task

    list(extract(shared_data / "cards_voc", tmp_path / "data"))
    dataset = from_crops(tmp_path / "data")
    paths, _, y = select_for_task(dataset, make_task("label", dataset.labels))
    groups = screenshot_groups(paths, tmp_path / "data")
    for settings in (grouped_settings(y, groups, runs=5), grouped_settings(y, groups, runs=1,
                                                                           cv=5)):
        tested = []
        for run in range(settings.run_count):
            split = split_for_run(settings, y, run, groups)[1]
            assert_groups_whole(split, groups, len(y))
            tested.append(split["test"])
            for class_index, total in enumerate(np.bincount(y)):
                share = np.sum(y[split["test"]] == class_index) / total
                assert abs(share - 0.2) < 0.03, (settings.cv, run, class_index, share)
        if settings.cv:
            assert sorted(np.concatenate(tested).tolist()) == list(range(len(y)))

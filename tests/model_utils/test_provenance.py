"""Which crops a kept model saw (`comparison.provenance`): the report of a comparison's best
model evaluates exactly that run's test part, and reproduces its recorded test accuracy and
loss, for plain, grouped, balanced and cross-validated comparisons."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from toonvision import cli  # noqa: E402
from toonvision.data_processing.dataset import from_crops, select_for_task  # noqa: E402
from toonvision.labels import make_task  # noqa: E402
from toonvision.model_utils.comparison.provenance import (  # noqa: E402
    SplitRecord,
    split_of_model,
)
from toonvision.model_utils.comparison.run_splits import split_for_run  # noqa: E402
from toonvision.model_utils.comparison.stored_settings import ComparisonSettings  # noqa: E402
from toonvision.model_utils.training.model_io import ModelInfo  # noqa: E402

SIZE = ("48", "48")   # the article's CNN needs at least 44 pixels a side


class Data:
    """The crops of a data folder as a comparison loads them (paths, labels, y, classes)."""

    def __init__(self, data_dir: Path) -> None:
        dataset = from_crops(data_dir)
        task = make_task("binary", dataset.labels)
        self.paths, self.labels, self.y = select_for_task(dataset, task)
        self.class_names = task.classes


def compare_and_report(tmp_path: Path, capsys, *flags: str) -> tuple[dict, dict, Path]:
    """Runs a tiny `compare` with `flags`, then `report` on its kept model.

    Returns:
        The kept run's record, the report's metrics.json and the comparison folder.
    """
    run_dir = tmp_path / "runs"
    common = ["--data-dir", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache")]
    status = cli.main(["compare", *common, "--image-size", *SIZE, "--configs", "baseline",
                       "--epochs", "1", "--workers", "1", "--no-tracking", "--out",
                       str(run_dir), *flags])
    assert status == 0, capsys.readouterr().err
    out = tmp_path / "report"
    status = cli.main(["report", str(run_dir / "best_baseline.keras"), *common, "--out",
                       str(out), "--samples", "1", "--filters", "1"])
    assert status == 0, capsys.readouterr().err
    record = json.loads((run_dir / "best_baseline.json").read_text(encoding="utf-8"))
    return record, json.loads((out / "metrics.json").read_text(encoding="utf-8")), run_dir


def assert_reproduces_the_run(record: dict, metrics: dict, run_dir: Path,
                              data_dir: Path, groups=None) -> None:
    """The report tested exactly the run's test crops and scored them as the run did."""
    settings = ComparisonSettings.from_json((run_dir / "comparison.json").read_text("utf-8"))
    data = Data(data_dir)
    test = split_for_run(settings, data.y, record["run"], groups)[1]["test"]
    assert sorted(crop["image"] for crop in metrics["crops"]) == \
        sorted(data.paths[index].name for index in test)
    assert metrics["accuracy"] == pytest.approx(record["test_metrics"]["accuracy"], rel=1e-6)
    assert metrics["loss"] == pytest.approx(record["test_metrics"]["loss"], rel=1e-5)
    assert metrics["split"]["origin"] == "recorded"
    assert metrics["split"]["run"] == record["run"]
    assert metrics["split"]["split_seed"] == record["split_seed"]


def test_report_of_a_plain_comparisons_model_reproduces_its_test_metrics(
        tmp_path: Path, capsys, write_crops) -> None:
    write_crops(tmp_path / "data", ["cog_bb_flunky", "toon_dog"] * 12, size=(48, 16))
    record, metrics, run_dir = compare_and_report(tmp_path, capsys, "--runs", "2",
                                                  "--seed", "5")
    assert_reproduces_the_run(record, metrics, run_dir, tmp_path / "data")
    assert set(metrics) >= {"accuracy", "loss", "macro_f1", "per_class", "crops", "split"}
    assert sum(item["support"] for item in metrics["per_class"].values()) == \
        record["split_sizes"]["test"]
    sidecar = json.loads((run_dir / "best_baseline.keras.json").read_text(encoding="utf-8"))
    assert sidecar["split"]["seed"] == 5 and sidecar["split"]["comparison"] == \
        str(run_dir.resolve())
    # predict says which part of the model's split each known crop was in, and warns.
    capsys.readouterr()
    status = cli.main(["predict", str(run_dir / "best_baseline.keras"),
                       str(tmp_path / "data" / "unsorted"), "--format", "csv"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    parts = Counter(row["part"] for row in rows)
    assert parts == Counter(record["split_sizes"])
    assert {row["source"].rsplit("/", 1)[-1] for row in rows if row["part"] == "test"} == \
        {crop["image"] for crop in metrics["crops"]}
    assert f"warning: {record['split_sizes']['train']} of these crops were in the model's " \
        "training part" in captured.err


def test_report_of_a_cross_validated_comparisons_model_tests_its_fold(
        tmp_path: Path, capsys, write_crops) -> None:
    """After `compare --cv K` the report's test crops are the kept fold's test part, not a
    plain re-split by the recorded seed (which holds crops the model trained on)."""
    write_crops(tmp_path / "data", ["cog_bb_flunky", "toon_dog"] * 15, size=(48, 16))
    record, metrics, run_dir = compare_and_report(tmp_path, capsys, "--runs", "1", "--cv",
                                                  "3")
    assert_reproduces_the_run(record, metrics, run_dir, tmp_path / "data")
    assert metrics["split"]["fold"] == record["fold"] and metrics["split"]["cv"] == 3


def test_report_of_a_balanced_comparisons_model_reproduces_its_test_metrics(
        tmp_path: Path, capsys, write_crops) -> None:
    write_crops(tmp_path / "data", ["cog_bb_flunky"] * 20 + ["toon_dog"] * 10, size=(48, 16))
    record, metrics, run_dir = compare_and_report(tmp_path, capsys, "--runs", "2",
                                                  "--balance", "undersample")
    assert_reproduces_the_run(record, metrics, run_dir, tmp_path / "data")
    assert metrics["split"]["balance"] == "undersample"


def test_report_of_a_grouped_comparisons_model_reproduces_its_test_metrics(
        tmp_path: Path, capsys, write_screenshot) -> None:
    from toonvision.data_processing.extract import extract
    from toonvision.data_processing.splits import screenshot_groups

    for shot in range(10):
        boxes = [("toon_dog" if (shot + box) % 2 else "cog_bb_flunky", 4 + 20 * box, 4,
                  20 + 20 * box, 40) for box in range(3)]
        write_screenshot(tmp_path / "shots", f"shot_{shot}", boxes, seed=shot)
    list(extract(tmp_path / "shots", tmp_path / "data"))
    record, metrics, run_dir = compare_and_report(tmp_path, capsys, "--runs", "2",
                                                  "--group-by", "screenshot")
    groups = screenshot_groups(Data(tmp_path / "data").paths, tmp_path / "data")
    assert_reproduces_the_run(record, metrics, run_dir, tmp_path / "data", groups)
    assert metrics["split"]["group_by"] == "screenshot"

    # predict on the screenshots themselves knows each box's part, as on its crop file:
    # the same screenshot bytes and box are the crop the model saw (extraction manifest).
    def parts(*paths: Path) -> dict[tuple[str, str], str]:
        capsys.readouterr()
        status = cli.main(["predict", str(run_dir / "best_baseline.keras"),
                           *map(str, paths), "--format", "csv"])
        captured = capsys.readouterr()
        assert status == 0, captured.err
        return {(row["source"], row["xmin"]): row["part"]
                for row in csv.DictReader(io.StringIO(captured.out))}, captured.err

    by_box, err = parts(tmp_path / "shots")
    assert Counter(by_box.values()) == Counter(record["split_sizes"])
    assert f"warning: {record['split_sizes']['train']} of these crops were in the model's " \
        "training part" in err and "accepted crops it never trained on (validate, test)" in err
    from toonvision.data_processing.manifest import read_manifest

    by_crop, _ = parts(tmp_path / "data" / "unsorted")
    part_of_crop = {Path(source).name: part for (source, _), part in by_crop.items()}
    for item in read_manifest(tmp_path / "data" / "manifest.csv"):
        box_part = by_box[(str(Path(item.source).resolve()), str(item.xmin))]
        assert box_part == part_of_crop[Path(item.crop).name] != ""
    # report --inputs on the same screenshots warns that its metrics are no test.
    status = cli.main(["report", str(run_dir / "best_baseline.keras"), "--inputs",
                       str(tmp_path / "shots"), "--out", str(tmp_path / "inputs-report"),
                       "--samples", "1", "--filters", "1", "--explain", "0"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"warning: {record['split_sizes']['train']} of these 30 inputs were in the " \
        "model's training part" in captured.err
    # A screenshot changed since extraction is new data: no part.
    changed = tmp_path / "changed"
    write_screenshot(changed, "shot_0", [("toon_dog", 4, 4, 20, 40)], seed=99)
    assert set(parts(changed)[0].values()) == {""}


def fake_data(count: int = 40) -> Data:
    data = Data.__new__(Data)
    data.paths = [Path(f"crop_{index}.png") for index in range(count)]
    data.labels = ["cog_bb_flunky" if index % 2 else "toon_dog" for index in range(count)]
    data.y = np.array([index % 2 for index in range(count)])
    data.class_names = ("cog", "toon")
    return data


def cv_settings(data: Data) -> ComparisonSettings:
    from toonvision.model_utils.comparison.stored_settings import data_fingerprint

    return ComparisonSettings(
        source="data", task="binary", class_names=["cog", "toon"], image_size=[48, 48],
        ratios=[0.6, 0.2, 0.2], seed=0, configs=[{"name": "baseline"}], runs=2, cv=5,
        data_fingerprint=data_fingerprint(data.paths, data.labels, data.y, data.class_names),
        num_images=len(data.y))


def test_a_recorded_split_is_the_runs_split_and_a_plain_resplit_is_not() -> None:
    """The bug this fixes: fold 3 of a 5-fold comparison, re-split by its seed alone, calls
    crops "test" that were in the model's training part."""
    data = fake_data(100)
    settings = cv_settings(data)
    info = ModelInfo(config="baseline", split_seed=0, extra={"run": 3})
    info.split = SplitRecord.from_settings(settings, 3, "runs").to_dict()
    truth = split_for_run(settings, data.y, 3)[1]
    split = split_of_model(info, data)
    for part in ("train", "validate", "test"):
        assert np.array_equal(split.parts[part], truth[part])
    assert split.warnings == [] and split.record.run == 3
    assert "fold 3 of 5" in split.describe()
    old = split_of_model(ModelInfo(config="baseline", split_seed=0, extra={"run": 3}), data)
    assert old.origin == "seed"
    assert len(np.intersect1d(old.parts["test"], truth["train"])) > 0


def test_an_older_sidecar_takes_its_split_from_the_comparison_folder(tmp_path: Path) -> None:
    data = fake_data(100)
    settings = cv_settings(data)
    (tmp_path / "comparison.json").write_text(settings.to_json(), encoding="utf-8")
    old = ModelInfo(config="baseline", split_seed=0, extra={"run": 3, "group_by": "none"})
    split = split_of_model(old, data, comparison_dirs=(None, tmp_path))
    assert split.origin == "comparison"
    assert np.array_equal(split.parts["test"], split_for_run(settings, data.y, 3)[1]["test"])
    # Another configuration, or a run whose seed disagrees with the sidecar: not this folder.
    for other in (ModelInfo(config="other", split_seed=0, extra={"run": 3}),
                  ModelInfo(config="baseline", split_seed=4, extra={"run": 3})):
        assert split_of_model(other, data, comparison_dirs=(tmp_path,)).origin == "seed"


def test_changed_data_is_said_and_a_chosen_seed_wins() -> None:
    data = fake_data(100)
    info = ModelInfo(config="baseline", split_seed=0, extra={"run": 1})
    info.split = SplitRecord.from_settings(cv_settings(data), 1, "runs").to_dict()
    grown = fake_data(104)
    split = split_of_model(info, grown)
    assert len(split.warnings) == 1 and "104 images now, 100" in split.warnings[0]
    chosen = split_of_model(info, data, seed=7)
    assert chosen.origin == "chosen" and chosen.seed == 7
    assert split_of_model(ModelInfo(), data).origin == "chosen"   # no sidecar: seed 0


def test_predict_knows_the_parts_of_a_flat_set_cut_with_keep(tmp_path: Path, capsys,
                                                             write_flat_set) -> None:
    """`compare --keep` compared 2 of the CSV's 3 labels: predict reads the CSV as the
    comparison did (its classes, not every label), so the images it compared on get their
    parts and labels, and the left-out label gets neither."""
    generator = np.random.default_rng(0)
    items = [(f"p{index}", ("Fire", "Water", "Grass")[index % 3],
              generator.integers(0, 255, (48, 48, 3), dtype=np.uint8)) for index in range(30)]
    labels, images = write_flat_set(tmp_path / "flat", items)
    run_dir = tmp_path / "runs"
    status = cli.main(["compare", "--labels", str(labels), "--images", str(images), "--keep",
                       "Fire,Water", "--task", "label", "--image-size", *SIZE, "--configs",
                       "baseline", "--runs", "1", "--epochs", "1", "--workers", "1",
                       "--no-tracking", "--cache-dir", str(tmp_path / "cache"), "--out",
                       str(run_dir)])
    assert status == 0, capsys.readouterr().err
    record = json.loads((run_dir / "best_baseline.json").read_text(encoding="utf-8"))
    capsys.readouterr()
    status = cli.main(["predict", str(run_dir / "best_baseline.keras"), str(images),
                       "--format", "csv"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    part = {Path(row["source"]).stem: row["part"]
            for row in csv.DictReader(io.StringIO(captured.out))}
    kept = {image_id for image_id, label, _ in items if label != "Grass"}
    assert Counter(part[image_id] for image_id in kept) == Counter(record["split_sizes"])
    assert {part[image_id] for image_id in set(part) - kept} == {""}
    # Images named by id get their label from the CSV the model was compared on, so predict
    # can score them (and the ones it never trained on apart).
    label = {Path(row["source"]).stem: row["label"]
             for row in csv.DictReader(io.StringIO(captured.out))}
    assert {image_id: label[image_id] for image_id in kept} == {
        image_id: truth for image_id, truth, _ in items if image_id in kept}
    assert {label[image_id] for image_id in set(label) - kept} == {""}
    unknown = sum(row["accepted"] == "0" for row in csv.DictReader(io.StringIO(captured.out))
                  if Path(row["source"]).stem in kept)
    assert f"correct of the {20 - unknown} accepted with a known label" in captured.err
    assert "never trained on (validate, test)" in captured.err
    # report --inputs reads the same labels: it evaluates the 20 compared images (the third
    # label's are left out) and warns about those the model trained on.
    status = cli.main(["report", str(run_dir / "best_baseline.keras"), "--inputs",
                       str(images), "--out", str(tmp_path / "report"), "--samples", "1",
                       "--filters", "1", "--explain", "0"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text(encoding="utf-8"))
    assert len(metrics["crops"]) == 20
    assert f"warning: {record['split_sizes']['train']} of these 20 inputs were in the " \
        "model's training part" in captured.err

"""The dataset doctor finds wrong labels, always-wrong crops, near duplicates and the leak."""

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from toonvision.data_processing.dataset import crop_ids, from_crops, select_for_task
from toonvision.data_processing.images import read_image, write_image_atomic
from toonvision.data_processing.splits import stratified_split
from toonvision.labels import make_task
from toonvision.model_utils.comparison.predictions import Predictions, PredictionStore
from toonvision.model_utils.dataset_doctor import (
    comparison_crops,
    diagnose,
    out_of_sample,
    weak_models_note,
)
from toonvision.model_utils.doctor_tables import duplicates_table, label_issues_table


def make_comparison(run_dir, data_dir, task_spec, predict, runs, configs=("baseline",)):
    """A comparison folder as `compare` leaves it once the prediction hook is wired: its
    settings, a log line per configuration and run, and each run's stored predictions.

    `predict(config, run, split, task_data)` returns the probabilities per part."""
    from toonvision.model_utils.comparison.runlog import LOG_FILE, RunRecord, append_records
    from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE, settings_for
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    dataset = from_crops(data_dir)
    task = make_task(task_spec, dataset.labels)
    paths, labels, y = select_for_task(dataset, task)
    task_data = SimpleNamespace(images=np.zeros((len(y), 8, 8, 3), np.uint8), y=y,
                                class_names=task.classes, paths=paths, labels=labels)
    settings = settings_for(task_data, task_spec, [BUILTIN_CONFIGS[name] for name in configs],
                            runs, source=str(data_dir))
    run_dir.mkdir(parents=True)
    (run_dir / SETTINGS_FILE).write_text(settings.to_json())
    ids, store = crop_ids(paths), PredictionStore(run_dir)
    for run in range(runs):
        split = stratified_split(y, settings.ratios, settings.seed + run)
        records = []
        for config in configs:
            probabilities = predict(config, run, split, task_data)
            store.append(config, run, ids, y, split, probabilities)
            accuracy = float((probabilities["test"].argmax(1) == y[split["test"]]).mean())
            records.append(RunRecord(
                config=config, run=run, seed=run, split_seed=settings.seed + run,
                split_sizes={name: len(part) for name, part in split.items()}, history={},
                validation_metrics={}, test_metrics={"accuracy": accuracy, "loss": 1 - accuracy},
                epochs_run=1, setup_seconds=0.0, train_seconds=0.0))
        append_records(run_dir / LOG_FILE, records)
    return task_data


def brightness_predictor(config, run, split, task_data):
    """Says toon for bright crops and cog for dark ones, as the generated crops are made."""
    result = {}
    for part in ("validate", "test"):
        brightness = np.array([read_image(task_data.paths[index]).mean()
                               for index in split[part]])
        toon = 1 / (1 + np.exp(-(brightness - 125) / 15))
        result[part] = np.stack([1 - toon, toon], axis=1)
    return result


@pytest.fixture
def generated(tmp_path, write_crops):
    """30 cog and 30 toon crops; toon_dog_60 is dark (a cog labelled toon); cog_bb_flunky_61
    is an exact copy of crop 0, and a re-encoded copy of crop 1 is crop 62."""
    data_dir = tmp_path / "data"
    paths = write_crops(data_dir, ["cog_bb_flunky"] * 30 + ["toon_dog"] * 30
                        + [("toon_dog", 40)], seed=1)
    target = data_dir / "unsorted" / "cog"
    (target / "cog_bb_flunky_61.png").write_bytes(paths[0].read_bytes())
    write_image_atomic(target / "cog_bb_flunky_62.jpg", read_image(paths[1]))
    return data_dir


def test_doctor_command_ranks_the_wrong_label_first_and_writes_page_and_tables(
        generated, tmp_path, capsys):
    from toonvision.cli import main

    make_comparison(tmp_path / "run", generated, "binary", brightness_predictor, runs=8,
                    configs=("baseline", "optimized"))
    assert main(["doctor", str(tmp_path / "run"), "--no-gradcam"]) == 0
    out = capsys.readouterr().out
    assert "1 likely label errors" in out and "leak" in out
    with (tmp_path / "run" / "doctor" / "label_issues.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 63
    first = rows[0]
    assert first["id"] == "unsorted/toon/toon_dog_60.png"
    assert (first["given_label"], first["suggested_label"]) == ("toon", "cog")
    assert first["always_wrong"] == "True" and first["label_issue"] == "True"
    assert float(first["error_rate"]) == 1.0 and int(first["appearances"]) >= 4
    assert int(first["baseline_appearances"]) + int(first["optimized_appearances"]) == \
        int(first["appearances"])
    with (tmp_path / "run" / "doctor" / "duplicates.csv").open() as handle:
        pairs = {(row["first"], row["second"]): row for row in csv.DictReader(handle)}
    exact = pairs[("unsorted/cog/cog_bb_flunky_0.png", "unsorted/cog/cog_bb_flunky_61.png")]
    assert exact["exact"] == "True" and exact["distance"] == "0"
    assert ("unsorted/cog/cog_bb_flunky_1.png", "unsorted/cog/cog_bb_flunky_62.jpg") in pairs
    assert int(exact["runs"]) == 8
    page = (tmp_path / "run" / "doctor" / "index.html").read_text()
    assert "cleanlab flags 1 as likely label errors" in page
    assert "toon_dog_60.png" in page and 'href="duplicates.csv"' in page
    assert list((tmp_path / "run" / "doctor").glob("crop_*.png"))


def test_out_of_sample_averages_runs_and_configurations_and_counts_each_run_once():
    def predictions(config, rows):
        run, part, ids, y, p_one = (np.array(column) for column in zip(*rows, strict=True))
        return Predictions(config, run, part.astype(np.uint8), ids.astype(np.uint64), y,
                           np.stack([1 - p_one, p_one], axis=1).astype(np.float32))

    ids, y = np.array([10, 11, 12], np.uint64), np.array([0, 1, 1])
    result = out_of_sample({
        "a": predictions("a", [(0, 2, 10, 0, 0.2), (0, 1, 11, 1, 0.4), (1, 2, 11, 1, 0.8)]),
        "b": predictions("b", [(0, 2, 10, 0, 0.6), (1, 2, 99, 1, 0.5)]),
    }, ids, y, 2)
    assert result.appearances.tolist() == [2, 2, 0] and result.errors.tolist() == [1, 1, 0]
    assert np.allclose(result.probabilities[0], [0.6, 0.4])
    assert np.allclose(result.probabilities[1], [0.4, 0.6])
    assert np.isnan(result.probabilities[2]).all() and result.unmatched == 1
    assert result.parts.tolist() == [[2, 1, -1], [-1, 2, -1]] and result.runs == [0, 1]
    assert result.per_config["b"][0].tolist() == [1, 0, 0]


def test_runs_missing_from_the_log_and_runs_trained_again_count_once(generated, tmp_path):
    task_data = make_comparison(tmp_path / "run", generated, "binary", brightness_predictor,
                                runs=3)
    crops = comparison_crops(tmp_path / "run")
    before = diagnose(tmp_path / "run", crops.names, crops.paths, crops.raw_labels, crops.y,
                      crops.class_names, runs=crops.runs)
    store, ids = PredictionStore(tmp_path / "run"), crop_ids(task_data.paths)
    for run in (1, 3):   # run 1 trained again after a kill; run 3 killed before its log line
        split = stratified_split(task_data.y, seed=run)
        store.append("baseline", run, ids, task_data.y, split,
                     brightness_predictor("baseline", run, split, task_data))
    after = diagnose(tmp_path / "run", crops.names, crops.paths, crops.raw_labels, crops.y,
                     crops.class_names, runs=crops.runs)
    assert crops.runs == [0, 1, 2] and after.oos.runs == [0, 1, 2]
    assert np.array_equal(before.oos.appearances, after.oos.appearances)


def test_a_comparison_without_predictions_still_gets_its_duplicates(generated, tmp_path):
    make_comparison(tmp_path / "run", generated, "binary", brightness_predictor, runs=1)
    for path in (tmp_path / "run").glob("predictions_*"):
        path.unlink()
    crops = comparison_crops(tmp_path / "run", data_dir=generated)
    diagnosis = diagnose(tmp_path / "run", crops.names, crops.paths, crops.raw_labels,
                         crops.y, crops.class_names, runs=crops.runs)
    assert "no per-crop predictions" in diagnosis.notes[0]
    assert not diagnosis.is_issue.any() and len(diagnosis.pairs) >= 2
    table = label_issues_table(diagnosis)
    assert table["appearances"].eq(0).all() and table["score"].isna().all()
    assert duplicates_table(diagnosis)["leak_runs"].eq(0).all()


def test_the_wrong_data_for_a_comparison_is_an_error(generated, tmp_path, write_crops):
    make_comparison(tmp_path / "run", generated, "label", brightness_predictor, runs=1)
    write_crops(tmp_path / "other", ["cog_bb_flunky"] * 3)
    with pytest.raises(ValueError, match="classes"):
        comparison_crops(tmp_path / "run", data_dir=tmp_path / "other")


def test_the_doctor_reads_a_label_comparison_on_data_that_has_grown(generated, tmp_path,
                                                                      write_crops):
    # a comparison of every label (the `label` task), then crops of a new label extracted
    make_comparison(tmp_path / "run", generated, "label", brightness_predictor, runs=2)
    write_crops(generated, ["toon_cat"] * 4, seed=9)
    crops = comparison_crops(tmp_path / "run")
    assert crops.class_names == ("cog_bb_flunky", "toon_dog") and len(crops.names) == 63
    assert not any("toon_cat" in name for name in crops.names)


def test_the_doctor_reads_a_flat_comparison_that_kept_some_labels(tmp_path, write_flat_set):
    # `compare --labels ... --keep Fire,Water --task label`: the CSV holds more labels
    generator = np.random.default_rng(0)
    items = [(f"p{index}", ("Fire", "Water", "Grass")[index % 3],
              generator.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for index in range(30)]
    labels_csv, images = write_flat_set(tmp_path / "flat", items)
    kept = [item for item in items if item[1] != "Grass"]
    run = tmp_path / "run"
    from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE, settings_for
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    y = np.array([("Fire", "Water").index(label) for _, label, _ in kept])
    task_data = SimpleNamespace(images=np.zeros((len(y), 8, 8, 3), np.uint8), y=y,
                                class_names=("Fire", "Water"),
                                paths=[images / f"{name}.png" for name, _, _ in kept],
                                labels=[label for _, label, _ in kept])
    settings = settings_for(task_data, "label", [BUILTIN_CONFIGS["baseline"]], 1,
                            source=f"{labels_csv} + {images}")
    run.mkdir()
    (run / SETTINGS_FILE).write_text(settings.to_json())
    crops = comparison_crops(run)
    assert crops.class_names == ("Fire", "Water") and len(crops.names) == 20
    assert sorted(crops.names) == sorted(name for name, _, _ in kept)


def test_the_doctor_reads_the_csv_column_the_comparison_read(tmp_path, write_flat_set):
    # `compare --labels ... --label-column second_type`: the doctor reads that column too
    generator = np.random.default_rng(0)
    items = [(f"p{index}", ("Fire", "Water")[index % 2],
              generator.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for index in range(12)]
    labels_csv, images = write_flat_set(tmp_path / "flat", items)
    second = ["Water", "Fire", "Fire", "Water"] * 3       # another column, other labels
    rows = labels_csv.read_text().splitlines()
    labels_csv.write_text("\n".join([rows[0] + ",second_type"] + [
        f"{row},{label}" for row, label in zip(rows[1:], second, strict=True)]) + "\n")
    from toonvision.model_utils.comparison.data_source import DataSource
    from toonvision.model_utils.comparison.settings import ComparisonPlan
    from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE, settings_from_plan
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    source = DataSource(labels=labels_csv, images=images, label_column="second_type")
    task_data = source.load("label", (8, 8))
    plan = ComparisonPlan(task="label", configs=(BUILTIN_CONFIGS["baseline"],), runs=1)
    settings = settings_from_plan(plan, task_data, source.describe(), None,
                                  source.csv_columns())
    assert settings.csv_columns == {"label_column": "second_type"}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / SETTINGS_FILE).write_text(settings.to_json())
    crops = comparison_crops(tmp_path / "run")
    by_name = dict(zip(crops.names, crops.raw_labels, strict=True))
    assert [by_name[f"p{index}"] for index in range(12)] == second


@pytest.mark.slow
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_page_shows_grad_cam_under_the_best_model(generated, tmp_path, tiny_model, resize):
    """The heatmap is drawn over the crop itself, at the crop's shape, whichever way the
    model's input was resized."""
    from toonvision.data_processing.images import read_image
    from toonvision.data_visualization.doctor_page import write_doctor_page
    from toonvision.model_utils.training.model_io import ModelInfo, save_model_atomic

    make_comparison(tmp_path / "run", generated, "binary", brightness_predictor, runs=4)
    save_model_atomic(tiny_model((48, 96)), tmp_path / "run" / "best_baseline.keras",
                      ModelInfo(class_names=("cog", "toon"), image_size=(48, 96),
                                resize=resize))
    (tmp_path / "run" / "best_baseline.json").write_text(json.dumps(
        {"test_metrics": {"accuracy": 0.9}}))
    crops = comparison_crops(tmp_path / "run")
    diagnosis = diagnose(tmp_path / "run", crops.names, crops.paths, crops.raw_labels,
                         crops.y, crops.class_names, runs=crops.runs)
    page = write_doctor_page(diagnosis, tmp_path / "page").read_text()
    heatmap = f"gradcam_{crops.names.index('unsorted/toon/toon_dog_60.png'):05d}.png"
    assert heatmap in page and (tmp_path / "page" / heatmap).is_file()
    assert "best_baseline.keras" in page
    crop = read_image(crops.paths[crops.names.index("unsorted/toon/toon_dog_60.png")])
    assert read_image(tmp_path / "page" / heatmap).shape == crop.shape


# ------------------------------------------------------------------------------------------
# Real crops with flipped labels: ../shared/data/cards_voc


def flip_labels(data_dir: Path, share: float, seed: int) -> list[str]:
    """Gives a seeded `share` of the crops another card's label, in their file names and the
    manifest, as if they had been labelled so in labelImg; returns their ids."""
    from toonvision.data_processing.manifest import ManifestText, read_manifest

    records = {record.crop: record for record in read_manifest(data_dir / "manifest.csv")}
    dataset = from_crops(data_dir)
    names = sorted(set(dataset.labels))
    generator = np.random.default_rng(seed)
    chosen = generator.choice(len(dataset), int(round(share * len(dataset))), replace=False)
    flipped = []
    for index in chosen:
        path, label = dataset.paths[index], dataset.labels[index]
        other = names[(names.index(label) + int(generator.integers(1, len(names)))) % len(names)]
        target = path.with_name(f"{other}_{9000 + int(index)}{path.suffix}")
        path.rename(target)
        flipped.append(target.relative_to(data_dir).as_posix())
        record = records[path.relative_to(data_dir).as_posix()]
        record.crop, record.label = flipped[-1], other
    (data_dir / "manifest.csv").write_text(ManifestText().format(list(records.values())))
    return flipped


def cnn_predictor(image_size=(96, 72), epochs=12):
    """Trains the article's baseline CNN on each run's split (tiny images) with the Trainer and
    predicts the validation and test parts: a short comparison."""
    from toonvision.data_processing.dataset import load_images
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.models import predict_parts
    from toonvision.model_utils.training.trainer import Trainer

    state = {}

    def predict(config, run, split, task_data):
        if "trainer" not in state:
            state["images"], _ = load_images(task_data.paths, image_size,
                                             cache_dir=Path(task_data.paths[0]).parents[2])
            state["trainer"] = Trainer(BUILTIN_CONFIGS[config].replace(epochs=epochs),
                                       len(task_data.class_names), image_size)
        state["trainer"].run(state["images"], task_data.y, split, seed=run)
        return predict_parts(state["trainer"].model, state["images"], split)

    return predict


def label_noise_catch_rate(shared_data: Path, tmp_path: Path, share: float, runs: int,
                           **training) -> float:
    """The share of flipped crops among the doctor's top 2x suspects."""
    from toonvision.cli import main
    from toonvision.data_processing.extract import extract

    data_dir = tmp_path / "data"
    list(extract(shared_data / "cards_voc", data_dir))
    flipped = flip_labels(data_dir, share, seed=5)
    make_comparison(tmp_path / "run", data_dir, "label", cnn_predictor(**training), runs=runs)
    assert main(["doctor", str(tmp_path / "run"), "--no-gradcam", "--top", "4"]) == 0
    with (tmp_path / "run" / "doctor" / "label_issues.csv").open() as handle:
        ranked = [row["id"] for row in csv.DictReader(handle)]
    suspects = set(ranked[:2 * len(flipped)])
    return sum(name in suspects for name in flipped) / len(flipped)


@pytest.mark.slow
def test_real_cards_with_5_percent_flipped_labels_are_found(shared_data, tmp_path):
    rate = label_noise_catch_rate(shared_data, tmp_path, 0.05, runs=8)
    assert rate >= 0.7, f"only {rate:.0%} of the flipped crops are among the top 2x suspects"
    page = (tmp_path / "run" / "doctor" / "index.html").read_text()
    assert "screenshot_" in page   # the source photo with its box, from the manifest


def test_the_doctor_warns_when_the_models_learned_little():
    y = np.array([0, 0, 0, 1])          # the most common class: 3 of 4 crops

    def note(errors: list[int]):
        appearances = np.array([4, 4, 4, 4])   # 16 predictions; the majority's 12: 75%
        oos = SimpleNamespace(appearances=appearances, errors=np.array(errors))
        return weak_models_note(oos, y)

    warning = note([2, 2, 2, 2])        # 8 of 16 right: 50.0%, below the 75.0% majority
    assert warning is not None and "50.0%" in warning and "75.0%" in warning
    # The bar: a quarter of the majority's 4 errors in 16 removed, 13 of 16 right (81.25%)
    assert note([1, 1, 1, 1]) is not None            # 12 right, 75%: the majority's own
    assert note([1, 1, 1, 0]) is None                # 13 right: a quarter removed
    assert note([0, 0, 0, 0]) is None
    assert weak_models_note(SimpleNamespace(appearances=np.zeros(4, int),
                                            errors=np.zeros(4, int)), y) is None

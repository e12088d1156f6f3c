"""Tests of comparison.runner: a comparison folder driven by a fake trainer, its resume at
every crash point, the stopping rule, and two tests that train real models.

Most tests drive `Comparison` with a fake trainer (no Keras, `conftest.FakeTrainer`), so that
the log, the resume logic and the best-model bookkeeping can be checked at every possible crash
point in milliseconds. Two tests train real models: a comparison killed with SIGKILL and
resumed, and a check on real crops that both article configurations learn.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import (
    CONFIGS,
    TASK_DATA,
    EffectTrainer,
    FakeTrainer,
    assert_consistent,
    comparable,
    fake_settings,
    run_fake,
    write_easy_crops,
)

import toonvision.model_utils.comparison.best_models as best_models
import toonvision.model_utils.comparison.runner as compare
import toonvision.model_utils.training.model_io as model_io
from toonvision.data_visualization.comparison_figures import (
    BEST_RUN_CURVES_FILE,
    BOXPLOTS_FILE,
    FOREST_FILE,
    LEARNING_CURVES_FILE,
    write_comparison_figures,
)
from toonvision.model_utils.comparison.runlog import (
    LOG_FILE,
    STOP_FILE,
    read_log,
    read_stop,
    select_best,
)
from toonvision.model_utils.comparison.runner import Comparison
from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE
from toonvision.model_utils.comparison.summary import (
    PER_CLASS_FILE,
    SUMMARY_COLUMNS,
    SUMMARY_FILE,
    class_scores,
)
from toonvision.model_utils.training.confidence import load_confidence

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------
# The comparison folder, with a fake trainer

def test_comparison_logs_every_run_and_keeps_the_best(tmp_path):
    comparison = run_fake(tmp_path / "out", runs=4)
    records, _ = read_log(tmp_path / "out" / LOG_FILE)
    assert len(records) == 8
    assert [item.run for item in records] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert {item.split_seed for item in records} == {0, 1, 2, 3}
    assert records[0].split_sizes == {"train": 18, "validate": 6, "test": 6}
    assert_consistent(tmp_path / "out", 4, records)
    assert comparison.best_records() == select_best(records)
    epochs_csv = tmp_path / "out" / "epochs" / "optimized_run0003.csv"
    assert epochs_csv.read_text().splitlines()[0] == "epoch,loss,accuracy,val_loss,val_accuracy"


def test_refuses_to_overwrite_and_to_resume_with_other_settings(tmp_path):
    out_dir = tmp_path / "out"
    run_fake(out_dir, runs=2)
    before = (out_dir / LOG_FILE).read_text()
    with pytest.raises(FileExistsError, match="resume the comparison there, or choose another "
                                              "folder"):
        run_fake(out_dir, runs=2)
    with pytest.raises(ValueError, match=r"image_size: \[4, 4\] there, \[8, 8\] now"):
        run_fake(out_dir, runs=2, resume=True, image_size=[8, 8])
    changed = [{"name": "baseline", "epochs": 3}, {"name": "optimized", "epochs": 5}]
    with pytest.raises(ValueError, match=r"configs\.optimized\.epochs: 3 there, 5 now"):
        run_fake(out_dir, runs=2, resume=True, configs=changed)
    with pytest.raises(ValueError, match="data_fingerprint"):
        run_fake(out_dir, runs=2, resume=True, data_fingerprint="other data")
    with pytest.raises(compare.ResumeError, match="for 1 runs: it already has 2 complete runs"):
        run_fake(out_dir, runs=1, resume=True)
    assert (out_dir / LOG_FILE).read_text() == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a comparison folder"):
        run_fake(tmp_path / "other", resume=True)


def test_resume_can_add_runs(tmp_path):
    reference = read_log(run_fake(tmp_path / "reference", runs=5).log_path)[0]
    run_fake(tmp_path / "out", runs=3)
    run_fake(tmp_path / "out", runs=5, resume=True)
    assert_consistent(tmp_path / "out", 5, reference)


def test_a_folder_written_before_a_config_field_existed_still_resumes(tmp_path):
    """comparison.json of an older version lacks fields added since; they had their default."""
    reference = read_log(run_fake(tmp_path / "reference", runs=3).log_path)[0]
    run_fake(tmp_path / "out", runs=2)       # configs stored without padding or batch_norm
    newer = [{"name": config.name, "epochs": config.epochs, "padding": "valid",
              "batch_norm": False} for config in CONFIGS]
    run_fake(tmp_path / "out", runs=3, resume=True, configs=newer)
    assert_consistent(tmp_path / "out", 3, reference)
    newer[1]["padding"] = "same"
    with pytest.raises(ValueError, match=r'configs\.optimized\.padding: "valid" there, "same" now'):
        run_fake(tmp_path / "out", runs=3, resume=True, configs=newer)


class Crash(Exception):
    """Stands for a kill: raised at the k-th file operation or training step."""


def test_resume_after_a_crash_at_every_step(tmp_path, monkeypatch):
    runs = 3
    reference = read_log(run_fake(tmp_path / "reference", runs=runs).log_path)[0]
    original = {
        "replace": os.replace, "write_text": compare.write_text_atomic,
        "write_best": best_models.write_text_atomic,
        "append": compare.append_records, "save_model": model_io.save_model_atomic,
        "train": FakeTrainer.run,
    }
    counter = {"step": 0, "crash_at": 0}

    def step() -> None:
        counter["step"] += 1
        if counter["step"] == counter["crash_at"]:
            raise Crash()

    def wrap(function):
        def wrapped(*args, **kwargs):
            step()
            result = function(*args, **kwargs)
            step()
            return result
        return wrapped

    def torn_append(path, records):
        step()
        if counter["step"] + 1 == counter["crash_at"]:
            text = "".join(json.dumps(item.to_dict()) + "\n" for item in records)
            with open(path, "a") as handle:
                handle.write(text[: len(text) * 3 // 4])   # a kill in the middle of the write
        step()
        original["append"](path, records)
        step()

    crash_points = 0
    for crash_at in range(1, 1000):
        out_dir = tmp_path / f"crash{crash_at}"
        counter.update(step=0, crash_at=crash_at)
        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", wrap(original["replace"]))
            patch.setattr(compare, "write_text_atomic", wrap(original["write_text"]))
            patch.setattr(best_models, "write_text_atomic", wrap(original["write_best"]))
            patch.setattr(compare, "append_records", torn_append)
            patch.setattr(model_io, "save_model_atomic", wrap(original["save_model"]))
            patch.setattr(FakeTrainer, "run", wrap(original["train"]))
            try:
                run_fake(out_dir, runs=runs)
            except Crash:
                crashed = True
            else:
                crashed = False
        if not crashed:
            break
        crash_points += 1
        run_fake(out_dir, runs=runs, resume=True)
        assert_consistent(out_dir, runs, reference)
    assert crash_points > 60   # every write, rename and training step of 3 runs was hit


def test_outputs_are_written_from_the_log(tmp_path):
    comparison = run_fake(tmp_path / "out", runs=4)
    summary = comparison.write_summary()
    reloaded = Comparison.load(tmp_path / "out")
    assert reloaded.records == comparison.records
    figures = write_comparison_figures(reloaded)
    assert figures == [tmp_path / "out" / name for name in (
        LEARNING_CURVES_FILE, BEST_RUN_CURVES_FILE, BOXPLOTS_FILE, FOREST_FILE)]
    for path in figures:
        content = path.read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 10_000
    table = pd.read_csv(comparison.summary_path)
    assert comparison.summary_path == tmp_path / "out" / SUMMARY_FILE
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    # accuracy, loss, macro F1 (from the test confusion matrices), and ECE and Brier score
    # (from the engine's test probabilities): two configs, one pair
    assert len(table) == 5 * 3
    assert list(dict.fromkeys(table.metric)) == ["accuracy", "loss", "macro_f1", "ece", "brier"]
    assert list(summary.table.config[:3]) == ["baseline", "optimized", "optimized - baseline"]
    assert table.verdict[2] == summary.sentences[0]
    assert table.verdict[2].startswith("optimized vs baseline: ")
    per_class = pd.read_csv(tmp_path / "out" / PER_CLASS_FILE)
    assert list(per_class[["config", "class"]].itertuples(index=False, name=None)) == [
        ("baseline", "cog"), ("baseline", "toon"), ("optimized", "cog"), ("optimized", "toon")]
    matrices = [item.test_confusion for item in comparison.records if item.config == "optimized"]
    assert per_class.recall[3] == pytest.approx(
        np.median([class_scores(matrix)["recall"][1] for matrix in matrices]))
    assert per_class.support[3] == 3   # 30 images, half toons: 3 in each test split of 6


def test_forest_plot_draws_a_line_per_pair_and_metric(tmp_path):
    from toonvision.data_visualization.comparison_figures import forest_figure

    summary = run_fake(tmp_path / "out", runs=4).write_summary()
    figure = forest_figure(summary.table)
    axes = figure.get_axes()
    assert [axis.get_title() for axis in axes] == [
        "test accuracy: B - A", "test loss: B - A", "test macro_f1: B - A",
        "test ece: B - A", "test brier: B - A"]
    pair = summary.table[summary.table.config == "optimized - baseline"].iloc[0]
    corrected = axes[0].get_lines()[0].get_xdata()
    assert list(corrected) == pytest.approx([pair.ci_low * 100, pair.ci_high * 100])
    assert [label.get_text() for label in axes[0].get_yticklabels()] == ["optimized - baseline"]
    assert len(axes[0].get_lines()) == 4   # corrected, uncorrected, mean, the zero line


def test_tracker_gets_every_run_of_every_config(tmp_path):
    class Tracker:
        def __init__(self):
            self.calls = []

        def log_run(self, name, params, history, metrics, artifacts=()):
            self.calls.append((name, params["run"], metrics["test_accuracy"], list(artifacts)))

    tracker = Tracker()
    comparison = Comparison.start(tmp_path / "out", fake_settings(2))
    list(comparison.run(TASK_DATA, CONFIGS, trainer_factory=FakeTrainer, tracker=tracker))
    assert [call[0] for call in tracker.calls] == [
        "baseline-run0000", "optimized-run0000", "baseline-run0001", "optimized-run0001"]
    assert all(path.is_file() for call in tracker.calls for path in call[3])


def test_comparison_json_of_a_finished_comparison_reproduces_its_settings(tmp_path):
    from toonvision.model_utils.comparison.settings import plan_comparison
    from toonvision.model_utils.comparison.stored_settings import settings_for
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    task_data = SimpleNamespace(**vars(TASK_DATA), paths=[Path(f"{index}.png") for index in
                                                          range(30)],
                                labels=["cog" if index % 2 == 0 else "toon" for index in range(30)])
    configs = [BUILTIN_CONFIGS["baseline"].replace(epochs=3),
               BUILTIN_CONFIGS["optimized"].replace(early_stopping_patience=2)]
    settings = settings_for(task_data, "binary", configs, runs=2, source="fake",
                            ratios=(0.5, 0.25, 0.25), seed=7, select="val_loss",
                            balance="undersample")
    comparison = Comparison.start(tmp_path / "out", settings)
    list(comparison.run(task_data, configs, trainer_factory=FakeTrainer))
    stored = tmp_path / "out" / SETTINGS_FILE

    plan = plan_comparison(settings_file=stored)
    again = settings_for(task_data, plan.task, plan.configs, plan.runs, "fake", plan.ratios,
                         plan.seed, plan.select, plan.balance)
    assert again == settings and again.to_json() == stored.read_text()
    assert plan.configs == tuple(configs)
    more = plan_comparison({"runs": 5, "epochs": 4}, stored)
    assert more.runs == 5 and [config.epochs for config in more.configs] == [4, 4]
    assert more.seed == 7 and more.config_names == ["baseline", "optimized"]


# ------------------------------------------------------------------------------------------
# Until decided: the stopping rule on the log, with a fake trainer of known effect




def run_until_decided(out_dir: Path, effects: dict[str, float], resume: bool = False,
                      stop_after: int | None = None, runs: int = 200, **changes
                      ) -> tuple[Comparison, list]:
    EffectTrainer.effects = effects
    settings = fake_settings(runs, until_decided=True, look_every=10, **changes)
    comparison = Comparison.start(out_dir, settings, resume=resume)
    updates = []
    for update in comparison.run(TASK_DATA, CONFIGS, trainer_factory=EffectTrainer):
        updates.append(update)
        if len(updates) == stop_after:
            break   # a kill after a logged run
    return comparison, updates


def test_until_decided_stops_at_the_first_look_on_a_big_effect(tmp_path):
    comparison, updates = run_until_decided(tmp_path / "out", {"optimized": 0.1})
    assert len(updates) == 10 and comparison.completed_runs() == list(range(10))
    assert [update.decision is not None for update in updates] == [False] * 9 + [True]
    stop = read_stop(tmp_path / "out" / STOP_FILE)
    assert (stop["state"], stop["runs"], stop["look"], stop["looks"]) == ("different", 10, 1,
                                                                          20)
    assert stop["pair"] == ["baseline", "optimized"] and stop["metric"] == "accuracy"
    assert "excludes zero" in stop["reason"] and stop["reason"] == updates[-1].decision.reason
    summary = comparison.write_summary()
    assert "corrected, 20 looks planned;" in summary.sentences[0]   # the repeated interval
    assert summary.sentences[0].endswith("decided after 10 runs: optimized is better.")
    _, more = run_until_decided(tmp_path / "out", {"optimized": 0.1}, resume=True)
    assert more == [] and len(read_log(tmp_path / "out" / LOG_FILE)[0]) == 20


def test_until_decided_on_identical_configs_stops_as_undecidable_or_equivalent(tmp_path):
    comparison, updates = run_until_decided(tmp_path / "plain", {})
    stop = read_stop(comparison.stop_path)
    assert (stop["state"], stop["runs"]) == ("undecidable", 10)
    assert "more runs will not decide it" in stop["reason"]
    comparison, _ = run_until_decided(tmp_path / "margin", {}, equivalence=0.1)
    stop = read_stop(comparison.stop_path)
    assert (stop["state"], stop["runs"]) == ("equivalent", 10)
    assert "inside +-0.1" in stop["reason"]


def test_until_decided_resumes_exactly(tmp_path):
    effects = {"optimized": 0.1}
    reference, _ = run_until_decided(tmp_path / "reference", effects)
    _, first = run_until_decided(tmp_path / "out", effects, stop_after=7)
    assert len(first) == 7 and not (tmp_path / "out" / STOP_FILE).exists()
    comparison, rest = run_until_decided(tmp_path / "out", effects, resume=True)
    assert [update.run for update in rest] == [7, 8, 9]
    assert comparable(comparison.records) == comparable(reference.records)
    expected = read_stop(reference.stop_path)
    stop = read_stop(comparison.stop_path)
    assert {**stop, "stopped_at": ""} == {**expected, "stopped_at": ""}
    # killed after the last run was logged but before stopped.json: the resume only records it
    comparison.stop_path.unlink()
    _, none = run_until_decided(tmp_path / "out", effects, resume=True)
    assert none == [] and read_stop(comparison.stop_path)["reason"] == expected["reason"]
    with pytest.raises(compare.ResumeError, match=r"runs: 200 there, 300 now \(the cap"):
        run_until_decided(tmp_path / "out", effects, resume=True, runs=300)

# ------------------------------------------------------------------------------------------
# Real training



@pytest.mark.slow
def test_a_killed_comparison_resumes_to_exactly_n_runs(tmp_path):
    from toonvision.cli import main
    from toonvision.model_utils.training.model_io import load_model

    write_easy_crops(tmp_path / "data")
    out_dir = tmp_path / "runs" / "tiny"
    arguments = ["compare", "--data-dir", str(tmp_path / "data"), "--image-size", "48", "48",
                 "--runs", "2", "--epochs", "1", "--out", str(out_dir),
                 "--cache-dir", str(tmp_path / "cache"), "--no-tracking", "--workers", "1"]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as error_file:
        process = subprocess.Popen([sys.executable, "-m", "toonvision", *arguments],
                                   env=environment, stdout=subprocess.DEVNULL,
                                   stderr=error_file)
    log = out_dir / LOG_FILE
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if log.is_file() and len(log.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        time.sleep(0.3)   # into the next run
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, (
        f"the comparison ended before the kill: {errors.read_text()[-2000:]}")
    assert 2 <= len(read_log(log)[0]) < 4   # run 0 logged, run 1 not finished

    assert main(arguments) == 2   # without --resume: refuses the non-empty folder
    assert main([*arguments, "--resume"]) == 0
    records, torn = read_log(log)
    assert torn == 0
    assert sorted((item.run, item.config) for item in records) == [
        (run, config) for run in range(2) for config in ("baseline", "optimized")]
    best = select_best(records)
    for name in ("baseline", "optimized"):
        model, info = load_model(out_dir / f"best_{name}.keras")
        assert info.extra["run"] == best[name].run and info.config == name
        assert info.class_names == ("cog", "toon") and info.image_size == (48, 48)
        assert model.inputs[0].shape[1:] == (48, 48, 3)
        # its confidence rule, fitted on its own run's train and validate crops
        rule = load_confidence(out_dir / f"best_{name}.keras")
        sizes = best[name].split_sizes
        assert rule is not None and rule.accept == 0.95 and rule.temperature > 0
        assert len(rule.reference) == sizes["train"]
        assert len(rule.validation_scores) == sizes["validate"]
    for record in records:   # calibration of every run, from the engine's probabilities
        for metrics in (record.validation_metrics, record.test_metrics):
            assert 0 <= metrics["ece"] <= 1 and 0 <= metrics["brier"] <= 2
    for name in (LEARNING_CURVES_FILE, BEST_RUN_CURVES_FILE, BOXPLOTS_FILE, FOREST_FILE):
        assert (out_dir / name).read_bytes().startswith(PNG_SIGNATURE)
    # accuracy, loss, macro F1, ECE, Brier score; two configurations and their pair
    assert len(pd.read_csv(out_dir / SUMMARY_FILE)) == 15
    assert len(list((out_dir / "epochs").glob("*.csv"))) == 4


def card_crops(cards_dir: Path, labels: tuple[str, ...], size: tuple[int, int]) -> tuple:
    """The boxes of `labels` cropped from the card photos, resized, with their class indices."""
    from toonvision.data_processing.images import read_image, resize
    from toonvision.data_processing.voc import parse_annotation

    crops, classes, names = [], [], []
    for xml_path in sorted(cards_dir.glob("*.xml")):
        objects = [item for item in parse_annotation(xml_path).objects if item.label in labels]
        image_path = next((path for path in xml_path.parent.glob(xml_path.stem + ".*")
                           if path.suffix.lower() == ".jpg"), None)
        if not objects or image_path is None:
            continue
        image = read_image(image_path)
        for item in objects:
            crops.append(resize(image[item.ymin:item.ymax, item.xmin:item.xmax], size))
            classes.append(labels.index(item.label))
            names.append(image_path.with_name(f"{image_path.stem}_{item.index}.png"))
    return np.stack(crops), np.asarray(classes), names


@pytest.mark.slow
def test_both_article_configs_learn_real_crops_well_above_chance(shared_data, tmp_path):
    from toonvision.model_utils.comparison.stored_settings import settings_for
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    labels = ("ace", "king")
    images, y, paths = card_crops(shared_data / "cards_voc" / "train", labels, (64, 48))
    task_data = SimpleNamespace(images=images, y=y, class_names=labels, paths=paths,
                                labels=[labels[index] for index in y])
    # The optimized config (dropout 0.9, augmentation) needs more steps to start learning.
    configs = [BUILTIN_CONFIGS["baseline"].replace(epochs=8),
               BUILTIN_CONFIGS["optimized"].replace(epochs=20)]
    settings = settings_for(task_data, "ace,king", configs, runs=1, source="cards")
    comparison = Comparison.start(tmp_path / "cards", settings)
    list(comparison.run(task_data, configs))
    accuracies = {item.config: item.test_metrics["accuracy"] for item in comparison.records}
    assert len(y) > 150 and abs(np.mean(y) - 0.5) < 0.05   # balanced: chance is 0.5
    assert accuracies["baseline"] > 0.75 and accuracies["optimized"] > 0.75, accuracies



"""Tests of model_utils.compare and runlog, the comparison figures, and the compare/optimizers
commands.

Most tests drive `Comparison` with a fake trainer (no Keras), so that the log, the resume logic
and the best-model bookkeeping can be checked at every possible crash point in milliseconds.
Two tests train real models: a comparison killed with SIGKILL and resumed, and a check on real
crops that both article configurations learn.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import toonvision.model_utils.comparison.best_models as best_models
import toonvision.model_utils.comparison.runner as compare
import toonvision.model_utils.training.model_io as model_io
from toonvision.data_processing.images import write_image_atomic
from toonvision.data_visualization.comparison_figures import (
    BEST_RUN_CURVES_FILE,
    BOXPLOTS_FILE,
    FOREST_FILE,
    LEARNING_CURVES_FILE,
    write_comparison_figures,
)
from toonvision.model_utils.comparison.best_models import PENDING_FOLDER
from toonvision.model_utils.comparison.runlog import (
    LOG_FILE,
    STOP_FILE,
    RunRecord,
    complete_runs,
    is_better,
    read_log,
    read_stop,
    select_best,
)
from toonvision.model_utils.comparison.runner import Comparison
from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE, ComparisonSettings
from toonvision.model_utils.comparison.summary import (
    PER_CLASS_FILE,
    SUMMARY_COLUMNS,
    SUMMARY_FILE,
    class_scores,
    describe,
    summarize,
)
from toonvision.model_utils.statistics.paired import paired_difference, selection_optimism
from toonvision.model_utils.statistics.verdict import paired_verdict, verdict_sentence

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def record(config: str, run: int, test_loss: float, test_accuracy: float,
           validation_loss: float = 0.5, epochs: int = 3) -> RunRecord:
    """A hand-made run record, shaped like the ones the comparison logs."""
    history = {
        "loss": list(np.linspace(0.7, test_loss, epochs)),
        "accuracy": list(np.linspace(0.5, test_accuracy, epochs)),
        "val_loss": list(np.linspace(0.7, validation_loss, epochs)),
        "val_accuracy": list(np.linspace(0.5, test_accuracy, epochs)),
    }
    return RunRecord(config=config, run=run, seed=run, split_seed=run,
                     split_sizes={"train": 18, "validate": 6, "test": 6}, history=history,
                     validation_metrics={"loss": validation_loss, "accuracy": test_accuracy},
                     test_metrics={"loss": test_loss, "accuracy": test_accuracy},
                     epochs_run=epochs, setup_seconds=0.1, train_seconds=1.0)


# ------------------------------------------------------------------------------------------
# Selection and statistics on known numbers


def test_article_rule_needs_lower_test_loss_and_higher_test_accuracy():
    best = record("a", 0, test_loss=0.20, test_accuracy=0.90)
    assert is_better(record("a", 1, 0.10, 0.95), best)
    assert not is_better(record("a", 1, 0.10, 0.90), best)   # accuracy only equal
    assert not is_better(record("a", 1, 0.25, 0.99), best)   # loss higher
    assert not is_better(record("a", 1, 0.10, 0.85), best)   # accuracy lower
    assert is_better(record("a", 0, 9.0, 0.0), None)


def test_val_loss_rule_ignores_the_test_set():
    best = record("a", 0, test_loss=0.20, test_accuracy=0.90, validation_loss=0.30)
    assert is_better(record("a", 1, 0.99, 0.10, validation_loss=0.29), best, "val_loss")
    assert not is_better(record("a", 1, 0.01, 0.99, validation_loss=0.31), best, "val_loss")


def test_select_best_replays_the_rule_in_run_order():
    records = [
        record("a", 0, 0.30, 0.90),
        record("a", 1, 0.20, 0.92),   # better: replaces run 0
        record("a", 2, 0.10, 0.91),   # lower loss but lower accuracy: kept out
        record("a", 3, 0.15, 0.93),   # better than run 1
        record("b", 0, 0.50, 0.80, validation_loss=0.2),
        record("b", 1, 0.40, 0.85, validation_loss=0.3),
    ]
    assert select_best(records)["a"].run == 3
    assert select_best(records)["b"].run == 1
    assert select_best(records, "val_loss")["b"].run == 0
    assert select_best(list(reversed(records)))["a"].run == 3
    with pytest.raises(ValueError, match=r"unknown selection rule 'val-loss' \(did you mean"):
        select_best(records, "val-loss")


def test_describe_on_known_numbers():
    statistics = describe([1, 2, 3, 4, 5])
    assert statistics["n"] == 5
    assert (statistics["median"], statistics["q1"], statistics["q3"]) == (3, 2, 4)
    assert (statistics["min"], statistics["max"], statistics["mean"]) == (1, 5, 3)
    assert statistics["sd"] == pytest.approx(np.sqrt(2.5))


def test_class_scores_of_a_hand_checked_confusion_matrix():
    scores = class_scores([[8, 2], [1, 9]])
    assert scores["precision"].tolist() == pytest.approx([8 / 9, 9 / 11])
    assert scores["recall"].tolist() == pytest.approx([0.8, 0.9])
    assert scores["f1"][0] == pytest.approx(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8))
    assert scores["support"].tolist() == [10, 10]
    assert class_scores([[0, 3], [0, 3]])["precision"].tolist() == [0.0, 0.5]  # 0, not nan


def test_summary_rows_are_the_verdict_functions_of_the_paired_runs():
    accuracies_a = [0.90, 0.92, 0.88, 0.91, 0.93]
    records = [record("a", run, 0.3, accuracy) for run, accuracy in enumerate(accuracies_a)]
    records += [record("b", run, 0.2 + 0.01 * run, accuracy + 0.01 * (run % 3))
                for run, accuracy in enumerate(accuracies_a)]
    summary = summarize(records, ["a", "b"])
    table = summary.table
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    rows = {(row.metric, row.config): row._asdict() for row in table.itertuples(index=False)}
    assert set(rows) == {(metric, config) for metric in ("accuracy", "loss")
                         for config in ("a", "b", "b - a")}   # no macro F1 logged
    a = np.array(accuracies_a)
    b = np.array([item.test_metrics["accuracy"] for item in records[5:]])
    expected = paired_verdict(a, b, n_test=6, n_train=18)
    row = rows[("accuracy", "b - a")]
    for key, value in expected.row().items():
        if key != "runs":
            assert row[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert row["verdict"] == verdict_sentence(expected, "a", "b") == summary.sentences[0]
    assert (row["n_test"], row["n_train"], row["n"]) == (6, 18, 5)
    assert row["ci_low"] < row["resplit_ci_low"] < row["resplit_ci_high"] < row["ci_high"]
    loss = paired_verdict([0.3] * 5, [0.2, 0.21, 0.22, 0.23, 0.24], 6, 18,
                          higher_is_better=False)
    assert rows[("loss", "b - a")]["p_better"] == loss.wins.probability == 1.0  # lower wins
    mean = paired_difference(np.zeros(5), b, 6, 18)
    assert (rows[("accuracy", "b")]["ci_low"], rows[("accuracy", "b")]["resplit_ci_high"]) == \
        pytest.approx((mean.corrected.low, mean.resplit.high))
    kept = select_best(records)["b"]   # the article's rule: lower loss AND higher accuracy
    optimism = selection_optimism(b, kept.test_metrics["accuracy"])
    assert rows[("accuracy", "b")]["kept"] == optimism.kept
    assert rows[("accuracy", "b")]["optimism"] == pytest.approx(optimism.optimism)
    assert summary.kept["b"] == optimism and summary.per_class is None


# ------------------------------------------------------------------------------------------
# The log


def test_read_log_drops_only_a_torn_last_line(tmp_path):
    path = tmp_path / LOG_FILE
    lines = [json.dumps(record("a", 0, 0.2, 0.9).to_dict()),
             json.dumps(record("b", 0, 0.2, 0.9).to_dict())]
    path.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[0][:25])
    records, torn = read_log(path)
    assert [item.config for item in records] == ["a", "b"] and torn == 1
    path.write_text(lines[0][:25] + "\n" + lines[1] + "\n")
    with pytest.raises(ValueError, match=":1: damaged record"):
        read_log(path)


def test_a_json_line_that_is_not_a_run_record_is_an_error(tmp_path):
    path = tmp_path / LOG_FILE
    path.write_text(json.dumps(record("a", 0, 0.2, 0.9).to_dict()) + '\n{"config": "b"}\n')
    with pytest.raises(ValueError, match=r"record 2: not a run record: no run, seed"):
        read_log(path)


def test_log_lines_read_and_written_back_are_unchanged(tmp_path):
    run_fake(tmp_path / "out", runs=2)
    text = (tmp_path / "out" / LOG_FILE).read_text()
    first = json.loads(text.splitlines()[0])
    assert list(first) == ["config", "run", "seed", "split_seed", "split_sizes", "history",
                           "validation_metrics", "test_metrics", "test_confusion", "epochs_run",
                           "setup_seconds", "train_seconds", "finished_at", "host", "worker",
                           "threads"]
    assert (first["worker"], first["threads"] >= 1) == ("local", True)
    assert np.sum(first["test_confusion"]) == first["split_sizes"]["test"] == 6
    assert "".join(json.dumps(RunRecord.from_dict(json.loads(line)).to_dict()) + "\n"
                   for line in text.splitlines()) == text
    best = json.loads((tmp_path / "out" / "best_baseline.json").read_text())
    assert RunRecord.from_dict(best).to_dict() == best


def test_complete_runs_keeps_runs_logged_for_every_config_once():
    records = [record("a", 0, 0.2, 0.9), record("b", 0, 0.2, 0.9), record("a", 0, 0.1, 0.95),
               record("a", 1, 0.2, 0.9)]
    kept = complete_runs(records, ["a", "b"])
    assert [(item.config, item.run) for item in kept] == [("a", 0), ("b", 0)]
    assert kept[0].test_metrics["loss"] == 0.2


# ------------------------------------------------------------------------------------------
# The comparison folder, with a fake trainer


@dataclass(frozen=True)
class FakeConfig:
    name: str
    epochs: int = 3


class FakeModel:
    def __init__(self, text: str) -> None:
        self.text = text

    def save(self, path: str) -> None:
        Path(path).write_text(self.text)

    def predict_on_batch(self, images: np.ndarray) -> np.ndarray:
        """P(class 1) of each image, seeded by the model: what a sigmoid output gives."""
        generator = np.random.default_rng(len(self.text) + len(images))
        return generator.uniform(0, 1, (len(images), 1))


class FakeTrainer:
    """Returns metrics that depend only on (config, seed), as a deterministic trainer would."""

    def __init__(self, config: FakeConfig, num_classes: int, image_size: tuple[int, int]):
        self.config = config
        self.model = None

    def run(self, images, y, split, seed, epoch_callback=None):
        generator = np.random.default_rng([seed, len(self.config.name)])
        loss, accuracy, validation_loss = generator.uniform([0.05, 0.7, 0.05], [0.6, 1.0, 0.6])
        history = {"loss": [0.7, loss], "accuracy": [0.5, accuracy],
                   "val_loss": [0.7, validation_loss], "val_accuracy": [0.5, accuracy]}
        for epoch in range(2):
            if epoch_callback is not None:
                epoch_callback(epoch, {key: values[epoch] for key, values in history.items()})
        self.model = FakeModel(f"{self.config.name} {seed}")
        return SimpleNamespace(
            seed=seed, history=history, epochs_run=2, setup_seconds=0.0, train_seconds=0.01,
            validation_metrics={"loss": validation_loss, "accuracy": accuracy},
            test_metrics={"loss": loss, "accuracy": accuracy},
        )


CONFIGS = [FakeConfig("baseline"), FakeConfig("optimized")]
TASK_DATA = SimpleNamespace(images=np.zeros((30, 4, 4, 3), np.uint8),
                            y=np.arange(30) % 2, class_names=("cog", "toon"))


def fake_settings(runs: int = 4, **changes) -> ComparisonSettings:
    values = dict(source="fake", task="binary", class_names=["cog", "toon"], image_size=[4, 4],
                  ratios=[0.6, 0.2, 0.2], seed=0, runs=runs, select="test",
                  configs=[{"name": config.name, "epochs": config.epochs} for config in CONFIGS],
                  data_fingerprint="abc", num_images=30)
    values.update(changes)
    return ComparisonSettings(**values)


def run_fake(out_dir: Path, runs: int = 4, resume: bool = False, **changes) -> Comparison:
    comparison = Comparison.start(out_dir, fake_settings(runs, **changes), resume=resume)
    for _ in comparison.run(TASK_DATA, CONFIGS, trainer_factory=FakeTrainer):
        pass
    return comparison


def comparable(records: list[RunRecord]) -> list[tuple]:
    return [(item.config, item.run, item.split_seed, item.test_metrics["loss"],
             item.validation_metrics["loss"]) for item in records]


def assert_consistent(out_dir: Path, runs: int, reference: list[RunRecord]) -> None:
    """The log has each run once per config, and best_* are the log's best runs."""
    records, torn = read_log(out_dir / LOG_FILE)
    assert torn == 0
    assert sorted((item.run, item.config) for item in records) == sorted(
        (run, config.name) for run in range(runs) for config in CONFIGS)
    assert comparable(records) == comparable(reference)
    for name, best in select_best(records).items():
        assert json.loads((out_dir / f"best_{name}.json").read_text())["run"] == best.run
        assert (out_dir / f"best_{name}.keras").read_text() == f"{name} {best.seed}"
        sidecar = json.loads((out_dir / f"best_{name}.keras.json").read_text())
        assert sidecar["extra"]["run"] == best.run and sidecar["config"] == name
    assert not (out_dir / PENDING_FOLDER).exists()


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
    # accuracy, loss and macro F1 (from the test confusion matrices): two configs, one pair
    assert len(table) == 3 * 3
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
        "test accuracy: B - A", "test loss: B - A", "test macro_f1: B - A"]
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


class EffectTrainer(FakeTrainer):
    """Test accuracy 0.9 + the configuration's effect + its own noise of sd 0.02 per run."""

    effects: dict[str, float] = {}

    def run(self, images, y, split, seed, epoch_callback=None):
        result = super().run(images, y, split, seed, epoch_callback)
        noise = np.random.default_rng([seed, 7, len(self.config.name)]).normal(0.0, 0.02)
        result.test_metrics["accuracy"] = 0.9 + self.effects.get(self.config.name, 0.0) + noise
        return result


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


def test_compare_command_runs_until_decided(tmp_path, monkeypatch, capsys):
    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main

    monkeypatch.setattr(model_utils, "Trainer", EffectTrainer)
    EffectTrainer.effects = {"optimized": 0.1}
    write_crops(tmp_path / "data", per_class=10)
    out_dir = tmp_path / "out"
    assert main(["compare", "--data-dir", str(tmp_path / "data"), "--cache-dir",
                 str(tmp_path / "cache"), "--no-tracking", "--image-size", "48", "48",
                 "--workers", "1",
                 "--runs", "auto", "--look-every", "5", "--equivalence", "0.01",
                 "--out", str(out_dir)]) == 0
    captured = capsys.readouterr()
    stored = json.loads((out_dir / SETTINGS_FILE).read_text())
    assert (stored["until_decided"], stored["runs"], stored["look_every"],
            stored["equivalence"]) == (True, 200, 5, 0.01)
    assert "stopped after 10 of at most 200 runs (different): after 10 runs (look 2 of 40)" \
        in captured.err
    assert captured.out.startswith("optimized vs baseline: +")
    assert "kept best optimized (run" in captured.out and "--select val_loss gives" in \
        captured.out
    assert (out_dir / FOREST_FILE).read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(SystemExit):
        main(["compare", "--data-dir", str(tmp_path / "data"), "--runs", "many"])
    assert "a whole number or 'auto'; got 'many'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# Re-reading results: summarize


def test_summarize_on_a_run_folder_reproduces_its_summary(tmp_path, capsys):
    from toonvision.cli import main

    comparison = run_fake(tmp_path / "out", runs=4)
    summary = comparison.write_summary()
    written = comparison.summary_path.read_text()
    per_class = (tmp_path / "out" / PER_CLASS_FILE).read_text()
    comparison.summary_path.unlink()
    assert main(["summarize", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert comparison.summary_path.read_text() == written
    assert (tmp_path / "out" / PER_CLASS_FILE).read_text() == per_class
    assert printed.splitlines()[0] == summary.sentences[0]
    assert (tmp_path / "out" / FOREST_FILE).is_file()
    assert main(["summarize", str(tmp_path / "out"), "--split-sizes", "36", "12", "12",
                 "--out", str(tmp_path / "again")]) == 0
    again = pd.read_csv(tmp_path / "again" / SUMMARY_FILE)
    assert set(again.n_test) == {12} and set(again.n_train) == {36}


def test_summarize_refuses_what_it_cannot_read(tmp_path, capsys):
    from toonvision.cli import main

    (tmp_path / "evaluations.json").write_text(json.dumps([["a", [[0.1, 0.9], [0.2, 0.8]]]]))
    assert main(["summarize", str(tmp_path / "evaluations.json")]) == 2
    assert "holds no split sizes" in capsys.readouterr().err
    assert main(["summarize", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["summarize", str(tmp_path)]) == 2
    assert "is not a comparison folder" in capsys.readouterr().err


def test_summarize_gives_the_authors_runs_the_same_verdict(shared_data, tmp_path, capsys):
    from toonvision.cli import main

    path = shared_data / "toontown" / "evaluations_all.json"
    if not path.is_file():
        pytest.skip(f"author's evaluations not found at {path}")
    assert main(["summarize", str(path), "--split-sizes", "410", "137", "137",
                 "--out", str(tmp_path / "author")]) == 0
    lines = capsys.readouterr().out.splitlines()
    sentence = next(line for line in lines if line.startswith("optimized_1e-5 vs baseline:"))
    assert sentence == ("optimized_1e-5 vs baseline: +1.1 accuracy points (95% CI -0.7 to +2.9, "
                        "corrected; +0.9 to +1.4 uncorrected); optimized_1e-5 won 70% of runs, "
                        "tied 16%; not decided: the effect is under what this test split can "
                        "resolve.")
    table = pd.read_csv(tmp_path / "author" / SUMMARY_FILE)
    pair = table[(table.metric == "accuracy")
                 & (table.config == "optimized_1e-5 - baseline")].iloc[0]
    assert pair.resplit_ci_low > 0 and pair.ci_low < 0 < pair.ci_high   # naive vs corrected
    assert pair.state == "undecidable" and pair.under_floor and pair.n == 200
    assert any(line.startswith("kept best optimized_1e-5 (run 12, --select test): test "
                               "accuracy 1.0000") for line in lines)   # the author's run12.h5
    assert sorted(path.name for path in (tmp_path / "author").iterdir()) == [
        BOXPLOTS_FILE, FOREST_FILE, SUMMARY_FILE]   # no histories: no learning curves


# ------------------------------------------------------------------------------------------
# Real training


def write_crops(data_dir: Path, per_class: int = 12, size: tuple[int, int] = (48, 48)) -> None:
    """Tiny crops that are easy to tell apart: dark noisy cogs, bright noisy toons."""
    generator = np.random.default_rng(0)
    for label, brightness in (("cog_sb_coldcaller", 60), ("toon_dog", 190)):
        for index in range(per_class):
            image = generator.normal(brightness, 30, (*size, 3)).clip(0, 255).astype(np.uint8)
            write_image_atomic(data_dir / "unsorted" / label.split("_")[0]
                               / f"{label}_{index}.png", image)


@pytest.mark.slow
def test_a_killed_comparison_resumes_to_exactly_n_runs(tmp_path):
    from toonvision.cli import main
    from toonvision.model_utils.training.model_io import load_model

    write_crops(tmp_path / "data")
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
    for name in (LEARNING_CURVES_FILE, BEST_RUN_CURVES_FILE, BOXPLOTS_FILE, FOREST_FILE):
        assert (out_dir / name).read_bytes().startswith(PNG_SIGNATURE)
    assert len(pd.read_csv(out_dir / SUMMARY_FILE)) == 9   # accuracy, loss, macro F1
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


# ------------------------------------------------------------------------------------------
# The commands' wiring, with the fake trainer in place of model_utils.Trainer


class RecordingTrainer(FakeTrainer):
    made: list = []

    def __init__(self, config, num_classes, image_size):
        super().__init__(config, num_classes, image_size)
        RecordingTrainer.made.append(self)
        self.splits = []

    def run(self, images, y, split, seed, epoch_callback=None):
        self.splits.append((seed, {name: np.array(part) for name, part in split.items()}))
        return super().run(images, y, split, seed, epoch_callback)


def test_compare_command_applies_epochs_early_stopping_and_balance(tmp_path, monkeypatch,
                                                                   capsys):
    import toonvision.model_utils.tracking as tracking
    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main

    monkeypatch.setattr(model_utils, "Trainer", RecordingTrainer)
    monkeypatch.setattr(tracking, "mlflow_available", lambda: False)
    RecordingTrainer.made = []
    generator = np.random.default_rng(0)
    for label, count in (("cog_bb_flunky", 20), ("toon_dog", 8)):   # imbalanced on purpose
        for index in range(count):
            write_image_atomic(tmp_path / "data" / "unsorted" / f"{label}_{index}.png",
                               generator.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    out_dir = tmp_path / "out"
    assert main(["compare", "--data-dir", str(tmp_path / "data"), "--image-size", "48", "48",
                 "--runs", "3", "--epochs", "7", "--early-stopping", "2", "--balance",
                 "undersample", "--seed", "10", "--out", str(out_dir), "--cache-dir",
                 str(tmp_path / "cache"), "--workers", "1"]) == 0
    trainers = {trainer.config.name: trainer for trainer in RecordingTrainer.made}
    assert sorted(trainers) == ["baseline", "optimized"]
    assert all(trainer.config.epochs == 7 and trainer.config.early_stopping_patience == 2
               for trainer in trainers.values())
    y = np.array([0] * 20 + [1] * 8)
    for _, split in trainers["baseline"].splits:
        assert list(np.bincount(y[split["train"]])) == [5, 5]   # 12 cog, 5 toon: undersampled
        assert len(split["validate"]) + len(split["test"]) == 11  # untouched
    assert [seed for seed, _ in trainers["optimized"].splits] == [10, 11, 12]
    for (_, first), (_, second) in zip(trainers["baseline"].splits,
                                       trainers["optimized"].splits, strict=True):
        assert all(np.array_equal(first[name], second[name]) for name in first)   # paired
    printed = capsys.readouterr().out
    assert "optimized - baseline" in printed and str(out_dir / "best_optimized.keras") in printed
    tracked = [json.loads(line) for line in (out_dir / "tracking.jsonl").read_text().splitlines()]
    assert [item["run"] for item in tracked][:2] == ["baseline-run0000", "optimized-run0000"]
    assert len(tracked) == 6 and tracked[0]["params"]["early_stopping_patience"] == 2
    settings = json.loads((out_dir / "comparison.json").read_text())
    assert settings["balance"] == "undersample" and settings["configs"][0]["epochs"] == 7


def test_compare_command_takes_settings_from_a_file_and_typed_options_win(tmp_path, monkeypatch,
                                                                         capsys):
    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main

    monkeypatch.setattr(model_utils, "Trainer", RecordingTrainer)
    RecordingTrainer.made = []
    write_crops(tmp_path / "data", per_class=10)
    settings_file = tmp_path / "study.toml"
    settings_file.write_text('configs = ["baseline", {name = "fast", base = "optimized", '
                             'batch_size = 8}]\nruns = 3\nepochs = 4\nimage_size = [48, 48]\n'
                             'seed = 5\nselect = "val_loss"\nbalance = "oversample"\n')
    out_dir = tmp_path / "out"
    common = ["compare", "--data-dir", str(tmp_path / "data"), "--cache-dir",
              str(tmp_path / "cache"), "--no-tracking", "--workers", "1", "--settings",
              str(settings_file)]
    assert main([*common, "--runs", "2", "--seed", "9", "--out", str(out_dir)]) == 0
    stored = json.loads((out_dir / SETTINGS_FILE).read_text())
    assert (stored["runs"], stored["seed"]) == (2, 9)                         # typed: win
    assert (stored["select"], stored["balance"]) == ("val_loss", "oversample")   # the file's
    assert stored["image_size"] == [48, 48] and stored["ratios"] == [0.6, 0.2, 0.2]  # default
    assert [(config["name"], config["epochs"], config["batch_size"])
            for config in stored["configs"]] == [("baseline", 4, 32), ("fast", 4, 8)]
    assert [seed for seed, _ in RecordingTrainer.made[0].splits] == [9, 10]
    capsys.readouterr()

    assert main([*common, "--out", str(out_dir)]) == 2
    assert "add --resume to continue the comparison there" in capsys.readouterr().err
    assert main([*common, "--out", str(out_dir), "--resume", "--runs", "1", "--seed", "9"]) == 2
    assert "(--runs may grow, not shrink)" in capsys.readouterr().err
    assert main([*common, "--out", str(out_dir), "--resume", "--runs", "3"]) == 2   # seed 5 now
    error = capsys.readouterr().err
    assert "seed: 9 there, 5 now" in error
    assert f"--settings {out_dir / SETTINGS_FILE} repeats them" in error
    again = [*common[:-1], str(out_dir / SETTINGS_FILE)]   # its own settings, one run more
    assert main([*again, "--out", str(out_dir), "--resume", "--runs", "3"]) == 0
    assert len(read_log(out_dir / LOG_FILE)[0]) == 6


def test_optimizers_command_trains_each_optimizer_on_one_split(tmp_path, monkeypatch, capsys):
    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main

    monkeypatch.setattr(model_utils, "Trainer", RecordingTrainer)
    RecordingTrainer.made = []
    write_crops(tmp_path / "data")
    assert main(["optimizers", "--data-dir", str(tmp_path / "data"), "--image-size", "48", "48",
                 "--epochs", "4", "--optimizers", "adam,SGD,ftrl", "--learning-rate", "0.01",
                 "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                 "--workers", "1"]) == 0
    configs = [trainer.config for trainer in RecordingTrainer.made]
    assert [(config.name, config.optimizer) for config in configs] == [
        ("adam", "adam"), ("sgd", "sgd"), ("ftrl", "ftrl")]
    assert all(config.learning_rate == 0.01 and config.epochs == 4 and not config.augmentation
               for config in configs)
    splits = [trainer.splits[0] for trainer in RecordingTrainer.made]
    assert all(np.array_equal(split["train"], splits[0][1]["train"]) for _, split in splits)
    table = (tmp_path / "out" / "optimizers.csv").read_text().splitlines()
    assert table[0].startswith("optimizer,epoch,loss,accuracy,val_loss,val_accuracy,test_loss")
    assert len(table) == 1 + 3 * 2
    assert (tmp_path / "out" / "optimizers.png").read_bytes().startswith(PNG_SIGNATURE)
    log = capsys.readouterr().err   # not a terminal: one line per optimizer, no redraws
    assert [line.split(" done")[0] for line in log.splitlines()
            if line.startswith("optimizer ")] == ["optimizer 1/3 adam", "optimizer 2/3 sgd",
                                                  "optimizer 3/3 ftrl"]
    assert "\r" not in log
    assert main(["optimizers", "--data-dir", str(tmp_path / "data"), "--optimizers", "adamw",
                 "--out", str(tmp_path / "out")]) == 2


def test_compare_stores_every_runs_out_of_sample_predictions_for_the_doctor(
        tmp_path, monkeypatch, write_crops):
    """Every logged run has, per configuration, the probabilities of its validate and test
    crops under their stable ids; a resume keeps only the runs in the log."""
    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main
    from toonvision.data_processing.dataset import crop_ids, from_crops
    from toonvision.model_utils.comparison.predictions import PredictionStore

    monkeypatch.setattr(model_utils, "Trainer", RecordingTrainer)
    RecordingTrainer.made = []
    write_crops(tmp_path / "data", ["cog_bb_flunky"] * 10 + ["toon_dog"] * 10)
    out_dir = tmp_path / "out"
    arguments = ["compare", "--data-dir", str(tmp_path / "data"), "--image-size", "48", "48",
                 "--runs", "3", "--out", str(out_dir), "--cache-dir", str(tmp_path / "cache"),
                 "--workers", "1", "--no-tracking"]
    assert main(arguments) == 0
    store = PredictionStore(out_dir)
    ids = crop_ids(from_crops(tmp_path / "data").paths)
    for config, trainer in ((trainer.config.name, trainer) for trainer in RecordingTrainer.made):
        stored = store.read(config)
        assert sorted(set(stored.run.tolist())) == [0, 1, 2]
        for run, (_, split) in enumerate(trainer.splits):
            mine = stored.run == run
            expected = np.concatenate([ids[split["validate"]], ids[split["test"]]])
            assert sorted(stored.ids[mine].tolist()) == sorted(expected.tolist())
        assert np.allclose(stored.probabilities.sum(axis=1), 1.0, atol=1e-2)
    assert main(arguments[:6] + ["--runs", "4"] + arguments[8:] + ["--resume"]) == 0
    assert sorted(set(store.read("baseline").run.tolist())) == [0, 1, 2, 3]

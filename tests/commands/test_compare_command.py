"""Tests of `toonvision compare`: its wiring to the library, with the fake trainer in place of
`training.trainer.Trainer`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import (
    EffectTrainer,
    RecordingTrainer,
    write_easy_crops,
)

from toonvision.data_processing.images import write_image_atomic
from toonvision.data_visualization.comparison_figures import (
    FOREST_FILE,
)
from toonvision.model_utils.comparison.runlog import (
    LOG_FILE,
    read_log,
)
from toonvision.model_utils.comparison.stored_settings import SETTINGS_FILE

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_compare_command_runs_until_decided(tmp_path, monkeypatch, capsys):
    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main

    monkeypatch.setattr(model_utils, "Trainer", EffectTrainer)
    EffectTrainer.effects = {"optimized": 0.1}
    write_easy_crops(tmp_path / "data", per_class=10)
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
    write_easy_crops(tmp_path / "data", per_class=10)
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


def test_compare_with_one_run_is_a_result_and_summarize_reads_it_again(tmp_path, monkeypatch,
                                                                       capsys):
    """`compare --runs 1` trains, keeps the models, prints the run's metrics and exits 0; the
    summary says that intervals and verdicts need two runs; `summarize` does the same."""
    import pandas as pd

    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main
    from toonvision.model_utils.comparison.summary import ONE_RUN_NOTE, SUMMARY_FILE

    monkeypatch.setattr(model_utils, "Trainer", RecordingTrainer)
    RecordingTrainer.made = []
    write_easy_crops(tmp_path / "data", per_class=10)
    out_dir = tmp_path / "out"
    assert main(["compare", "--data-dir", str(tmp_path / "data"), "--cache-dir",
                 str(tmp_path / "cache"), "--no-tracking", "--image-size", "48", "48",
                 "--workers", "1", "--runs", "1", "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    record = {item.config: item for item in read_log(out_dir / LOG_FILE)[0]}
    assert sorted(record) == ["baseline", "optimized"]
    difference = (record["optimized"].test_metrics["accuracy"]
                  - record["baseline"].test_metrics["accuracy"])
    assert printed.splitlines()[0] == (
        f"optimized vs baseline: {difference * 100:+.1f} accuracy points in 1 run; no interval "
        "or verdict (they need at least two runs).")
    assert ONE_RUN_NOTE in printed
    for name in ("baseline", "optimized"):
        accuracy = record[name].test_metrics["accuracy"]
        assert f"best {name}: run 0 (split seed 0), test accuracy {accuracy:.4f}" in printed
        assert (out_dir / f"best_{name}.keras").is_file()
    table = pd.read_csv(out_dir / SUMMARY_FILE)
    rows = table[table.metric == "accuracy"].set_index("config")
    assert rows.loc["baseline", "mean"] == pytest.approx(
        record["baseline"].test_metrics["accuracy"])
    assert rows.loc["optimized - baseline", "mean"] == pytest.approx(difference)
    assert table[["ci_low", "ci_high", "p_better", "state"]].isna().all().all()
    assert (out_dir / FOREST_FILE).read_bytes().startswith(PNG_SIGNATURE)

    (out_dir / SUMMARY_FILE).unlink()
    assert main(["summarize", str(out_dir)]) == 0
    again = capsys.readouterr().out
    assert again.splitlines()[0] == printed.splitlines()[0] and ONE_RUN_NOTE in again
    assert pd.read_csv(out_dir / SUMMARY_FILE).equals(table)
    # One run more makes a verdict: the folder resumes to two runs.
    assert main(["compare", "--data-dir", str(tmp_path / "data"), "--cache-dir",
                 str(tmp_path / "cache"), "--no-tracking", "--image-size", "48", "48",
                 "--workers", "1", "--runs", "2", "--out", str(out_dir), "--resume"]) == 0
    assert ONE_RUN_NOTE not in capsys.readouterr().out


def test_only_typed_flags_override_a_settings_file():
    """Flags left out are not in the parsed options (argparse.SUPPRESS), so they cannot hide
    a settings file's value behind a default."""
    from toonvision.cli import build_parser
    from toonvision.commands.compare import typed_settings

    parser = build_parser()
    args = parser.parse_args(["compare", "--runs", "3", "--look-every", "5", "--ratio", "0.5",
                              "0.25", "0.25", "--workers", "1", "--configs", "mlp, baseline"])
    assert typed_settings(args) == {"runs": 3, "look_every": 5, "ratios": [0.5, 0.25, 0.25],
                                    "workers": 1, "configs": ["mlp", "baseline"]}
    assert typed_settings(parser.parse_args(["compare"])) == {}
    assert typed_settings(parser.parse_args(["compare", "--runs", "auto"])) == {
        "until_decided": True}
    assert typed_settings(parser.parse_args(["compare", "--group-column", "scene"])) == {
        "group_by": "column:scene"}


@pytest.mark.slow
def test_compare_letterbox_keeps_a_model_that_predicts_and_reports_letterboxed(tmp_path,
                                                                              capsys):
    """`compare --resize letterbox` trains on letterboxed crops, its kept model's sidecar says
    so, and predict and report feed that model letterboxed crops: predict's probabilities
    are the model's own on the letterboxed crops, not on stretched ones."""
    from toonvision.cli import main
    from toonvision.data_processing.images import read_image, resize
    from toonvision.model_utils.prediction import predict_paths
    from toonvision.model_utils.training.model_io import load_model
    from toonvision.model_utils.training.models import predict_probabilities

    write_easy_crops(tmp_path / "data", per_class=10, size=(24, 48))   # wide: padded rows
    out_dir = tmp_path / "out"
    assert main(["compare", "--data-dir", str(tmp_path / "data"), "--cache-dir",
                 str(tmp_path / "cache"), "--image-size", "48", "48", "--resize", "letterbox",
                 "--configs", "baseline", "--runs", "1", "--epochs", "1", "--workers", "1",
                 "--no-tracking", "--out", str(out_dir)]) == 0, capsys.readouterr().err
    assert "48x48 letterboxed" in capsys.readouterr().err
    assert json.loads((out_dir / SETTINGS_FILE).read_text())["resize"] == "letterbox"
    model_path = out_dir / "best_baseline.keras"
    assert json.loads((out_dir / "best_baseline.keras.json").read_text())["resize"] == \
        "letterbox"

    model, info = load_model(model_path)
    assert info.resize == "letterbox"
    crops = sorted((tmp_path / "data" / "unsorted").rglob("*.png"))[:6]
    predictions = predict_paths(model, info, crops).predictions
    originals = [read_image(path) for path in crops]
    letterboxed = np.stack([resize(image, (48, 48), "letterbox") for image in originals])
    assert (letterboxed[:, :12] == 0).all()          # 24 of 48 rows: 12 black above
    expected = predict_probabilities(model, letterboxed.astype(np.float32))
    np.testing.assert_allclose([item.confidence for item in predictions],
                               expected.max(axis=1), rtol=1e-6)
    stretched = predict_probabilities(model, np.stack(
        [resize(image, (48, 48)) for image in originals]).astype(np.float32))
    assert not np.allclose(stretched, expected, rtol=1e-6)   # the check can tell them apart

    assert main(["predict", str(model_path), *map(str, crops), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    # The command applies the kept model's temperature (its confidence rule).
    from toonvision.model_utils.statistics.calibration import apply_temperature
    from toonvision.model_utils.training.confidence import load_confidence

    calibrated = apply_temperature(expected, load_confidence(model_path).temperature)
    assert [float(row.split(",")[7]) for row in rows] == pytest.approx(
        calibrated.max(axis=1), abs=1e-4)
    for inputs in ([], ["--inputs", str(tmp_path / "data" / "unsorted")]):
        report = tmp_path / f"report{len(inputs)}"
        assert main(["report", str(model_path), "--data-dir", str(tmp_path / "data"),
                     "--cache-dir", str(tmp_path / "cache"), "--out", str(report),
                     "--samples", "1", "--filters", "1", "--explain", "0", *inputs]) == 0
        assert "48x48 (height x width, letterbox)" in (report / "index.html").read_text()
        metrics = json.loads((report / "metrics.json").read_text())
        if not inputs:   # the kept run's test split, letterboxed as it was trained
            record = json.loads((out_dir / "best_baseline.json").read_text())
            assert metrics["loss"] == pytest.approx(record["test_metrics"]["loss"], rel=1e-5)

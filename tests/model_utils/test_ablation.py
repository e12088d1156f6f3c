"""The deck's MLP study (toonvision.ablation) and the `ablate` command."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from toonvision.cli import main
from toonvision.model_utils.studies.ablation import (
    VARIANT_NAMES,
    AblationRun,
    ablation_table,
    format_table,
    run_ablation,
    select_variants,
)
from toonvision.model_utils.tracking import read_records


def test_variants_are_the_decks_changes_of_the_mlp_config() -> None:
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    base = BUILTIN_CONFIGS["mlp"]
    configs = {variant.name: variant.config(base) for variant in select_variants()}

    assert list(configs) == list(VARIANT_NAMES)
    assert configs["256-128"].hidden_units == (256, 128) == base.hidden_units
    assert configs["512-256"].hidden_units == (512, 256)
    assert configs["1024-512-256"].hidden_units == (1024, 512, 256)
    assert configs["1024-512"].hidden_units == (1024, 512)
    assert configs["256-128-64"].hidden_units == (256, 128, 64)
    assert configs["no-relu"].hidden_activation == "linear"
    assert configs["sigmoid"].hidden_activation == "sigmoid"
    assert configs["no-softmax"].output_activation == "none"
    assert len(configs["single-256"].hidden_units) == 1
    for config in configs.values():
        assert config.family == "mlp"
        assert config.early_stopping_patience == base.early_stopping_patience
        assert config.learning_rate == base.learning_rate


def test_unknown_variant_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: 256-128, 512-256"):
        select_variants(["256-128", "deeper"])
    assert [variant.name for variant in select_variants(["sigmoid", "256-128"])] == [
        "256-128", "sigmoid"
    ]


def fake_run(variant: str, seed: int, accuracy: float) -> AblationRun:
    return AblationRun(variant, seed, accuracy, accuracy / 2, accuracy - 0.1, 0.2, 12, 7, 1.5,
                       {"loss": [1.0]})


def test_table_means_over_seeds_and_delta_from_the_decks_model() -> None:
    runs = [fake_run("256-128", 0, 0.5), fake_run("256-128", 1, 0.7),
            fake_run("sigmoid", 0, 0.4), fake_run("sigmoid", 1, 0.4)]

    table = ablation_table(runs)

    assert table["variant"].tolist() == ["256-128", "sigmoid"]
    baseline = table.iloc[0]
    assert math.isclose(baseline["validation_accuracy"], 0.6)
    assert math.isclose(baseline["validation_accuracy_std"], 0.1)
    assert math.isclose(baseline["validation_macro_f1"], 0.3)
    assert baseline["seeds"] == 2 and baseline["best_epoch"] == 7
    assert math.isclose(table.iloc[1]["delta_validation_accuracy"], -0.2)
    assert "0.600 +/- 0.100" in format_table(table)


def tiny_set_items() -> list[tuple[str, str, np.ndarray]]:
    """30 8x8 images of three types, each a learnable colour: Fire red, Water green, Grass blue."""
    generator = np.random.default_rng(0)
    items = []
    for index in range(30):
        image = generator.integers(0, 60, (8, 8, 3), dtype=np.uint8)
        image[:, :, index % 3] += 150
        items.append((f"p{index:02d}", ("Fire", "Water", "Grass")[index % 3], image))
    return items


@pytest.mark.slow
def test_ablate_command_gives_one_row_per_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_flat_set
) -> None:
    labels, images = write_flat_set(tmp_path, tiny_set_items())
    out = tmp_path / "ablation"
    # Three of the variants (each compiles its own XLA step, ~6 s); without --variants all
    # of them run (`select_variants(None)`, tested below).
    chosen = ["256-128", "no-relu", "single-256"]

    status = main(["ablate", "--labels", str(labels), "--images", str(images),
                   "--image-size", "8", "8", "--seeds", "1", "--epochs", "2",
                   "--variants", ",".join(chosen),
                   "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                   "--workers", "1"])

    assert status == 0
    with open(out / "ablation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["variant"] for row in rows] == chosen
    assert [variant.name for variant in select_variants(None)] == list(VARIANT_NAMES)
    for row in rows:
        assert 0.0 <= float(row["validation_accuracy"]) <= 1.0
        assert 0.0 <= float(row["validation_macro_f1"]) <= 1.0
        assert 1 <= float(row["best_epoch"]) <= float(row["epochs_run"]) <= 2
    records = read_records(out)
    assert len(records) == len(chosen)
    assert records[0]["params"]["hidden_units"] == [256, 128]
    assert len(records[0]["history"]["val_loss"]) == records[0]["metrics"]["epochs_run"]
    captured = capsys.readouterr()
    assert all(name in captured.out for name in chosen)
    # Off a terminal: one line per finished run, in order, and no bar redraws.
    lines = [line for line in captured.err.splitlines() if line.startswith("run ")]
    assert [line.split(" ", 3)[1:3] for line in lines] == [
        [f"{index}/{len(chosen)}", name] for index, name in enumerate(chosen, start=1)]
    assert "\r" not in captured.err
    assert main(["ablate", "--labels", str(labels), "--images", str(images),
                 "--out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_binary_task_gets_a_macro_f1_from_predictions() -> None:
    generator = np.random.default_rng(0)
    images = generator.integers(0, 60, (20, 8, 8, 3), dtype=np.uint8)
    y = np.arange(20) % 2
    images[y == 1, :, :, 0] += 150

    runs = list(run_ablation(images, y, 2, seeds=[0], variants=select_variants(["256-128"]),
                             base=_tiny_base()))

    assert len(runs) == 1
    assert 0.0 <= runs[0].validation_macro_f1 <= 1.0
    assert 0.0 <= runs[0].test_macro_f1 <= 1.0
    assert runs[0].epochs_run == 1


def _tiny_base():
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    return BUILTIN_CONFIGS["mlp"].replace(epochs=1)

"""The issue's check, end to end on real sets: a model kept by `compare` on playing cards
answers `unknown` for most fruit, and recognises its own test crops."""

from __future__ import annotations

import csv
import io

import pytest

from toonvision.cli import main
from toonvision.model_utils.training.confidence import UNKNOWN


@pytest.mark.slow
def test_a_card_model_calls_most_fruit_unknown_and_accepts_its_own_test_crops(
        shared_data, tmp_path, capsys):
    cards, fruit = tmp_path / "cards", tmp_path / "fruit"
    assert main(["extract", str(shared_data / "cards_voc" / "train"), "--data-dir",
                 str(cards)]) == 0
    assert main(["extract", str(shared_data / "fruit_voc" / "test"), "--data-dir",
                 str(fruit)]) == 0
    out = tmp_path / "runs" / "cards"
    assert main(["compare", "--data-dir", str(cards), "--cache-dir", str(tmp_path / "cache"),
                 "--task", "label", "--configs", "baseline", "--runs", "1", "--epochs", "8",
                 "--image-size", "64", "48", "--workers", "1", "--no-tracking",
                 "--out", str(out)]) == 0
    model = out / "best_baseline.keras"
    assert model.with_name(model.name + ".confidence.npz").is_file()
    capsys.readouterr()

    def answers(folder) -> list[dict]:
        assert main(["predict", str(model), str(folder), "--format", "csv"]) == 0
        return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))

    own_test = [row for row in answers(cards) if row["part"] == "test"]
    others = answers(fruit)
    assert len(own_test) > 50 and len(others) > 50
    accepted = sum(row["accepted"] == "1" for row in own_test) / len(own_test)
    rejected = sum(row["predicted"] == UNKNOWN for row in others) / len(others)
    assert accepted >= 0.85, accepted
    assert rejected > 0.5, rejected

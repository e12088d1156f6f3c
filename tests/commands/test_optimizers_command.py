"""Tests of `toonvision optimizers`: each optimizer trained on one split, with a fake trainer.
"""

from __future__ import annotations

import numpy as np
from conftest import (
    RecordingTrainer,
    write_easy_crops,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_optimizers_command_trains_each_optimizer_on_one_split(tmp_path, monkeypatch, capsys):
    import toonvision.model_utils.training.trainer as model_utils
    from toonvision.cli import main

    monkeypatch.setattr(model_utils, "Trainer", RecordingTrainer)
    RecordingTrainer.made = []
    write_easy_crops(tmp_path / "data")
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


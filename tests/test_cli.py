"""The command line: help for every command, and the data commands end to end."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from toonvision.cli import COMMANDS, build_parser, main
from toonvision.images import write_image_atomic
from toonvision.labels import COG_LABELS, TOON_LABELS


@pytest.fixture
def crops_dir(tmp_path):
    rng = np.random.default_rng(0)
    for index, label in enumerate(list(COG_LABELS) * 2 + list(TOON_LABELS) * 4):
        folder = label.split("_")[0]
        write_image_atomic(tmp_path / "data" / "unsorted" / folder / f"{label}_{index}.png",
                           rng.integers(0, 255, (20, 10, 3), dtype=np.uint8))
    return tmp_path / "data"


def test_help_lists_every_command_and_is_quick_to_import():
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys, toonvision.cli as c; c.build_parser(); print('keras' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )
    assert result.stdout.strip() == "False"  # --help never imports Keras
    help_text = build_parser().format_help()
    for name in ("synth", "extract", "split", "stats"):
        assert name in help_text


def test_every_available_command_has_help_for_every_option():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, subparser in subparsers.choices.items():
        assert name in COMMANDS
        for action in subparser._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help text"


def test_split_writes_a_stratified_manifest_and_moves_nothing(crops_dir, capsys):
    before = sorted(crops_dir.rglob("*.png"))
    assert main(["split", "--data-dir", str(crops_dir), "--task", "suit", "--seed", "3"]) == 0
    manifest = crops_dir / "splits" / "suit-seed3.csv"
    rows = list(csv.DictReader(manifest.open()))
    assert len(rows) == 64
    per_split = {name: sum(row["split"] == name for row in rows) for name in
                 ("train", "validate", "test")}
    assert per_split == {"train": 40, "validate": 12, "test": 12}
    assert sorted(crops_dir.joinpath("unsorted").rglob("*.png")) == before
    assert "sellbot" in capsys.readouterr().out

    again = manifest.read_text()
    assert main(["split", "--data-dir", str(crops_dir), "--task", "suit", "--seed", "3"]) == 0
    assert manifest.read_text() == again


def test_split_materialize(crops_dir, tmp_path):
    out = tmp_path / "layout"
    assert main(["split", "--data-dir", str(crops_dir), "--materialize", str(out)]) == 0
    assert len(list((out / "train" / "cog").iterdir())) == 38
    assert main(["split", "--data-dir", str(crops_dir), "--materialize", str(out)]) == 2


def test_stats_writes_figures_and_table(crops_dir, tmp_path, capsys):
    out = tmp_path / "stats"
    assert main(["stats", "--data-dir", str(crops_dir), "--out", str(out)]) == 0
    for name in ("split_balance.png", "taxonomy.png", "class_shares.png", "counts.csv"):
        assert (out / name).stat().st_size > 1000 or name == "counts.csv"
    printed = capsys.readouterr().out
    assert "cog" in printed and "toon" in printed and "108" in printed


def test_missing_data_dir_is_a_one_line_error(tmp_path, capsys):
    assert main(["stats", "--data-dir", str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert "nowhere" in error and "Traceback" not in error

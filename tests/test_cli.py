"""The command line: help for every command, and the data commands end to end."""

import csv
import subprocess
import sys

import pytest

from toonvision.cli import COMMANDS, build_parser, main, without_tensorflow_banner
from toonvision.labels import COG_LABELS, TOON_LABELS


@pytest.fixture
def crops_dir(tmp_path, write_crops):
    write_crops(tmp_path / "data", list(COG_LABELS) * 2 + list(TOON_LABELS) * 4, size=(20, 10))
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


def test_tensorflow_import_banner_is_dropped_and_other_lines_kept():
    banner = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796107121.684570   30502 port.cc:153] oneDNN custom operations are on. "
        "You may see slightly different numerical results.\n"
        "I0000 00:00:1796107121.747324   30502 cpu_feature_guard.cc:227] This TensorFlow "
        "binary is optimized to use available CPU instructions.\n"
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
        "TensorFlow with the appropriate compiler flags.\n"
    )
    other = "E0000 00:00:1.0   1 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
    assert without_tensorflow_banner(banner) == ""
    assert without_tensorflow_banner(banner + other + banner) == other


def test_keras_commands_import_tensorflow_without_its_banner():
    def stderr_of(code: str) -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stderr

    plain = stderr_of("import tensorflow")
    if "port.cc" not in plain and "absl::InitializeLog" not in plain:
        pytest.skip("this TensorFlow prints no import banner to drop")
    quiet = stderr_of("import sys, toonvision.cli as c; c.import_tensorflow_quietly(); "
                      "assert 'tensorflow' in sys.modules")
    assert "port.cc" not in quiet and "absl::InitializeLog" not in quiet
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    needs_keras = {name for name, subparser in subparsers.choices.items()
                   if subparser.get_default("needs_keras")}
    assert needs_keras == {"compare", "doctor", "optimizers", "ablate", "search", "predict",
                           "report"}


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


def test_labels_in_any_script_reach_the_figures_without_a_warning_per_glyph(
        tmp_path, write_crops, recwarn):
    write_crops(tmp_path / "data", ["ポケモン"] * 6 + ["Pokémon"] * 6, size=(20, 10))
    out = tmp_path / "stats"
    assert main(["stats", "--data-dir", str(tmp_path / "data"), "--task", "label",
                 "--out", str(out)]) == 0
    with (out / "counts.csv").open(encoding="utf-8") as handle:
        assert {"ポケモン", "Pokémon"} <= {cell for row in csv.reader(handle) for cell in row}
    assert not [warning for warning in recwarn if "missing from font" in str(warning.message)]


def test_missing_data_dir_is_a_one_line_error(tmp_path, capsys):
    assert main(["stats", "--data-dir", str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert "nowhere" in error and "Traceback" not in error


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    status = main(["split", "--data-dir", str(tmp_path / "nowhere")])
    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith("toonvision split: error: ") and error.count("\n") == 1
    assert str(tmp_path / "nowhere") in error


def test_a_bug_is_not_dressed_up_as_bad_input(monkeypatch, crops_dir):
    """Only ToonvisionError means bad input: any other exception (here a ValueError from deep
    inside a library) propagates with its traceback instead of exiting 2."""
    import toonvision.data_processing.splits as splits

    def broken(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(splits, "stratified_split", broken)
    with pytest.raises(ValueError, match="broadcast"):
        main(["split", "--data-dir", str(crops_dir)])


def test_defaults_shown_by_help_come_from_the_defaults_module(capsys):
    from toonvision import defaults

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {defaults.RUNS})" in text
    assert f"(default: {' '.join(map(str, defaults.RATIOS))})" in text
    assert f"(default: {defaults.SELECT})" in text


def test_tensorflows_retracing_notice_is_dropped_and_other_warnings_kept():
    import logging

    from toonvision.cli import _no_retracing_notice

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None)

    assert not _no_retracing_notice(record(
        "5 out of the last 5 calls to <function f> triggered tf.function retracing."))
    assert _no_retracing_notice(record("Your input ran out of data"))

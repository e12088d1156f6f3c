"""Corrections as data: kept rows of relabel.csv change labels, never files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np

from toonvision import cli
from toonvision.data_processing.corrections import (
    CORRECTIONS_NAME,
    RELABEL_COLUMNS,
    apply_relabel,
    read_corrections,
)
from toonvision.data_processing.dataset import from_crops
from toonvision.model_utils.doctor_tables import relabel_table


def write_relabel(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RELABEL_COLUMNS)
        writer.writerows(rows)
    return path


def test_kept_rows_relabel_crops_without_touching_them_and_deleting_a_line_undoes(
        tmp_path, write_crops, capsys):
    data = tmp_path / "data"
    crops = write_crops(data, ["toon_dog", "cog_bb_flunky", "toon_cat"])
    before = {path: path.read_bytes() for path in crops}
    relabel = write_relabel(tmp_path / "relabel.csv", [
        (str(crops[0]), "toon_dog", "cog_bb_flunky", "0.93", "runs/a", "2024-01-01T00:00:00"),
        ("unsorted/toon/toon_cat_2.png", "toon_cat", "toon_dog", "0.8", "runs/a", ""),
        (str(tmp_path / "elsewhere.png"), "toon_cat", "toon_dog", "0.8", "runs/a", ""),
    ])
    added, left_out = apply_relabel(relabel, data, now=datetime(2024, 5, 1, tzinfo=UTC))
    assert [item.corrected for item in added] == ["cog_bb_flunky", "toon_dog"]
    assert len(left_out) == 1 and "elsewhere.png" in left_out[0]
    dataset = from_crops(data)
    assert dataset.corrected == 2
    assert dict(zip([path.name for path in dataset.paths], dataset.labels, strict=True)) == {
        "toon_dog_0.png": "cog_bb_flunky", "cog_bb_flunky_1.png": "cog_bb_flunky",
        "toon_cat_2.png": "toon_dog"}
    assert {path: path.read_bytes() for path in crops} == before
    saved = read_corrections(data)["unsorted/toon/toon_dog_0.png"]
    assert (saved.doctor_run, saved.corrected_at) == ("runs/a", "2024-05-01T00:00:00+00:00")
    # applying again adds nothing; deleting a line undoes that correction
    assert apply_relabel(relabel, data)[0] == []
    lines = (data / CORRECTIONS_NAME).read_text().splitlines()
    (data / CORRECTIONS_NAME).write_text("\n".join(lines[:2]) + "\n")
    undone = from_crops(data)
    assert undone.corrected == 1 and undone.labels.count("toon_cat") == 1
    assert cli.main(["stats", "--data-dir", str(data), "--task", "label",
                     "--out", str(tmp_path / "stats")]) == 0
    assert "1 labels corrected" in capsys.readouterr().out


def test_relabel_command_reports_what_it_applied(tmp_path, write_crops, capsys):
    data = tmp_path / "data"
    crops = write_crops(data, ["toon_dog", "toon_cat"])
    relabel = write_relabel(tmp_path / "relabel.csv", [
        (str(crops[1]), "toon_cat", "toon_dog", "0.9", "runs/b", ""),
        (str(crops[0]), "toon_dog", "", "0.9", "runs/b", "")])
    assert cli.main(["relabel", str(relabel), "--data-dir", str(data)]) == 1
    output = capsys.readouterr()
    assert "toon_cat -> toon_dog" in output.out and "1 correction(s) added" in output.out
    assert "line 3" in output.err


def test_doctor_relabel_table_lists_flagged_crops_with_a_different_suggestion(tmp_path):
    diagnosis = SimpleNamespace(
        ranking=np.array([2, 0, 1]), is_issue=np.array([True, False, True]),
        suggested=np.array([1, 0, 0]), y=np.array([0, 0, 1]),
        paths=[tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"],
        raw_labels=["cog_x", "cog_y", "toon_z"], class_names=("cog", "toon"),
        oos=SimpleNamespace(probabilities=np.array([[0.4, 0.6], [0.9, 0.1], [0.7, 0.3]])),
        run_dir=tmp_path / "run")
    table = relabel_table(diagnosis)
    assert list(table.columns) == list(RELABEL_COLUMNS)
    assert table["crop"].tolist() == [str(tmp_path / "c.png"), str(tmp_path / "a.png")]
    assert table[["given_label", "suggested_label", "confidence"]].values.tolist() == [
        ["toon_z", "cog", 0.7], ["cog_x", "toon", 0.6]]

"""Atomic writes, synced JSON-lines logs, folder locks and moves that never overwrite."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from toonvision import ToonvisionError
from toonvision.fileio import (
    append_jsonl,
    atomic_path,
    exclusive_lock,
    move_without_overwrite,
    read_jsonl,
    write_bytes_atomic,
    write_bytes_new,
    write_text_atomic,
)


def test_atomic_path_keeps_the_suffix_so_format_choosing_writers_work(tmp_path: Path) -> None:
    array = np.arange(6).reshape(2, 3)
    with atomic_path(tmp_path / "deep" / "images.npy") as temporary:
        assert temporary.suffix == ".npy" and temporary.parent == tmp_path / "deep"
        np.save(temporary, array)  # would append ".npy" to a name without it
        assert not (tmp_path / "deep" / "images.npy").exists()  # not there until the end
    with atomic_path(tmp_path / "figure.svg") as temporary:
        Figure(figsize=(1, 1)).savefig(temporary)  # the format follows the extension

    assert np.array_equal(np.load(tmp_path / "deep" / "images.npy"), array)
    assert (tmp_path / "figure.svg").read_text().lstrip().startswith("<?xml")
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["deep", "figure.svg",
                                                                 "images.npy"]


def test_an_error_inside_the_block_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = write_text_atomic(tmp_path / "summary.json", "old")

    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("killed while writing")

    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["summary.json"]


def test_written_files_get_the_usual_umask_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        path = write_bytes_atomic(tmp_path / "crop.png", b"\x89PNG")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes() == b"\x89PNG"


def test_jsonl_records_round_trip_over_several_appends(tmp_path: Path) -> None:
    log = tmp_path / "runs" / "runs.jsonl"
    append_jsonl(log, [{"run": 1, "accuracy": 0.97}, {"run": 2, "accuracy": 0.95}])
    append_jsonl(log, [])
    append_jsonl(log, [{"run": 3, "config": "optimized_1e-5"}])

    assert read_jsonl(log) == ([{"run": 1, "accuracy": 0.97}, {"run": 2, "accuracy": 0.95},
                                {"run": 3, "config": "optimized_1e-5"}], 0)
    assert read_jsonl(tmp_path / "missing.jsonl") == ([], 0)


def test_a_torn_last_line_is_dropped_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    append_jsonl(log, [{"run": 1}])
    with log.open("a") as handle:
        handle.write('{"run": 2, "accur')  # killed in the middle of a write

    assert read_jsonl(log) == ([{"run": 1}], 1)


def test_a_damaged_line_before_the_last_is_an_error_naming_the_line(tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    log.write_text(json.dumps({"run": 1}) + "\n[1, 2]\n" + json.dumps({"run": 3}) + "\n")

    with pytest.raises(ToonvisionError, match=r"runs\.jsonl:2: damaged record"):
        read_jsonl(log)


def test_a_second_holder_of_the_lock_fails_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "data" / ".lock"
    with exclusive_lock(lock, "another extraction"):
        # flock locks belong to an open file, so a second open in this process is refused too
        with pytest.raises(ToonvisionError, match="another extraction is writing"), \
                exclusive_lock(lock, "another extraction"):
            pass
        other = subprocess.run(
            [sys.executable, "-c", "import sys; from toonvision.fileio import exclusive_lock\n"
             "with exclusive_lock(sys.argv[1], 'a test'):\n    pass", str(lock)],
            capture_output=True, text=True, check=False)
        assert other.returncode != 0 and "a test is writing to this folder" in other.stderr
    with exclusive_lock(lock, "the next extraction"):  # free again once released
        pass


def test_write_bytes_new_writes_once_and_never_replaces(tmp_path: Path) -> None:
    target = tmp_path / "named" / "shot.png"
    assert write_bytes_new(target, b"first") == target
    with pytest.raises(FileExistsError):
        write_bytes_new(target, b"second")
    assert target.read_bytes() == b"first"
    assert sorted(path.name for path in target.parent.iterdir()) == ["shot.png"]  # no temp


def test_move_without_overwrite_moves_but_never_replaces(tmp_path: Path) -> None:
    source, target = tmp_path / "new.png", tmp_path / "crops" / "cog_0.png"
    target.parent.mkdir()
    source.write_bytes(b"new")
    move_without_overwrite(source, target)
    assert target.read_bytes() == b"new" and not source.exists()

    source.write_bytes(b"newer")
    with pytest.raises(FileExistsError):
        move_without_overwrite(source, target)
    assert target.read_bytes() == b"new" and source.read_bytes() == b"newer"

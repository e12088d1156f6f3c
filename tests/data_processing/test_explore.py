"""Dataset exploration (data_processing.explore) and the `explore` command."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from toonvision.cli import main
from toonvision.data_processing.dataset import from_csv
from toonvision.data_processing.explore import choose_samples, explore, write_exploration


def make_set(folder: Path) -> tuple[Path, Path]:
    """7 rows: 3 Fire (one a pixel copy of another), 3 Water in 3 modes, 1 unreadable file."""
    images = folder / "images"
    images.mkdir(parents=True)
    generator = np.random.default_rng(0)
    fire = generator.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    cv2.imwrite(str(images / "f1.png"), fire)
    cv2.imwrite(str(images / "f1_copy.png"), fire)
    cv2.imwrite(str(images / "f2.png"), generator.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    rgba = generator.integers(0, 256, (32, 32, 4), dtype=np.uint8)
    cv2.imwrite(str(images / "w1.png"), rgba)
    Image.fromarray(generator.integers(0, 4, (32, 32), dtype=np.uint8), mode="P").save(
        images / "w2.png"
    )
    cv2.imwrite(str(images / "w3.jpg"), generator.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    (images / "bad.png").write_bytes(b"not an image at all")
    labels = folder / "labels.csv"
    labels.write_text(
        "Id,label\nf1,Fire\nf1_copy,Fire\nf2,Fire\nw1,Water\nw2,Water\nw3,Water\nbad,Water\n"
    )
    return labels, images


def test_explore_counts_sizes_modes_and_duplicates(tmp_path: Path) -> None:
    labels, images = make_set(tmp_path)

    exploration = explore(from_csv(labels, images))

    assert exploration.counts == {"Fire": 3, "Water": 3}
    assert exploration.image_count == 6
    assert exploration.sizes == {"32x32": 5, "48x32": 1}
    assert exploration.modes == {"PNG RGB": 3, "PNG RGBA": 1, "PNG P": 1, "JPEG RGB": 1}
    assert [sorted(path.name for path in group) for group in exploration.duplicates] == [
        ["f1.png", "f1_copy.png"]
    ]
    assert len(exploration.unreadable) == 1 and "bad.png" in exploration.unreadable[0]
    table = exploration.counts_table()
    assert table.loc["Fire", "percent"] == 50.0
    assert table.loc["total", "count"] == 6


def test_write_exploration_writes_the_tables(tmp_path: Path) -> None:
    labels, images = make_set(tmp_path)
    exploration = explore(from_csv(labels, images))

    written = write_exploration(exploration, tmp_path / "out")

    assert [path.name for path in written] == ["summary.json", "label_counts.csv",
                                               "duplicates.csv"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["images"] == 6 and summary["labels"] == 2
    assert summary["duplicate_images"] == 1
    assert summary["imbalance_ratio"] == 1.0
    assert "f1_copy.png" in (tmp_path / "out" / "duplicates.csv").read_text()


def test_choose_samples_picks_readable_images_per_label_repeatably(tmp_path: Path) -> None:
    labels, images = make_set(tmp_path)
    infos = explore(from_csv(labels, images)).infos

    chosen = choose_samples(infos, per_label=2, seed=0)

    assert list(chosen) == ["Fire", "Water"]
    assert all(len(members) == 2 for members in chosen.values())
    assert all(info.error is None and info.label == label
               for label, members in chosen.items() for info in members)
    assert choose_samples(infos, per_label=2, seed=0) == chosen
    assert sum(map(len, choose_samples(infos, per_label=9).values())) == 6


def test_explore_command_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels, images = make_set(tmp_path)

    status = main(["explore", "--labels", str(labels), "--images", str(images),
                   "--keep", "Fire", "--out", str(tmp_path / "out"), "--samples", "2"])

    assert status == 0
    output = capsys.readouterr().out
    assert "3 images, 1 labels" in output
    assert "Fire" in output and "Water" not in output
    assert "1 images repeat another" in output
    for name in ("summary.json", "label_counts.csv", "duplicates.csv", "label_counts_pie.png",
                 "label_counts_bar.png", "samples.png"):
        assert f"wrote {tmp_path / 'out' / name}" in output

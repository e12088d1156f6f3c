"""Dataset figures: balance per split and taxonomy, the first-look figures, the steps figure."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from toonvision.data_processing.balance import split_counts
from toonvision.data_processing.dataset import Dataset
from toonvision.data_processing.explore import ImageInfo, explore
from toonvision.data_processing.preprocess import StepsExample
from toonvision.data_processing.splits import stratified_split
from toonvision.data_visualization import dataset_figures


def balance_table(class_names: tuple[str, ...], per_class: int = 10):
    y = np.repeat(np.arange(len(class_names)), per_class)
    return split_counts(class_names, y, stratified_split(y, (0.6, 0.2, 0.2), seed=0))


def test_split_balance_figure_draws_one_panel_per_split() -> None:
    figure = dataset_figures.split_balance_figure(balance_table(("cog", "toon")))

    assert isinstance(figure, Figure)
    assert [axis.get_title() for axis in figure.axes] == [
        "train: 12 images", "validate: 4 images", "test: 4 images"]
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert sorted(legend) == ["average per class: 6.0", "desired (60% of the class)", "images"]


def test_write_balance_figures_leaves_taxonomy_out_without_toontown_labels(
    tmp_path: Path,
) -> None:
    table = balance_table(("Fire", "Water"))

    written = dataset_figures.write_balance_figures(table, ["Fire", "Water"], tmp_path / "a")
    assert [path.name for path in written] == ["split_balance.png", "class_shares.png"]

    labels = ["cog_sb_telemarketer", "cog_lb_bloodsucker", "toon_dog"]
    written = dataset_figures.write_balance_figures(table, labels, tmp_path / "b")
    assert [path.name for path in written] == ["split_balance.png", "taxonomy.png",
                                               "class_shares.png"]
    assert all(cv2.imread(str(path)) is not None for path in written)


def test_taxonomy_figure_titles_count_cogs_and_toons() -> None:
    figure = dataset_figures.taxonomy_figure({"Bossbot": 2, "Lawbot": 1}, {"dog": 3, "cat": 0})
    assert [axis.get_title() for axis in figure.axes] == ["Cogs per suit (3)",
                                                          "Toons per animal (3)"]


def test_exploration_figures_are_written_with_one_sample_row_per_label(tmp_path: Path) -> None:
    generator = np.random.default_rng(0)
    paths = []
    for name in ("a1", "a2", "b1"):
        paths.append(tmp_path / f"{name}.png")
        cv2.imwrite(str(paths[-1]), generator.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    exploration = explore(Dataset(paths, ["A", "A", "B"], "three images"))

    written = dataset_figures.write_exploration_figures(exploration, tmp_path / "out", 2)

    assert [path.name for path in written] == ["label_counts_pie.png", "label_counts_bar.png",
                                               "samples.png"]
    assert all(cv2.imread(str(path)) is not None for path in written)
    image = np.zeros((12, 12, 3), np.uint8)
    figure = dataset_figures.sample_grid_figure({"A": [("a1", image), ("a2", image)],
                                                 "B": [("b1", image)]}, columns=2)
    assert [axis.get_ylabel() for axis in figure.axes if axis.get_ylabel()] == ["A", "B"]
    assert sum(1 for axis in figure.axes if axis.images) == 3


def test_no_exploration_figures_without_readable_images(tmp_path: Path) -> None:
    broken = ImageInfo(tmp_path / "x.png", "A", error="unreadable")
    exploration = explore(Dataset([], [], "nothing"), [broken])
    assert dataset_figures.write_exploration_figures(exploration, tmp_path / "out", 2) == []
    assert not (tmp_path / "out").exists()


def test_label_bars_figure_marks_the_balanced_count() -> None:
    figure = dataset_figures.label_bars_figure({"Water": 6, "Fire": 2})
    axis = figure.axes[0]
    assert [label.get_text() for label in axis.get_xticklabels()] == ["Water", "Fire"]
    assert axis.lines[0].get_ydata()[0] == 4.0


def test_preprocess_steps_figure_titles_the_first_row_only() -> None:
    panel = np.zeros((8, 8), np.uint8)
    examples = [StepsExample("p0", [panel, panel]), StepsExample("p1", [panel, panel])]

    figure = dataset_figures.preprocess_steps_figure(["original", "mask"], examples)

    assert [axis.get_title() for axis in figure.axes] == ["original", "mask", "", ""]
    assert [axis.get_ylabel() for axis in figure.axes[::2]] == ["p0", "p1"]

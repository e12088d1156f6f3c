"""Where a comparison's images come from, as data: extracted crops or a flat labelled set.

`DataSource` names the source (a data root written by `toonvision extract`, or a CSV of ids
and labels with its folder of images) and loads it for a task (`TaskData`) and a grouping.
The commands build one from their data options (`commands._common.source_from_args`); a
notebook builds one directly and gets the same loading, caching and grouping.

Example:
    >>> source = DataSource(labels=Path("train_labels.csv"), images=Path("images"))
    >>> source.describe()
    'train_labels.csv + images'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toonvision import ToonvisionError, defaults

if TYPE_CHECKING:
    import numpy as np

    from toonvision.data_processing.dataset import Dataset, TaskData
    from toonvision.model_utils.comparison.stored_settings import ComparisonSettings


@dataclass(frozen=True)
class DataSource:
    """A data set to load: extracted crops (`data_dir`) or a flat set (`labels` + `images`).

    Attributes:
        data_dir: the data root written by `toonvision extract` (crops under `unsorted/`);
            used when `labels` and `images` are None.
        labels: a CSV of image ids and labels (the Pokemon challenge form `Id,label`).
        images: the folder of images named by the CSV's ids.
        id_column: the CSV column of the ids (default: the first).
        label_column: the CSV column of the labels (default: the second).
        keep: labels to keep from the CSV (None: all).
        cache_dir: where decoded images are cached (None: $TOONVISION_CACHE or
            ~/.cache/toonvision).
    """

    data_dir: Path = defaults.DATA_DIR
    labels: Path | None = None
    images: Path | None = None
    id_column: str | None = None
    label_column: str | None = None
    keep: tuple[str, ...] | None = None
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if (self.labels is None) != (self.images is None):
            raise ToonvisionError("--labels and --images go together: give both or neither")

    @classmethod
    def of_comparison(cls, settings: ComparisonSettings) -> DataSource:
        """The data a comparison ran on, as its `comparison.json` records it (`source` and,
        for a flat set, `csv_columns`). A flat set cut with `--keep` is read whole: select
        the comparison's classes with `make_task(settings.task, settings.class_names)`."""
        if " + " in settings.source:
            labels, images = settings.source.split(" + ", 1)
            return cls(labels=Path(labels), images=Path(images),
                       id_column=settings.csv_columns.get("id_column"),
                       label_column=settings.csv_columns.get("label_column"))
        return cls(data_dir=Path(settings.source))

    @property
    def is_flat(self) -> bool:
        """Whether this is a flat labelled set (a CSV and its images)."""
        return self.labels is not None

    def describe(self) -> str:
        """The source as text, for people and `comparison.json`'s `source`."""
        return f"{self.labels} + {self.images}" if self.is_flat else str(self.data_dir)

    def csv_columns(self) -> dict[str, str]:
        """The CSV columns given for ids and labels (`id_column`, `label_column`), as
        `comparison.json` records them; empty for a data folder or the default columns."""
        if not self.is_flat:
            return {}
        return {name: value for name, value in (("id_column", self.id_column),
                                                ("label_column", self.label_column))
                if value is not None}

    def dataset(self) -> Dataset:
        """The images and their labels (`dataset.from_csv` or `dataset.from_crops`)."""
        from toonvision.data_processing.dataset import from_crops, from_csv

        if self.is_flat:
            return from_csv(self.labels, self.images, self.id_column, self.label_column,
                            list(self.keep) if self.keep else None)
        return from_crops(self.data_dir)

    def load(self, task_spec: str, image_size: Sequence[int],
             progress: Callable[[int, int], None] | None = None,
             resize_mode: str = defaults.RESIZE,
             classes: Sequence[str] | None = None) -> TaskData:
        """The images decoded at `image_size` and their classes under the task `task_spec`.

        Args:
            task_spec: the task (`labels.make_task`: binary, suit, a class list, ...).
            image_size: (height, width).
            progress: called as `(done, total)` while images are decoded.
            resize_mode: `stretch` or `letterbox` (`images.resize`).
            classes: for the `label` task, its classes: a trained model's (the labels it
                was trained on, in a data folder that has grown new labels since, or of a
                flat set that `compare --keep` cut); None: every label of the data.
        """
        from toonvision.data_processing.dataset import load_task_data
        from toonvision.labels import make_task

        dataset = self.dataset()
        task = make_task(task_spec, dataset.labels if classes is None else classes)
        return load_task_data(dataset, task, tuple(image_size), self.cache_dir, progress,
                              resize_mode)

    def groups(self, grouping: str, paths: Sequence[Path]) -> np.ndarray | None:
        """The group of every image of `paths` under `grouping` (`splits.split_groups`).

        Screenshots come from the data root's manifest, a column from the CSV; None for
        `none`.
        """
        from toonvision.data_processing.splits import split_groups

        return split_groups(grouping, paths, data_dir=None if self.is_flat else self.data_dir,
                            labels_csv=self.labels, id_column=self.id_column)

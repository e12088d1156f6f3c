"""The extraction manifest: one row per crop, saying where it came from.

`<data_dir>/manifest.csv` is what lets extraction promise that nothing is extracted twice and
no crop number is reused (see `extract`); its columns are `CropRecord`'s fields.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path

from toonvision import ToonvisionError

MANIFEST_NAME = "manifest.csv"
# Where `extract(move=True)` puts extracted screenshots and their XML, below the data folder.
PROCESSED_FOLDER = Path("raw") / "processed"
# A record's status: its crop number is reserved (the file may not exist yet), or written.
PLANNED = "planned"
WRITTEN = "written"


@dataclass
class CropRecord:
    """One row of the manifest: a crop and where it came from.

    Attributes:
        crop: the crop's path relative to the data folder, with `/` separators.
        label: the label, as used in the file name.
        index: the number in the file name; never reused for this label.
        status: `planned` (index reserved, file maybe not yet written) or `written`.
        source: the screenshot's path when it was extracted.
        source_sha256: the SHA-256 of the screenshot file's bytes.
        object_index: the object's position among the XML's `<object>` elements, from 0.
        xmin, ymin, xmax, ymax: the box, clipped to the image.
    """

    crop: str
    label: str
    index: int
    status: str
    source: str
    source_sha256: str
    object_index: int
    xmin: int
    ymin: int
    xmax: int
    ymax: int


MANIFEST_COLUMNS: tuple[str, ...] = tuple(column.name for column in fields(CropRecord))
_MANIFEST_ROW = attrgetter(*MANIFEST_COLUMNS)
_INTEGER_COLUMNS = frozenset(
    column.name for column in fields(CropRecord) if column.type in ("int", int)
)


def read_manifest(path: str | os.PathLike) -> list[CropRecord]:
    """Reads an extraction manifest.

    Args:
        path: the manifest CSV; a missing file is an empty manifest.

    Returns:
        The records in file order.

    Raises:
        ValueError: if the file is not a manifest written by this module.
    """
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
            raise ToonvisionError(f"{path}: not an extraction manifest: columns are "
                                  f"{reader.fieldnames}, expected {list(MANIFEST_COLUMNS)}")
        records = []
        for row in reader:
            try:
                values = {name: int(value) if name in _INTEGER_COLUMNS else value
                          for name, value in row.items()}
                records.append(CropRecord(**values))
            except (TypeError, ValueError) as error:
                raise ToonvisionError(f"{path}: line {reader.line_num} is damaged ({error}); "
                                      "repair or remove that line") from None
    return records


class ManifestText:
    """Formats a manifest as CSV text, formatting again only the records that changed.

    Extraction rewrites the manifest whole (atomically) for each screenshot with new crops;
    keeping each record's line makes that cost one comparison per unchanged record.

    Example:
        >>> text = ManifestText()
        >>> write_text_atomic(path, text.format(records))   # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._lines: dict[int, tuple[tuple, str]] = {}

    def format(self, records: list[CropRecord]) -> str:
        """The manifest of `records`, header first, in their order."""
        lines = [_csv_line(MANIFEST_COLUMNS)]
        for record in records:
            values = _MANIFEST_ROW(record)
            cached = self._lines.get(id(record))
            if cached is None or cached[0] != values:
                cached = self._lines[id(record)] = (values, _csv_line(values))
            lines.append(cached[1])
        return "".join(lines)


def _csv_line(values: tuple) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(values)
    return text.getvalue()

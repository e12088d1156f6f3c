"""Label corrections as data: `<data_dir>/corrections.csv`, applied by every dataset reader.

The doctor writes `relabel.csv` (crop, given label, suggested label, confidence, which doctor
run). A person deletes the rows they disagree with, may edit a suggested label (a task that
merges labels suggests a class such as `toon`; write the full label, `toon_dog`), and
`toonvision relabel relabel.csv` adds the rows left to the corrections file. No crop is
moved, renamed or rewritten: `from_crops` reads a corrected crop under its corrected label.
Each line records when it was applied and from which doctor run; deleting a line undoes it.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from toonvision import MissingFileError, ToonvisionError
from toonvision.data_processing.images import is_image_file
from toonvision.fileio import write_text_atomic
from toonvision.labels import safe_label

CORRECTIONS_NAME = "corrections.csv"
RELABEL_COLUMNS: tuple[str, ...] = ("crop", "given_label", "suggested_label", "confidence",
                                    "doctor_run", "doctor_at")


@dataclass(frozen=True)
class Correction:
    """One line of `corrections.csv`.

    Attributes:
        crop: the crop's path below the data folder, `/`-separated (`unsorted/toon/...png`).
        label: the label the crop's name gives.
        corrected: the label it has from now on.
        confidence: the doctor's probability for the suggestion ('' when not given).
        doctor_run: the comparison folder the doctor read.
        doctor_at: when that doctor run wrote `relabel.csv`.
        corrected_at: when the correction was applied.
    """

    crop: str
    label: str
    corrected: str
    confidence: str
    doctor_run: str
    doctor_at: str
    corrected_at: str


COLUMNS: tuple[str, ...] = tuple(item.name for item in fields(Correction))


def read_corrections(data_dir: str | os.PathLike) -> dict[str, Correction]:
    """The corrections of a data folder, by crop (the last line of a crop wins).

    Raises:
        ToonvisionError: if the file is not a corrections file or a line is damaged.
    """
    path = Path(data_dir) / CORRECTIONS_NAME
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ToonvisionError(f"{path}: columns are {reader.fieldnames}, expected "
                                  f"{list(COLUMNS)}")
        corrections = {}
        for row in reader:
            if None in row or not row["crop"] or not row["corrected"]:
                raise ToonvisionError(f"{path}: line {reader.line_num} is damaged; repair or "
                                      "remove it")
            corrections[row["crop"]] = Correction(**row)
    return corrections


def apply_relabel(relabel_csv: str | os.PathLike, data_dir: str | os.PathLike,
                  now: datetime | None = None) -> tuple[list[Correction], list[str]]:
    """Adds the rows of a (hand-edited) `relabel.csv` to `<data_dir>/corrections.csv`.

    Args:
        relabel_csv: the doctor's file, with the rows to apply.
        data_dir: the data folder the crops belong to.
        now: the time recorded as `corrected_at` (default: now, UTC).

    Returns:
        The corrections added, and one message per row left out (naming the line and why:
        a crop that is not in the data folder, an unusable label, no change).

    Raises:
        MissingFileError: if `relabel_csv` does not exist.
        ToonvisionError: if it lacks the columns `RELABEL_COLUMNS`.
    """
    relabel_csv, data_dir = Path(relabel_csv), Path(data_dir)
    if not relabel_csv.is_file():
        raise MissingFileError(f"{relabel_csv} does not exist")
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    corrections = read_corrections(data_dir)
    added, left_out = [], []
    with relabel_csv.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in RELABEL_COLUMNS[:3] if name not in (reader.fieldnames or ())]
        if missing:
            raise ToonvisionError(f"{relabel_csv}: no column {', '.join(missing)}; expected "
                                  f"the doctor's relabel.csv ({', '.join(RELABEL_COLUMNS)})")
        for row in reader:
            where = f"{relabel_csv}: line {reader.line_num}"
            crop = _crop_key(row["crop"] or "", data_dir)
            if crop is None:
                left_out.append(f"{where}: {row['crop']!r} is not a crop in {data_dir}")
                continue
            try:
                corrected = safe_label((row["suggested_label"] or "").strip())
            except ValueError as error:
                left_out.append(f"{where}: {error}")
                continue
            earlier = corrections.get(crop)
            if corrected == (earlier.corrected if earlier else row["given_label"]):
                left_out.append(f"{where}: {crop} is already labelled {corrected!r}")
                continue
            correction = Correction(crop, row["given_label"] or "", corrected,
                                    row.get("confidence") or "", row.get("doctor_run") or "",
                                    row.get("doctor_at") or "", stamp)
            corrections[crop] = correction
            added.append(correction)
    if added:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(astuple(item) for item in corrections.values())
        write_text_atomic(data_dir / CORRECTIONS_NAME, text.getvalue())
    return added, left_out


def _crop_key(crop: str, data_dir: Path) -> str | None:
    """The crop's path below `data_dir`, `/`-separated, or None if it is not a crop there."""
    path = Path(crop)
    resolved = (path if path.is_absolute() else data_dir / path).resolve()
    if not resolved.is_file() and not path.is_absolute():
        resolved = path.resolve()
    root = data_dir.resolve()
    if not resolved.is_file() or not is_image_file(resolved) \
            or not resolved.is_relative_to(root):
        return None
    return resolved.relative_to(root).as_posix()

"""Apply the label corrections you kept from the doctor's relabel.csv to the data folder.

`toonvision doctor` writes runs/NAME/doctor/relabel.csv: the crops whose label looks wrong,
with the label the models suggest. Delete the rows you disagree with (and, where the task
merges labels, edit the suggestion to a full label such as toon_dog), then run this command.
The rows are added to DATA_DIR/corrections.csv; no crop is moved, renamed or rewritten.
Every command that reads DATA_DIR applies the corrections; `stats` says how many. Each line
records when and from which doctor run; delete a line of corrections.csv to undo it.

examples:
  toonvision relabel runs/article/doctor/relabel.csv --data-dir data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toonvision import defaults


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the relabel options to `parser`."""
    parser.add_argument("relabel_csv", type=Path, metavar="RELABEL_CSV",
                        help="the doctor's relabel.csv, with only the rows to apply")
    parser.add_argument("--data-dir", type=Path, default=defaults.DATA_DIR,
                        help="the data folder whose corrections.csv receives the rows "
                             "(default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Applies the rows; prints each correction and each row left out; returns the status."""
    from toonvision.data_processing.corrections import CORRECTIONS_NAME, apply_relabel

    added, left_out = apply_relabel(args.relabel_csv, args.data_dir)
    for message in left_out:
        print(f"left out: {message}", file=sys.stderr)
    for item in added:
        print(f"{item.crop}: {item.label} -> {item.corrected}")
    print(f"{len(added)} correction(s) added to {args.data_dir / CORRECTIONS_NAME}")
    return 1 if left_out else 0

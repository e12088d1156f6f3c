"""The doctor's tables: what `toonvision doctor` writes beside its page, from a `Diagnosis`.

`label_issues.csv` (every crop ranked by how likely its label is wrong), `duplicates.csv`
(near-duplicate pairs and how often they straddled a test split) and `relabel.csv` (the
suggested corrections a person keeps or deletes before `toonvision relabel`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from toonvision.model_utils.comparison.predictions import PART_NAMES
from toonvision.model_utils.dataset_doctor import Diagnosis

_TEST = PART_NAMES.index("test")


def label_issues_table(diagnosis: Diagnosis) -> Any:
    """`label_issues.csv`: every crop, most suspicious first.

    Columns: id, given_label, suggested_label, score (cleanlab's label quality, low is
    suspicious), appearances, error_rate, label_issue (cleanlab's flag), always_wrong, and
    per configuration `<config>_appearances` and `<config>_errors`, and per kept model
    `best_<config>_part` (the crop's part in that model's split: was a suspicious crop
    trained on?).
    """
    import pandas as pd

    names = np.asarray(diagnosis.class_names + ("",), dtype=object)
    order = diagnosis.ranking
    table = pd.DataFrame({
        "id": np.asarray(diagnosis.names, dtype=object)[order],
        "given_label": names[diagnosis.y[order]],
        "suggested_label": names[diagnosis.suggested[order]],
        "score": np.round(diagnosis.quality[order], 4),
        "appearances": diagnosis.oos.appearances[order],
        "error_rate": np.round(diagnosis.error_rate()[order], 4),
        "label_issue": diagnosis.is_issue[order],
        "always_wrong": diagnosis.always_wrong[order],
    })
    for config, (appearances, errors) in diagnosis.oos.per_config.items():
        table[f"{config}_appearances"] = appearances[order]
        table[f"{config}_errors"] = errors[order]
    for config, parts in diagnosis.model_parts.items():
        table[f"best_{config}_part"] = parts[order]
    return table


def duplicates_table(diagnosis: Diagnosis) -> Any:
    """`duplicates.csv`: one row per near-duplicate pair, closest first.

    Columns: first, second (ids), first_label, second_label, distance (bits of 128), exact,
    cluster, runs (runs with both crops' parts known), same_split_runs (runs in which both
    were in the same part), leak_runs (runs in which one was in test, the other in training).
    """
    import pandas as pd

    pairs, parts = diagnosis.pairs, diagnosis.oos.parts
    first_parts, second_parts = parts[:, pairs.first], parts[:, pairs.second]
    names = np.asarray(diagnosis.names, dtype=object)
    raw = np.asarray(diagnosis.raw_labels, dtype=object)
    return pd.DataFrame({
        "first": names[pairs.first], "second": names[pairs.second],
        "first_label": raw[pairs.first], "second_label": raw[pairs.second],
        "distance": pairs.distance, "exact": pairs.exact,
        "cluster": diagnosis.cluster[pairs.first],
        "runs": np.full(len(pairs), len(diagnosis.oos.runs)),
        "same_split_runs": (first_parts == second_parts).sum(axis=0),
        "leak_runs": (((first_parts == _TEST) & (second_parts < 0))
                      | ((second_parts == _TEST) & (first_parts < 0))).sum(axis=0),
    })


def write_tables(diagnosis: Diagnosis, out_dir: str | os.PathLike) -> list[Path]:
    """Writes `label_issues.csv`, `duplicates.csv` and `relabel.csv` into `out_dir`,
    atomically."""
    from toonvision.fileio import write_text_atomic

    written = []
    for name, table in (("label_issues.csv", label_issues_table(diagnosis)),
                        ("duplicates.csv", duplicates_table(diagnosis)),
                        ("relabel.csv", relabel_table(diagnosis))):
        written.append(write_text_atomic(Path(out_dir) / name, table.to_csv(index=False)))
    return written


def relabel_table(diagnosis: Diagnosis) -> Any:
    """`relabel.csv`: the crops cleanlab flags whose suggested class differs from the given
    one, most suspicious first, for `toonvision relabel` (`data_processing.corrections`).

    Columns: crop (the file), given_label (its raw label), suggested_label (the task's
    class: edit it to a full label where the task merges labels), confidence (the
    out-of-sample probability of the suggestion), doctor_run (the comparison folder),
    doctor_at (when this table was made).
    """
    from datetime import UTC, datetime

    import pandas as pd

    from toonvision.data_processing.corrections import RELABEL_COLUMNS

    suggested = diagnosis.suggested
    order = [index for index in diagnosis.ranking if diagnosis.is_issue[index]
             and suggested[index] >= 0 and suggested[index] != diagnosis.y[index]]
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return pd.DataFrame({
        "crop": [str(diagnosis.paths[index]) for index in order],
        "given_label": [diagnosis.raw_labels[index] for index in order],
        "suggested_label": [diagnosis.class_names[diagnosis.suggested[index]] for index in order],
        "confidence": [round(float(diagnosis.oos.probabilities[index, diagnosis.suggested[index]]),
                             4) for index in order],
        "doctor_run": [str(diagnosis.run_dir)] * len(order),
        "doctor_at": [stamp] * len(order),
    }, columns=list(RELABEL_COLUMNS))

"""Tests of comparison.runlog: the best-model rules, and the crash-safe run log.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import (
    record,
    run_fake,
)

from toonvision.model_utils.comparison.runlog import (
    LOG_FILE,
    RunRecord,
    complete_runs,
    is_better,
    read_log,
    select_best,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------
# Selection and statistics on known numbers


def test_article_rule_needs_lower_test_loss_and_higher_test_accuracy():
    best = record("a", 0, test_loss=0.20, test_accuracy=0.90)
    assert is_better(record("a", 1, 0.10, 0.95), best)
    assert not is_better(record("a", 1, 0.10, 0.90), best)   # accuracy only equal
    assert not is_better(record("a", 1, 0.25, 0.99), best)   # loss higher
    assert not is_better(record("a", 1, 0.10, 0.85), best)   # accuracy lower
    assert is_better(record("a", 0, 9.0, 0.0), None)


def test_val_loss_rule_ignores_the_test_set():
    best = record("a", 0, test_loss=0.20, test_accuracy=0.90, validation_loss=0.30)
    assert is_better(record("a", 1, 0.99, 0.10, validation_loss=0.29), best, "val_loss")
    assert not is_better(record("a", 1, 0.01, 0.99, validation_loss=0.31), best, "val_loss")


def test_select_best_replays_the_rule_in_run_order():
    records = [
        record("a", 0, 0.30, 0.90),
        record("a", 1, 0.20, 0.92),   # better: replaces run 0
        record("a", 2, 0.10, 0.91),   # lower loss but lower accuracy: kept out
        record("a", 3, 0.15, 0.93),   # better than run 1
        record("b", 0, 0.50, 0.80, validation_loss=0.2),
        record("b", 1, 0.40, 0.85, validation_loss=0.3),
    ]
    assert select_best(records)["a"].run == 3
    assert select_best(records)["b"].run == 1
    assert select_best(records, "val_loss")["b"].run == 0
    assert select_best(list(reversed(records)))["a"].run == 3
    with pytest.raises(ValueError, match=r"unknown selection rule 'val-loss' \(did you mean"):
        select_best(records, "val-loss")



# ------------------------------------------------------------------------------------------
# The log


def test_read_log_drops_only_a_torn_last_line(tmp_path):
    path = tmp_path / LOG_FILE
    lines = [json.dumps(record("a", 0, 0.2, 0.9).to_dict()),
             json.dumps(record("b", 0, 0.2, 0.9).to_dict())]
    path.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[0][:25])
    records, torn = read_log(path)
    assert [item.config for item in records] == ["a", "b"] and torn == 1
    path.write_text(lines[0][:25] + "\n" + lines[1] + "\n")
    with pytest.raises(ValueError, match=":1: damaged record"):
        read_log(path)


def test_a_json_line_that_is_not_a_run_record_is_an_error(tmp_path):
    path = tmp_path / LOG_FILE
    path.write_text(json.dumps(record("a", 0, 0.2, 0.9).to_dict()) + '\n{"config": "b"}\n')
    with pytest.raises(ValueError, match=r"record 2: not a run record: no run, seed"):
        read_log(path)


def test_log_lines_read_and_written_back_are_unchanged(tmp_path):
    run_fake(tmp_path / "out", runs=2)
    text = (tmp_path / "out" / LOG_FILE).read_text()
    first = json.loads(text.splitlines()[0])
    assert list(first) == ["config", "run", "seed", "split_seed", "split_sizes", "history",
                           "validation_metrics", "test_metrics", "test_confusion", "epochs_run",
                           "setup_seconds", "train_seconds", "finished_at", "host", "worker",
                           "threads"]
    assert (first["worker"], first["threads"] >= 1) == ("local", True)
    assert np.sum(first["test_confusion"]) == first["split_sizes"]["test"] == 6
    assert "".join(json.dumps(RunRecord.from_dict(json.loads(line)).to_dict()) + "\n"
                   for line in text.splitlines()) == text
    best = json.loads((tmp_path / "out" / "best_baseline.json").read_text())
    assert RunRecord.from_dict(best).to_dict() == best


def test_complete_runs_keeps_runs_logged_for_every_config_once():
    records = [record("a", 0, 0.2, 0.9), record("b", 0, 0.2, 0.9), record("a", 0, 0.1, 0.95),
               record("a", 1, 0.2, 0.9)]
    kept = complete_runs(records, ["a", "b"])
    assert [(item.config, item.run) for item in kept] == [("a", 0), ("b", 0)]
    assert kept[0].test_metrics["loss"] == 0.2


"""Tests of commands._progress, the progress display of compare: the bar on a terminal, one
line per finished run in a log, the ETA from the rate runs finish at, the workers' activity."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from toonvision.data_processing.images import write_image_atomic
from toonvision.model_utils.engine.serial import WorkerActivity
from toonvision.progress import RunProgress, describe_activity

# One finished run in a log: `run 12/200 (cap) done in 41 s: ... | eta at most 2.1 h`.
LINE = re.compile(r"^(?P<unit>\w+) (?P<done>\d+)(/(?P<total>\d+))?(?P<cap> \(cap\))? (?P<text>.+) "
                  r"\| eta (?P<at_most>at most )?(?P<eta>\?|\d+(\.\d)? (s|min|h))$")


class FakeClock:
    """`time.monotonic` that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progress_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "toonvision-progress"]


def test_the_eta_is_the_runs_left_over_the_rate_runs_finished_at():
    clock, log = FakeClock(), io.StringIO()
    progress = RunProgress(10, clock=clock, file=log, interactive=False)
    assert progress.eta_seconds() is None and progress.eta_text() == "eta ?"
    # Two workers: runs 1 and 2 finish together after 40 s, run 3 at 80 s.
    for now in (40.0, 42.0, 80.0):
        clock.now = now
        progress.finished("done")
    assert progress.eta_seconds() == pytest.approx(7 * 80 / 3)   # 7 left, one per 26.7 s
    clock.now = 90.0   # between two finishes it counts down
    assert progress.eta_seconds() == pytest.approx(7 * 80 / 3 - 10)
    assert log.getvalue().splitlines()[-1] == "run 3/10 done | eta 3 min"


def test_a_resumed_loop_times_only_the_runs_it_finished_itself():
    clock = FakeClock()
    progress = RunProgress(100, done=40, clock=clock, file=io.StringIO(), interactive=False)
    clock.now = 30.0
    line = progress.finished("done", completed=41)
    assert progress.eta_seconds() == pytest.approx(59 * 30)
    assert line == "run 41/100 done | eta 30 min"


def test_off_a_terminal_each_finished_run_is_one_line_that_parses():
    clock, log = FakeClock(), io.StringIO()
    with RunProgress(200, capped=True, clock=clock, file=log,
                     activity=lambda: [WorkerActivity("0", 3, "baseline", 0.0)]) as progress:
        for run in range(1, 4):
            clock.now = 41.0 * run
            progress.finished(f"done in 41 s: baseline acc 0.91{run}", status="medians 0.9")
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in log.getvalue()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(item["done"], item["total"], item["cap"]) for item in parsed] == [
        (str(run), "200", " (cap)") for run in (1, 2, 3)]
    assert parsed[-1]["text"] == "done in 41 s: baseline acc 0.913"
    assert (parsed[-1]["at_most"], parsed[-1]["eta"]) == ("at most ", "2.2 h")   # 197 x 41 s
    assert not progress_threads()


def test_trials_without_a_total_count_up_and_a_status_stays_off_the_log():
    log = io.StringIO()
    with RunProgress(None, unit="trial", file=log, interactive=False) as progress:
        progress.set_status("trial 1 run 1/3")   # between two finished trials: no line
        line = progress.finished("done: +0.0200, best trial 1", status="best +0.0200")
    assert log.getvalue() == line + "\n" == "trial 1 done: +0.0200, best trial 1 | eta ?\n"
    assert LINE.match(line)["total"] is None


def test_the_activity_names_each_worker_its_run_epoch_and_time():
    activity = [WorkerActivity("0", 11, "baseline", 97.0, epoch=3, epochs=25),
                WorkerActivity("1", 11, "optimized", 59.0, epochs=25),
                WorkerActivity("2")]
    assert describe_activity(activity, now=100.0) == (
        "w0 run 12 baseline ep 3/25 3 s · w1 run 12 optimized 41 s · w2 idle")
    assert describe_activity([WorkerActivity("local", 0, "mlp", 90.0, 0, 5)], now=100.0) == \
        "local run 1 mlp ep 0/5 10 s"


def test_on_a_terminal_a_bar_is_redrawn_with_the_workers_until_it_is_closed():
    screen = io.StringIO()
    epochs = iter(range(1, 1000))

    def activity() -> list[WorkerActivity]:
        return [WorkerActivity("0", 0, "baseline", time.monotonic(), next(epochs), 25),
                WorkerActivity("1")]

    with RunProgress(3, activity=activity, file=screen, interactive=True,
                     refresh_seconds=0.01) as progress:
        assert progress_threads()
        deadline = time.monotonic() + 10
        while "ep 3/25" not in screen.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)   # redrawn between finished runs
        line = progress.finished("done in 1 s: baseline acc 0.900", status="medians 0.900")
    drawn = screen.getvalue()
    assert "ep 3/25" in drawn and "w1 idle" in drawn and "medians 0.900" in drawn
    assert "runs 1/3" in drawn and "\r" in drawn
    assert line.startswith("run 1/3 done in 1 s") and line not in drawn   # no log lines
    assert not progress_threads()


def test_the_redraw_thread_stops_when_the_loop_raises_and_a_broken_activity_is_harmless():
    def broken() -> list[WorkerActivity]:
        raise RuntimeError("the engine broke")

    with pytest.raises(ValueError, match="the loop failed"):
        with RunProgress(3, activity=broken, file=io.StringIO(), interactive=True,
                         refresh_seconds=0.01) as progress:
            time.sleep(0.05)   # a few redraws, each of which fails quietly
            progress.finished("done")
            raise ValueError("the loop failed")
    assert not progress_threads()
    progress.close()   # again: nothing to do


# ------------------------------------------------------------------------------------------
# The compare command in a log


class FakeModel:
    def save(self, path: str) -> None:
        Path(path).write_text("fake model")

    def predict_on_batch(self, images: np.ndarray) -> np.ndarray:
        return np.full((len(images), 1), 0.5)


class FakeTrainer:
    """Trains nothing in two epochs: metrics from the seed, as a deterministic trainer would."""

    def __init__(self, config, num_classes: int, image_size: tuple[int, int]) -> None:
        self.config, self.model = config, FakeModel()

    def run(self, images, y, split, seed, epoch_callback=None):
        accuracy = float(np.random.default_rng([seed, len(self.config.name)]).uniform(0.7, 1))
        history = {"loss": [0.7, 0.3], "accuracy": [0.5, accuracy], "val_loss": [0.7, 0.3],
                   "val_accuracy": [0.5, accuracy]}
        for epoch in range(2):
            if epoch_callback is not None:
                epoch_callback(epoch, {key: values[epoch] for key, values in history.items()})
        return SimpleNamespace(seed=seed, history=history, epochs_run=2, setup_seconds=0.0,
                               train_seconds=0.01,
                               validation_metrics={"loss": 0.3, "accuracy": accuracy},
                               test_metrics={"loss": 0.3, "accuracy": accuracy})


def test_compare_in_a_log_writes_one_line_per_run_and_no_redraws(tmp_path, monkeypatch, capsys):
    import toonvision.model_utils.training.trainer as trainer
    from toonvision.cli import main

    monkeypatch.setattr(trainer, "Trainer", FakeTrainer)
    generator = np.random.default_rng(0)
    for label in ("cog_sb_coldcaller", "toon_dog"):
        for index in range(10):
            write_image_atomic(tmp_path / "data" / "unsorted" / f"{label}_{index}.png",
                               generator.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    assert main(["compare", "--data-dir", str(tmp_path / "data"), "--cache-dir",
                 str(tmp_path / "cache"), "--no-tracking", "--image-size", "48", "48",
                 "--runs", "3", "--workers", "1", "--out", str(tmp_path / "out")]) == 0
    errors = capsys.readouterr().err
    assert "\r" not in errors
    runs = [line for line in errors.splitlines() if line.startswith("run ")]
    assert len(runs) == 3, errors
    parsed = [LINE.match(line) for line in runs]
    assert all(parsed), runs
    assert [item["done"] for item in parsed] == ["1", "2", "3"]
    assert all(re.fullmatch(r"done in \d+ s: baseline acc 0\.\d{3}, optimized acc 0\.\d{3} "
                            r"\(medians 0\.\d{3}/0\.\d{3}\)", item["text"]) for item in parsed)
    assert parsed[-1]["eta"] == "0 s"


def test_a_log_gets_a_few_plain_lines_and_never_a_redraw(capsys):
    from toonvision.progress import progress_bar

    with progress_bar(range(100), total=100, desc="extracting", unit="screenshot") as bar:
        for _ in bar:
            pass
    lines = capsys.readouterr().err.splitlines()
    assert "\r" not in "".join(lines)
    assert [line.split(" in ")[0] for line in lines] == [
        "extracting: 25/100 screenshot", "extracting: 50/100 screenshot",
        "extracting: 75/100 screenshot", "extracting: 100/100 screenshot"]
    # Without a total (predict counts crops as they come): one line at the end.
    with progress_bar(desc="classifying", unit="crop") as bar:
        bar.update(7)
        bar.update(12 - bar.n)
    assert capsys.readouterr().err.splitlines()[0].startswith("classifying: 12 crop in ")
    with progress_bar(["one"], total=1, desc="extracting", unit="screenshot") as bar:
        list(bar)
    assert len(capsys.readouterr().err.splitlines()) == 1      # never the same line twice

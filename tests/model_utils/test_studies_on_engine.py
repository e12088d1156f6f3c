"""optimizers, ablate and search train on the engine of compare; engines that are reused.

The trainers an engine keeps (`trainer_cache.Trainers`); the serial and the Ray engine held
over several jobs (`with engine:`: Ray's workers kept for new configurations and for a whole
search, started again for new data), the search writing what the serial engine writes (the
fake trainer of conftest.py); the commands' engine options and checks; and, training real
models on tiny images, both studies on 2 Ray workers against the serial engine pinned to one
thread in its own process: the same results in the same order. The Ray tests share one local
Ray instance (2 CPUs).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import CONFIGS, TASK_DATA, FakeConfig, FakeTrainer
from test_search import TASK_DATA as SEARCH_DATA
from test_search import DropoutTrainer, search_file

import toonvision.model_utils.engine.choose as engine
from toonvision.cli import build_parser, main
from toonvision.model_utils.comparison.runlog import LOG_FILE, read_log
from toonvision.model_utils.comparison.settings import ENGINE_KEYS, SETTING_DEFAULTS
from toonvision.model_utils.engine.serial import EngineJob, RunTask, SerialEngine
from toonvision.model_utils.engine.trainer_cache import TRAINER_CACHE, Trainers
from toonvision.model_utils.studies.search import TRIALS_FOLDER, load_search_file, run_search
from toonvision.model_utils.studies.search_results import BEST_CONFIGS_FILE, TRIALS_CSV

needs_ray = pytest.mark.skipif(not engine.ray_available(),
                               reason="Ray is not installed (pip install 'toonvision[parallel]')")
SPLIT = {"train": np.arange(0, 18), "validate": np.arange(18, 24), "test": np.arange(24, 30)}


class CountingTrainer(FakeTrainer):
    """FakeTrainer that counts how often one is built (a class attribute, per process)."""

    built: list[str] = []

    def __init__(self, config, num_classes, image_size):
        super().__init__(config, num_classes, image_size)
        CountingTrainer.built.append(config.name)


def fake_job(configs=CONFIGS, data=TASK_DATA, factory=FakeTrainer, images=None, **changes):
    images = data.images if images is None else images
    return EngineJob(images, data.y, list(configs), factory, 2, (4, 4), **changes)


def fake_tasks(configs=CONFIGS, runs=2) -> list[RunTask]:
    return [RunTask(run=run, config=config.name, seed=run, split=SPLIT)
            for run in range(runs) for config in configs]


def metrics(outcomes) -> list[tuple]:
    return sorted((outcome.task.key, outcome.result.test_metrics["accuracy"],
                   outcome.confusion) for outcome in outcomes)


# ------------------------------------------------------------------------------------------
# The trainers an engine keeps


def test_trainers_keep_the_most_recently_used_and_rebuild_a_changed_configuration():
    built = []
    trainers = Trainers(lambda config, *_: built.append(config) or object(), 2, (4, 4), size=2)
    a, b, c = FakeConfig("a"), FakeConfig("b"), FakeConfig("c")
    first = trainers.get(a)
    trainers.get(b)
    assert trainers.get(a) is first                      # kept, and now the most recent
    trainers.get(c)                                      # b, the least recent, goes
    assert len(trainers) == 2 and built == [a, b, c]
    trainers.get(b)
    assert built == [a, b, c, b]
    changed = dataclasses.replace(a, epochs=7)           # the same name, another config
    assert trainers.get(changed) is not first and built[-1] == changed


def test_a_comparison_keeps_every_configuration_and_a_study_one_trainer():
    many = [FakeConfig(f"config{index}") for index in range(6)]
    assert fake_job(many).trainer_limit == 6
    assert fake_job(CONFIGS).trainer_limit == TRAINER_CACHE
    assert fake_job(many, keep_trainers=1).trainer_limit == 1


def test_the_serial_engine_keeps_its_trainers_over_runs_inside_with_only():
    CountingTrainer.built = []
    job = fake_job(factory=CountingTrainer)
    for _ in range(2):
        assert len(list(SerialEngine().run(fake_tasks(), job))) == 4
    assert CountingTrainer.built == ["baseline", "optimized"] * 2    # built per `run`

    CountingTrainer.built = []
    trial = FakeConfig("trial_0")
    with SerialEngine() as serial:
        first = list(serial.run(fake_tasks(), job))
        # A new job with the same data (a search's next trial): the trainers serve it.
        second = list(serial.run(fake_tasks([CONFIGS[0], trial]),
                                 fake_job([CONFIGS[0], trial], factory=CountingTrainer)))
        assert CountingTrainer.built == ["baseline", "optimized", "trial_0"]
        # Other images: new trainers.
        list(serial.run(fake_tasks(CONFIGS[:1], runs=1),
                        fake_job(CONFIGS[:1], factory=CountingTrainer,
                                 images=np.ones_like(TASK_DATA.images))))
        assert CountingTrainer.built[-1] == "baseline" and len(CountingTrainer.built) == 4
    assert [item for item in metrics(first) if item[0][1] == "baseline"] == [
        item for item in metrics(second) if item[0][1] == "baseline"]


# ------------------------------------------------------------------------------------------
# The same engine options for every command


def test_compare_optimizers_ablate_and_search_present_the_same_engine_options():
    subparsers = next(action for action in build_parser()._actions if action.dest == "command")

    def engine_options(name: str) -> list[tuple]:
        group = next(group for group in subparsers.choices[name]._action_groups
                     if group.title.startswith("engine"))
        return [(action.option_strings, action.type, action.help)
                for action in group._group_actions]

    def engine_defaults(name: str) -> list:
        return [subparsers.choices[name].get_default(key) for key in ENGINE_KEYS]

    expected = engine_options("compare")
    assert [options[0] for options, *_ in expected] == [
        "--workers", "--threads-per-worker", "--address", "--gpus-per-worker"]
    # compare's are in the parsed options only when typed: they override its --settings file
    assert engine_defaults("compare") == [argparse.SUPPRESS] * 4
    for name in ("optimizers", "ablate", "search"):
        assert engine_options(name) == expected, name
        assert engine_defaults(name) == [SETTING_DEFAULTS[key] for key in ENGINE_KEYS], name


# ------------------------------------------------------------------------------------------
# On Ray


@needs_ray
def test_a_held_ray_engine_keeps_its_workers_for_new_configurations_and_a_search(
        tmp_path, local_ray):
    from toonvision.model_utils.engine.ray_engine import RayEngine
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    def pids(ray_engine) -> list[int]:
        return [info["pid"] for info in local_ray.get(
            [actor.describe.remote() for actor in ray_engine.actors])]

    # The search's data and trainer, so that its trials can use the same workers.
    reference = BUILTIN_CONFIGS["optimized"]
    configs = [reference, reference.replace(name="trial_x", dropout=0.5)]
    trial = [reference, reference.replace(name="trial_y", dropout=0.2)]
    spec = load_search_file(search_file(tmp_path), {"trials": 2})
    serial_study = run_search(tmp_path / "serial", spec, SEARCH_DATA, "fake",
                              trainer_factory=DropoutTrainer)
    serial = metrics(SerialEngine().run(fake_tasks(trial), fake_job(trial, SEARCH_DATA,
                                                                    DropoutTrainer)))
    with RayEngine(workers=2) as ray_engine:
        list(ray_engine.run(fake_tasks(configs), fake_job(configs, SEARCH_DATA, DropoutTrainer)))
        started = pids(ray_engine)
        assert [info["pid"] for info in ray_engine.worker_info] == started
        # The next job's configuration travels with its tasks: the same workers train it.
        again = ray_engine.run(fake_tasks(trial), fake_job(trial, SEARCH_DATA, DropoutTrainer))
        assert metrics(again) == serial
        assert pids(ray_engine) == started
        # A search holds the engine too: all its trials on these workers, still up after it.
        ray_study = run_search(tmp_path / "ray", spec, SEARCH_DATA, "fake",
                               trainer_factory=DropoutTrainer, engine=ray_engine)
        assert pids(ray_engine) == started
        # Other images: the workers are started again, with them.
        list(ray_engine.run([], fake_job(configs, images=np.ones_like(SEARCH_DATA.images))))
        assert set(pids(ray_engine)).isdisjoint(started)
    assert ray_engine.actors == [] and local_ray.is_initialized()    # joined: left running

    # The pruner heard of every run, as serially; the search wrote what serially is written.
    reported = [trial.intermediate_values for trial in ray_study.trials]
    assert reported == [trial.intermediate_values for trial in serial_study.trials]
    assert [sorted(values) for values in reported] == [[1, 2], [1, 2]]
    assert _files(tmp_path / "ray") == _files(tmp_path / "serial")
    assert (tmp_path / "ray" / BEST_CONFIGS_FILE).read_text() == (
        tmp_path / "serial" / BEST_CONFIGS_FILE).read_text()
    assert _rows(tmp_path / "ray" / TRIALS_CSV) == _rows(tmp_path / "serial" / TRIALS_CSV)
    for name in ("trial_0", "trial_1"):
        logs = [read_log(tmp_path / out / TRIALS_FOLDER / name / LOG_FILE)[0]
                for out in ("serial", "ray")]
        assert _record_metrics(logs[0]) == _record_metrics(logs[1]) and logs[0]
        assert {record.worker for record in logs[1]} <= {"0", "1"}


def _files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def _rows(path: Path, drop=("datetime_start", "datetime_complete", "duration", "seconds"),
          ) -> list[dict]:
    with open(path, newline="") as handle:
        return [{key: value for key, value in row.items() if key not in drop}
                for row in csv.DictReader(handle)]


def _record_metrics(records) -> list[tuple]:
    return [(record.run, record.config, record.split_seed, record.seed, record.history,
             record.validation_metrics, record.test_metrics, record.test_confusion)
            for record in sorted(records, key=lambda item: (item.run, item.config))]


# ------------------------------------------------------------------------------------------
# The commands, training real models


SEARCH_SPACE = """
base = "mlp"
reference = "mlp"
trials = 2
runs_per_trial = 2
epochs = 1

[space]
dropout = {low = 0.0, high = 0.9}
"""


def tiny_flat_set(tmp_path: Path, write_flat_set) -> list[str]:
    """24 8x8 images of two types, each a learnable colour (a binary task): the data options."""
    generator = np.random.default_rng(0)
    items = []
    for index in range(24):
        image = generator.integers(0, 60, (8, 8, 3), dtype=np.uint8)
        image[:, :, index % 2] += 150
        items.append((f"p{index:02d}", ("Fire", "Water")[index % 2], image))
    labels, images = write_flat_set(tmp_path, items)
    return ["--labels", str(labels), "--images", str(images), "--task", "label",
            "--image-size", "8", "8", "--cache-dir", str(tmp_path / "cache")]


def test_the_search_command_trains_its_trials_on_the_engine_of_its_options(
        tmp_path, monkeypatch, write_flat_set, capsys):
    import toonvision.model_utils.training.trainer as trainer

    monkeypatch.setattr(trainer, "Trainer", DropoutTrainer)   # in this process: --workers 1
    DropoutTrainer.calls, DropoutTrainer.crash_at = 0, 0
    (tmp_path / "space.toml").write_text(SEARCH_SPACE)
    arguments = ["search", str(tmp_path / "space.toml"), *tiny_flat_set(tmp_path, write_flat_set),
                 "--out", str(tmp_path / "search")]

    assert main([*arguments, "--workers", "1", "--threads-per-worker", "1"]) == 0
    log = capsys.readouterr().err
    assert "training in this process" in log
    # Not a terminal: one line per finished trial (2 trials), no bar redraws.
    assert [line.split(" done")[0] for line in log.splitlines()
            if line.startswith("trial ")] == ["trial 1/2", "trial 2/2"]
    assert "\r" not in log
    assert DropoutTrainer.calls == 2 * 2 * 2          # trials x runs x configurations
    assert len(_rows(tmp_path / "search" / TRIALS_CSV)) == 2
    # A configuration that cannot be built on this data fails before anything is written.
    (tmp_path / "bad.toml").write_text(SEARCH_SPACE.replace('base = "mlp"', 'base = "baseline"'))
    arguments[1:2] = [str(tmp_path / "bad.toml")]
    arguments[-1] = str(tmp_path / "bad")
    assert main([*arguments, "--workers", "1"]) == 2
    assert not (tmp_path / "bad").exists()


def study_results(engine_to_use) -> dict[str, list]:
    """Both studies on `engine_to_use`, on 24 tiny images of a binary task: their results as
    JSON data (the ablation's without its seconds), in the order they came."""
    from toonvision.model_utils.studies.ablation import run_ablation, select_variants
    from toonvision.model_utils.studies.optimizers import compare_optimizers
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

    generator = np.random.default_rng(0)
    images = generator.integers(0, 60, (24, 8, 8, 3), dtype=np.uint8)
    y = np.arange(24) % 2
    images[y == 1, :, :, 0] += 150
    data = SimpleNamespace(images=images, y=y, class_names=("Fire", "Water"))
    base = BUILTIN_CONFIGS["mlp"].replace(epochs=2)
    with engine_to_use:   # one start of the Ray workers serves both studies
        optimizers = [[name, result.history, result.validation_metrics, result.test_metrics]
                      for name, result in compare_optimizers(data, base, ["adam", "sgd"],
                                                             engine=engine_to_use)]
        ablation = [{key: value for key, value in dataclasses.asdict(run).items()
                     if key != "seconds"}
                    for run in run_ablation(images, y, 2, [0, 1], select_variants(["256-128"]),
                                            base, engine=engine_to_use)]
    return json.loads(json.dumps({"optimizers": optimizers, "ablation": ablation}))


@pytest.mark.slow
@needs_ray
def test_optimizers_and_ablation_on_two_ray_workers_equal_the_serial_engine(local_ray):
    from toonvision.model_utils.engine.ray_engine import RayEngine

    # The serial engine in its own process, pinned to 1 thread before TensorFlow starts; it
    # trains while the Ray workers do.
    script = ("import json, test_studies_on_engine as studies\n"
              "from toonvision.model_utils.engine.serial import SerialEngine\n"
              "print(json.dumps(studies.study_results(SerialEngine(threads=1))))")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), *sys.path])}
    serial = subprocess.Popen([sys.executable, "-c", script], env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        on_ray = study_results(RayEngine(workers=2, threads_per_worker=1))
    finally:
        output, errors = serial.communicate(timeout=400)
    assert serial.returncode == 0, errors[-3000:]
    assert on_ray == json.loads(output.splitlines()[-1])
    assert [name for name, *_ in on_ray["optimizers"]] == ["adam", "sgd"]   # as asked
    assert [(run["variant"], run["seed"]) for run in on_ray["ablation"]] == [
        ("256-128", 0), ("256-128", 1)]
    assert all(0 <= run["test_macro_f1"] <= 1 for run in on_ray["ablation"])

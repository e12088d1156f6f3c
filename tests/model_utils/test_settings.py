"""Tests of model_utils.settings: a comparison's settings from defaults, a file and overrides.

The round trip through a finished comparison's `comparison.json` and the `compare --settings`
command are tested in comparison/test_runner.py and commands/test_compare_command.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toonvision import defaults
from toonvision.model_utils.comparison.settings import (
    SETTING_DEFAULTS,
    load_settings_file,
    plan_comparison,
)
from toonvision.model_utils.training.configs import BUILTIN_CONFIGS, TrainingConfig


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_without_a_file_the_plan_is_the_defaults():
    plan = plan_comparison()
    assert plan.task == defaults.TASK and plan.config_names == list(defaults.CONFIGS)
    assert plan.configs == tuple(BUILTIN_CONFIGS[name] for name in defaults.CONFIGS)
    assert (plan.runs, plan.seed, plan.select, plan.balance) == (
        defaults.RUNS, defaults.SEED, defaults.SELECT, defaults.BALANCE)
    assert plan.image_size == defaults.IMAGE_SIZE and plan.ratios == defaults.RATIOS


def test_file_values_are_used_and_overrides_win_over_them(tmp_path):
    settings_file = write(tmp_path / "study.toml", """
task = "suit"
configs = ["optimized_1e-4", "baseline"]
runs = 20
epochs = 10
early_stopping = 3
image_size = [300, 100]
seed = 4
balance = "undersample"
""")
    plan = plan_comparison(settings_file=settings_file)
    assert (plan.task, plan.runs, plan.seed, plan.balance) == ("suit", 20, 4, "undersample")
    assert plan.config_names == ["optimized_1e-4", "baseline"]
    assert all(config.epochs == 10 and config.early_stopping_patience == 3
               for config in plan.configs)
    assert plan.configs[0].decay == 1e-4 and plan.configs[0].augmentation
    assert plan.image_size == (300, 100)
    assert plan.select == defaults.SELECT and plan.ratios == defaults.RATIOS   # not in the file

    plan = plan_comparison({"runs": 2, "configs": ["mlp"], "seed": 0}, settings_file)
    assert (plan.runs, plan.seed, plan.config_names) == (2, 0, ["mlp"])
    assert plan.configs[0].epochs == 10 and plan.task == "suit"   # still the file's


def test_config_tables_and_a_config_file_beside_the_settings(tmp_path):
    (tmp_path / "study").mkdir()
    write(tmp_path / "study" / "configs.toml", '[configs.small]\nbase = "baseline"\n'
                                               "batch_size = 8\n")
    settings_file = write(tmp_path / "study" / "settings.toml", """
config_file = "configs.toml"
configs = ["small", {name = "wide", base = "small", family = "mlp", hidden_units = [512]},
           {name = "plain", epochs = 3}]
""")
    small, wide, plain = plan_comparison(settings_file=settings_file).configs
    assert small == BUILTIN_CONFIGS["baseline"].replace(name="small", batch_size=8)
    assert (wide.batch_size, wide.family, wide.hidden_units) == (8, "mlp", (512,))
    assert plain == TrainingConfig(name="plain", epochs=3)   # no base: the field defaults


def test_unknown_key_gets_a_did_you_mean_naming_the_file(tmp_path):
    settings_file = write(tmp_path / "study.toml", "runs = 5\nbalanse = 'undersample'\n")
    with pytest.raises(ValueError, match=r"study\.toml: unknown setting 'balanse' \(did you "
                                         r"mean 'balance'\?\); known: task, configs"):
        plan_comparison(settings_file=settings_file)
    with pytest.raises(ValueError, match=r"unknown setting 'run' \(did you mean 'runs'\?\)"):
        plan_comparison({"run": 3})


def test_unknown_names_and_bad_values_in_a_file_name_the_file(tmp_path):
    cases = {
        'configs = ["optimised"]': r"unknown configuration 'optimised' \(did you mean "
                                   r"'optimized'\?\)",
        'configs = [{name = "x", learning_rat = 0.1}]': r"configs\[0\]: unknown field "
                                                        r"'learning_rat' \(did you mean "
                                                        r"'learning_rate'\?\)",
        "runs = 0": "the number of runs must be a whole number of at least 1; got 0",
        'runs = "ten"': "the number of runs must be a whole number",
        'select = "val-loss"': r"unknown selection rule 'val-loss' \(did you mean 'val_loss'",
        "image_size = [600]": "image_size must be two positive whole numbers",
        "ratios = [0.6, 0.4]": "ratios must be three",
        "epochs = 0": "epochs must be a whole number of at least 1; got 0",
        'until_decided = "yes"': "until_decided must be true or false; got 'yes'",
        "look_every = 0": "look_every must be a whole number of at least 1; got 0",
        "equivalence = 2": r"equivalence must be a number from 0 to 1 \(a margin in accuracy",
        'until_decided = true\nconfigs = ["baseline"]': "a comparison run until decided needs "
                                                    "at least two configurations",
    }
    for index, (line, message) in enumerate(cases.items()):
        settings_file = write(tmp_path / f"bad{index}.toml", line + "\n")
        with pytest.raises(ValueError, match=rf"bad{index}\.toml: {message}"):
            plan_comparison(settings_file=settings_file)
    with pytest.raises(ValueError, match=r"bad\.toml: not valid TOML"):
        plan_comparison(settings_file=write(tmp_path / "bad.toml", "runs = = 3\n"))
    with pytest.raises(FileNotFoundError, match="missing.toml not found"):
        plan_comparison(settings_file=tmp_path / "missing.toml")


def test_the_record_keys_of_a_comparison_json_are_accepted_and_not_used(tmp_path):
    settings_file = write(tmp_path / "comparison.json",
                          '{"source": "data", "class_names": ["cog", "toon"], "runs": 3, '
                          '"data_fingerprint": "abc", "num_images": 9, "version": 1}')
    assert load_settings_file(settings_file) == {"runs": 3}
    assert set(SETTING_DEFAULTS) >= {"task", "configs", "runs", "epochs", "image_size",
                                     "ratios", "seed", "select", "balance"}


def test_the_stopping_rule_comes_from_a_file_and_defaults_to_a_fixed_number_of_runs(tmp_path):
    plan = plan_comparison()
    assert (plan.until_decided, plan.look_every, plan.equivalence) == (
        defaults.UNTIL_DECIDED, defaults.LOOK_EVERY, defaults.EQUIVALENCE) == (False, 5, 0.0)
    settings_file = write(tmp_path / "auto.toml", "until_decided = true\nruns = 100\n"
                                                  "look_every = 5\nequivalence = 0.03\n")
    plan = plan_comparison(settings_file=settings_file)
    assert (plan.until_decided, plan.runs, plan.look_every, plan.equivalence) == (
        True, 100, 5, 0.03)
    assert plan_comparison({"look_every": 20}, settings_file).look_every == 20


def test_every_setting_has_its_help_flag_and_check_in_the_schema():
    """One schema: the --help of compare, the keys of a file and of comparison.json all
    come from ComparisonPlan's fields."""
    import dataclasses

    from toonvision.cli import build_parser
    from toonvision.model_utils.comparison.settings import (
        ENGINE_KEYS,
        RECORD_KEYS,
        SETTING_KEYS,
        SETTINGS,
        STORED_KEYS,
        option,
    )
    from toonvision.model_utils.comparison.stored_settings import ComparisonSettings

    assert SETTING_KEYS == tuple(item.name for item in SETTINGS)
    assert all(item.metadata["help"] for item in SETTINGS)
    compare = next(action for action in build_parser()._actions
                   if action.dest == "command").choices["compare"]
    by_dest = {action.dest: action for action in compare._actions}
    for key in SETTING_KEYS:
        flag, keywords = option(key)
        assert by_dest[key].option_strings == [flag], key
        assert by_dest[key].help == keywords["help"], key
    # comparison.json holds the stored settings and the data's record, nothing else.
    stored = [item.name for item in dataclasses.fields(ComparisonSettings)]
    assert set(stored) == set(STORED_KEYS) | set(RECORD_KEYS)
    assert not set(ENGINE_KEYS) & set(STORED_KEYS)
    assert "(default: 5)" in option("look_every")[1]["help"]


def test_a_plan_checks_every_setting_by_its_schema_check():
    from toonvision import ToonvisionError
    from toonvision.model_utils.comparison.settings import ComparisonPlan

    plan = ComparisonPlan(configs=("baseline", {"name": "fast", "base": "optimized",
                                                "batch_size": 8}), runs=1, epochs=2)
    assert plan.config_names == ["baseline", "fast"] and plan.runs == 1
    assert [config.epochs for config in plan.configs] == [2, 2]
    assert ComparisonPlan(configs=plan.configs, epochs=2).configs == plan.configs  # idempotent
    for key, value, message in (("balance", "under", "unknown balance method 'under'"),
                                ("seed", 1.5, "seed must be a whole number"),
                                ("gpus_per_worker", -1, "gpus_per_worker must be a number"),
                                ("cv", 1, "cv must be a whole number of folds")):
        with pytest.raises(ToonvisionError, match=message):
            ComparisonPlan(**{key: value})


def test_resize_is_a_setting_and_an_old_comparison_json_or_sidecar_means_stretch(tmp_path):
    from toonvision import ToonvisionError
    from toonvision.model_utils.comparison.stored_settings import ComparisonSettings
    from toonvision.model_utils.training.model_io import ModelInfo

    assert plan_comparison().resize == "stretch" == SETTING_DEFAULTS["resize"]
    settings_file = write(tmp_path / "study.toml", 'resize = "letterbox"\n')
    assert plan_comparison(settings_file=settings_file).resize == "letterbox"
    assert plan_comparison({"resize": "stretch"}, settings_file).resize == "stretch"
    with pytest.raises(ToonvisionError, match="did you mean 'letterbox'"):
        plan_comparison({"resize": "letterbx"})
    old = Path(__file__).resolve().parents[1] / "data" / "compare_v1" / "comparison"
    stored = ComparisonSettings.from_json((old / "comparison.json").read_text())
    assert "resize" not in (old / "comparison.json").read_text() and stored.resize == "stretch"
    letterboxed = ComparisonSettings.from_json(
        (old / "comparison.json").read_text().replace('"task"', '"resize": "letterbox", "task"'))
    assert letterboxed.differences(stored) == ['resize: "stretch" there, "letterbox" now']
    sidecar = (old / "best_baseline.keras.json").read_text()
    assert "resize" not in sidecar and ModelInfo.from_json(sidecar).resize == "stretch"

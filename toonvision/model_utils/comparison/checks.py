"""The checks of a comparison's settings, in one place (`settings.ComparisonPlan` names them).

Every setting of `settings.ComparisonPlan` names its check in its field's metadata; the plan
and the stored `comparison.json` (`stored_settings.ComparisonSettings`) call the same ones, so
a value refused on the command line is refused in a file and on resume too. A check takes the
value, raises `ToonvisionError` naming the setting and what is allowed, and returns the value
in its canonical form (a tuple for a list, a float for a number). The checks that relate two
settings (`check_sequential`, `check_cv`) take them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from toonvision import ToonvisionError, unknown_name_error
from toonvision.data_processing.placement import RESIZE_MODES
from toonvision.data_processing.splits import BALANCE_METHODS, check_grouping, check_ratios
from toonvision.model_utils.comparison.runlog import check_rule


def is_int(value: Any) -> bool:
    """Whether `value` is a whole number (an `int`, not a `bool`)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether `value` is an `int` or a `float`, not a `bool`."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_task(task: Any) -> str:
    """A task's spec is a non-empty text (`labels.make_task` reads it with the data)."""
    if not isinstance(task, str) or not task.strip():
        raise ToonvisionError(f"task must be a non-empty text; got {task!r}")
    return task


def check_configs(configs: Any) -> tuple:
    """The configurations: a non-empty list of names, tables or `TrainingConfig`s."""
    if isinstance(configs, str) or not isinstance(configs, Sequence) or not configs:
        raise ToonvisionError(f"configs must be a non-empty list of configuration names or "
                              f"tables; got {configs!r}")
    return tuple(configs)


def check_runs(runs: Any) -> int:
    """The number of runs is a whole number of at least 1."""
    if not is_int(runs) or runs < 1:
        raise ToonvisionError(f"the number of runs must be a whole number of at least 1; "
                              f"got {runs!r}")
    return runs


def whole_number(key: str, least: int, optional: bool = True) -> Any:
    """A check that `key` is a whole number of at least `least` (or None when `optional`)."""

    def check(value: Any) -> int | None:
        if value is None and optional:
            return None
        if not is_int(value) or value < least:
            raise ToonvisionError(f"{key} must be a whole number of at least {least}; got "
                                  f"{value!r}")
        return value

    check.__doc__ = f"{key} is a whole number of at least {least}" + (" or None" * optional)
    return check


def as_tuple(key: str, value: Any) -> tuple:
    """`value` as a tuple; a text or a single value is an error naming `key`."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ToonvisionError(f"{key} must be a list; got {value!r}")
    return tuple(value)


def check_image_size(image_size: Any) -> tuple[int, int]:
    """(height, width): two positive whole numbers."""
    size = as_tuple("image_size", image_size)
    if len(size) != 2 or not all(is_int(side) and side > 0 for side in size):
        raise ToonvisionError(f"image_size must be two positive whole numbers (height, "
                              f"width); got {list(size)!r}")
    return size


def check_ratio_values(ratios: Any) -> tuple[float, float, float]:
    """Train, validate and test shares: three numbers (`splits.check_ratios`)."""
    ratios = as_tuple("ratios", ratios)
    if not all(is_number(ratio) for ratio in ratios):
        raise ToonvisionError(f"ratios must be three numbers; got {list(ratios)!r}")
    check_ratios(ratios)
    return ratios


def check_seed(seed: Any) -> int:
    """The seed is a whole number."""
    if not is_int(seed):
        raise ToonvisionError(f"seed must be a whole number; got {seed!r}")
    return seed


def check_select(select: Any) -> str:
    """The best-model rule, one of `runlog.SELECTION_RULES`."""
    check_rule(select)
    return select


def check_balance(balance: Any) -> str:
    """The balancing of training splits, one of `splits.BALANCE_METHODS`."""
    if balance not in BALANCE_METHODS:
        raise unknown_name_error("balance method", str(balance), BALANCE_METHODS)
    return balance


def check_resize(resize: Any) -> str:
    """How crops become model inputs, one of `images.RESIZE_MODES`."""
    if resize not in RESIZE_MODES:
        raise unknown_name_error("resize mode", str(resize), RESIZE_MODES)
    return resize


def check_until_decided(until_decided: Any) -> bool:
    """until_decided is true or false."""
    if not isinstance(until_decided, bool):
        raise ToonvisionError(f"until_decided must be true or false; got {until_decided!r}")
    return until_decided


def check_equivalence(equivalence: Any) -> float:
    """The practical-difference margin, a number from 0 (none) to under 1."""
    if not is_number(equivalence) or not 0 <= equivalence < 1:
        raise ToonvisionError(f"equivalence must be a number from 0 to 1 (a margin in "
                              f"accuracy: 0.02 is 2 points); got {equivalence!r}")
    return float(equivalence)


def check_group_by(group_by: Any) -> str:
    """What every split keeps whole (`splits.check_grouping`)."""
    check_grouping(group_by)
    return group_by


def check_address(address: Any) -> str | None:
    """A Ray cluster to join: `auto` or HOST:PORT (None: a local Ray)."""
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ToonvisionError(f"address must be 'auto' or HOST:PORT of a Ray cluster; got "
                              f"{address!r}")
    return address


def check_gpus_per_worker(gpus_per_worker: Any) -> float:
    """The GPU share of a Ray worker, a number of at least 0."""
    if not is_number(gpus_per_worker) or gpus_per_worker < 0:
        raise ToonvisionError(f"gpus_per_worker must be a number of at least 0; got "
                              f"{gpus_per_worker!r}")
    return gpus_per_worker


def check_sequential(until_decided: bool, look_every: int, equivalence: float, runs: int,
                     configs: int) -> None:
    """Checks the plan of a comparison run until decided (`sequential.sequential_decision`).

    Args:
        until_decided, look_every, equivalence, runs: the settings of that name.
        configs: the number of configurations.

    Raises:
        ToonvisionError: for a bad value, fewer than two configurations or a cap under 2.
    """
    check_until_decided(until_decided)
    whole_number("look_every", 1, optional=False)(look_every)
    check_equivalence(equivalence)
    if until_decided and configs < 2:
        raise ToonvisionError("a comparison run until decided needs at least two "
                              "configurations: it looks at the second against the first")
    if until_decided and runs < 2:
        raise ToonvisionError(f"a comparison run until decided needs a cap of at least 2 "
                              f"runs; got {runs}")


def check_cv(cv: Any, until_decided: bool) -> None:
    """Checks the number of cross-validation folds (None: a fresh split per run).

    Raises:
        ToonvisionError: for fewer than 2 folds, or folds with `until_decided`.
    """
    if cv is None:
        return
    if not is_int(cv) or cv < 2:
        raise ToonvisionError(f"cv must be a whole number of folds of at least 2; got {cv!r}")
    if until_decided:
        raise ToonvisionError("cv and until_decided do not go together: the stopping rule "
                              "looks at independent re-split runs, not at folds")

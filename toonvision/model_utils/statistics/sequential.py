"""When a comparison can stop: group-sequential looks at the paired difference of its runs.

`compare --until-decided` looks at the paired difference every K runs and stops as soon as more
runs cannot change the answer. Looking many times and stopping at the first interval that
excludes zero would decide wrongly far more often than alpha; so each look uses a repeated
confidence interval (Jennison and Turnbull 1989, JRSS B 51; "Group Sequential Methods", 2000,
ch. 9 and 19) on a group-sequential boundary with the O'Brien-Fleming-type alpha spending
function of Lan and DeMets (1983, Biometrika 70), computed on the information
`1 / (1/J + n_test/n_train)` that the corrected variance of `paired` implies, and a futility
stop on conditional power (Lan, Simon and Halperin 1982) when the effect lies under the floor.

Example:
    >>> sequential_decision([0.02, 0.03, 0.01, 0.02, 0.03, 0.02], 137, 410,
    ...                     look_every=3, max_runs=30).state
    'different'
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from toonvision import ToonvisionError, defaults
from toonvision.model_utils.statistics.paired import (
    NO_SPREAD,
    Interval,
    no_spread,
    resolution_floor,
    size_ratio,
)

STATES = ("continue", "different", "equivalent", "undecidable", "not_decided")
_PATHS = 400_000  # simulated comparisons that calibrate the t boundaries of a schedule
_GRID = 1000  # bins of the continuation region in the boundary recursion


@dataclass(frozen=True)
class Decision:
    """Where a (sequential) comparison stands; `state` is one of `STATES`.

    Attributes:
        interval: the repeated confidence interval at this look (with a single look, the
            corrected interval).
        critical: its t critical value; `look` of `looks` planned.
    """

    state: str
    reason: str
    runs: int
    interval: Interval
    critical: float
    look: int
    looks: int

    @property
    def stopped(self) -> bool:
        """Whether the comparison can stop: anything but `continue`."""
        return self.state != "continue"


def obrien_fleming_boundaries(information: Sequence[float],
                              alpha: float = defaults.ALPHA) -> np.ndarray:
    """Two-sided z boundaries of the Lan-DeMets O'Brien-Fleming-type alpha spending function.

    Each side spends `2 - 2 Phi(z_{1-alpha/4} / sqrt(t))` of its alpha/2 by information
    fraction t (the O'Brien-Fleming-type function at level alpha/2 per side, the convention of
    ldbounds and gsDesign); each boundary spends its share given that no earlier look
    stopped, found by the recursive integration of Armitage, McPherson and Rowe (1969) on the
    score process (Jennison and Turnbull 2000, ch. 19), here as a discrete chain of bin masses.

    Args:
        information: the statistical information at each look, increasing.

    Example:
        >>> obrien_fleming_boundaries([1, 2, 3, 4, 5]).round(2).tolist()
        [4.88, 3.36, 2.68, 2.29, 2.03]
    """
    return np.array(_boundaries(tuple(float(value) for value in information), float(alpha)))


def _spending_shares(information: np.ndarray, alpha: float) -> np.ndarray:
    """The alpha each look may spend (both sides together) under the O'Brien-Fleming-type rule."""
    fraction = information / information[-1]
    per_side = 2 - 2 * special.ndtr(special.ndtri(1 - alpha / 4) / np.sqrt(fraction))
    return np.diff(2 * per_side, prepend=0.0)  # alpha/2 per side, as ldbounds and gsDesign do


@functools.lru_cache(maxsize=128)
def _boundaries(information: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    info = np.asarray(information)
    if np.any(np.diff(info) <= 0) or info[0] <= 0:
        raise ToonvisionError("information must be positive and increasing. Received: "
                              f"{information}")
    share = _spending_shares(info, alpha)
    bounds = [float(special.ndtri(1 - share[0] / 2))]
    edges = np.linspace(-1, 1, _GRID + 1) * bounds[0] * math.sqrt(info[0])  # score S = Z sqrt(I)
    mass = np.diff(special.ndtr(edges / math.sqrt(info[0])))  # P(S_1 in bin), not yet stopped
    for k in range(1, len(info)):
        centers, step = (edges[1:] + edges[:-1]) / 2, math.sqrt(info[k] - info[k - 1])
        bounds.append(float(optimize.brentq(_crossing, 0.0, 40.0, xtol=1e-10,
                                            args=(centers, mass, step, info[k], share[k]))))
        edges = np.linspace(-1, 1, _GRID + 1) * bounds[-1] * math.sqrt(info[k])
        mass = mass @ np.diff(special.ndtr((edges[None, :] - centers[:, None]) / step), axis=1)
    return tuple(bounds)


def _crossing(z: float, centers: np.ndarray, mass: np.ndarray, step: float, information: float,
              share: float) -> float:
    """P(|S_k| >= z sqrt(I_k) and no earlier stop) - the share of alpha this look may spend."""
    b = z * math.sqrt(information)
    tails = special.ndtr((centers - b) / step) + special.ndtr((-b - centers) / step)
    return float(mass @ tails) - share


def sequential_boundaries(schedule: Sequence[int], n_test: int, n_train: int,
                          alpha: float = defaults.ALPHA) -> np.ndarray:
    """The t critical values of the repeated confidence intervals at looks after `schedule` runs.

    Each look spends the O'Brien-Fleming-type share of alpha on the information
    `1 / (1/J + n_test/n_train)` of the corrected variance. With the variance estimated from
    the runs, turning the z boundaries into t quantiles look by look (the significance-level
    approach) overspends here, 6% instead of 5% over 20 looks, because 78% of the information
    is in the first 10 runs and those give only 9 degrees of freedom. So the shares are spent
    on the exact joint law of the t statistics under the Nadeau-Bengio model (differences =
    data-set effect with variance `ratio * sigma^2` + independent run noise `sigma^2`), which
    depends on nothing else and is simulated once per schedule (seeded, cached). A single look
    gives the exact t quantile.

    Example:
        >>> sequential_boundaries([200], 137, 410).round(3).tolist()  # t_0.975 with 199 df
        [1.972]
        >>> sequential_boundaries([10, 20, 200], 137, 410).round(2).tolist()
        [2.75, 2.47, 2.16]
    """
    schedule = tuple(int(runs) for runs in schedule)
    if schedule[0] < 2 or any(b <= a for a, b in zip(schedule, schedule[1:], strict=False)):
        raise ToonvisionError(f"looks must be increasing run counts >= 2. Received: {schedule}")
    return np.array(_t_boundaries(schedule, size_ratio(n_test, n_train), float(alpha)))


@functools.lru_cache(maxsize=128)
def _t_boundaries(schedule: tuple[int, ...], ratio: float, alpha: float) -> tuple[float, ...]:
    share = _spending_shares(np.array([1 / (1 / runs + ratio) for runs in schedule]), alpha)
    bounds = [float(stats.t.isf(share[0] / 2, schedule[0] - 1))]  # exact at the first look
    if len(schedule) == 1:
        return tuple(bounds)
    rng = np.random.default_rng(0)
    shared = rng.normal(0.0, math.sqrt(ratio), _PATHS)  # the data set's own effect, U
    runs, mean, squares = 0, np.zeros(_PATHS), np.zeros(_PATHS)  # run noise: mean, sum of squares
    alive = np.ones(_PATHS, dtype=bool)
    for k, total in enumerate(schedule):
        new = total - runs  # the block's mean and sum of squares, merged as Chan et al. (1979)
        block_mean = rng.standard_normal(_PATHS) / math.sqrt(new)
        block_squares = rng.chisquare(new - 1, _PATHS) if new > 1 else np.zeros(_PATHS)
        squares += block_squares + (block_mean - mean) ** 2 * runs * new / total
        mean += (block_mean - mean) * new / total
        runs = total
        statistic = np.abs(shared + mean) / np.sqrt(squares / (runs - 1) * (1 / runs + ratio))
        if k > 0:  # the boundary that as many of all paths as this look's share cross first
            bounds.append(float(np.quantile(statistic[alive], 1 - share[k] / alive.mean())))
        alive &= statistic < bounds[k]
    return tuple(bounds)


def look_schedule(runs: int, look_every: int = defaults.LOOK_EVERY,
                  max_runs: int = defaults.RUNS) -> list[int]:
    """The run counts of the looks up to and including `runs`, then those planned to the cap."""
    if look_every < 1 or not 2 <= runs <= max_runs:
        raise ToonvisionError("need 2 <= runs <= max_runs and look_every >= 1. Received: "
                              f"runs={runs}, look_every={look_every}, max_runs={max_runs}")
    planned = [*range(look_every, max_runs, look_every), max_runs]
    return [j for j in planned if 2 <= j < runs] + [runs] + [j for j in planned if j > runs]


def is_look(runs: int, look_every: int = defaults.LOOK_EVERY,
            max_runs: int = defaults.RUNS) -> bool:
    """Whether the plan looks after `runs` paired runs: every `look_every` runs, and at the cap.

    Example:
        >>> [runs for runs in range(1, 26) if is_look(runs, 10, 25)]
        [10, 20, 25]
    """
    return 2 <= runs <= max_runs and (runs % look_every == 0 or runs == max_runs)


def sequential_decision(differences: Sequence[float], n_test: int, n_train: int,
                        look_every: int = defaults.LOOK_EVERY, max_runs: int = defaults.RUNS,
                        equivalence: float = 0.0, alpha: float = defaults.ALPHA,
                        futility: float = defaults.FUTILITY) -> Decision:
    """Whether a comparison that has run `len(differences)` paired runs can stop.

    Looks come every `look_every` runs up to `max_runs`. At each, the repeated confidence
    interval `mean +- c_k * s * sqrt(1/J + n_test/n_train)` uses the Lan-DeMets O'Brien-Fleming
    boundary c_k (`sequential_boundaries`), so that the chance that any look decides wrongly
    stays under `alpha`. The comparison stops when that interval excludes zero
    (`different`), lies inside `+-equivalence` (`equivalent`), or when the effect is under the
    floor and the runs left to the cap would decide it with less than `futility` chance under
    the current estimate (`undecidable`; a futility stop, which only lowers the error), unless
    an interval as narrow as the cap's around the current mean would lie inside the margin. At
    the cap without any of these it is `not_decided`.

    Args:
        differences: per-run differences B - A so far, in run order.
        equivalence: the practical-difference margin, in the differences' units (0: off).

    Example:
        >>> sequential_decision([0.02, 0.03, 0.01, 0.02, 0.03, 0.02], 137, 410,
        ...                     look_every=3, max_runs=30).state
        'different'
    """
    differences = np.asarray(differences, dtype=float)
    runs, ratio = len(differences), size_ratio(n_test, n_train)
    if runs < 2:
        return Decision("continue", "fewer than 2 runs", runs, Interval(math.nan, math.nan),
                        math.nan, 0, 0)
    schedule = look_schedule(runs, look_every, max_runs)
    look, information = schedule.index(runs), [1 / (1 / j + ratio) for j in schedule]
    bounds = sequential_boundaries(schedule, n_test, n_train, alpha)
    critical = float(bounds[look])
    mean, sd = float(differences.mean()), float(differences.std(ddof=1))
    se = sd * math.sqrt(1 / runs + ratio)
    # Without a spread (`no_spread`, one difference repeated) there is no interval: unknown.
    interval = (Interval(math.nan, math.nan) if no_spread(sd)
                else Interval(mean - critical * se, mean + critical * se))
    at = f"after {runs} runs (look {look + 1} of {len(schedule)})"
    shown = f"the corrected interval {interval.low:+.4g} to {interval.high:+.4g}"

    def decision(state: str, reason: str) -> Decision:
        return Decision(state, reason, runs, interval, critical, look + 1, len(schedule))

    if no_spread(sd) and abs(mean) < NO_SPREAD:
        return decision("equivalent", f"{at} every run gave the same result (difference 0)")
    if no_spread(sd):
        # A metric counted on n_test images moves in steps: a few runs can repeat one step
        # exactly, and their spread of 0 says nothing about the next run's. No interval, no
        # decision: the next look (or more runs) shows the spread.
        return decision("continue" if look + 1 < len(schedule) else "not_decided",
                        f"{at} every run gave the same difference {mean:+.4g}: from these runs "
                        "its spread, and so an interval, cannot be estimated (a metric counted "
                        f"on {n_test} test images moves in steps); more runs will show it")
    if interval.excludes(0.0):
        return decision("different", f"{at} {shown} excludes zero")
    if equivalence > 0 and interval.within(equivalence):
        return decision("equivalent", f"{at} {shown} lies inside +-{equivalence:.4g}")
    floor = resolution_floor(sd, ratio, alpha)
    final_bound = _boundaries(tuple(information), float(alpha))[-1]
    chance = _conditional_power(mean / sd, information[look], information[-1], final_bound)
    final_half = bounds[-1] * sd * math.sqrt(1 / max_runs + ratio)
    reachable = equivalence > 0 and abs(mean) + final_half < equivalence  # at the cap's width
    if abs(mean) < floor and chance < futility and not reachable:
        return decision("undecidable",
                        f"{at} the effect {mean:+.4g} ({mean / sd:+.2f} sd) is under the floor "
                        f"{floor:.4g} ({floor / sd:.2f} sd) that no number of runs can pass with "
                        f"{n_test} test and {n_train} training images; runs up to {max_runs} "
                        f"would decide it with {chance:.0%} chance; more runs will not decide "
                        "it, more labelled data per class (a larger test set, not a larger "
                        "test share) would")
    if look + 1 == len(schedule):
        more = (f"; the effect is above the floor {floor:.4g}: more runs could decide it"
                if abs(mean) >= floor else "")
        return decision("not_decided", f"{at} {shown} includes zero{more}")
    return decision("continue", f"{at} {shown} includes zero")


def _conditional_power(effect: float, information: float, final_information: float,
                       final_bound: float) -> float:
    """P(the final look decides | the score so far, drift = current estimate), in sd units."""
    left = final_information - information
    if left <= 0:
        return 0.0
    mean = effect * final_information  # S_J + effect * (I_max - I_J), with S_J = effect * I_J
    b = final_bound * math.sqrt(final_information)
    return float(special.ndtr((mean - b) / math.sqrt(left))
                 + special.ndtr((-b - mean) / math.sqrt(left)))



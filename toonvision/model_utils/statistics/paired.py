"""What paired runs of two configurations show: the difference, who wins, what can be resolved.

Repeated re-split runs overlap: every run trains on 60% and tests on 20% of the same crops, so
their paired differences are correlated and their spread understates the uncertainty. The
statistics here are pure functions over arrays of per-run values, B against A, run j of both on
the same split:

- the paired difference with the corrected resampled t interval of Nadeau and Bengio (2003),
  "Inference for the generalization error", Machine Learning 52: variance of the mean
  `(1/J + n_test/n_train) * s^2` over J runs, t with J - 1 degrees of freedom; beside it the
  uncorrected `s^2 / J` interval, which measures only the spread over re-splits of this one
  data set;
- P(B > A) per run (ties count half) with a bootstrap interval over runs;
- the effect in run-to-run standard deviations, the smallest difference J runs detect at 80%
  power, and the floor no number of runs can pass, `2.8 * s * sqrt(n_test/n_train)`;
- the optimism of keeping the best of N runs: the expected best of n, Boo_n (Bajgar, Kadlec and
  Kleindienst 2018, "A Boo(n) for evaluating architecture performance", ICML), estimated from
  the runs' empirical distribution as Dodge et al. (2019, "Show your work", EMNLP) do.

`sequential` decides when a comparison can stop; `verdict` puts both together.

Example:
    >>> d = paired_difference([0.95, 0.96, 0.97, 0.96, 0.95], [0.97, 0.96, 0.98, 0.98, 0.96],
    ...                       137, 410)
    >>> round(d.mean, 3), d.corrected.excludes(0), d.resplit.excludes(0)
    (0.012, False, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from toonvision import ToonvisionError, defaults

TIE = 1e-9  # per-run values closer than this are a tie (accuracies are exact fractions)


@dataclass(frozen=True)
class Interval:
    """A confidence interval `[low, high]`."""

    low: float
    high: float

    def excludes(self, value: float = 0.0) -> bool:
        """Whether `value` lies outside the interval."""
        return not self.low <= value <= self.high

    def within(self, delta: float) -> bool:
        """Whether the whole interval lies strictly inside `(-delta, +delta)`."""
        return -delta < self.low and self.high < delta


@dataclass(frozen=True)
class PairedDifference:
    """Mean and spread of the per-run differences B - A, with both intervals.

    Attributes:
        corrected: the Nadeau-Bengio interval, the one to draw conclusions from.
        resplit: the uncorrected t interval: only the spread over re-splits of this data set.
    """

    runs: int
    mean: float
    sd: float
    n_test: int
    n_train: int
    alpha: float
    corrected: Interval
    resplit: Interval


@dataclass(frozen=True)
class WinRate:
    """How often B beat A in a run: `probability` = (wins + ties / 2) / runs, with an interval."""

    probability: float
    wins: int
    ties: int
    losses: int
    interval: Interval


@dataclass(frozen=True)
class Resolution:
    """What this test split can resolve, in the difference's units.

    Attributes:
        effect_size: the mean difference in run-to-run standard deviations (NaN when the runs
            repeat one difference, `no_spread`).
        detectable: the smallest difference these J runs detect at 80% power (corrected).
        floor: the smallest difference detectable with any number of runs.
        under_floor: whether the observed effect lies under the floor.
    """

    effect_size: float
    detectable: float
    floor: float
    under_floor: bool


@dataclass(frozen=True)
class Optimism:
    """The kept best of N runs against what one run and the best of N runs are expected to give.

    Attributes:
        expected_best: Boo_N, the expected best of N runs; `kept` is one draw of it.
        optimism: `expected_best - expected_single`, what picking the best adds by luck
            (negative for a loss).
    """

    runs: int
    kept: float
    expected_single: float
    expected_best: float
    optimism: float



def paired_differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """The per-run differences `b - a` of two paired sequences.

    Raises:
        ToonvisionError: unless both are 1-D, of the same length, with at least 2 runs.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ToonvisionError("paired runs need two 1-D sequences of the same length >= 2. "
                              f"Received: shapes {a.shape} and {b.shape}")
    return b - a


# Run metrics come from float32 computations (about 7 significant digits): paired differences
# whose spread is below this are the same difference, repeated.
NO_SPREAD = 1e-6


def no_spread(sd: float) -> bool:
    """Whether paired differences with standard deviation `sd` are one difference repeated
    (a metric counted on a test split moves in steps, and a few runs can repeat one step):
    their spread then says nothing about the next run's, and no interval follows from it."""
    return sd < NO_SPREAD


def size_ratio(n_test: int, n_train: int) -> float:
    """`n_test / n_train`, the share of the variance that more runs do not average out.

    Raises:
        ToonvisionError: if a size is not positive.
    """
    if n_test <= 0 or n_train <= 0:
        raise ToonvisionError(f"split sizes must be positive. Received: n_test={n_test}, "
                              f"n_train={n_train}")
    return n_test / n_train


def paired_difference(a: Sequence[float], b: Sequence[float], n_test: int, n_train: int,
                      alpha: float = defaults.ALPHA) -> PairedDifference:
    """The mean paired difference B - A over J runs with its corrected and uncorrected intervals.

    Args:
        a, b: one value per run (run j of A and of B used the same split).
        n_test, n_train: test and training split sizes of one run.
        alpha: 1 - the intervals' confidence.

    Example:
        >>> d = paired_difference([0.90, 0.92, 0.91], [0.93, 0.92, 0.95], 100, 300)
        >>> round(d.mean, 3), d.corrected.low < d.resplit.low
        (0.023, True)
    """
    differences = paired_differences(a, b)
    ratio, runs = size_ratio(n_test, n_train), len(differences)
    mean, sd = float(differences.mean()), float(differences.std(ddof=1))

    def interval(variance: float) -> Interval:
        if no_spread(sd):   # one difference repeated: no spread, so no interval (unknown)
            return Interval(math.nan, math.nan)
        low, high = stats.t.interval(1 - alpha, runs - 1, loc=mean, scale=math.sqrt(variance))
        return Interval(float(low), float(high))

    return PairedDifference(runs, mean, sd, n_test, n_train, alpha,
                            corrected=interval((1 / runs + ratio) * sd**2),  # Nadeau-Bengio
                            resplit=interval(sd**2 / runs))


def win_rate(a: Sequence[float], b: Sequence[float], higher_is_better: bool = True,
             alpha: float = defaults.ALPHA, resamples: int = defaults.BOOTSTRAP_SAMPLES,
             seed: int = 0) -> WinRate:
    """P(B beats A in a run), ties counted half, with a BCa bootstrap interval over runs.

    Like the uncorrected interval, the bootstrap treats runs as independent: its interval is
    the spread over re-splits of this data set.

    Args:
        higher_is_better: False for a loss, where B wins a run with the lower value.
    """
    differences = paired_differences(a, b) * (1 if higher_is_better else -1)
    tie = np.abs(differences) <= TIE
    score = np.where(tie, 0.5, (differences > 0).astype(float))
    probability = float(score.mean())
    if np.all(score == score[0]):
        interval = Interval(probability, probability)
    else:
        result = stats.bootstrap((score,), np.mean, confidence_level=1 - alpha,
                                 n_resamples=resamples, rng=np.random.default_rng(seed))
        interval = Interval(float(result.confidence_interval.low),
                            float(result.confidence_interval.high))
    return WinRate(probability, int((score == 1).sum()), int(tie.sum()),
                   int((score == 0).sum()), interval)


def resolution(difference: PairedDifference, alpha: float = defaults.ALPHA,
               power: float = defaults.POWER) -> Resolution:
    """The effect in standard deviations, the detectable difference and the floor.

    The smallest difference detectable with two-sided level `alpha` and `power` over J runs is
    `(t_{1-alpha/2} + t_power) * s * sqrt(1/J + n_test/n_train)` (t with J - 1 df); as J grows it
    falls only to `(z_{1-alpha/2} + z_power) * s * sqrt(n_test/n_train)`, 2.8 s sqrt(ratio):
    the part of the variance that comes from the data set itself does not average out.
    """
    ratio, runs, sd = difference.n_test / difference.n_train, difference.runs, difference.sd
    quantiles = stats.t.ppf(1 - alpha / 2, runs - 1) + stats.t.ppf(power, runs - 1)
    floor = resolution_floor(sd, ratio, alpha, power)
    return Resolution(effect_size=math.nan if no_spread(sd) else difference.mean / sd,
                      detectable=float(quantiles * sd * math.sqrt(1 / runs + ratio)),
                      floor=floor, under_floor=bool(abs(difference.mean) < floor))


def resolution_floor(sd: float, ratio: float, alpha: float = defaults.ALPHA,
                     power: float = defaults.POWER) -> float:
    """The smallest difference any number of runs detects at `power`: `(z_{1-alpha/2} + z_power)
    * sd * sqrt(ratio)`, 2.8 sd sqrt(n_test/n_train) at the defaults.

    Example:
        >>> round(resolution_floor(1.0, 137 / 410), 2)
        1.62
    """
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd * math.sqrt(ratio))


def expected_best_of_n(values: Sequence[float], n: int, higher_is_better: bool = True) -> float:
    """Boo_n: the expected best of `n` runs drawn (with replacement) from these runs' values.

    With the sorted values v_(1) <= ... <= v_(J), E[max of n] = sum_i v_(i) ((i/J)^n -
    ((i-1)/J)^n) (Dodge et al. 2019, eq. 1 with the empirical distribution).

    Example:
        >>> expected_best_of_n([1.0, 2.0, 3.0], 2) * 9
        22.0
    """
    if n < 1:
        raise ToonvisionError(f"n must be at least 1. Received: n={n}")
    sign = 1 if higher_is_better else -1
    ordered = np.sort(sign * np.asarray(values, dtype=float))
    cumulative = np.arange(len(ordered) + 1) / len(ordered)
    return float(sign * np.sum(ordered * np.diff(cumulative**n)))


def selection_optimism(values: Sequence[float], kept: float | None = None,
                       higher_is_better: bool = True) -> Optimism:
    """How much of a kept best model's test score is the luck of picking the best of N runs.

    Args:
        values: the test score of each of the N runs.
        kept: the kept model's test score (default: the best of `values`, as `--select test`
            keeps it).
    """
    values = np.asarray(values, dtype=float)
    if kept is None:
        kept = float(values.max() if higher_is_better else values.min())
    single = float(values.mean())
    best = expected_best_of_n(values, len(values), higher_is_better)
    return Optimism(len(values), float(kept), single, best, best - single)



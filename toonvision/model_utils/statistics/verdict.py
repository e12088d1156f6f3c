"""The verdict on two configurations: every statistic of their paired runs, and one sentence.

`paired_verdict` puts together what `paired` computes (the difference with its corrected and
re-split intervals, who wins how often, what the test split can resolve) and where
`sequential` says the comparison stands; `verdict_sentence` sums it up for the top of the
summary and the report; `read_evaluations` reads the ToonVision article's own results, so the
author's 200 runs get the same verdict as ours. docs/compare.md, "Reading the verdict",
explains every number.

Example:
    >>> import numpy as np
    >>> a, b = np.array([0.95, 0.96, 0.97, 0.96]), np.array([0.97, 0.96, 0.98, 0.98])
    >>> verdict = paired_verdict(a, b, n_test=137, n_train=410)
    >>> round(verdict.difference.mean, 4), verdict.decision.state
    (0.0125, 'undecidable')
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from toonvision import MissingFileError, ToonvisionError, defaults
from toonvision.model_utils.statistics.paired import (
    PairedDifference,
    Resolution,
    WinRate,
    paired_difference,
    paired_differences,
    resolution,
    win_rate,
)
from toonvision.model_utils.statistics.sequential import Decision, sequential_decision


@dataclass(frozen=True)
class Verdict:
    """Everything `paired_verdict` says about one pair and one metric."""

    difference: PairedDifference
    wins: WinRate
    resolution: Resolution
    decision: Decision
    higher_is_better: bool
    equivalence: float

    def row(self) -> dict[str, float | int | str | bool]:
        """The verdict as flat named columns for summary.csv."""
        difference, wins = self.difference, self.wins
        return {"runs": difference.runs, "mean": difference.mean, "sd": difference.sd,
                "ci_low": difference.corrected.low, "ci_high": difference.corrected.high,
                "resplit_ci_low": difference.resplit.low,
                "resplit_ci_high": difference.resplit.high,
                "p_better": wins.probability, "p_better_low": wins.interval.low,
                "p_better_high": wins.interval.high, "wins": wins.wins, "ties": wins.ties,
                "losses": wins.losses, **asdict(self.resolution), "state": self.decision.state,
                "decision_low": self.decision.interval.low,
                "decision_high": self.decision.interval.high, "reason": self.decision.reason}



def paired_verdict(a: Sequence[float], b: Sequence[float], n_test: int, n_train: int, *,
                   higher_is_better: bool = True, equivalence: float = 0.0,
                   look_every: int | None = None, max_runs: int | None = None,
                   alpha: float = defaults.ALPHA, seed: int = 0) -> Verdict:
    """Every statistic of B against A on one metric, and the decision they support.

    Args:
        a, b: one value per paired run.
        n_test, n_train: test and training split sizes of one run.
        higher_is_better: False for a loss.
        equivalence: practical-difference margin in the metric's units (0: off).
        look_every, max_runs: the sequential plan the runs were taken under (`compare --runs
            auto`); by default one look at the runs at hand, a fixed-size comparison.
        seed: of the win-rate bootstrap.
    """
    difference = paired_difference(a, b, n_test, n_train, alpha)
    runs = difference.runs
    decision = sequential_decision(paired_differences(a, b), n_test, n_train, look_every or runs,
                                   max_runs or runs, equivalence, alpha)
    return Verdict(difference, win_rate(a, b, higher_is_better, alpha, seed=seed),
                   resolution(difference, alpha), decision, higher_is_better, equivalence)


_UNITS = {"accuracy": (100.0, "accuracy points", 1), "macro_f1": (100.0, "macro-F1 points", 1),
          "loss": (1.0, "loss", 3)}


def verdict_sentence(verdict: Verdict, name_a: str, name_b: str, metric: str = "accuracy") -> str:
    """One sentence that sums up a verdict, for the top of the table and the report.

    The interval is the corrected one (the repeated confidence interval of a sequential
    plan); the uncorrected one follows it, so that a reader used to it sees the difference.

    Example:
        "optimized vs baseline: +1.1 accuracy points (95% CI -0.7 to +2.9, corrected; +0.9 to
        +1.4 uncorrected); optimized won 70% of runs, tied 16%; not decided: the effect is under
        what this test split can resolve."
    """
    scale, unit, digits = _UNITS.get(metric, (1.0, metric, 3))
    decision, wins, equivalence = verdict.decision, verdict.wins, verdict.equivalence

    def number(value: float) -> str:
        return f"{value * scale:+.{digits}f}"

    confidence = f"{1 - verdict.difference.alpha:.0%}"
    looks = "" if decision.looks == 1 else f", {decision.looks} looks planned"
    runs = wins.wins + wins.ties + wins.losses
    better = name_b if (verdict.difference.mean > 0) == verdict.higher_is_better else name_a
    after = "" if decision.looks == 1 else f" after {decision.runs} runs"
    conclusion = {
        "different": f"decided{after}: {better} is better",
        "equivalent": f"decided{after}: no practical difference"
                      + (f" (within +-{equivalence * scale:.{digits}f})" if equivalence else ""),
        "undecidable": "not decided: the effect is under what this test split can resolve",
        "not_decided": f"not decided after {decision.runs} runs",
        "continue": f"not decided yet after {decision.runs} runs",
    }[decision.state]
    resplit = verdict.difference.resplit
    intervals = (f"{confidence} CI {number(decision.interval.low)} to "
                 f"{number(decision.interval.high)}, corrected{looks}; {number(resplit.low)} to "
                 f"{number(resplit.high)} uncorrected")
    if math.isnan(decision.interval.low):     # one difference repeated (`no_spread`)
        intervals = f"{confidence} CI unknown: every run gave this difference{looks}"
    return (f"{name_b} vs {name_a}: {number(verdict.difference.mean)} {unit} ({intervals}); "
            f"{name_b} won {wins.wins / runs:.0%} of runs, tied {wins.ties / runs:.0%}; "
            f"{conclusion}.")


def read_evaluations(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """The ToonVision article's `evaluations_all.json`: per configuration, test loss and accuracy.

    The file holds `[[config, [[test_loss, test_accuracy], ...]], ...]`, one pair per run, runs
    paired by index across configurations.

    Returns:
        `{config: {"loss": array, "accuracy": array}}` in the file's order.

    Raises:
        MissingFileError: if the file does not exist.
        ToonvisionError: when it is not JSON, the layout differs or the configurations have
            different run counts.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"evaluations file {path} not found")
    results = {}
    try:
        for name, evaluations in json.loads(path.read_text(encoding="utf-8")):
            values = np.asarray(evaluations, dtype=float)
            if values.ndim != 2 or values.shape[1] != 2:
                raise ToonvisionError(f"shape {values.shape}")
            results[str(name)] = {"loss": values[:, 0], "accuracy": values[:, 1]}
    except (TypeError, ValueError) as error:
        raise ToonvisionError(f"{path} is not [[config, [[test_loss, test_accuracy], ...]], "
                              f"...]: {error}") from None
    counts = {name: len(values["loss"]) for name, values in results.items()}
    if len(set(counts.values())) > 1:
        raise ToonvisionError(f"{path}: runs are paired by index, but the run counts differ. "
                              f"Received: {counts}")
    return results

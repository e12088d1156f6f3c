"""Tests of model_utils.paired, sequential and verdict: each statistic on a hand-checked example
and against scipy, the author's 200 runs, and simulated comparisons whose truth is known."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from toonvision import defaults
from toonvision.defaults import ALPHA
from toonvision.model_utils.statistics.paired import (
    Interval,
    expected_best_of_n,
    paired_difference,
    resolution,
    selection_optimism,
    win_rate,
)
from toonvision.model_utils.statistics.sequential import (
    look_schedule,
    obrien_fleming_boundaries,
    sequential_boundaries,
    sequential_decision,
)
from toonvision.model_utils.statistics.verdict import (
    paired_verdict,
    read_evaluations,
    verdict_sentence,
)

N_TEST, N_TRAIN = 137, 410  # the article's split of 685 crops: 410 / 137 / 137
RATIO = N_TEST / N_TRAIN
SD = 0.0156  # the run-to-run sd of optimized_1e-5 - baseline on the author's runs


@pytest.fixture(scope="module")
def author_runs(shared_data):
    """The ToonVision author's own 200 paired runs of four configurations."""
    path = shared_data / "toontown" / "evaluations_all.json"
    if not path.is_file():
        pytest.skip(f"author's evaluations not found at {path}")
    return read_evaluations(path)


def overlapping_runs(effect: float, comparisons: int, runs: int, seed: int) -> np.ndarray:
    """Per-run differences of simulated comparisons, correlated as overlapping re-splits are.

    Each comparison's runs share one draw of the data set's own effect (variance ratio * sd^2,
    the Nadeau-Bengio model: correlation n_test / (n_test + n_train) between two runs), plus
    independent run noise of sd `SD`; so the runs' spread understates the mean's uncertainty.
    """
    rng = np.random.default_rng(seed)
    data_set = rng.normal(0.0, SD * math.sqrt(RATIO), (comparisons, 1))
    return effect + data_set + rng.normal(0.0, SD, (comparisons, runs))


def run_until_stopped(differences: np.ndarray, **plan) -> tuple[np.ndarray, np.ndarray]:
    """What `compare --runs auto` would do: look every `LOOK_EVERY` runs until the rule stops."""
    states, runs = [], []
    every = plan.get("look_every", defaults.LOOK_EVERY)
    for row in differences:
        for count in range(every, len(row) + 1, every):
            decision = sequential_decision(row[:count], N_TEST, N_TRAIN, **plan)
            if decision.stopped:
                break
        states.append(decision.state)
        runs.append(decision.runs)
    return np.array(states), np.array(runs)


# ----------------------------------------------------------------------------------------------
# The paired difference and its two intervals


def test_paired_difference_of_a_hand_checked_example():
    # differences 1, 2, 3, 4: mean 2.5, sd sqrt(5/3); t_0.975 with 3 df = 3.182446
    difference = paired_difference([0, 0, 0, 0], [1, 2, 3, 4], n_test=1, n_train=3)
    assert (difference.runs, difference.mean) == (4, 2.5)
    assert difference.sd == pytest.approx(math.sqrt(5 / 3))
    naive = 3.182446 * math.sqrt(5 / 3) / 2
    corrected = 3.182446 * math.sqrt(5 / 3) * math.sqrt(1 / 4 + 1 / 3)
    assert difference.resplit.low == pytest.approx(2.5 - naive, abs=1e-5)
    assert difference.resplit.high == pytest.approx(2.5 + naive, abs=1e-5)
    assert difference.corrected.low == pytest.approx(2.5 - corrected, abs=1e-5)  # -0.638
    assert difference.corrected.high == pytest.approx(2.5 + corrected, abs=1e-5)  # +5.638


def test_uncorrected_interval_is_scipys_paired_t_interval_and_corrected_one_wider():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.95, 0.01, 30), rng.normal(0.96, 0.01, 30)
    difference = paired_difference(a, b, N_TEST, N_TRAIN)
    expected = stats.ttest_rel(b, a).confidence_interval(0.95)
    assert (difference.resplit.low, difference.resplit.high) == pytest.approx(
        (expected.low, expected.high))
    widening = math.sqrt(1 + 30 * RATIO)  # (1/J + ratio) / (1/J)
    assert difference.corrected.high - difference.mean == pytest.approx(
        (difference.resplit.high - difference.mean) * widening)


def test_paired_difference_refuses_unpaired_or_single_runs():
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1, 2, 3], [1, 2], N_TEST, N_TRAIN)
    with pytest.raises(ValueError, match=">= 2"):
        paired_difference([1], [2], N_TEST, N_TRAIN)
    with pytest.raises(ValueError, match="n_test=0"):
        paired_difference([1, 2], [2, 3], 0, N_TRAIN)


def test_interval_excludes_and_lies_within():
    assert Interval(0.1, 0.3).excludes(0.0) and not Interval(-0.1, 0.3).excludes(0.0)
    assert Interval(-0.1, 0.2).within(0.25) and not Interval(-0.1, 0.3).within(0.25)


# ----------------------------------------------------------------------------------------------
# P(B > A)


def test_win_rate_counts_ties_half():
    wins = win_rate([1, 1, 1, 1], [2, 1, 0, 2])  # won, tied, lost, won
    assert (wins.wins, wins.ties, wins.losses) == (2, 1, 1)
    assert wins.probability == 0.625
    assert wins.interval.low <= 0.625 <= wins.interval.high


def test_win_rate_of_a_loss_counts_the_lower_value_as_the_win():
    wins = win_rate([0.3, 0.3, 0.3], [0.2, 0.2, 0.4], higher_is_better=False)
    assert (wins.wins, wins.losses, wins.probability) == (2, 1, pytest.approx(2 / 3))


def test_win_rate_interval_is_scipys_bootstrap_of_the_per_run_scores():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    scores = np.where(a == b, 0.5, (b > a).astype(float))
    expected = stats.bootstrap((scores,), np.mean, n_resamples=2000,
                               rng=np.random.default_rng(7)).confidence_interval
    wins = win_rate(a, b, resamples=2000, seed=7)
    assert (wins.interval.low, wins.interval.high) == pytest.approx((expected.low, expected.high))


def test_a_win_rate_of_all_ties_has_no_spread():
    assert win_rate([1, 2, 3], [1, 2, 3]).interval == Interval(0.5, 0.5)


# ----------------------------------------------------------------------------------------------
# What the runs can resolve


def test_resolution_of_a_hand_checked_example():
    difference = paired_difference([0, 0, 0, 0], [1, 2, 3, 4], n_test=1, n_train=3)
    result = resolution(difference)
    sd = math.sqrt(5 / 3)
    assert result.effect_size == pytest.approx(2.5 / sd)
    # (t_0.975 + t_0.8, 3 df) = 3.182446 + 0.978472; floor (1.959964 + 0.841621) sd sqrt(1/3)
    assert result.detectable == pytest.approx(4.160918 * sd * math.sqrt(1 / 4 + 1 / 3), rel=1e-5)
    assert result.floor == pytest.approx(2.801585 * sd * math.sqrt(1 / 3), rel=1e-6)
    assert result.under_floor is False  # 2.5 > 1.81


def test_detectable_difference_has_80_percent_power_by_scipys_noncentral_t():
    runs, sd = 20, 0.0156
    difference = paired_difference(np.zeros(runs), sd * np.linspace(-1, 1, runs) * 1.7, N_TEST,
                                   N_TRAIN)
    detectable = resolution(difference).detectable
    # the corrected statistic is non-central t with J - 1 df, centre effect / se
    centre = detectable / (difference.sd * math.sqrt(1 / runs + RATIO))
    critical = stats.t.ppf(0.975, runs - 1)
    power = stats.nct.sf(critical, runs - 1, centre) + stats.nct.cdf(-critical, runs - 1, centre)
    assert power == pytest.approx(0.8, abs=0.02)


def test_more_runs_approach_the_floor_but_never_pass_it():
    rng = np.random.default_rng(3)
    detectable = []
    for runs in (10, 100, 1000, 100_000):
        difference = paired_difference(np.zeros(runs), rng.normal(0, SD, runs), N_TEST, N_TRAIN)
        result = resolution(difference)
        assert result.detectable > result.floor
        assert result.floor == pytest.approx(2.8 * difference.sd * math.sqrt(RATIO), rel=1e-3)
        detectable.append(result.detectable / difference.sd)
    assert detectable == sorted(detectable, reverse=True)
    assert detectable[-1] == pytest.approx(2.8016 * math.sqrt(RATIO), rel=1e-3)


# ----------------------------------------------------------------------------------------------
# The optimism of the kept best model


def test_expected_best_of_n_of_a_hand_checked_example():
    # best of 2 draws from {1, 2, 3}: 1 with 1/9, 2 with 3/9, 3 with 5/9
    assert expected_best_of_n([1.0, 2.0, 3.0], 2) == pytest.approx(22 / 9)
    assert expected_best_of_n([1.0, 2.0, 3.0], 1) == pytest.approx(2.0)
    assert expected_best_of_n([1.0, 2.0, 3.0], 2, higher_is_better=False) == pytest.approx(14 / 9)


def test_expected_best_of_n_is_the_mean_best_over_every_draw_with_replacement():
    values = [0.91, 0.95, 0.95, 0.97, 0.93]
    for n in (2, 3, 4):
        draws = list(itertools.product(values, repeat=n))
        assert expected_best_of_n(values, n) == pytest.approx(np.mean([max(d) for d in draws]))


def test_selection_optimism_of_the_best_of_n_runs():
    optimism = selection_optimism([0.90, 0.94, 0.98])
    assert optimism.kept == 0.98 and optimism.expected_single == pytest.approx(0.94)
    best = (0.90 * 1 + 0.94 * 7 + 0.98 * 19) / 27  # (i/3)^3 - ((i-1)/3)^3
    assert optimism.expected_best == pytest.approx(best)
    assert optimism.optimism == pytest.approx(best - 0.94)
    with pytest.raises(ValueError, match="n=0"):
        expected_best_of_n([1.0], 0)


# ----------------------------------------------------------------------------------------------
# The group-sequential boundary


def test_obrien_fleming_boundaries_match_the_published_table():
    # Lan-DeMets O'Brien-Fleming type, 5 equally spaced looks, two-sided 0.05
    # (Reboussin, DeMets, Kim and Lan 2000, ldbounds; gsDesign sfLDOF)
    published = [4.8769, 3.3569, 2.6803, 2.2898, 2.0310]
    assert obrien_fleming_boundaries([1, 2, 3, 4, 5]) == pytest.approx(published, abs=2e-3)
    assert obrien_fleming_boundaries([7.0]) == pytest.approx([1.959964])


def test_obrien_fleming_boundaries_spend_alpha_on_brownian_motion_of_the_corrected_information():
    schedule = np.arange(10, 201, 10)
    information = 1 / (1 / schedule + RATIO)  # front-loaded: 78% of it after 10 runs
    bounds = obrien_fleming_boundaries(information)
    rng = np.random.default_rng(4)
    score = np.cumsum(rng.normal(0, np.sqrt(np.diff(information, prepend=0)), (200_000, 20)), 1)
    crossed = (np.abs(score) / np.sqrt(information) >= bounds).any(axis=1).mean()
    assert crossed == pytest.approx(ALPHA, abs=3 * math.sqrt(ALPHA / 200_000))


def test_sequential_boundaries_keep_alpha_for_t_statistics_of_overlapping_runs():
    schedule = list(range(10, 201, 10))
    bounds = sequential_boundaries(schedule, N_TEST, N_TRAIN)
    differences = overlapping_runs(0.0, 20_000, 200, seed=5)
    counts = np.array(schedule)
    means = np.cumsum(differences, axis=1)[:, counts - 1] / counts
    sds = np.stack([differences[:, :count].std(axis=1, ddof=1) for count in counts], axis=1)
    statistic = np.abs(means) / (sds * np.sqrt(1 / counts + RATIO))
    crossed = (statistic >= bounds).any(axis=1).mean()
    assert crossed <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / 20_000)
    assert crossed >= ALPHA - 3 * math.sqrt(ALPHA * (1 - ALPHA) / 20_000)  # and does not waste it
    assert bounds[0] == pytest.approx(stats.t.isf(0.0224 / 2, 9), rel=1e-2)
    assert sequential_boundaries([200], N_TEST, N_TRAIN) == pytest.approx(
        [stats.t.ppf(0.975, 199)])


def test_look_schedule():
    assert look_schedule(30, 10, 50) == [10, 20, 30, 40, 50]
    assert look_schedule(25, 10, 50) == [10, 20, 25, 30, 40, 50]  # a look off the plan (resume)
    assert look_schedule(45, 10, 45) == [10, 20, 30, 40, 45]
    with pytest.raises(ValueError, match="runs=60"):
        look_schedule(60, 10, 50)


# ----------------------------------------------------------------------------------------------
# The stopping rule on hand-made runs


def test_a_clear_difference_is_decided_at_the_first_look():
    differences = 0.03 + np.tile([-0.005, 0.0, 0.005], 4)[:5]
    decision = sequential_decision(differences, N_TEST, N_TRAIN)
    assert (decision.state, decision.runs, decision.look, decision.looks) == ("different", 5, 1,
                                                                              40)
    assert decision.interval.low > 0 and "excludes zero" in decision.reason


def test_an_effect_under_the_floor_stops_as_undecidable_and_says_what_would_help():
    differences = np.tile([0.02, -0.02], 5)  # mean 0, sd 0.021
    decision = sequential_decision(differences, N_TEST, N_TRAIN)
    assert decision.state == "undecidable"
    assert "more runs will not decide it" in decision.reason
    assert "more labelled data per class (a larger test set" in decision.reason


def test_an_interval_inside_the_margin_is_decided_equivalent():
    differences = np.tile([0.004, -0.004], 5)
    assert sequential_decision(differences, N_TEST, N_TRAIN, equivalence=0.02).state == \
        "equivalent"
    assert sequential_decision(differences, N_TEST, N_TRAIN).state == "undecidable"


def test_an_open_question_continues_then_ends_not_decided_at_the_cap():
    spread = SD * np.tile([1.0, -1.0], 10) / 1.054  # sd SD over 10 and 20 runs
    differences = 1.6 * SD + spread  # above the floor (1.62 sd), not yet significant at 10
    assert sequential_decision(differences[:10], N_TEST, N_TRAIN, max_runs=20).state == "continue"
    assert sequential_decision(differences, N_TEST, N_TRAIN, max_runs=20).state == "different"
    few = 2 * SD + spread[:4]  # 4 runs alone cannot show 2 sd: t_0.975 with 3 df is 3.18
    decision = sequential_decision(few, N_TEST, N_TRAIN, look_every=4, max_runs=4)
    assert decision.state == "not_decided" and "more runs could decide it" in decision.reason
    assert sequential_decision([0.01], N_TEST, N_TRAIN).state == "continue"


# ----------------------------------------------------------------------------------------------
# The author's 200 runs


def test_author_runs_naive_interval_excludes_zero_corrected_includes_it(author_runs):
    baseline, optimized = author_runs["baseline"], author_runs["optimized_1e-5"]
    assert set(author_runs) == {"baseline", "optimized", "optimized_1e-4", "optimized_1e-5"}
    assert len(baseline["accuracy"]) == 200
    verdict = paired_verdict(baseline["accuracy"], optimized["accuracy"], N_TEST, N_TRAIN)
    difference = verdict.difference
    assert difference.mean * 100 == pytest.approx(1.135, abs=1e-3)
    assert difference.sd * 100 == pytest.approx(1.560, abs=1e-3)
    assert (difference.resplit.low * 100, difference.resplit.high * 100) == pytest.approx(
        (0.917, 1.353), abs=1e-3)
    assert (difference.corrected.low * 100, difference.corrected.high * 100) == pytest.approx(
        (-0.657, 2.927), abs=1e-3)
    assert difference.resplit.excludes(0) and not difference.corrected.excludes(0)
    wins = verdict.wins
    assert (wins.wins, wins.ties, wins.losses, wins.probability) == (139, 32, 29, 0.775)
    assert verdict.resolution.effect_size == pytest.approx(0.727, abs=1e-3)
    assert verdict.resolution.floor * 100 == pytest.approx(2.527, abs=1e-3)
    assert verdict.resolution.under_floor
    assert verdict.decision.state == "undecidable"
    sentence = verdict_sentence(verdict, "baseline", "optimized_1e-5")
    assert sentence == ("optimized_1e-5 vs baseline: +1.1 accuracy points (95% CI -0.7 to +2.9, "
                        "corrected; +0.9 to +1.4 uncorrected); optimized_1e-5 won 70% of runs, "
                        "tied 16%; not decided: the effect is under what this test split can "
                        "resolve.")
    row = verdict.row()
    assert row["ci_low"] < 0 < row["resplit_ci_low"] and row["state"] == "undecidable"


def test_author_runs_would_have_stopped_after_five_runs(author_runs):
    differences = author_runs["optimized_1e-5"]["accuracy"] - author_runs["baseline"]["accuracy"]
    decision = sequential_decision(differences[:5], N_TEST, N_TRAIN)
    assert (decision.state, decision.runs) == ("undecidable", 5)
    # Under the previous schedule (a look every 10 runs) the same answer came at 10.
    decision = sequential_decision(differences[:10], N_TEST, N_TRAIN, look_every=10)
    assert (decision.state, decision.runs) == ("undecidable", 10)


def test_author_runs_on_loss_report_the_lower_loss_as_the_winner(author_runs):
    verdict = paired_verdict(author_runs["baseline"]["loss"], author_runs["optimized_1e-5"]["loss"],
                             N_TEST, N_TRAIN, higher_is_better=False)
    sentence = verdict_sentence(verdict, "baseline", "optimized_1e-5", metric="loss")
    assert sentence.startswith("optimized_1e-5 vs baseline: -0.")
    assert verdict.wins.wins + verdict.wins.ties + verdict.wins.losses == 200


def test_the_kept_best_models_are_lucky_draws(author_runs):
    optimism = selection_optimism(author_runs["optimized_1e-5"]["accuracy"])
    assert optimism.kept == 1.0 and optimism.expected_single == pytest.approx(0.9764, abs=1e-4)
    assert optimism.optimism == pytest.approx(0.0236, abs=1e-4)


def test_read_evaluations_refuses_other_layouts(tmp_path):
    path = tmp_path / "evaluations_all.json"
    path.write_text(json.dumps([["a", [[0.1, 0.9], [0.2, 0.8]]], ["b", [[0.1, 0.9]]]]))
    with pytest.raises(ValueError, match="run counts differ"):
        read_evaluations(path)
    path.write_text(json.dumps([["a", [0.1, 0.9]]]))
    with pytest.raises(ValueError, match="is not"):
        read_evaluations(path)
    path.write_text(json.dumps([["a", [[0.1, 0.9], [0.2, 0.8]]]]))
    assert read_evaluations(path)["a"]["accuracy"].tolist() == [0.9, 0.8]


# ----------------------------------------------------------------------------------------------
# Simulated comparisons with a known truth


def test_identical_configurations_are_falsely_decided_at_most_alpha_of_the_time():
    differences = overlapping_runs(0.0, 4000, 200, seed=11)
    states, runs = run_until_stopped(differences)
    false_decisions = (states == "different").mean()
    assert false_decisions <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / 4000)
    assert (states == "undecidable").mean() > 0.9 and runs.mean() < 20
    # the uncorrected interval after 200 runs decides for most of these identical pairs
    means, sds = differences.mean(axis=1), differences.std(axis=1, ddof=1)
    assert (np.abs(means) / (sds / math.sqrt(200)) > stats.t.ppf(0.975, 199)).mean() > 0.5


def test_a_real_effect_is_decided_in_far_fewer_runs_than_200():
    effect = 0.03  # 3 accuracy points, 1.9 run-to-run sd, above the floor of 1.6 sd
    differences = overlapping_runs(effect, 2000, 200, seed=12)
    states, runs = run_until_stopped(differences)
    fixed = [sequential_decision(row, N_TEST, N_TRAIN, 200, 200).state for row in differences]
    assert (states == "different").mean() > 0.8
    assert (states == "different").mean() > np.mean(np.array(fixed) == "different") - 0.08
    assert runs.mean() < 30


def test_equivalence_is_falsely_declared_at_most_half_alpha_of_the_time():
    margin = 0.04
    states, _ = run_until_stopped(overlapping_runs(margin, 2000, 200, seed=13),
                                  equivalence=margin)
    assert (states == "equivalent").mean() <= ALPHA / 2 + 3 * math.sqrt(ALPHA / 2 / 2000)
    states, _ = run_until_stopped(overlapping_runs(0.0, 500, 200, seed=14), equivalence=margin)
    assert (states == "equivalent").mean() > 0.8


def test_runs_that_repeat_one_difference_decide_nothing():
    # Accuracy on 58 test crops moves in steps of 1/58: three runs can each be 7 crops apart
    # (float32 accuracies, so the differences agree to ~1e-8, not exactly). Their spread of
    # ~0 says nothing about the next run's: no interval, no decision.
    baseline = np.array([0.87931037, 0.87931037, 0.9137931], dtype=np.float32)
    optimized = np.array([0.7586207, 0.7586207, 0.79310346], dtype=np.float32)
    fixed = paired_verdict(baseline, optimized, n_test=58, n_train=176)
    assert fixed.decision.state == "not_decided"
    assert "cannot be estimated" in fixed.decision.reason
    # No interval anywhere (summary.csv, the forest plot), not a zero-width one at the mean.
    for interval in (fixed.decision.interval, fixed.difference.corrected,
                     fixed.difference.resplit):
        assert math.isnan(interval.low) and math.isnan(interval.high)
    # Nor an effect size: -12.1 points over a spread of 3e-8 is not 3.5 million sds.
    assert math.isnan(resolution(fixed.difference).effect_size)
    sentence = verdict_sentence(fixed, "baseline", "optimized")
    assert "-12.1 accuracy points (95% CI unknown: every run gave this difference)" in sentence
    assert sentence.endswith("not decided after 3 runs.")
    # Under --until-decided the next look comes: more runs show the spread.
    looking = sequential_decision(optimized - baseline, 58, 176, look_every=3, max_runs=30)
    assert looking.state == "continue"
    # One more run with another difference: a spread, an interval and a verdict as usual.
    spread = paired_verdict(np.append(baseline, 0.9), np.append(optimized, 0.72), 58, 176)
    assert spread.decision.state in ("different", "not_decided")
    assert "CI unknown" not in verdict_sentence(spread, "baseline", "optimized")
    # The same result in every run (both models equal): no difference, as before.
    same = paired_verdict(baseline, baseline.copy(), n_test=58, n_train=176)
    assert same.decision.state == "equivalent"

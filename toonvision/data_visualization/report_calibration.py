"""The report's calibration section: how far the model's confidence can be trusted, and how
many of the evaluated crops its confidence rule recognises.

A model kept by `compare` has a confidence rule (`training.confidence`): a temperature fitted
on its validation split and a novelty threshold below which it answers `unknown`.
`calibration_record` gives the `metrics.json` keys (`ece` after calibration, `ece_raw`,
`temperature`, `brier`, `coverage`, `accuracy_accepted`), `calibration_section` the
reliability diagram (raw against calibrated) and a sentence on coverage. A model without a
rule is reported as it is: temperature 1, ECE raw, every crop accepted, and the page says
that it has no rule.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import numpy as np

from toonvision.data_visualization.calibration_figures import reliability_figure
from toonvision.data_visualization.evaluation import Evaluation
from toonvision.data_visualization.report_page import Page, note_html
from toonvision.model_utils.statistics.calibration import (
    brier_score,
    expected_calibration_error,
    reliability_table,
)

if TYPE_CHECKING:
    from toonvision.model_utils.training.confidence import ConfidenceRule, Judgement

RELIABILITY_FILE = "reliability.png"
NO_RULE_NOTE = ("This model has no confidence rule (no <model>.confidence.npz beside it: it "
                "was saved before toonvision kept one, or outside 'compare'). Its "
                "probabilities are shown as the model gives them, and it never answers "
                "'unknown'.")
RELIABILITY_CAPTION = (
    "Reliability diagram: the images are grouped by how sure the model was (its highest "
    "probability), and each bar is how often it was right in that group. A trustworthy "
    "model's bars touch the dashed diagonal (of the answers it gave with 80% confidence, "
    "80% were right); bars below it mean over-confidence. ECE is the average gap. Left: the "
    "model's own probabilities; right: after temperature scaling, fitted on its validation "
    "split.")


def calibration_record(evaluation: Evaluation, judgement: Judgement | None,
                       rule: ConfidenceRule | None) -> dict:
    """The calibration keys of `metrics.json`.

    Args:
        evaluation: the model on the report's images (raw probabilities).
        judgement: its rule's answer on the same images (`ConfidenceRule.judge`), or None.
        rule: the model's confidence rule, or None.

    Returns:
        `{"ece", "ece_raw", "temperature", "brier", "coverage", "accuracy_accepted",
        "accept", "confidence_rule"}`: `ece` and `brier` of the calibrated probabilities,
        `coverage` the share of images accepted (not `unknown`), `accuracy_accepted` the
        accuracy among those (NaN when none), `accept` the rule's share of validation
        crops accepted (None without a rule).
    """
    y = evaluation.y_true
    ece_raw = expected_calibration_error(evaluation.probabilities, y)
    probabilities = evaluation.probabilities if judgement is None else judgement.probabilities
    accepted = np.ones(len(y), dtype=bool) if judgement is None else judgement.accepted
    right = np.argmax(probabilities, axis=1) == y
    return {
        "ece": ece_raw if judgement is None else expected_calibration_error(probabilities, y),
        "ece_raw": ece_raw,
        "temperature": 1.0 if rule is None else float(rule.temperature),
        "brier": brier_score(probabilities, y),
        "coverage": float(accepted.mean()) if len(y) else math.nan,
        "accuracy_accepted": float(right[accepted].mean()) if accepted.any() else math.nan,
        "accept": None if rule is None else float(rule.accept),
        "confidence_rule": rule is not None,
    }


def calibration_section(page: Page, evaluation: Evaluation, judgement: Judgement | None,
                        record: dict) -> None:
    """Adds the reliability diagram and a sentence on coverage (or that there is no rule)."""
    y = evaluation.y_true
    raw = reliability_table(evaluation.probabilities, y)
    if judgement is None:
        intro = (f"Expected calibration error {record['ece_raw']:.3f}, Brier score "
                 f"{record['brier']:.3f} (0 is best for both).")
        body = note_html(NO_RULE_NOTE) + page.figure(
            reliability_figure(raw), RELIABILITY_FILE, RELIABILITY_CAPTION)
        page.section("calibration", "Calibration and unknown crops", intro, body)
        return
    calibrated = reliability_table(judgement.probabilities, y)
    accepted = int(judgement.accepted.sum())
    intro = (f"Temperature {record['temperature']:.3f}: expected calibration error "
             f"{record['ece_raw']:.3f} raw, {record['ece']:.3f} calibrated; Brier score "
             f"{record['brier']:.3f}. A higher calibrated ECE than raw means the validation "
             "split's temperature did not carry over to these images.")
    accuracy = record["accuracy_accepted"]
    sentence = (
        f"The model recognised {accepted} of these {len(y)} images "
        f"(coverage {record['coverage']:.1%}) and answered 'unknown' for the other "
        f"{len(y) - accepted}: its rule accepts {record['accept']:.0%} of its own validation "
        "crops, so on images like its training data about that share is expected. "
        + (f"Accuracy among the recognised ones: {accuracy:.1%}." if accepted else "")
        + " Change the share with 'toonvision predict --accept'.")
    body = f"<p>{html.escape(sentence)}</p>\n" + page.figure(
        reliability_figure(raw, calibrated, record["temperature"]), RELIABILITY_FILE,
        RELIABILITY_CAPTION)
    page.section("calibration", "Calibration and unknown crops", intro, body)

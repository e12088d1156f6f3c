"""The heatmap report: a model evaluated on labelled images, written as one static HTML page.

`write_report` puts every figure of the ToonVision article on one page a person reads top to
bottom: the metrics (accuracy, per-class precision, recall and F1, confusion matrix,
confidence histograms), the wrong predictions ranked by error with the heatmaps of the most
confident ones, Grad-CAM heatmaps of sample images, the intermediate activations of one
image, the first-layer kernels and deeper filters, the architecture, and, when given, the
curves, verdict, forest plot and summary of the comparison that trained the model. Figures
are PNG files beside `index.html`, each with a caption saying what it shows and how to read
it; the page needs no server and no network. `metrics.json` beside it holds the scores, every
crop's prediction and where the split came from (`evaluation.metrics_record`), and the
calibration and coverage under the model's confidence rule (`report_calibration`). The
sections are in `report_sections`, the page's HTML in `report_page`.

The images come either as arrays (e.g. a test split, see `data_processing.splits`) or from files
(`load_inputs`: crops named `<label>_<index>.png`, folders of them, or screenshots with their
labelImg XML, cropped box by box).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from toonvision import ToonvisionError, defaults
from toonvision.data_visualization import report_calibration, report_explanations
from toonvision.data_visualization import report_sections as sections
from toonvision.data_visualization.evaluation import (
    LabelledImages,
    choose_samples,
    evaluate,
    metrics,
    metrics_record,
)
from toonvision.data_visualization.report_page import Page, page_html
from toonvision.fileio import write_text_atomic

if TYPE_CHECKING:
    from toonvision.model_utils.training.confidence import ConfidenceRule

REPORT_FILE = "index.html"
METRICS_FILE = "metrics.json"
REPORT_STEPS: tuple[str, ...] = (
    "evaluating", "metrics", "wrong predictions", "Grad-CAM samples", "explanation scores",
    "activations", "filters", "architecture", "comparison run", "writing page",
)
NO_GRADIENTS_NOTE = ("Grad-CAM heatmaps and filter patterns need the TensorFlow backend of Keras "
                     "(set KERAS_BACKEND=tensorflow); they are left out.")
NO_CONVOLUTION_NOTE = ("The model has no convolution layer, so there are no Grad-CAM heatmaps, "
                       "kernels or filter patterns to show.")


def write_report(
    model: object,
    data: LabelledImages,
    out_dir: str | os.PathLike,
    model_description: str = "",
    samples: int = 8,
    run_dir: str | os.PathLike | None = None,
    filters: int = 8,
    batch_size: int = 32,
    progress: Callable[[str], None] | None = None,
    split: dict | None = None,
    explain: int = defaults.REPORT_EXPLAIN,
    explain_steps: int = defaults.EXPLAIN_STEPS,
    explain_baseline: str = "auto",
    confidence: ConfidenceRule | None = None,
) -> Path:
    """Evaluates `model` on `data` and writes the report page with its figures.

    Args:
        model: a Keras image classifier taking `data.images`.
        data: the labelled images (e.g. the test split).
        out_dir: the report folder; created if needed, files in it are replaced.
        model_description: lines for the page header (model file, task, split), as text.
        samples: how many images get Grad-CAM heatmaps, and how many of the most confident
            mistakes are shown with theirs.
        run_dir: a comparison's output folder whose `learning_curves.png`,
            `best_run_curves.png`, `boxplots.png` and `summary.csv` are shown when present,
            with the verdict sentences of `summary.csv` and a forest plot of its paired
            differences (corrected and uncorrected intervals).
        filters: how many filters of each convolution layer are drawn by gradient ascent
            (0: none).
        batch_size: images per forward pass.
        progress: called with each step's name (`REPORT_STEPS`) as it starts.
        split: where `data` came from, for `metrics.json` (`provenance.ModelSplit.to_dict`);
            None: the given inputs.
        explain: how many images (spread over the true classes) every explanation method
            is scored on (`report_explanations`; writes `faithfulness.csv` and `sanity.csv`);
            0: none.
        explain_steps: deletion and insertion steps of those scores.
        explain_baseline: what a removed pixel becomes: "blur", "mean", or "auto" (the one
            under which removing pixels changes more of the model's answers; blur on a tie).
        confidence: the model's confidence rule (`confidence.load_confidence`): the page
            shows calibration and coverage under it; None: the page says the model has none.

    Returns:
        The path of `index.html`.

    Raises:
        ValueError: if the data is empty or does not match the model.
    """
    import keras

    from toonvision.data_visualization import gradcam, interpret

    if len(data) == 0:
        raise ToonvisionError("no images to report on")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = Page(out_dir)

    def step(name: str) -> None:
        if progress is not None:
            progress(name)

    step("evaluating")
    # Grad-CAM and filter patterns need a convolution, and gradients (TensorFlow); without
    # them the page shows everything else and says what is missing.
    flat = interpret.flatten_model(model)
    has_convolution = bool(interpret.layer_paths(flat, (keras.layers.Conv2D,)))
    note = None if has_convolution else NO_CONVOLUTION_NOTE
    if note is None and not interpret.gradients_supported():
        note = NO_GRADIENTS_NOTE
    grad_cam = gradcam.GradCam(model) if note is None else None
    evaluation = evaluate(model, data, batch_size)
    step("metrics")
    scores = metrics(evaluation)
    judgement = (None if confidence is None
                 else confidence.judge(model, data.images, evaluation.probabilities))
    calibration = report_calibration.calibration_record(evaluation, judgement, confidence)
    # The machine-readable scores beside the page (`evaluation.metrics_record`).
    write_text_atomic(out_dir / METRICS_FILE,
                      json.dumps({**metrics_record(evaluation, data, split), **calibration},
                                 indent=2))
    sections.metrics_section(page, evaluation, scores)
    report_calibration.calibration_section(page, evaluation, judgement, calibration)
    step("wrong predictions")
    sections.mistakes_section(page, data, evaluation, grad_cam, note, samples, batch_size)
    step("Grad-CAM samples")
    chosen = choose_samples(evaluation, samples)
    sections.gradcam_section(page, data, evaluation, grad_cam, note, chosen, batch_size)
    step("explanation scores")
    report_explanations.explanations_section(
        page, model, data, evaluation, choose_samples(evaluation, explain) if explain else [],
        note, explain_steps, explain_baseline, batch_size)
    step("activations")
    sections.activations_section(page, model, data, evaluation, chosen[0])
    step("filters")
    sections.filters_section(page, model, flat, filters, has_convolution, note)
    step("architecture")
    sections.architecture_section(page, model, flat)
    step("comparison run")
    if run_dir is not None:
        sections.run_section(page, Path(run_dir))
    step("writing page")
    index = out_dir / REPORT_FILE
    write_text_atomic(index, page_html(model_description, data, evaluation, scores,
                                       page.sections))
    return index

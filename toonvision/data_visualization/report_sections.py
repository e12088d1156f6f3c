"""The sections of the report page, each a short reading of one figure of the ToonVision article.

Each `*_section` function draws its figures (with `figures`), writes them through the `Page`
and adds one section: metrics, wrong predictions, Grad-CAM samples, activations, filters, the
architecture, and the comparison run. The captions say what each figure shows and how to read
it. `report.write_report` calls them in page order.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toonvision.data_visualization import figures
from toonvision.data_visualization.evaluation import Evaluation, LabelledImages
from toonvision.data_visualization.report_page import Page, file_part, note_html, table_html

logger = logging.getLogger(__name__)

RUN_DIR_FIGURES: tuple[tuple[str, str], ...] = (
    ("learning_curves.png",
     "Learning curves of the comparison, averaged over its runs per configuration: training "
     "and validation loss and accuracy per epoch. Validation curves that rise (loss) or fall "
     "(accuracy) while the training curves keep improving mean over-fitting."),
    ("best_run_curves.png",
     "The curves of the best run of each configuration, the one whose model is kept."),
    ("boxplots.png",
     "Test loss and accuracy over all runs, one box per configuration: the box spans the "
     "middle half of the runs, the line is the median, whiskers and dots show the spread. "
     "Narrow boxes mean a configuration trains reliably, not just once."),
)
RUN_SUMMARY_FILE = "summary.csv"
RUN_SUMMARY_COLUMNS: tuple[str, ...] = (
    "metric", "config", "n", "median", "mean", "ci_low", "ci_high", "resplit_ci_low",
    "resplit_ci_high", "p_better", "effect_size", "floor", "state", "kept", "optimism")
FOREST_CAPTION = (
    "The paired differences B - A of the comparison, one line per pair and metric: the dot "
    "is the mean difference over the runs, the thick line its 95% interval corrected for "
    "runs that share their data (Nadeau-Bengio), the thin line below it the uncorrected "
    "interval, which measures only the spread over re-splits of this one data set. A thick "
    "line that crosses the dashed zero line means the runs do not decide which is better.")
MAX_WRONG_SHOWN = 40
FILTER_ASCENT_STEPS = 30


def metrics_section(page: Page, evaluation: Evaluation, scores: dict) -> None:
    """Adds the metrics table, the confusion matrix and the confidence histograms."""
    class_names = evaluation.class_names
    page.section("metrics", "Metrics", _metrics_intro(evaluation, scores), "\n".join([
        _metrics_table(scores, class_names),
        page.figure(figures.confusion_matrix_figure(scores["confusion_matrix"], class_names),
                    "confusion_matrix.png",
                    "Confusion matrix: each row is a true class, each column the class the model "
                    "predicted; the diagonal counts correct predictions, every other cell a kind "
                    "of mistake."),
        page.figure(figures.confidence_histograms_figure(evaluation.probabilities,
                                                         evaluation.y_true, class_names),
                    "confidence_histograms.png", _histogram_caption(evaluation)),
    ]))


def mistakes_section(
    page: Page, data: LabelledImages, evaluation: Evaluation, grad_cam: object,
    note: str | None, samples: int, batch_size: int,
) -> None:
    """Adds the wrong predictions by error, and the most confident ones with Grad-CAM."""
    wrong = evaluation.wrong_indices()
    intro = f"{len(wrong)} of {len(data)} images misclassified, ranked by error."
    if not len(wrong):
        page.section("mistakes", "Wrong predictions", intro,
                     f'<p class="good">No wrong predictions: all {len(data)} images were '
                     "classified correctly.</p>")
        return
    class_names = evaluation.class_names
    shown = wrong[:MAX_WRONG_SHOWN]
    output_meaning = (f"P({class_names[1]}); above 0.5 means {class_names[1]}" if evaluation.binary
                      else "the probability of the predicted class, named below")
    grid = page.figure(
        figures.image_grid_figure([data.images[index] for index in shown],
                                  [_named_title(data, evaluation, index) for index in shown],
                                  columns=8, title_colours=["red"] * len(shown)),
        "wrong_predictions.png",
        f"{_count_phrase(len(shown), len(wrong))} misclassified images, largest error "
        "first. Title: the image, its true class; E = error, 1 - P(true class), from 0.5 "
        f"(barely wrong) to 1 (wrong and sure); A = the model's output ({output_meaning}).")
    if grad_cam is None:
        page.section("mistakes", "Wrong predictions", intro, grid + "\n" + note_html(note))
        return
    confident = wrong[:samples]
    heatmaps, _ = grad_cam(data.images[confident], batch_size=batch_size)
    pairs = page.figure(
        figures.heatmap_pairs_figure([data.images[index] for index in confident], heatmaps,
                                     [evaluation.title(index) for index in confident],
                                     title_colours=["red"] * len(confident)),
        "confident_mistakes_gradcam.png",
        f"The {len(confident)} most confident mistakes, each beside its Grad-CAM heatmap for "
        "the class the model wrongly predicted: red marks the regions that pushed it to that "
        "answer, blue the regions that did not matter.")
    page.section("mistakes", "Wrong predictions", intro, grid + "\n" + pairs)


def gradcam_section(
    page: Page, data: LabelledImages, evaluation: Evaluation, grad_cam: object,
    note: str | None, chosen: list[int], batch_size: int,
) -> None:
    """Adds the Grad-CAM heatmaps of the `chosen` images."""
    if grad_cam is None:
        page.section("gradcam", "Grad-CAM heatmaps", "Where the evidence lies.",
                     note_html(note))
        return
    heatmaps, _ = grad_cam(data.images[chosen], batch_size=batch_size)
    figure = figures.heatmap_pairs_figure(
        [data.images[index] for index in chosen], heatmaps,
        [evaluation.title(index) for index in chosen],
        title_colours=[_title_colour(evaluation, index) for index in chosen])
    page.section(
        "gradcam", "Grad-CAM heatmaps",
        f"Class activation maps of layer <code>{html.escape(grad_cam.layer_name)}</code>, the "
        "last convolution: where the evidence for the predicted class lies.",
        page.figure(figure, "gradcam_samples.png",
                    f"{len(chosen)} images spread over the true classes, each beside its Grad-CAM "
                    "heatmap for the predicted class (red = strong evidence, blue = none). A "
                    "model that looks at the entity, not the background, lights up on its body "
                    "and head. Titles as in the mistakes grid; red titles are mistakes."))


def activations_section(
    page: Page, model: object, data: LabelledImages, evaluation: Evaluation, index: int,
) -> None:
    """Adds the feature maps of every convolution and pooling layer for one image."""
    from toonvision.data_visualization.interpret import layer_activations

    body = [page.figure(figures.image_grid_figure([data.images[index]],
                                                  [evaluation.title(index)], columns=1),
                        "activations_input.png",
                        f"The input image ({data.names[index]}) whose activations follow.")]
    activations = layer_activations(model, data.images[index])
    if not activations:
        body.append(note_html("The model has no convolution or pooling layer."))
    for number, (layer_name, maps) in enumerate(activations):
        body.append(page.figure(
            figures.activation_figure(layer_name, maps),
            f"activations_{number:02d}_{file_part(layer_name)}.png",
            f"Layer {layer_name}: {maps.shape[2]} feature maps of {maps.shape[0]}x"
            f"{maps.shape[1]} (at most 16 shown)."))
    page.section("activations", "Intermediate activations",
                 "What each convolution and pooling layer passes on, for one image. Each tile is "
                 "one channel (feature map), scaled to its own range: bright = strong response. "
                 "Early layers keep the edges and colours of the image; deeper ones respond to "
                 "larger, more abstract parts; channels that stay dark were not triggered by this "
                 "image.", "\n".join(body))


def filters_section(
    page: Page, model: object, flat: object, filters: int, has_convolution: bool,
    note: str | None,
) -> None:
    """Adds the first layer's kernels and the patterns each convolution's filters answer."""
    import keras

    from toonvision.data_visualization import interpret

    intro = "The patterns the convolution filters detect."
    if not has_convolution:
        page.section("filters", "Convnet filters", intro, note_html(note))
        return
    first_layer, patches = interpret.first_layer_kernels(model)
    body = [page.figure(
        figures.kernels_figure(first_layer, patches), "filters_first_layer_kernels.png",
        f"The kernels of the first convolution ({first_layer}) as RGB patches, each scaled to "
        "its own range: a kernel with a bright and a dark side detects edges in that direction, "
        "a coloured one detects that colour.")]
    if note is not None:
        body.append(note_html(note))
    convolutions = interpret.layer_paths(flat, (keras.layers.Conv2D,))
    for number, layer_name in enumerate(convolutions if note is None and filters > 0 else []):
        channels = int(flat.outputs[layer_name].shape[-1])
        indices = list(range(min(filters, channels)))
        patterns = interpret.filter_patterns(model, layer_name, indices,
                                             steps=FILTER_ASCENT_STEPS)
        body.append(page.figure(
            figures.filter_patterns_figure(layer_name, patterns, indices),
            f"filters_{number:02d}_{file_part(layer_name)}.png",
            f"Layer {layer_name}: the patterns filters {indices[0]}-{indices[-1]} of its "
            f"{channels} respond to most."))
    page.section("filters", "Convnet filters",
                 f"{intro} The first layer's kernels are "
                 "shown as they are; every convolution's filters are shown as the input that "
                 f"excites each most, found by gradient ascent ({FILTER_ASCENT_STEPS} steps from a "
                 "grey image; the central square is shown). Early filters answer to colours and "
                 "edges, deeper ones to textures and repeated shapes; grey noise means the "
                 "filter found nothing to respond to.", "\n".join(body))


def architecture_section(page: Page, model: object, flat: object) -> None:
    """Adds the architecture diagram (when visualkeras can draw it) and the layer table."""
    page.section("architecture", "Architecture", "The layers of the model, in order.",
                 _architecture_html(model, flat, page))


def run_section(page: Page, run_dir: Path) -> None:
    """Adds the curves, box plots and summary of the comparison in `run_dir`."""
    page.section("comparison", "Comparison run",
                 f"From <code>{html.escape(str(run_dir))}</code>, the comparison that trained "
                 "this model.", _run_dir_html(run_dir, page))


def _count_phrase(shown: int, total: int) -> str:
    return f"All {total}" if shown == total else f"The {shown} (of {total})"


def _named_title(data: LabelledImages, evaluation: Evaluation, index: int) -> str:
    name = data.names[index]
    shown = name if len(name) <= 24 else f"{name[:11]}..{name[-11:]}"
    return f"{shown}\n{evaluation.title(index)}"


def _title_colour(evaluation: Evaluation, index: int) -> str:
    return "red" if evaluation.y_pred[index] != evaluation.y_true[index] else "black"


def _metrics_intro(evaluation: Evaluation, scores: dict) -> str:
    counts = np.bincount(evaluation.y_true, minlength=len(evaluation.class_names))
    spread = ", ".join(f"{count} {html.escape(name)}"
                       for name, count in zip(evaluation.class_names, counts, strict=True))
    return (f"Accuracy <strong>{scores['accuracy']:.4f}</strong> on {len(evaluation.y_true)} "
            f"images ({spread}).")


def _metrics_table(scores: dict, class_names: Sequence[str]) -> str:
    report = scores["report"]
    rows = []
    for name in [*class_names, "macro avg", "weighted avg"]:
        entry = report[name]
        rows.append([name, f"{entry['precision']:.4f}", f"{entry['recall']:.4f}",
                     f"{entry['f1-score']:.4f}", int(entry["support"])])
    return table_html(
        ["class", "precision", "recall", "F1", "support"], rows,
        "Per class: precision = of the images predicted as this class, the share that are; "
        "recall = of the images of this class, the share found; F1 = their harmonic mean; "
        "support = images of this class. Macro average weighs classes equally, weighted "
        "average by support.")


def _histogram_caption(evaluation: Evaluation) -> str:
    if evaluation.binary:
        positive = evaluation.class_names[1]
        return (f"Confidence per true class: the model's output P({positive}) for the images of "
                "each true class; the dashed line is the 0.5 threshold. A good model piles each "
                "class at its own end; bars on the wrong side of the line are mistakes and bars "
                "near it are doubtful calls.")
    return ("Confidence per true class: the probability the model gave to the true class; "
            "bars near 1 are right and sure, bars near 0 confident mistakes.")


def _architecture_html(model: object, flat: object, page: Page) -> str:
    shapes = [figures.LayerShape(name, type(flat.layers[name]).__name__,
                                 tuple(flat.outputs[name].shape)) for name in flat.layer_names]
    image, note = figures.architecture_image(shapes)
    body = []
    if image is not None:
        body.append(page.figure(
            figures.architecture_figure(image), "architecture.png",
            f"The layers from input (left) to output (right), drawn by {note}: box height and "
            "width follow each layer's output size, depth its channels; colours are layer "
            "types (legend below the boxes)."))
    else:
        body.append(f"<p class=\"note\">No diagram: {html.escape(note)}. The table below lists "
                    "the same layers.</p>")
    rows = [[name, type(flat.layers[name]).__name__,
             str(tuple(flat.outputs[name].shape)).replace("None", "batch"),
             f"{flat.layers[name].count_params():,}"] for name in flat.layer_names]
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    total = model.count_params()
    body.append(table_html(
        ["layer", "type", "output shape", "parameters"], rows,
        f"The parameter table of model.summary(), nested models expanded to their layers "
        f"(name = outer/inner): {total:,} parameters, {trainable:,} trainable."))
    return "\n".join(body)


def _run_dir_html(run_dir: Path, page: Page) -> str:
    import pandas as pd

    table, problem = None, ""
    summary = run_dir / RUN_SUMMARY_FILE
    if summary.is_file():
        try:
            table = pd.read_csv(summary)
        except (OSError, ValueError, pd.errors.ParserError) as error:
            logger.warning("cannot read %s: %s", summary, error)
            problem = (f"<p class=\"note\">{html.escape(str(summary))} could not be read: "
                       f"{html.escape(str(error))}</p>")
    body = [] if table is None else _verdict_html(table, page)
    for file_name, caption in RUN_DIR_FIGURES:
        source = run_dir / file_name
        if source.is_file():
            body.append(page.copy(source, f"run_{file_name}", caption))
    if table is not None:
        columns = ([column for column in RUN_SUMMARY_COLUMNS if column in table.columns]
                   if "verdict" in table.columns else list(table.columns))
        rows = [[f"{value:.4g}" if isinstance(value, float) else value for value in row]
                for row in table[columns].astype(object).fillna("").itertuples(index=False)]
        body.append(table_html(columns, rows,
                               f"{RUN_SUMMARY_FILE}: the comparison's summary per configuration "
                               "and pair (B - A); ci: corrected for overlapping splits, "
                               "resplit_ci: uncorrected, every column in the file."))
    body.append(problem)
    doctor = run_dir / "doctor" / "index.html"
    if doctor.is_file():
        link = Path(os.path.relpath(doctor.resolve(), page.out_dir.resolve())).as_posix()
        body.append(f"<p>The dataset doctor's page for this comparison (likely label errors, "
                    f"crops always wrong, near duplicates): <a href=\"{html.escape(link)}\">"
                    f"{html.escape(str(doctor))}</a>.</p>")
    if not any(body):
        body.append(f"<p class=\"note\">{html.escape(str(run_dir))} holds none of "
                    f"{', '.join(name for name, _ in RUN_DIR_FIGURES)}, {RUN_SUMMARY_FILE}.</p>")
    return "\n".join(part for part in body if part)


def _verdict_html(table: Any, page: Page) -> list[str]:
    """The verdict sentences of a summary table and its forest plot (none for older tables)."""
    from toonvision.data_visualization.comparison_figures import forest_figure

    if "verdict" not in table.columns:
        return []
    pairs = table[table["verdict"].notna()]
    sentences = [sentence for metric, sentence in zip(pairs["metric"], pairs["verdict"],
                                                      strict=True) if metric == "accuracy"]
    if not len(pairs):
        return []
    return ['<p class="verdict">' + "<br>\n".join(html.escape(sentence) for sentence in sentences)
            + "</p>",
            page.figure(forest_figure(table), "run_forest.png", FOREST_CAPTION)]

"""The heatmap report: a model evaluated on labelled images, written as one static HTML page.

`write_report` puts every figure of the ToonVision article on one page a person reads top to
bottom: the metrics (accuracy, per-class precision, recall and F1, confusion matrix,
confidence histograms), the wrong predictions ranked by error with the heatmaps of the most
confident ones, Grad-CAM heatmaps of sample images, the intermediate activations of one
image, the first-layer kernels and deeper filters, the architecture, and, when given, the
curves and summary of the comparison that trained the model. Figures are PNG files beside
`index.html`, each with a caption saying what it shows and how to read it; the page needs no
server and no network.

The images come either as arrays (e.g. a test split, see `toonvision.splits`) or from files
(`load_inputs`: crops named `<label>_<index>.png`, folders of them, or screenshots with their
labelImg XML, cropped box by box).
"""

from __future__ import annotations

import datetime
import html
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toonvision import ToonvisionError
from toonvision.data_visualization.evaluation import (
    Evaluation,
    LabelledImages,
    choose_samples,
    evaluate,
    metrics,
)
from toonvision.fileio import write_bytes_atomic, write_text_atomic

logger = logging.getLogger(__name__)

REPORT_FILE = "index.html"
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
REPORT_STEPS: tuple[str, ...] = (
    "evaluating", "metrics", "wrong predictions", "Grad-CAM samples", "activations",
    "filters", "architecture", "comparison run", "writing page",
)
MAX_WRONG_SHOWN = 40
NO_GRADIENTS_NOTE = ("Grad-CAM heatmaps and filter patterns need the TensorFlow backend of Keras "
                     "(set KERAS_BACKEND=tensorflow); they are left out.")
NO_CONVOLUTION_NOTE = ("The model has no convolution layer, so there are no Grad-CAM heatmaps, "
                       "kernels or filter patterns to show.")
FILTER_ASCENT_STEPS = 30
















@dataclass
class _Page:
    """The page being built: sections of HTML and the figures written so far."""

    out_dir: Path
    sections: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def figure(self, figure: object, file_name: str, caption: str) -> str:
        from toonvision.data_visualization.figures import save_figure

        save_figure(figure, self.out_dir / file_name)
        self.figures.append(file_name)
        return _figure_html(file_name, caption)

    def copy(self, source: Path, file_name: str, caption: str) -> str:
        write_bytes_atomic(self.out_dir / file_name, source.read_bytes())
        self.figures.append(file_name)
        return _figure_html(file_name, caption)

    def section(self, anchor: str, title: str, intro: str, body: str) -> None:
        self.sections.append(
            f'<section id="{anchor}">\n<h2>{html.escape(title)}</h2>\n'
            f"<p class=\"intro\">{intro}</p>\n{body}\n</section>"
        )


def _note_html(text: str | None) -> str:
    return f'<p class="note">{html.escape(text or "")}</p>'


def _figure_html(file_name: str, caption: str) -> str:
    return (f'<figure><a href="{html.escape(file_name)}"><img src="{html.escape(file_name)}" '
            f'alt="{html.escape(caption[:80])}" loading="eager"></a>\n'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table_html(header: Sequence[str], rows: Sequence[Sequence[object]],
                caption: str | None = None) -> str:
    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{html.escape(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
                 + "</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(_cell_html(cell) for cell in row) + "</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _cell_html(cell: object) -> str:
    text = str(cell)
    numeric = re.fullmatch(r"-?[\d,]+(\.\d+)?(e-?\d+)?", text) is not None
    return f'<td class="number">{text}</td>' if numeric else f"<td>{html.escape(text)}</td>"


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "layer"


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
            `best_run_curves.png`, `boxplots.png` and `summary.csv` are shown when present.
        filters: how many filters of each convolution layer are drawn by gradient ascent
            (0: none).
        batch_size: images per forward pass.
        progress: called with each step's name (`REPORT_STEPS`) as it starts.

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
    page = _Page(out_dir)

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
    _metrics_section(page, evaluation, scores)
    step("wrong predictions")
    _mistakes_section(page, data, evaluation, grad_cam, note, samples, batch_size)
    step("Grad-CAM samples")
    chosen = choose_samples(evaluation, samples)
    _gradcam_section(page, data, evaluation, grad_cam, note, chosen, batch_size)
    step("activations")
    _activations_section(page, model, data, evaluation, chosen[0])
    step("filters")
    _filters_section(page, model, flat, filters, has_convolution, note)
    step("architecture")
    _architecture_section(page, model, flat)
    step("comparison run")
    if run_dir is not None:
        _run_section(page, Path(run_dir))
    step("writing page")
    index = out_dir / REPORT_FILE
    write_text_atomic(index, _page_html(model_description, data, evaluation, scores,
                                        page.sections))
    return index


def _metrics_section(page: _Page, evaluation: Evaluation, scores: dict) -> None:
    from toonvision.data_visualization import figures

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


def _mistakes_section(
    page: _Page, data: LabelledImages, evaluation: Evaluation, grad_cam: object,
    note: str | None, samples: int, batch_size: int,
) -> None:
    from toonvision.data_visualization import figures

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
        page.section("mistakes", "Wrong predictions", intro, grid + "\n" + _note_html(note))
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


def _gradcam_section(
    page: _Page, data: LabelledImages, evaluation: Evaluation, grad_cam: object,
    note: str | None, chosen: list[int], batch_size: int,
) -> None:
    from toonvision.data_visualization import figures

    if grad_cam is None:
        page.section("gradcam", "Grad-CAM heatmaps", "Where the evidence lies.",
                     _note_html(note))
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


def _activations_section(
    page: _Page, model: object, data: LabelledImages, evaluation: Evaluation, index: int,
) -> None:
    from toonvision.data_visualization import figures
    from toonvision.data_visualization.interpret import layer_activations

    body = [page.figure(figures.image_grid_figure([data.images[index]],
                                                  [evaluation.title(index)], columns=1),
                        "activations_input.png",
                        f"The input image ({data.names[index]}) whose activations follow.")]
    activations = layer_activations(model, data.images[index])
    if not activations:
        body.append(_note_html("The model has no convolution or pooling layer."))
    for number, (layer_name, maps) in enumerate(activations):
        body.append(page.figure(
            figures.activation_figure(layer_name, maps),
            f"activations_{number:02d}_{_file_part(layer_name)}.png",
            f"Layer {layer_name}: {maps.shape[2]} feature maps of {maps.shape[0]}x"
            f"{maps.shape[1]} (at most 16 shown)."))
    page.section("activations", "Intermediate activations",
                 "What each convolution and pooling layer passes on, for one image. Each tile is "
                 "one channel (feature map), scaled to its own range: bright = strong response. "
                 "Early layers keep the edges and colours of the image; deeper ones respond to "
                 "larger, more abstract parts; channels that stay dark were not triggered by this "
                 "image.", "\n".join(body))


def _filters_section(
    page: _Page, model: object, flat: object, filters: int, has_convolution: bool,
    note: str | None,
) -> None:
    import keras

    from toonvision.data_visualization import figures, interpret

    intro = "The patterns the convolution filters detect."
    if not has_convolution:
        page.section("filters", "Convnet filters", intro, _note_html(note))
        return
    first_layer, patches = interpret.first_layer_kernels(model)
    body = [page.figure(
        figures.kernels_figure(first_layer, patches), "filters_first_layer_kernels.png",
        f"The kernels of the first convolution ({first_layer}) as RGB patches, each scaled to "
        "its own range: a kernel with a bright and a dark side detects edges in that direction, "
        "a coloured one detects that colour.")]
    if note is not None:
        body.append(_note_html(note))
    convolutions = interpret.layer_paths(flat, (keras.layers.Conv2D,))
    for number, layer_name in enumerate(convolutions if note is None and filters > 0 else []):
        channels = int(flat.outputs[layer_name].shape[-1])
        indices = list(range(min(filters, channels)))
        patterns = interpret.filter_patterns(model, layer_name, indices,
                                             steps=FILTER_ASCENT_STEPS)
        body.append(page.figure(
            figures.filter_patterns_figure(layer_name, patterns, indices),
            f"filters_{number:02d}_{_file_part(layer_name)}.png",
            f"Layer {layer_name}: the patterns filters {indices[0]}-{indices[-1]} of its "
            f"{channels} respond to most."))
    page.section("filters", "Convnet filters",
                 f"{intro} The first layer's kernels are "
                 "shown as they are; every convolution's filters are shown as the input that "
                 f"excites each most, found by gradient ascent ({FILTER_ASCENT_STEPS} steps from a "
                 "grey image; the central square is shown). Early filters answer to colours and "
                 "edges, deeper ones to textures and repeated shapes; grey noise means the "
                 "filter found nothing to respond to.", "\n".join(body))


def _architecture_section(page: _Page, model: object, flat: object) -> None:
    page.section("architecture", "Architecture", "The layers of the model, in order.",
                 _architecture_html(model, flat, page))


def _run_section(page: _Page, run_dir: Path) -> None:
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
    return _table_html(
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


def _architecture_html(model: object, flat: object, page: _Page) -> str:
    from toonvision.data_visualization import figures

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
    body.append(_table_html(
        ["layer", "type", "output shape", "parameters"], rows,
        f"The parameter table of model.summary(), nested models expanded to their layers "
        f"(name = outer/inner): {total:,} parameters, {trainable:,} trainable."))
    return "\n".join(body)


def _run_dir_html(run_dir: Path, page: _Page) -> str:
    import pandas as pd

    body = []
    for file_name, caption in RUN_DIR_FIGURES:
        source = run_dir / file_name
        if source.is_file():
            body.append(page.copy(source, f"run_{file_name}", caption))
    summary = run_dir / RUN_SUMMARY_FILE
    if summary.is_file():
        try:
            table = pd.read_csv(summary)
            rows = [[f"{value:.4g}" if isinstance(value, float) else value for value in row]
                    for row in table.itertuples(index=False)]
            body.append(_table_html(list(table.columns), rows,
                                    f"{RUN_SUMMARY_FILE}: the comparison's summary per "
                                    "configuration."))
        except (OSError, ValueError, pd.errors.ParserError) as error:
            logger.warning("cannot read %s: %s", summary, error)
            body.append(f"<p class=\"note\">{html.escape(str(summary))} could not be read: "
                        f"{html.escape(str(error))}</p>")
    if not body:
        body.append(f"<p class=\"note\">{html.escape(str(run_dir))} holds none of "
                    f"{', '.join(name for name, _ in RUN_DIR_FIGURES)}, {RUN_SUMMARY_FILE}.</p>")
    return "\n".join(body)


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1320px; margin: 0 auto; padding: 1em 2em;
       color: #222; line-height: 1.45; }
header { border-bottom: 2px solid #ccc; margin-bottom: 1em; }
nav a { margin-right: 1em; }
section { margin: 2em 0; border-top: 1px solid #e4e4e4; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.92em; color: #444; max-width: 60em; margin-top: 0.3em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
caption { caption-side: bottom; text-align: left; font-size: 0.92em; color: #444;
          max-width: 60em; padding-top: 0.4em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
thead { background: #f0f0f0; }
.intro { font-size: 1.05em; }
.good { color: #1a7f37; font-weight: bold; }
.note { color: #8a5a00; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _page_html(
    model_description: str, data: LabelledImages, evaluation: Evaluation, scores: dict,
    sections: list[str],
) -> str:
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    description = "".join(f"<li>{html.escape(line)}</li>"
                          for line in model_description.splitlines() if line.strip())
    anchors = re.findall(r'<section id="([^"]+)">\n<h2>([^<]+)</h2>', "\n".join(sections))
    navigation = "".join(f'<a href="#{anchor}">{title}</a>' for anchor, title in anchors)
    wrong = int((evaluation.y_pred != evaluation.y_true).sum())
    skipped = ""
    if data.skipped:
        skipped = (f"<details><summary>{len(data.skipped)} inputs left out</summary><ul>"
                   + "".join(f"<li>{html.escape(message)}</li>" for message in data.skipped[:200])
                   + "</ul></details>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>toonvision report</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>What the model sees</h1>
<ul>
{description}
<li>images: {html.escape(data.source)} ({len(data)} images; classes
{html.escape(", ".join(data.class_names))})</li>
<li>accuracy {scores["accuracy"]:.4f}, {wrong} wrong</li>
<li>written {created} by toonvision report</li>
</ul>
{skipped}
<nav>{navigation}</nav>
</header>
{chr(10).join(sections)}
</body>
</html>
"""

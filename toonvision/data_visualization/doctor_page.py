"""The dataset doctor's page: one static HTML file with the crops to look at, and why.

`write_doctor_page` draws what `model_utils.doctor.diagnose` computed, in the style of the
report page (`report_page`): a one-paragraph summary on top (how many of each, what to do),
then the likely label errors, the crops that are always wrong, and the near duplicates. Each
flagged crop shows the crop, its source screenshot with the box (from the extraction
manifest), its given and suggested labels, its error history per configuration, and its
heatmap under the comparison's best model when one is saved in the folder, drawn by the
explanation method that scores best on those crops (`faithfulness.compare_methods`). Pictures
are PNG files beside `index.html`; the page needs no server and no network.
"""

from __future__ import annotations

import datetime
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toonvision.data_processing.images import (
    ImageReadError,
    draw_labelled_box,
    read_image,
    resize,
    to_input,
    write_image_atomic,
)
from toonvision.data_visualization.report_page import STYLE, note_html, table_html
from toonvision.fileio import write_text_atomic
from toonvision.model_utils.comparison.predictions import PART_NAMES
from toonvision.model_utils.dataset_doctor import Diagnosis, weak_models_note

PAGE_FILE = "index.html"
EXTRA_STYLE = """
.cards { display: flex; flex-wrap: wrap; gap: 1em; }
.card { border: 1px solid #ddd; padding: 0.5em; width: 36em; }
.card img { max-height: 200px; max-width: 100%; margin-right: 0.4em; vertical-align: top; }
.card h3 { font-size: 1em; margin: 0.2em 0; word-break: break-all; }
.summary { font-size: 1.08em; background: #f7f7f2; padding: 0.6em 1em; }
"""


def best_model_path(run_dir: str | os.PathLike, configs: Sequence[str]) -> Path | None:
    """The comparison's best model: of the saved `best_<config>.keras`, the one whose run
    record (`best_<config>.json`) has the highest test accuracy; None when none is saved."""
    best, best_accuracy = None, -1.0
    for config in configs:
        model = Path(run_dir) / f"best_{config}.keras"
        if not model.is_file():
            continue
        try:
            record = json.loads((Path(run_dir) / f"best_{config}.json").read_text("utf-8"))
            accuracy = float(record["test_metrics"]["accuracy"])
        except (OSError, ValueError, KeyError, TypeError):
            accuracy = 0.0
        if accuracy > best_accuracy:
            best, best_accuracy = model, accuracy
    return best


def summary_text(diagnosis: Diagnosis) -> str:
    """The paragraph at the top of the page: how many of each, and what to do."""
    oos, count = diagnosis.oos, len(diagnosis.names)
    seen = int((oos.appearances > 0).sum())
    parts = [f"{count} crops of {diagnosis.source or diagnosis.run_dir}"]
    if seen:
        mean = oos.appearances[oos.appearances > 0].mean()
        parts.append(f"{seen} of them predicted out of sample in {len(oos.runs)} runs of "
                     f"{', '.join(diagnosis.configs)} ({mean:.1f} times each on average)")
    text = "; ".join(parts) + ". "
    if seen:
        text += (f"cleanlab flags {int(diagnosis.is_issue.sum())} as likely label errors and "
                 f"{int(diagnosis.always_wrong.sum())} are wrong in at least half of their "
                 "appearances. ")
        weak = weak_models_note(diagnosis.oos, diagnosis.y)
        if weak is not None:
            text += f"But {weak}. "
    exact = sum(len(group) for group in diagnosis.exact_groups)
    text += (f"{len(diagnosis.pairs)} pairs of near duplicates (within {diagnosis.max_distance} "
             f"of 128 hash bits; {exact} crops are exact copies) form "
             f"{int((np.bincount(diagnosis.cluster) > 1).sum())} clusters")
    if diagnosis.leak is not None:
        text += (f", and in the average run {100 * diagnosis.leak:.1f}% of the test crops had "
                 "a near duplicate in training, so test accuracy measured memory for them")
    text += (". What to do: look at the flagged crops top first; fix a wrong label in labelImg "
             "and extract again (or delete the crop); remove copies that add nothing; and "
             "split and compare with --group-by duplicates (or screenshot) so that near "
             "duplicates stay on one side.")
    return text


def write_doctor_page(diagnosis: Diagnosis, out_dir: str | os.PathLike, top: int = 24,
                      model_path: str | os.PathLike | None = None, gradcam: bool = True
                      ) -> Path:
    """Writes `index.html` and its pictures into `out_dir`.

    Args:
        diagnosis: what `doctor.diagnose` found.
        out_dir: the page's folder (created).
        top: at most this many crops (and pairs) per section get pictures.
        model_path: the model whose Grad-CAM heatmaps are shown; default
            `best_model_path` of the comparison; none when no model is saved.
        gradcam: show Grad-CAM heatmaps (False: no model is loaded, so no Keras).

    Returns:
        The page's path.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = list(diagnosis.notes)
    issues = [int(index) for index in diagnosis.ranking if diagnosis.is_issue[index]][:top]
    wrong = [int(index) for index in diagnosis.ranking
             if diagnosis.always_wrong[index] and int(index) not in issues][:top]
    heatmaps = {}
    if gradcam:
        model_path = model_path or best_model_path(diagnosis.run_dir, diagnosis.configs)
        heatmaps = _gradcams(model_path, diagnosis, issues + wrong, out_dir, notes)
    sections = [
        _section("label-issues", "Likely label errors",
                 "Crops whose given label the out-of-sample predictions contradict, lowest "
                 "label-quality score first (cleanlab's self-confidence: the averaged "
                 "probability of the given class). Fix the label or remove the crop.",
                 _cards(diagnosis, issues, out_dir, heatmaps)),
        _section("always-wrong", "Always wrong",
                 "Crops wrong in at least half of their out-of-sample appearances, across "
                 "configurations (besides those above): a wrong label, an ambiguous crop, or "
                 "a kind of image the set has too few of.",
                 _cards(diagnosis, wrong, out_dir, heatmaps)),
        _section("duplicates", "Near duplicates",
                 f"Pairs of crops within {diagnosis.max_distance} of 128 bits of perceptual "
                 "hash (phash + dhash), closest first, and how often one of them was tested "
                 "while the other was trained on.", _pairs_html(diagnosis, out_dir, top)),
    ]
    if notes:
        sections.append(_section("notes", "Notes", "What could not be done, and why.",
                                 "".join(note_html(note) for note in notes)))
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>toonvision doctor</title>
<style>{STYLE}{EXTRA_STYLE}</style>
</head>
<body>
<header>
<h1>Dataset doctor</h1>
<p class="summary">{html.escape(summary_text(diagnosis))}</p>
<p>Comparison {html.escape(str(diagnosis.run_dir))}; machine-readable beside this page:
<a href="label_issues.csv">label_issues.csv</a>, <a href="duplicates.csv">duplicates.csv</a>.
Written {created} by toonvision doctor.</p>
<nav><a href="#label-issues">Label errors</a><a href="#always-wrong">Always wrong</a>
<a href="#duplicates">Near duplicates</a></nav>
</header>
{chr(10).join(sections)}
</body>
</html>
"""
    return write_text_atomic(out_dir / PAGE_FILE, page)


def _section(anchor: str, title: str, intro: str, body: str) -> str:
    return (f'<section id="{anchor}">\n<h2>{html.escape(title)}</h2>\n'
            f'<p class="intro">{html.escape(intro)}</p>\n{body}\n</section>')


def _cards(diagnosis: Diagnosis, crops: Sequence[int], out_dir: Path,
           heatmaps: dict[int, str]) -> str:
    if not crops:
        return note_html("None found.")
    names = diagnosis.class_names
    cards = []
    for crop in crops:
        pictures = [_picture(diagnosis.paths[crop], out_dir / f"crop_{crop:05d}.png", 200)]
        pictures.append(_screenshot(diagnosis.records[crop], diagnosis.paths[crop], out_dir,
                                    crop))
        pictures.append(heatmaps.get(crop, ""))
        suggested = names[diagnosis.suggested[crop]] if diagnosis.suggested[crop] >= 0 else "-"
        cards.append(
            f'<div class="card"><h3>{html.escape(diagnosis.names[crop])}</h3>'
            f"<p>given <b>{html.escape(names[diagnosis.y[crop]])}</b> "
            f"(label {html.escape(diagnosis.raw_labels[crop])}), suggested "
            f"<b>{html.escape(suggested)}</b>, score {diagnosis.quality[crop]:.3f}</p>"
            f"{''.join(pictures)}{_history_html(diagnosis, crop)}</div>")
    return f'<div class="cards">{"".join(cards)}</div>'


def _history_html(diagnosis: Diagnosis, crop: int) -> str:
    history = diagnosis.oos.history
    mine = history["crop"] == crop
    rows = []
    for index, config in enumerate(diagnosis.configs):
        chosen = mine & (history["config"] == index)
        wrong = chosen & (history["predicted"] != diagnosis.y[crop])
        wrong_runs = ", ".join(f"{int(run)} ({PART_NAMES[int(part)]})" for run, part in
                               zip(history["run"][wrong][:12], history["part"][wrong][:12],
                                   strict=True))
        mean = history["given_probability"][chosen].mean() if chosen.any() else float("nan")
        rows.append([config, int(chosen.sum()), int(wrong.sum()), f"{mean:.3f}",
                     wrong_runs + (" ..." if wrong.sum() > 12 else "")])
    return table_html(["config", "appearances", "wrong", "p(given)", "wrong in runs"], rows)


def _picture(path: Path, target: Path, height: int, image: np.ndarray | None = None) -> str:
    try:
        image = read_image(path) if image is None else image
    except ImageReadError:
        return ""
    scale = min(1.0, height / image.shape[0])
    if scale < 1.0:
        image = resize(image, (max(1, round(image.shape[0] * scale)),
                               max(1, round(image.shape[1] * scale))))
    write_image_atomic(target, image)
    return f'<img src="{html.escape(target.name)}" alt="{html.escape(path.name)}">'


def _screenshot(record: Any, crop_path: Path, out_dir: Path, crop: int) -> str:
    """The crop's screenshot with its box, from the manifest (empty when it cannot be found).

    The screenshot is looked for where it was extracted from, then where `extract --move`
    puts it (`DATA_DIR/raw/processed/`).
    """
    if record is None:
        return ""
    data_dir = Path(crop_path).parents[len(Path(record.crop).parts) - 1]
    candidates = [Path(record.source), data_dir / "raw" / "processed" / Path(record.source).name]
    source = next((path for path in candidates if path.is_file()), None)
    if source is None:
        return f'<p class="note">screenshot {html.escape(record.source)} not found</p>'
    try:
        image = read_image(source).copy()
    except ImageReadError:
        return ""
    draw_labelled_box(image, (record.xmin, record.ymin, record.xmax, record.ymax),
                      record.label, (255, 200, 0))
    return _picture(source, out_dir / f"screenshot_{crop:05d}.png", 200, image)


def _gradcams(model_path: str | os.PathLike | None, diagnosis: Diagnosis, crops: list[int],
              out_dir: Path, notes: list[str]) -> dict[int, str]:
    """Heatmap overlays of `crops` under the model, by the method that explains it best
    (`faithfulness.compare_methods`), as `<img>` HTML per crop."""
    if model_path is None or not crops:
        if crops:
            notes.append("No best model is saved in the comparison folder: no Grad-CAM.")
        return {}
    from toonvision.data_visualization.explanations import METHOD_TITLES
    from toonvision.data_visualization.faithfulness import compare_methods
    from toonvision.data_visualization.figures import overlay_heatmap
    from toonvision.model_utils.training.model_io import load_model

    try:
        model, info = load_model(model_path)
        originals = [read_image(diagnosis.paths[crop]) for crop in crops]
        # Each crop as the model took it (its recorded resize mode), and where it lies there.
        inputs = [to_input(image, tuple(info.image_size), info.resize) for image in originals]
        # The heatmaps of the method that explains this model best on these crops.
        comparison = compare_methods(model, np.stack([image for image, _ in inputs]),
                                     diagnosis.y[crops])
    except (ValueError, ImageReadError) as error:
        notes.append(f"Heatmaps left out: {error}")
        return {}
    heatmaps = comparison.maps[comparison.best]
    result = {}
    for crop, original, (_, where), heatmap in zip(crops, originals, inputs, heatmaps,
                                                   strict=True):
        target = out_dir / f"gradcam_{crop:05d}.png"
        # Drawn over the crop itself: the padding cut out, the rest mapped onto its pixels.
        result[crop] = _picture(target, target, 200,
                                overlay_heatmap(original, where.to_source(heatmap)))
    method, layer = comparison.best
    notes.append(
        f"The heatmaps (evidence for the given class) are {METHOD_TITLES[method]}"
        + (f" at layer {layer}" if layer else "") + f" of {Path(model_path).name}: of "
        "Grad-CAM and Grad-CAM++ on the last convolutions and gradient saliency, the one "
        "whose maps scored best on these crops (insertion minus deletion AUC, passing the "
        "weight-randomisation sanity check; see the report's \"Which heatmaps to trust\")."
        + ("" if comparison.checked else
           f" Read them as unchecked: {comparison.unchecked_reason()}."))
    return result


def _pairs_html(diagnosis: Diagnosis, out_dir: Path, top: int) -> str:
    from toonvision.model_utils.doctor_tables import duplicates_table

    table = duplicates_table(diagnosis)
    leak = diagnosis.leak
    head = note_html("No pair found.") if table.empty else ""
    if leak is not None:
        head += (f"<p>Leak: in the average run, <b>{100 * leak:.1f}%</b> of the test crops had a "
                 "near duplicate in that run's training part.</p>")
    cards = []
    for row, (first, second) in enumerate(zip(diagnosis.pairs.first[:top],
                                              diagnosis.pairs.second[:top], strict=True)):
        item = table.iloc[row]
        conflict = " - <b>labels differ</b>" if item["first_label"] != item["second_label"] else ""
        cards.append(
            f'<div class="card"><h3>{html.escape(item["first"])} and '
            f'{html.escape(item["second"])}</h3><p>distance {item["distance"]}'
            f'{" (exact copy)" if item["exact"] else ""}{conflict}; one tested while the '
            f'other trained in {item["leak_runs"]} of {item["runs"]} runs</p>'
            + _picture(diagnosis.paths[first], out_dir / f"pair_{first:05d}.png", 160)
            + _picture(diagnosis.paths[second], out_dir / f"pair_{second:05d}.png", 160)
            + "</div>")
    return head + (f'<div class="cards">{"".join(cards)}</div>' if cards else "")

"""The report's "Which heatmaps to trust" section, and its `faithfulness.csv` and `sanity.csv`.

`explanations_section` explains some of the report's images with every method of
`explanations` (the CAM methods on each of the last convolutions), scores every map
(`faithfulness.compare_methods`: deletion and insertion AUC, average drop, increase in
confidence, the weight-randomisation sanity check), writes the scores beside the page, and
adds one section: per image each method's map with its scores, a summary table, and a
verdict: the method and layer that score best, whether they beat a random map more than chance
on the images whose answer removing pixels changes (or that no image can check a map), and the
images that not even the best map explains better than a random one.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np

from toonvision.data_visualization import figures
from toonvision.data_visualization.evaluation import Evaluation, LabelledImages
from toonvision.data_visualization.report_page import Page, note_html, table_html
from toonvision.fileio import write_text_atomic

if TYPE_CHECKING:  # the explanation modules import Keras: only when a section is drawn
    from toonvision.data_visualization.faithfulness import MethodComparison

FAITHFULNESS_FILE = "faithfulness.csv"
SANITY_FILE = "sanity.csv"
SCORE_COLUMNS = ("deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence")
INTRO_TEMPLATE = (
    "A heatmap is only evidence if it shows what the model uses. Each method's maps are "
    "scored by perturbing the image: <b>deletion AUC</b> (remove the pixels the map ranks "
    "first, blurring them or painting them the image's mean colour, and watch the "
    "probability fall; lower is better), <b>insertion AUC</b> (start from the image with "
    "every pixel removed and put those pixels back first; higher is better), <b>average "
    "drop</b> (how much the probability falls when only the map's region is kept; lower is "
    "better) and <b>increase in confidence</b> (share of images whose probability rises "
    "then). A random map is the floor every method must beat. The <b>sanity check</b> "
    "re-initialises the model's weights: a method whose maps stay alike (Spearman "
    "&ge; {threshold}) explains the image, not the model.")


def explanations_section(page: Page, model: object, data: LabelledImages, evaluation: Evaluation,
                         chosen: list[int], note: str | None, steps: int, baseline: str,
                         batch_size: int) -> MethodComparison | None:
    """Scores every method on the `chosen` images (for their predicted class), writes
    `faithfulness.csv` and `sanity.csv` beside the page and adds the section.

    Returns:
        The comparison, or None when `note` says why there are no heatmaps (no
        convolution, no gradients) or no image is chosen.
    """
    from toonvision.data_visualization.faithfulness import SANITY_THRESHOLD, compare_methods

    intro = INTRO_TEMPLATE.format(threshold=SANITY_THRESHOLD)
    title = "Which heatmaps to trust"
    if note is not None or not chosen:
        page.section("explanations", title, intro,
                     note_html(note or "No image was chosen to explain (--explain 0)."))
        return None
    images = data.images[chosen]
    names = [data.names[index] for index in chosen]
    comparison = compare_methods(model, images, evaluation.y_pred[chosen], names,
                                 steps=steps, baseline=baseline, batch_size=batch_size)
    write_text_atomic(page.out_dir / FAITHFULNESS_FILE,
                      comparison.faithfulness.to_csv(index=False, float_format="%.6g"))
    write_text_atomic(page.out_dir / SANITY_FILE,
                      comparison.sanity.to_csv(index=False, float_format="%.6g"))
    body = [f'<p class="verdict">{html.escape(verdict_text(comparison, names))}</p>',
            _summary_table(comparison),
            page.figure(_maps_figure(comparison, images, names), "explanations.png",
                        "Each explained image (left) with every method's heatmap for the "
                        "predicted class, CAM methods at their best layer; under each map "
                        "its deletion (D, lower is better) and insertion (I, higher is "
                        "better) AUC."),
            f'<p>Every score of every image, method and layer: <a href="{FAITHFULNESS_FILE}">'
            f'{FAITHFULNESS_FILE}</a>; the sanity check: <a href="{SANITY_FILE}">{SANITY_FILE}'
            f"</a>. Removed pixels become the {comparison.baseline} baseline"
            + (" (--explain-baseline auto: the one that changes the model's answer on more of "
               "these images, blur on a tie)" if len(comparison.tried) > 1 else "")
            + f"; {steps} steps.</p>"]
    page.section("explanations", title, intro, "\n".join(body))
    return comparison


def verdict_text(comparison: MethodComparison, names: list[str]) -> str:
    """The sentences: which method and layer score best, whether that beats a random map
    more than chance (on the images whose answer removing pixels changes), which images
    cannot check a map, and which none explains."""
    from toonvision.data_visualization.explanations import METHOD_TITLES
    from toonvision.data_visualization.faithfulness import BASELINES, REMOVAL_EFFECT_MIN

    method, layer = comparison.best
    merit = _means(comparison)
    best = merit.loc[(method, layer)]
    floor = merit.loc[("random", "")]
    where = f" at layer {layer}" if layer else ""
    scores = (f"insertion minus deletion AUC {best['insertion_auc'] - best['deletion_auc']:.3f} "
              f"against {floor['insertion_auc'] - floor['deletion_auc']:.3f} for a random map")
    title = f"{METHOD_TITLES.get(method, method)}{where}"
    reason = comparison.unchecked_reason()
    count, uncheckable = len(names), comparison.uncheckable
    if len(uncheckable) == count:
        untried = [name for name in BASELINES if name not in comparison.tried]
        text = (f"{reason[0].upper()}{reason[1:]} ({title}, the best: {scores}). No method is "
                "shown to explain this model"
                + (f"; --explain-baseline {untried[0]} may remove more of what it uses."
                   if untried else "; no other baseline changes its answers either."))
    else:
        checkable = count - len(uncheckable)
        wins = checkable - len(comparison.unexplained)
        text = (f"{title} explains this model best: {scores}; it beats the random map on "
                f"{wins} of the {checkable} images that can check a map (one-sided Wilcoxon "
                f"signed-rank p = {comparison.p_value:.2g})."
                if reason is None else
                f"{title} scores best ({scores}), but {reason}: read its maps as unchecked"
                + (" (a larger --explain may find more)." if checkable < count / 2 else "."))
        if uncheckable:
            shown = [names[index] for index in uncheckable]
            text += (f" On {len(shown)} of {count} images removing every pixel lowers the "
                     f"probability by less than {REMOVAL_EFFECT_MIN}, so their scores cannot "
                     f"rank maps: {_listed(shown)}.")
        if comparison.unexplained:
            shown = [names[index] for index in comparison.unexplained]
            text += (f" Not even the best map explains {len(shown)} of those {checkable} "
                     f"images better than random: {_listed(shown)}.")
        else:
            text += " On every image that can check a map the best map beats the random one."
    flagged = comparison.sanity[comparison.sanity["not_explaining"]
                                & (comparison.sanity["method"] != "random")]
    if len(flagged):
        text += (" The sanity check flags " + ", ".join(METHOD_TITLES.get(name, name)
                                                       for name in flagged["method"])
                 + (": its maps" if len(flagged) == 1 else ": their maps")
                 + " barely change when the weights are randomised.")
    return text


def _listed(names: list[str], limit: int = 6) -> str:
    """Names for a sentence: the first `limit`, then how many more."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _means(comparison: MethodComparison) -> object:
    return comparison.faithfulness.groupby(["method", "layer"])[list(SCORE_COLUMNS)].mean()


def _summary_table(comparison: MethodComparison) -> str:
    from toonvision.data_visualization.explanations import METHOD_TITLES

    means = _means(comparison)
    sanity = {(row.method, row.layer): row for row in comparison.sanity.itertuples()}
    rows = []
    for (method, layer), row in means.iterrows():
        check = sanity.get((method, layer))
        rows.append([
            METHOD_TITLES.get(method, method), layer or "-",
            "yes" if comparison.chosen.get(method) == layer else "",
            *(f"{row[column]:.3f}" for column in SCORE_COLUMNS),
            "" if check is None else f"{check.spearman:.3f}",
            "" if check is None else ("not explaining" if check.not_explaining else "passes")])
    return table_html(
        ["method", "layer", "chosen", "deletion AUC", "insertion AUC", "average drop",
         "increase in confidence", "Spearman (randomised)", "sanity"], rows,
        "Means over the explained images. Chosen: the layer each CAM method is shown and "
        "checked at (its best insertion minus deletion AUC). Spearman: rank correlation "
        "between the maps of the trained model and of the same model with all weights "
        "re-initialised; near 0 means the map depends on what the model learnt.")


def _maps_figure(comparison: MethodComparison, images: np.ndarray, names: list[str]) -> object:
    from toonvision.data_visualization.explanations import METHOD_TITLES

    shown = list(comparison.chosen.items())
    tiles, titles = [], []
    for index, (image, name) in enumerate(zip(images, names, strict=True)):
        tiles.append(image)
        titles.append(name if len(name) <= 20 else f"{name[:9]}..{name[-9:]}")
        for method, layer in shown:
            scores = comparison.scores[(method, layer)]
            tiles.append(figures.overlay_heatmap(image, comparison.maps[(method, layer)][index]))
            titles.append(f"{METHOD_TITLES.get(method, method)}\n"
                          f"D {scores.deletion_auc[index]:.2f} "
                          f"I {scores.insertion_auc[index]:.2f}")
    return figures.image_grid_figure(tiles, titles, columns=1 + len(shown))

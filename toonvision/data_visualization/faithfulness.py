"""Scores that say whether a heatmap shows what the model uses, and the sanity check.

- **Deletion AUC** (Petsiuk et al. 2018, RISE): remove the pixels the map ranks highest first,
  in `steps` equal steps, and follow the model's probability for the explained class; the
  area under that curve (x from 0 to 1 = share removed) is low when the map found what the
  model needs. Lower is better.
- **Insertion AUC**: start from the image with everything removed and put the pixels back,
  highest ranked first; the area is high when the first pixels put back restore the answer.
  Higher is better.
- **Average drop** (Chattopadhay et al. 2018, Grad-CAM++): keep the image only where the map
  is high (pixel = map x image + (1 - map) x removed) and measure how much the probability
  falls, max(0, p - p_kept) / p. Lower is better.
- **Increase in confidence**: whether that kept image gets a higher probability than the
  whole image (1) or not (0); its mean is the share of images. Higher is better.

A removed pixel is replaced by the same pixel of a blurred copy of the image (`baseline
"blur"`, Gaussian, sigma = the image's longer side / 25) or by the image's mean colour
(`"mean"`), the same for every method. Pixels of equal map value (a flat map) are taken in a
seeded random order. Every image's perturbed copies go through the model together in
batches (`models.predict_probabilities`), a few forward passes per image, not one per step.
ROAD (Rong et al. 2022) is not computed.

Removing pixels checks a map only where it changes the model's answer (the **removal
effect**, `removal_effect`, at least `REMOVAL_EFFECT_MIN`); on those images `compare_methods`
tests the best method against the random map (one-sided Wilcoxon signed-rank, scipy; a floor,
as the best was picked first), and `baseline="auto"` takes the baseline that changes more
answers (the author's model keeps them all under blur, loses most under the mean colour).

The **sanity check** (Adebayo et al. 2018) re-initialises the model's weights from the top
layer down and compares each method's maps before and after, as the Spearman rank
correlation: maps that barely change (rho >= `SANITY_THRESHOLD`) explain the image, not the
model. `compare_methods` puts it all together for a report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from toonvision import ToonvisionError, defaults
from toonvision.data_visualization.explanations import (
    CAM_LAYER_CANDIDATES,
    METHODS,
    Method,
    make_method,
    make_methods,
)

BASELINES: tuple[str, ...] = ("blur", "mean")
AUTO_BASELINE = "auto"            # `compare_methods`: the baseline that can check more images
DEFAULT_STEPS = defaults.EXPLAIN_STEPS
BLUR_FRACTION = 1 / 25            # blur sigma, as a share of the image's longer side
SANITY_THRESHOLD = 0.5            # maps this similar after randomisation do not explain
REMOVAL_EFFECT_MIN = 0.1          # removing every pixel must lower the probability this much
EVIDENCE_ALPHA = 0.05             # the best method against the random map, one-sided
PERTURBED_PER_CALL = 256          # perturbed images held in memory at once
FAITHFULNESS_COLUMNS: tuple[str, ...] = (
    "image", "method", "layer", "class", "probability", "deletion_auc", "insertion_auc",
    "average_drop", "increase_in_confidence", "removal_effect")
SANITY_COLUMNS: tuple[str, ...] = ("method", "layer", "spearman", "spearman_top_layer",
                                   "not_explaining")


@dataclass
class Scores:
    """The faithfulness scores of one method's maps, one value per image.

    Attributes:
        probability: the model's probability of the explained class on the whole image.
        deletion_auc, insertion_auc: areas under the deletion and insertion curves, in [0, 1].
        average_drop: max(0, p - p_kept) / p, in [0, 1].
        increase_in_confidence: 1.0 where p_kept > p, else 0.0.
        deletion_curve, insertion_curve: (N, steps + 1) probabilities at each step.
    """

    probability: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray
    average_drop: np.ndarray
    increase_in_confidence: np.ndarray
    deletion_curve: np.ndarray
    insertion_curve: np.ndarray


def removed_image(image: np.ndarray, baseline: str = "blur") -> np.ndarray:
    """What every pixel of `image` becomes when it is removed, as float32 (see the module)."""
    import cv2

    image = np.asarray(image, np.float32)
    if baseline == "blur":
        sigma = max(1.0, max(image.shape[:2]) * BLUR_FRACTION)
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma,
                                borderType=cv2.BORDER_REFLECT).reshape(image.shape)
    if baseline == "mean":
        return np.broadcast_to(image.mean(axis=(0, 1), keepdims=True), image.shape).copy()
    raise ToonvisionError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")


def _perturbed(image: np.ndarray, heatmap: np.ndarray, steps: int, baseline: str,
               generator: np.random.Generator) -> np.ndarray:
    """The image's deletion steps 1..steps, insertion steps 0..steps-1 and the map-kept
    image, as one (2 steps + 1, H, W, C) float32 stack."""
    image = np.asarray(image, np.float32)
    removed = removed_image(image, baseline)
    height, width = heatmap.shape
    # Rank pixels by map value, highest first; equal values in a seeded random order.
    order = np.lexsort((generator.random(height * width), -heatmap.ravel()))
    rank = np.empty(height * width, np.int64)
    rank[order] = np.arange(height * width)
    rank = rank.reshape(height, width)
    counts = np.round(np.arange(steps + 1) * height * width / steps)
    first = (rank[None] < counts[:, None, None])[..., None]      # (steps+1, H, W, 1)
    deletion = np.where(first[1:], removed, image)
    insertion = np.where(first[:-1], image, removed)
    weight = heatmap[..., None].astype(np.float32)
    kept = weight * image + (1 - weight) * removed
    return np.concatenate([deletion, insertion, kept[None]])


def removal_effect(model: object, images: np.ndarray, class_indices: np.ndarray,
                   baseline: str = "blur", batch_size: int = 32) -> np.ndarray:
    """Per image, the probability of its class on the whole image minus that on the image
    with every pixel removed (`removed_image`): where this is small, no map can be checked by
    removing pixels (every deletion curve ends, and every insertion curve starts, there)."""
    from toonvision.model_utils.training.models import predict_probabilities

    images, rows = np.asarray(images), np.arange(len(images))
    removed = np.stack([removed_image(image, baseline) for image in images])
    whole = predict_probabilities(model, images, batch_size)[rows, class_indices]
    return whole - predict_probabilities(model, removed, batch_size)[rows, class_indices]


def score_maps(model: object, images: np.ndarray, heatmaps: np.ndarray,
               class_indices: np.ndarray | None = None, steps: int = DEFAULT_STEPS,
               baseline: str = "blur", batch_size: int = 32, seed: int = 0) -> Scores:
    """Deletion and insertion AUC, average drop and increase in confidence of `heatmaps`.

    Args:
        model: a Keras classifier taking `images`.
        images: (N, H, W, C) images as the model takes them.
        heatmaps: (N, H, W) maps of any scale (only their order and, for average drop and
            increase in confidence, their values in [0, 1] matter).
        class_indices: the explained class per image; default: the predicted class.
        steps: deletion and insertion steps (each removes 1/steps of the pixels).
        baseline: what a removed pixel becomes: "blur" or "mean" (see the module).
        batch_size: images per forward pass.
        seed: the order of pixels of equal map value.

    Returns:
        The scores, one value per image.

    Raises:
        ValueError: if the shapes disagree, steps < 1 or the baseline is unknown.
    """
    from toonvision.model_utils.training.models import predict_probabilities

    images, heatmaps = np.asarray(images), np.asarray(heatmaps, np.float32)
    if images.ndim != 4 or heatmaps.shape != images.shape[:3]:
        raise ToonvisionError(f"need (N, H, W, C) images and (N, H, W) maps; got "
                              f"{images.shape} and {heatmaps.shape}")
    if steps < 1:
        raise ToonvisionError(f"steps must be at least 1; got {steps}")
    if baseline not in BASELINES:
        raise ToonvisionError(f"unknown baseline {baseline!r}; choose one of "
                              f"{', '.join(BASELINES)}")
    count = len(images)
    original = predict_probabilities(model, images, batch_size)
    classes = (original.argmax(axis=1) if class_indices is None
               else np.asarray(class_indices, np.int64))
    if classes.shape != (count,):
        raise ToonvisionError(f"need one class index per image ({count}); got {classes.shape}")
    probability = original[np.arange(count), classes]
    per_image = 2 * steps + 1
    group = max(1, PERTURBED_PER_CALL // per_image)
    generator = np.random.default_rng(seed)
    outputs = []
    for start in range(0, count, group):
        stop = min(start + group, count)
        stack = np.concatenate([_perturbed(images[index], heatmaps[index], steps, baseline,
                                           generator) for index in range(start, stop)])
        predicted = predict_probabilities(model, stack, batch_size)
        outputs.append(predicted.reshape(stop - start, per_image, -1))
    predicted = (np.concatenate(outputs) if outputs
                 else np.zeros((0, per_image, original.shape[1]), np.float32))
    chosen = predicted[np.arange(count), :, classes]              # (N, 2 steps + 1)
    deletion = np.concatenate([probability[:, None], chosen[:, :steps]], axis=1)
    insertion = np.concatenate([chosen[:, steps:2 * steps], probability[:, None]], axis=1)
    kept = chosen[:, -1]
    safe = np.maximum(probability, 1e-12)
    return Scores(
        probability=probability, deletion_auc=_area(deletion), insertion_auc=_area(insertion),
        average_drop=np.maximum(0.0, probability - kept) / safe,
        increase_in_confidence=(kept > probability).astype(np.float32),
        deletion_curve=deletion, insertion_curve=insertion)


def _area(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area under curves sampled at 0, 1/steps, ..., 1."""
    steps = curves.shape[1] - 1
    return (curves[:, :-1] + curves[:, 1:]).sum(axis=1) / (2 * steps)


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two maps (scipy). A flat map shares no order with any
    other map, so the correlation is 0 when either is constant (scipy would give nan)."""
    from scipy.stats import spearmanr

    first, second = np.ravel(first), np.ravel(second)
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return 0.0
    return float(spearmanr(first, second).statistic)


def randomised_model(model: object, top_layers: int | None = None, seed: int = 0) -> object:
    """A copy of `model` with the weights of its top `top_layers` weighted layers (None: all)
    re-initialised by their own initialisers, the lower ones kept (Adebayo et al.'s cascade).

    Keras draws the new weights from its global seed, set here to `seed`
    (`keras.utils.set_random_seed`, which also seeds Python's and numpy's global generators).
    """
    import keras

    keras.utils.set_random_seed(seed)
    trained = keras.models.clone_model(model)
    trained.set_weights(model.get_weights())
    fresh = keras.models.clone_model(model)
    layers = [layer for layer in trained._flatten_layers(include_self=False)
              if not isinstance(layer, keras.Model) and layer.weights]
    fresh_layers = [layer for layer in fresh._flatten_layers(include_self=False)
                    if not isinstance(layer, keras.Model) and layer.weights]
    chosen = len(layers) if top_layers is None else min(top_layers, len(layers))
    for layer, source in list(zip(layers, fresh_layers, strict=True))[::-1][:chosen]:
        layer.set_weights(source.get_weights())
    return trained


def sanity_check(model: object, images: np.ndarray, class_indices: np.ndarray,
                 methods: list[Method], seed: int = 0, batch_size: int = 32,
                 maps: dict[tuple[str, str], np.ndarray] | None = None
                 ) -> list[dict[str, object]]:
    """Each method's maps from `model` against its maps after re-initialising the top layer,
    then all layers (top down): the mean Spearman correlation over the images.

    Args:
        model: the trained classifier.
        images: (N, H, W, C) images as the model takes them.
        class_indices: the explained class per image.
        methods: the methods of `model` to check.
        seed: the seed of the new weights (and of the random map).
        batch_size: images per compiled call.
        maps: the methods' maps of `images` under `model` by (name, layer), when already
            computed.

    Returns:
        One row per method: `SANITY_COLUMNS` (`not_explaining` is True when the maps of the
        fully randomised model still correlate at `SANITY_THRESHOLD` or more).
    """
    maps = maps or {}
    trained = {(method.name, method.layer): maps.get((method.name, method.layer))
               for method in methods}
    for method in methods:
        if trained[(method.name, method.layer)] is None:
            trained[(method.name, method.layer)] = method.explain(images, class_indices)
    correlations: dict[tuple[str, str], list[float]] = {key: [] for key in trained}
    for top_layers in (1, None):
        randomised = randomised_model(model, top_layers, seed)
        for method in methods:
            copy = make_method(randomised, method.name, method.layer or None, seed, batch_size)
            maps = copy.explain(images, class_indices)
            key = (method.name, method.layer)
            correlations[key].append(float(np.mean([spearman(before, after) for before, after
                                                    in zip(trained[key], maps, strict=True)])))
    return [{"method": name, "layer": layer, "spearman": values[1],
             "spearman_top_layer": values[0], "not_explaining": values[1] >= SANITY_THRESHOLD}
            for (name, layer), values in correlations.items()]


@dataclass
class MethodComparison:
    """Every method's maps and scores on the same images, and which explains best.

    Attributes:
        faithfulness: one row per image, method and layer (`FAITHFULNESS_COLUMNS`).
        sanity: one row per method at its chosen layer (`SANITY_COLUMNS`); empty when the
            sanity check was not run.
        maps: heatmaps (N, H, W) per (method, layer).
        scores: the scores of those maps per (method, layer).
        chosen: the chosen layer of each method ("" for the others): the best scored.
        best: the (method, layer) that explains the model best (see `compare_methods`).
        unexplained: the indices of the checkable images whose best map does no better
            than random.
        class_indices: the explained class per image.
        removal_effect: per image (`removal_effect`); uncheckable: the indices of the images
            where it is under `REMOVAL_EFFECT_MIN`, whose scores cannot rank maps.
        p_value: the one-sided Wilcoxon signed-rank test that the best method's insertion
            minus deletion AUC beats the random map's on the checkable images (nan when no
            image is checkable, 1.0 when every difference is 0).
        baseline: what a removed pixel became ("blur" or "mean"; "auto" chose one).
        tried: the baselines whose removal effect was measured (both with "auto").
    """

    faithfulness: object
    sanity: object
    maps: dict[tuple[str, str], np.ndarray]
    scores: dict[tuple[str, str], Scores]
    chosen: dict[str, str]
    best: tuple[str, str]
    unexplained: list[int] = field(default_factory=list)
    class_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    removal_effect: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    uncheckable: list[int] = field(default_factory=list)
    p_value: float = float("nan")
    baseline: str = "blur"
    tried: tuple[str, ...] = ("blur",)

    @property
    def checked(self) -> bool:
        """Whether the best method beats the random map more than chance would
        (`p_value` at most `EVIDENCE_ALPHA`)."""
        return bool(self.p_value <= EVIDENCE_ALPHA)

    def unchecked_reason(self) -> str | None:
        """Why the best method's maps are not shown to explain the model, in a sentence
        without a subject's capital ("removing ..."); None when they are (`checked`)."""
        if self.checked:
            return None
        count, effect = len(self.removal_effect), self.removal_effect
        if len(self.uncheckable) == count:
            return (f"removing pixels cannot check these maps: with every pixel replaced by "
                    f"the {self.baseline} baseline, the model's probability for the explained "
                    f"class falls by at most {effect.max():.2f} (mean {effect.mean():.2f}) on "
                    f"these {count} images, under the {REMOVAL_EFFECT_MIN} a check needs, so "
                    "every map, the random one included, scores about the same")
        checkable = count - len(self.uncheckable)
        wins = checkable - len(self.unexplained)
        needed = math.ceil(math.log2(1 / EVIDENCE_ALPHA))  # all won: p = 2**-n
        if checkable < needed:
            verb = "has" if checkable == 1 else "have"
            return (f"only {checkable} of these {count} images {verb} an answer that removing "
                    f"pixels changes, too few for any map to be shown better than a random "
                    f"one (the test needs at least {needed})")
        return (f"its maps beat the random map on {wins} of the {checkable} images whose "
                f"answer removing pixels changes, no more than chance would give (one-sided "
                f"Wilcoxon signed-rank p = {self.p_value:.2g}, over {EVIDENCE_ALPHA})")


def compare_methods(model: object, images: np.ndarray, class_indices: np.ndarray | None = None,
                    names: list[str] | None = None, methods: tuple[str, ...] = METHODS,
                    layers: int = CAM_LAYER_CANDIDATES, steps: int = DEFAULT_STEPS,
                    baseline: str = AUTO_BASELINE, sanity: bool = True, batch_size: int = 32,
                    seed: int = 0) -> MethodComparison:
    """Explains `images` with every method (CAM methods on each of the last `layers`
    convolutions), scores every map, runs the sanity check, and picks the best.

    A map's faithfulness is insertion AUC - deletion AUC (high: the pixels it ranks first
    are the ones the model needs). A CAM method's chosen layer is its best by that mean; the
    best method is the one with the highest mean among the methods that pass the sanity
    check (all non-random methods when none passes). Only the images whose answer removing
    every pixel changes (`removal_effect` at least `REMOVAL_EFFECT_MIN`) can check a map: on
    those the best method is tested against the random map (`p_value`), and an image is
    unexplained when the best method's map scores no higher than the random map on it.

    Args:
        model: a Keras image classifier with a convolution (for the CAM methods).
        images: (N, H, W, C) images as the model takes them.
        class_indices: the class to explain per image; default: the predicted class.
        names: a name per image for the table (default: its index).
        methods: which methods (`explanations.METHODS`; "random" is always added).
        layers: how many of the last convolutions the CAM methods try.
        steps, batch_size, seed: as for `score_maps`.
        baseline: as for `score_maps`, or "auto": the one of `BASELINES` whose fully removed
            images lower the explained probability by `REMOVAL_EFFECT_MIN` on more images.
        sanity: run the weight-randomisation sanity check.

    Returns:
        The comparison.

    Raises:
        ValueError: for empty images, an unknown method or baseline.
    """
    import pandas as pd

    from toonvision.model_utils.training.models import predict_probabilities

    images = np.asarray(images)
    if len(images) == 0:
        raise ToonvisionError("no images to explain")
    methods = tuple(dict.fromkeys([*methods, "random"]))
    if class_indices is None:
        class_indices = predict_probabilities(model, images, batch_size).argmax(axis=1)
    class_indices = np.asarray(class_indices, np.int64)
    names = [str(index) for index in range(len(images))] if names is None else list(names)
    if baseline not in (*BASELINES, AUTO_BASELINE):
        raise ToonvisionError(f"unknown baseline {baseline!r}; choose one of "
                              f"{', '.join((*BASELINES, AUTO_BASELINE))}")
    effects = {name: removal_effect(model, images, class_indices, name, batch_size)
               for name in (BASELINES if baseline == AUTO_BASELINE else (baseline,))}
    baseline = max(effects, key=lambda name: int(np.sum(effects[name] >= REMOVAL_EFFECT_MIN)))
    rows, maps, merits, all_scores = [], {}, {}, {}
    for method in make_methods(model, methods, layers, seed, batch_size):
        heatmaps = method.explain(images, class_indices)
        scores = score_maps(model, images, heatmaps, class_indices, steps, baseline,
                            batch_size, seed)
        key = (method.name, method.layer)
        maps[key], all_scores[key] = heatmaps, scores
        merits[key] = scores.insertion_auc - scores.deletion_auc
        for index, name in enumerate(names):
            rows.append([name, method.name, method.layer, int(class_indices[index]),
                         scores.probability[index], scores.deletion_auc[index],
                         scores.insertion_auc[index], scores.average_drop[index],
                         scores.increase_in_confidence[index], effects[baseline][index]])
    chosen: dict[str, str] = {}
    for name, layer in merits:
        if name not in chosen or merits[(name, layer)].mean() > merits[(name, chosen[name])].mean():
            chosen[name] = layer
    sanity_rows = []
    if sanity:
        kept = [make_method(model, name, layer or None, seed, batch_size)
                for name, layer in chosen.items()]
        sanity_rows = sanity_check(model, images, class_indices, kept, seed, batch_size, maps)
    failing = {row["method"] for row in sanity_rows if row["not_explaining"]}
    candidates = [name for name in chosen if name != "random" and name not in failing] or [
        name for name in chosen if name != "random"] or ["random"]
    best_name = max(candidates, key=lambda name: merits[(name, chosen[name])].mean())
    best = (best_name, chosen[best_name])
    checkable = effects[baseline] >= REMOVAL_EFFECT_MIN
    gain = merits[best] - merits[("random", "")]
    unexplained = np.flatnonzero(checkable & (gain <= 0)).tolist()
    return MethodComparison(
        faithfulness=pd.DataFrame(rows, columns=list(FAITHFULNESS_COLUMNS)),
        sanity=pd.DataFrame(sanity_rows, columns=list(SANITY_COLUMNS)),
        maps=maps, scores=all_scores, chosen=chosen, best=best, unexplained=unexplained,
        class_indices=class_indices, removal_effect=effects[baseline], tried=tuple(effects),
        uncheckable=np.flatnonzero(~checkable).tolist(),
        p_value=_beats_random(gain[checkable]), baseline=baseline)


def _beats_random(gain: np.ndarray) -> float:
    """One-sided Wilcoxon signed-rank p that `gain` (best minus random, per image) lies above
    0; nan without an image, 1.0 when every gain is 0 (scipy refuses that)."""
    from scipy.stats import wilcoxon

    if len(gain) == 0:
        return float("nan")
    if not np.any(gain):
        return 1.0
    return float(wilcoxon(gain, alternative="greater").pvalue)

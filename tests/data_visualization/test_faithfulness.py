"""Faithfulness scores against a hand computation, batching, the sanity check, the comparison
of methods, and the "done when" check on a CNN trained on real photos (cards_voc).

xplique (the TensorFlow library with Deletion/Insertion) would replace TensorFlow 2.21 by 2.20
and downgrade scipy and scikit-learn, so it is not installed; the scores are checked here
against the papers' definitions worked out by hand on a model whose answer is known.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from toonvision.data_visualization import faithfulness  # noqa: E402


def sigmoid(value: float) -> float:
    return 1 / (1 + math.exp(-value))


def first_pixel_model() -> keras.Model:
    """P(class 1) = sigmoid(first pixel) on a 1x4 grey image: only pixel 0 matters."""
    inputs = keras.Input((1, 4, 1))
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([np.array([[1.0], [0.0], [0.0], [0.0]]), np.zeros(1)])
    return model


def test_scores_equal_a_hand_computation_on_a_model_whose_answer_is_known() -> None:
    image = np.array([4.0, 0.0, 0.0, 0.0], np.float32).reshape(1, 1, 4, 1)  # mean 1
    right = np.array([[[0.5, 0.4, 0.3, 0.2]]], np.float32)   # ranks pixel 0 first
    wrong = right[..., ::-1].copy()                           # ranks pixel 0 last
    model = first_pixel_model()
    good = faithfulness.score_maps(model, image, right, [1], steps=4, baseline="mean")
    bad = faithfulness.score_maps(model, image, wrong, [1], steps=4, baseline="mean")
    high, low = sigmoid(4), sigmoid(1)    # pixel 0 kept (4) or removed (the mean, 1)
    # Deletion removes one pixel per step; the right map removes pixel 0 at once.
    assert good.deletion_auc[0] == pytest.approx((high + low) / 8 + 3 * low / 4, abs=1e-6)
    assert bad.deletion_auc[0] == pytest.approx(3 * high / 4 + (high + low) / 8, abs=1e-6)
    # Insertion starts from the mean image and puts pixel 0 back first (right map) or last.
    assert good.insertion_auc[0] == pytest.approx((low + high) / 8 + 3 * high / 4, abs=1e-6)
    assert bad.insertion_auc[0] == pytest.approx(3 * low / 4 + (low + high) / 8, abs=1e-6)
    np.testing.assert_allclose(good.deletion_curve[0], [high, low, low, low, low], atol=1e-6)
    # Average drop keeps map x image + (1 - map) x mean: pixel 0 = 0.5 * 4 + 0.5 * 1 = 2.5.
    assert good.average_drop[0] == pytest.approx((high - sigmoid(2.5)) / high, abs=1e-6)
    assert good.increase_in_confidence[0] == 0.0
    # For class 0 keeping pixel 0 at 2.5 instead of 4 raises P(class 0): an increase.
    other = faithfulness.score_maps(model, image, right, [0], steps=4, baseline="mean")
    assert other.increase_in_confidence[0] == 1.0 and other.average_drop[0] == 0.0


def test_perturbed_copies_of_several_images_share_forward_passes(monkeypatch) -> None:
    from toonvision.model_utils.training import models

    calls = []
    original = models.predict_probabilities

    def counting(model, images, batch_size=64, progress=None):
        calls.append(len(images))
        return original(model, images, batch_size, progress)

    monkeypatch.setattr(models, "predict_probabilities", counting)
    generator = np.random.default_rng(0)
    images = generator.uniform(0, 5, (3, 1, 4, 1)).astype(np.float32)
    maps = generator.random((3, 1, 4)).astype(np.float32)
    model = first_pixel_model()
    together = faithfulness.score_maps(model, images, maps, steps=4, batch_size=64)
    # The originals, then every image's 2 x 4 + 1 perturbed copies in one call.
    assert calls == [3, 27]
    for index in range(3):
        alone = faithfulness.score_maps(model, images[index:index + 1], maps[index:index + 1],
                                        steps=4)
        assert alone.deletion_auc[0] == pytest.approx(together.deletion_auc[index], abs=1e-6)
        assert alone.insertion_auc[0] == pytest.approx(together.insertion_auc[index], abs=1e-6)


def test_removed_pixels_and_bad_arguments() -> None:
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, :15] = 200
    mean = faithfulness.removed_image(image, "mean")
    np.testing.assert_allclose(mean, 100.0)
    blurred = faithfulness.removed_image(image, "blur")
    assert blurred.shape == image.shape and 0 < blurred[10, 15, 0] < 200
    np.testing.assert_allclose(faithfulness.removed_image(np.full((8, 8, 3), 7), "blur"), 7)
    with pytest.raises(ValueError, match="unknown baseline 'zero'; choose one of blur, mean"):
        faithfulness.removed_image(image, "zero")
    with pytest.raises(ValueError, match=r"\(N, H, W\) maps"):
        faithfulness.score_maps(first_pixel_model(), np.zeros((1, 1, 4, 1)), np.zeros((1, 4)))


def test_the_best_method_is_tested_against_the_random_map_by_a_signed_rank_test() -> None:
    # Three gains, all positive: the exact one-sided signed-rank p is 1 / 2**3.
    assert faithfulness._beats_random(np.array([0.1, 0.2, 0.3])) == pytest.approx(0.125)
    # Ranks 1..4, the smallest negative: W+ = 2 + 3 + 4 = 9; P(W+ >= 9) = 2 / 16.
    assert faithfulness._beats_random(np.array([-0.1, 0.2, 0.3, 0.4])) == pytest.approx(0.125)
    assert faithfulness._beats_random(np.zeros(3)) == 1.0
    assert np.isnan(faithfulness._beats_random(np.zeros(0)))


def test_removal_effect_is_where_every_curve_ends() -> None:
    image = np.array([4.0, 0.0, 0.0, 0.0], np.float32).reshape(1, 1, 4, 1)  # mean 1
    effect = faithfulness.removal_effect(first_pixel_model(), image, np.array([1]), "mean")
    assert effect[0] == pytest.approx(sigmoid(4) - sigmoid(1), abs=1e-6)
    scores = faithfulness.score_maps(first_pixel_model(), image, np.ones((1, 1, 4)), [1],
                                     steps=4, baseline="mean")
    assert scores.probability[0] - scores.deletion_curve[0, -1] == pytest.approx(effect[0])
    assert scores.probability[0] - scores.insertion_curve[0, 0] == pytest.approx(effect[0])


def test_too_few_images_that_removal_changes_cannot_show_a_map_better_than_random() -> None:
    # Only pixel 0 matters; removing every pixel (the mean colour) changes the answer only
    # where pixel 0 differs from the mean: 2 of 5 images, and a test on 2 cannot pass.
    flat, peaked = [2.0, 2.0, 2.0, 2.0], [4.0, 0.0, 0.0, 0.0]
    images = np.array([flat, peaked, flat, peaked, flat], np.float32).reshape(5, 1, 4, 1)
    comparison = faithfulness.compare_methods(
        first_pixel_model(), images, np.ones(5, np.int64), methods=("saliency",), steps=4,
        baseline="mean", sanity=False)
    assert comparison.uncheckable == [0, 2, 4] and comparison.tried == ("mean",)
    np.testing.assert_allclose(comparison.removal_effect[[1, 3]], sigmoid(4) - sigmoid(1),
                               atol=1e-6)
    assert comparison.p_value == pytest.approx(0.25) and not comparison.checked
    assert comparison.unchecked_reason().startswith("only 2 of these 5 images")


def test_spearman_of_flat_maps_is_zero_and_of_equal_maps_one() -> None:
    ramp = np.arange(12.0).reshape(3, 4)
    assert faithfulness.spearman(ramp, ramp * 2 + 1) == pytest.approx(1.0)
    assert faithfulness.spearman(ramp, -ramp) == pytest.approx(-1.0)
    assert faithfulness.spearman(ramp, np.zeros((3, 4))) == 0.0


def test_randomised_model_reinitialises_from_the_top_down(tiny_model) -> None:
    model = tiny_model()
    top = faithfulness.randomised_model(model, top_layers=1)
    everything = faithfulness.randomised_model(model)
    kernels = [weight for weight in model.get_weights() if weight.ndim > 1]
    top_kernels = [weight for weight in top.get_weights() if weight.ndim > 1]
    all_kernels = [weight for weight in everything.get_weights() if weight.ndim > 1]
    assert [np.array_equal(a, b) for a, b in zip(kernels, top_kernels, strict=True)] == [
        True, True, False]
    assert not any(np.array_equal(a, b) for a, b in zip(kernels, all_kernels, strict=True))


@pytest.mark.parametrize("classes", [2, 3])
def test_compare_methods_scores_every_method_and_flags_the_random_map(tiny_model,
                                                                       classes) -> None:
    model = tiny_model(image_size=(24, 16), classes=classes)
    images = np.random.default_rng(1).integers(0, 256, (3, 24, 16, 3)).astype(np.uint8)
    comparison = faithfulness.compare_methods(model, images, names=["a", "b", "c"], steps=4)
    table = comparison.faithfulness
    assert list(table.columns) == list(faithfulness.FAITHFULNESS_COLUMNS)
    # Grad-CAM and Grad-CAM++ on both convolutions, saliency, random: 6 x 3 images.
    assert len(table) == 18 and set(table["method"]) == {"gradcam", "gradcam++", "saliency",
                                                         "random"}
    assert table[["deletion_auc", "insertion_auc"]].stack().between(0, 1).all()
    sanity = comparison.sanity.set_index("method")
    # The random map ignores the model: the sanity check must say it explains nothing.
    assert sanity.loc["random", "spearman"] == 1.0 and sanity.loc["random", "not_explaining"]
    assert comparison.best[0] != "random"
    assert comparison.chosen["gradcam"] in set(table["layer"])


def test_gradcam_beats_random_and_depends_on_the_weights_on_real_photos(shared_data: Path
                                                                         ) -> None:
    """A small CNN trained briefly on playing-card photos (face vs number cards)."""
    from toonvision.data_visualization.evaluation import load_inputs
    from toonvision.labels import make_task

    task = make_task("ace=number,nine=number,ten=number,king=face,queen=face,jack=face")
    size = (64, 48)
    cards = shared_data / "cards_voc"
    train = load_inputs([cards / "train"], ("face", "number"), size, task)
    test = load_inputs([cards / "test"], ("face", "number"), size, task)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((*size, 3))
    outputs = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (16, 32, 32):
        outputs = keras.layers.Conv2D(filters, 3, activation="relu", padding="same")(outputs)
        outputs = keras.layers.MaxPooling2D()(outputs)
    outputs = keras.layers.GlobalAveragePooling2D()(outputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(outputs))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(train.images.astype(np.float32), train.y, epochs=8, batch_size=32, verbose=0)
    assert model.evaluate(test.images.astype(np.float32), test.y, verbose=0)[1] > 0.75
    comparison = faithfulness.compare_methods(model, test.images[:32], test.y[:32], layers=2)
    means = comparison.faithfulness.groupby(["method", "layer"])[
        ["deletion_auc", "insertion_auc"]].mean()
    gradcam = means.loc[("gradcam", comparison.chosen["gradcam"])]
    random = means.loc[("random", "")]
    assert gradcam["deletion_auc"] < random["deletion_auc"]
    assert gradcam["insertion_auc"] > random["insertion_auc"]
    sanity = comparison.sanity.set_index("method")
    assert sanity.loc["gradcam", "spearman"] < 0.5
    # ... and the report would say so: the best beats the random map more than chance.
    assert comparison.checked and len(comparison.uncheckable) < 16

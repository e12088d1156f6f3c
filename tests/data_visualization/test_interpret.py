"""Grad-CAM, activations and filters on tiny hand-made models and on the author's model."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from toonvision.data_visualization import gradcam, interpret  # noqa: E402
from toonvision.model_utils.training.models import predict_probabilities  # noqa: E402

SIZE = 32
CORNER = 8  # the model only looks at this many rows and columns in the top-left corner


def _corner_layers(softmax: bool = False) -> tuple[list, list]:
    """Layers of a model that only sees brightness in the top-left corner, and their weights.

    Channel 0 of the convolution answers to bright pixels, channel 1 to dark ones; the dense
    layer adds up channel 0 over the corner only, so the evidence for class 1 is there.
    """
    convolution = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="detect")
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[..., 0], kernel[..., 1] = 1 / 27, -1 / 27
    dense_weights = np.zeros((SIZE, SIZE, 2), np.float32)
    dense_weights[:CORNER, :CORNER, 0] = 1.0
    dense_weights = dense_weights.reshape(-1, 1)
    if softmax:
        dense = keras.layers.Dense(2, activation="softmax", name="classify")
        weights = [np.concatenate([-dense_weights, dense_weights], 1), np.array([2.0, -2.0])]
    else:
        dense = keras.layers.Dense(1, activation="sigmoid", name="classify")
        weights = [dense_weights, np.array([-2.0])]
    layers = [keras.layers.Rescaling(1 / 255), convolution, keras.layers.Flatten(), dense]
    return layers, [(convolution, [kernel, np.array([-0.5, 0.5], np.float32)]), (dense, weights)]


def _finish(model: keras.Model, weights: list) -> keras.Model:
    for layer, values in weights:
        layer.set_weights(values)
    return model


def corner_model(softmax: bool = False) -> keras.Model:
    layers, weights = _corner_layers(softmax)
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = inputs
    for layer in layers:
        outputs = layer(outputs)
    return _finish(keras.Model(inputs, outputs, name="corner"), weights)


def nested_corner_model() -> keras.Model:
    """The same model with its convolution inside a Sequential used as a layer."""
    layers, weights = _corner_layers()
    rescale, convolution, flatten, dense = layers
    block = keras.Sequential([keras.Input((SIZE, SIZE, 3)), convolution], name="block")
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = dense(flatten(block(rescale(inputs))))
    return _finish(keras.Model(inputs, outputs, name="nested"), weights)


def augmented_corner_model() -> keras.Model:
    """The same model behind augmentation layers, which must be inactive at inference."""
    layers, weights = _corner_layers()
    augmentation = keras.Sequential(
        [keras.layers.RandomFlip("horizontal_and_vertical"), keras.layers.RandomRotation(0.25)],
        name="augmentation")
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = augmentation(inputs)
    for layer in layers:
        outputs = layer(outputs)
    return _finish(keras.Model(inputs, outputs, name="augmented"), weights)


def corner_images(count: int = 3, seed: int = 0) -> np.ndarray:
    """Dark noisy images with a bright square in the top-left corner."""
    generator = np.random.default_rng(seed)
    images = generator.integers(0, 40, size=(count, SIZE, SIZE, 3)).astype(np.uint8)
    images[:, 1:7, 1:7] = 250
    return images


def _hottest(heatmap: np.ndarray) -> tuple[int, int]:
    return np.unravel_index(np.argmax(heatmap), heatmap.shape)


def test_gradcam_points_at_the_only_evidence() -> None:
    images = corner_images()
    heatmaps, probabilities = gradcam.GradCam(corner_model())(images)
    assert heatmaps.shape == (3, SIZE, SIZE)
    assert np.all(probabilities[:, 1] > 0.5)  # the bright corner is evidence for class 1
    for heatmap in heatmaps:
        row, column = _hottest(heatmap)
        assert row < CORNER and column < CORNER
        assert heatmap[:CORNER, :CORNER].mean() > 5 * heatmap[CORNER + 2:, CORNER + 2:].mean()
        assert heatmap.max() == pytest.approx(1.0)


def test_gradcam_still_sees_evidence_when_the_sigmoid_saturates() -> None:
    model = corner_model()
    dense = model.get_layer("classify")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 1000, bias])
    heatmaps, probabilities = gradcam.GradCam(model)(corner_images())
    assert np.all(probabilities[:, 1] == 1.0)  # the probability's gradient is exactly 0 here
    for heatmap in heatmaps:
        row, column = _hottest(heatmap)
        assert heatmap.max() == pytest.approx(1.0) and row < CORNER and column < CORNER


def test_gradcam_of_the_complement_class_finds_no_evidence_in_the_corner() -> None:
    heatmaps, _ = gradcam.GradCam(corner_model())(corner_images(), class_indices=[0, 0, 0])
    # The corner speaks against class 0: its heatmap must be empty there.
    assert np.all(heatmaps[:, 2:6, 2:6] == 0)


def test_gradcam_on_softmax_model_uses_the_chosen_class() -> None:
    model = corner_model(softmax=True)
    grad_cam = gradcam.GradCam(model)
    heatmaps, probabilities = grad_cam(corner_images())
    np.testing.assert_allclose(probabilities, model.predict(corner_images(), verbose=0), atol=1e-5)
    assert all(_hottest(heatmap)[0] < CORNER and _hottest(heatmap)[1] < CORNER
               for heatmap in heatmaps)
    against, _ = grad_cam(corner_images(), class_indices=[0, 0, 0])
    assert np.all(against[:, 2:6, 2:6] == 0)


def test_gradcam_finds_the_last_conv_inside_a_nested_model() -> None:
    grad_cam = gradcam.GradCam(nested_corner_model())
    assert grad_cam.layer_name == "block/detect"
    heatmaps, _ = grad_cam(corner_images())
    expected, _ = gradcam.GradCam(corner_model())(corner_images())
    np.testing.assert_allclose(heatmaps, expected, atol=1e-5)


def test_gradcam_ignores_augmentation_layers_at_inference() -> None:
    grad_cam = gradcam.GradCam(augmented_corner_model())
    first, _ = grad_cam(corner_images())
    second, _ = grad_cam(corner_images())
    expected, _ = gradcam.GradCam(corner_model())(corner_images())
    np.testing.assert_allclose(first, expected, atol=1e-5)
    np.testing.assert_allclose(second, expected, atol=1e-5)


def test_gradcam_batches_give_the_same_heatmaps_as_single_images() -> None:
    images = corner_images(5, seed=3)
    images[3] = np.random.default_rng(1).integers(0, 255, (SIZE, SIZE, 3))
    grad_cam = gradcam.GradCam(corner_model())
    together, _ = grad_cam(images, batch_size=5)
    one_by_one, _ = grad_cam(images, batch_size=1)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_gradcam_rejects_unknown_layer_and_convless_model() -> None:
    with pytest.raises(ValueError, match="no layer 'nope'"):
        gradcam.GradCam(corner_model(), layer_name="nope")
    inputs = keras.Input((SIZE, SIZE, 3))
    dense_only = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="no Conv2D"):
        gradcam.GradCam(dense_only)


def test_layer_activations_include_nested_layers() -> None:
    layers, weights = _corner_layers()
    rescale, convolution, flatten, dense = layers
    block = keras.Sequential([keras.Input((SIZE, SIZE, 3)), convolution,
                              keras.layers.MaxPooling2D(name="pool")], name="block")
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Dense(1)(flatten(block(rescale(inputs)))))
    convolution.set_weights(weights[0][1])
    activations = interpret.layer_activations(model, corner_images(1)[0])
    assert [(name, maps.shape) for name, maps in activations] == [
        ("block/detect", (SIZE, SIZE, 2)), ("block/pool", (SIZE // 2, SIZE // 2, 2))]
    bright = activations[0][1][..., 0]
    assert bright[3, 3] > 0.4 and bright[20, 20] == 0


def test_first_layer_kernels_are_scaled_rgb_patches() -> None:
    name, patches = interpret.first_layer_kernels(corner_model())
    assert name == "detect"
    assert patches.shape == (2, 3, 3, 3)
    assert patches.min() >= 0 and patches.max() <= 1


def test_filter_patterns_find_the_colour_a_filter_wants() -> None:
    inputs = keras.Input((SIZE, SIZE, 3))
    convolution = keras.layers.Conv2D(2, 3, activation="relu", name="colour")
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(
        convolution(keras.layers.Rescaling(1 / 255)(inputs)))))
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[..., 0, 0], kernel[..., 1:, 0] = 1.0, -1.0   # filter 0: red, not green or blue
    kernel[..., 2, 1], kernel[..., :2, 1] = 1.0, -1.0   # filter 1: blue
    convolution.set_weights([kernel, np.full(2, -5.0, np.float32)])  # silent on grey
    patterns = interpret.filter_patterns(model, "colour", [0, 1], steps=15)
    assert patterns.shape == (2, SIZE, SIZE, 3) and patterns.dtype == np.uint8
    red, blue = patterns[0].reshape(-1, 3).mean(0), patterns[1].reshape(-1, 3).mean(0)
    assert red[0] > red[1] + 20 and red[0] > red[2] + 20
    assert blue[2] > blue[0] + 20 and blue[2] > blue[1] + 20
    with pytest.raises(ValueError, match="filter indices"):
        interpret.filter_patterns(model, "colour", [2])


def test_predict_probabilities_gives_one_column_per_class() -> None:
    probabilities = predict_probabilities(corner_model(), corner_images(), batch_size=2)
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(probabilities[:, 1] > 0.5)


def test_a_model_ending_in_logits_gets_probabilities_and_the_same_heatmaps() -> None:
    model = corner_model()
    head = model.get_layer("classify")
    logits_head = keras.layers.Dense(1, name="logits")
    logits_model = keras.Model(model.input, logits_head(head.input))
    logits_head.set_weights(head.get_weights())
    expected_heatmaps, expected = gradcam.GradCam(model)(corner_images())
    probabilities = predict_probabilities(logits_model, corner_images())
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    heatmaps, gradcam_probabilities = gradcam.GradCam(logits_model)(corner_images())
    np.testing.assert_allclose(gradcam_probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(heatmaps, expected_heatmaps, atol=1e-5)


def test_logits_from_a_nested_head_are_found_by_predict_and_gradcam_alike() -> None:
    model = corner_model()
    head = model.get_layer("classify")
    logits_head = keras.layers.Dense(1, name="logits")
    nested_head = keras.Sequential([keras.Input(head.input.shape[1:]), logits_head], name="head")
    nested_model = keras.Model(model.input, nested_head(head.input))
    logits_head.set_weights(head.get_weights())
    _, expected = gradcam.GradCam(model)(corner_images())
    np.testing.assert_allclose(predict_probabilities(nested_model, corner_images()), expected,
                               atol=1e-6)
    np.testing.assert_allclose(gradcam.GradCam(nested_model)(corner_images())[1], expected,
                               atol=1e-6)


def test_a_sequential_model_works_like_a_functional_one() -> None:
    layers, weights = _corner_layers()
    model = _finish(keras.Sequential([keras.Input((SIZE, SIZE, 3)), *layers]), weights)
    heatmaps, probabilities = gradcam.GradCam(model)(corner_images())
    expected, expected_probabilities = gradcam.GradCam(corner_model())(corner_images())
    np.testing.assert_allclose(heatmaps, expected, atol=1e-5)
    np.testing.assert_allclose(predict_probabilities(model, corner_images()),
                               expected_probabilities, atol=1e-6)


def test_gradcam_activations_and_filters_work_on_a_same_padding_batch_norm_cnn() -> None:
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.models import make_model

    config = BUILTIN_CONFIGS["optimized"].replace(pool_input=False, padding="same",
                                                  batch_norm=True, precision="float32")
    model = make_model(config, 2, (SIZE, SIZE))
    images = corner_images(2)
    grad_cam = gradcam.GradCam(model)
    # The last convolution, found by type, explained where it passes its output on.
    assert grad_cam.layer_name == "relu_3"
    heatmaps, probabilities = grad_cam(images)
    assert heatmaps.shape == (2, SIZE, SIZE) and np.isfinite(heatmaps).all()
    np.testing.assert_allclose(probabilities, predict_probabilities(model, images), atol=1e-5)
    activations = interpret.layer_activations(model, images[0])
    assert [(name, maps.shape) for name, maps in activations] == [
        ("relu_1", (SIZE, SIZE, 16)), ("pool_1", (SIZE // 2, SIZE // 2, 16)),
        ("relu_2", (SIZE // 2, SIZE // 2, 32)), ("pool_2", (SIZE // 4, SIZE // 4, 32)),
        ("relu_3", (SIZE // 4, SIZE // 4, 32)), ("pool_3", (SIZE // 8, SIZE // 8, 32))]
    assert all((maps >= 0).all() for _, maps in activations)    # after the ReLUs
    name, patches = interpret.first_layer_kernels(model)
    assert name == "conv_1" and patches.shape == (16, 3, 3, 3)
    patterns = interpret.filter_patterns(model, "conv_2", [0, 1], steps=3)
    assert patterns.shape == (2, SIZE, SIZE, 3)


def test_author_model_gradcam_on_toon_dog_is_informative(shared_data, author_model_path) -> None:
    from toonvision.data_visualization.evaluation import load_inputs
    from toonvision.model_utils.training.model_io import load_model

    model, info = load_model(author_model_path)
    toontown = shared_data / "toontown"
    data = load_inputs([toontown / "sample_img1.png"], info.class_names, info.image_size,
                       _binary_task())
    dog = data.labels.index("toon_dog")
    heatmaps, probabilities = gradcam.GradCam(model)(data.images[dog:dog + 1])
    heatmap = heatmaps[0]
    assert probabilities[0, 1] > 0.5  # the author's model calls it a toon
    assert heatmap.shape == tuple(info.image_size)
    assert np.all(np.isfinite(heatmap)) and heatmap.std() > 0.01
    row, column = _hottest(heatmap)
    assert 0 <= row < heatmap.shape[0] and 0 <= column < heatmap.shape[1]
    # The hottest region is a region, neither empty nor the whole image. (This "toon_dog"
    # box frames a green door; the model's evidence is the wall above it.)
    hot = heatmap >= 0.8 * heatmap.max()
    assert 0 < hot.mean() < 0.25


def _binary_task():
    from toonvision.labels import make_task

    return make_task("binary")

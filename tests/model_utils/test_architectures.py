"""The CNN as data: the article's model unchanged, each architecture field doing what it says,
clear errors for bad values, and the article's next steps as a shipped configuration file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest

from toonvision import ToonvisionError
from toonvision.data_processing.splits import stratified_split
from toonvision.model_utils.training.architecture import cnn_minimum_side, cnn_output_size
from toonvision.model_utils.training.configs import (
    BUILTIN_CONFIGS,
    config_from_table,
    load_config_file,
    resolve_configs,
)
from toonvision.model_utils.training.models import make_model
from toonvision.model_utils.training.trainer import Trainer

NEXT_STEPS = Path(__file__).resolve().parents[2] / "configs" / "article_next_steps.toml"
NEXT_STEP_NAMES = ["no_first_pool", "dropout_between_blocks", "two_convs_per_block", "batch_norm"]
ARTICLE = BUILTIN_CONFIGS["optimized"]
SMALL = (96, 72)        # (height, width): above every next step's smallest side (72)

# The article's CNN, layer by layer (name, type) after the input.
ARTICLE_LAYERS = [
    ("rescaling", "Rescaling"), ("pool_0", "MaxPooling2D"),
    ("conv_1", "Conv2D"), ("pool_1", "MaxPooling2D"),
    ("conv_2", "Conv2D"), ("pool_2", "MaxPooling2D"),
    ("conv_3", "Conv2D"), ("pool_3", "MaxPooling2D"),
    ("flatten", "Flatten"),
]


def layers_of(model: keras.Model, kind: type) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, kind)]


def names_and_types(model: keras.Model) -> list[tuple[str, str]]:
    return [(layer.name, type(layer).__name__) for layer in model.layers[1:]]


def test_builtin_article_configs_build_exactly_the_article_model() -> None:
    for name in ("baseline", "optimized", "optimized_1e-4", "optimized_1e-5",
                 "optimized_lr1e-4", "optimized_lr1e-5"):
        config = BUILTIN_CONFIGS[name]
        model = make_model(config, 2, (600, 200))
        assert model.count_params() == 25_537, name
        dropout = [("dropout", "Dropout")] if config.dropout else []
        assert names_and_types(model) == [*ARTICLE_LAYERS, *dropout, ("output", "Dense")]
        convolutions = layers_of(model, keras.layers.Conv2D)
        assert [layer.filters for layer in convolutions] == [16, 32, 32]
        assert all(layer.kernel_size == (3, 3) and layer.padding == "valid"
                   and layer.use_bias and layer.activation.__name__ == "relu"
                   for layer in convolutions)
        assert model.get_layer("flatten").output.shape[1:] == (35 * 10 * 32,)
    assert cnn_minimum_side(ARTICLE) == 44
    assert (cnn_output_size(600, ARTICLE), cnn_output_size(200, ARTICLE)) == (35, 10)


def test_same_padding_keeps_the_spatial_size_and_no_first_pool_starts_at_full_size() -> None:
    model = make_model(ARTICLE.replace(pool_input=False, padding="same"), 2, (64, 48))
    assert "pool_0" not in [layer.name for layer in model.layers]
    for layer in layers_of(model, keras.layers.Conv2D):
        assert layer.padding == "same"
        assert layer.input.shape[1:3] == layer.output.shape[1:3]
    assert model.get_layer("conv_1").input.shape[1:3] == (64, 48)
    assert model.get_layer("flatten").output.shape[1:] == (8 * 6 * 32,)


def test_two_convolutions_per_block_give_two_conv2d_per_block() -> None:
    model = make_model(ARTICLE.replace(convs_per_block=2), 2, SMALL)
    names = [layer.name for layer in layers_of(model, keras.layers.Conv2D)]
    assert names == ["conv_1_1", "conv_1_2", "conv_2_1", "conv_2_2", "conv_3_1", "conv_3_2"]
    assert [layer.filters for layer in layers_of(model, keras.layers.Conv2D)] == [16, 16, 32,
                                                                                  32, 32, 32]
    order = [layer.name for layer in model.layers]
    assert order.index("conv_1_2") < order.index("pool_1") < order.index("conv_2_1")
    uneven = make_model(ARTICLE.replace(convs_per_block=[1, 2, 3], padding="same"), 2, SMALL)
    assert len(layers_of(uneven, keras.layers.Conv2D)) == 6


def test_batch_norm_puts_normalization_between_a_biasless_convolution_and_relu() -> None:
    model = make_model(ARTICLE.replace(batch_norm=True), 2, (600, 200))
    order = names_and_types(model)
    for block in (1, 2, 3):
        index = order.index((f"conv_{block}", "Conv2D"))
        assert order[index + 1:index + 3] == [(f"batch_norm_{block}", "BatchNormalization"),
                                              (f"relu_{block}", "Activation")]
        convolution = model.get_layer(f"conv_{block}")
        assert not convolution.use_bias and convolution.activation.__name__ == "linear"
    # 80 biases fewer, 4 values per channel more (2 of them moving statistics).
    assert model.count_params() == 25_537 - 80 + 4 * 80
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    assert trainable == 25_537 - 80 + 2 * 80


def test_global_average_pooling_replaces_flatten() -> None:
    model = make_model(ARTICLE.replace(head="global_average"), 2, (600, 200))
    assert not layers_of(model, keras.layers.Flatten)
    assert model.get_layer("global_average_pooling").output.shape[1:] == (32,)
    assert model.count_params() == 14_336 + 33


def test_pooling_dropout_and_kernel_size_per_block() -> None:
    config = ARTICLE.replace(conv_filters=[8, 16, 16, 24], block_pooling=[True, False, True, True],
                             block_dropout=[0.0, 0.3, 0.0, 0.1], kernel_size=5, padding="same")
    model = make_model(config, 3, SMALL)
    names = [layer.name for layer in model.layers]
    assert [name for name in names if name.startswith("pool_")] == ["pool_0", "pool_1",
                                                                    "pool_3", "pool_4"]
    rates = {layer.name: layer.rate for layer in layers_of(model, keras.layers.Dropout)}
    assert rates == {"dropout_2": 0.3, "dropout_4": 0.1, "dropout": 0.9}
    assert names.index("conv_2") < names.index("dropout_2") < names.index("conv_3")
    assert all(layer.kernel_size == (5, 5) for layer in layers_of(model, keras.layers.Conv2D))
    assert model.output_shape == (None, 3)


def test_the_smallest_side_follows_the_architecture() -> None:
    two_convs = ARTICLE.replace(name="two", convs_per_block=2)
    assert cnn_minimum_side(two_convs) == 72
    assert cnn_minimum_side(ARTICLE.replace(pool_input=False, padding="same")) == 8
    # 5x5 valid convolutions lose 4 pixels each: 1 <- 2 <- 6 <- 12 <- 16 <- 32 <- 36 <- 72.
    assert cnn_minimum_side(ARTICLE.replace(kernel_size=5)) == 72
    make_model(two_convs, 2, (72, 72))
    with pytest.raises(ToonvisionError, match=r"too small for the CNN of config 'two': each "
                                              r"side must be at least 72 pixels"):
        make_model(two_convs, 2, (96, 71))


@pytest.mark.parametrize(("changes", "message"), [
    ({"padding": "sme"}, r"padding must be one of valid, same; got 'sme' \(did you mean "
                         r"'same'\?\)"),
    ({"head": "global_averag"}, r"head must be one of flatten, global_average; got "
                                r"'global_averag' \(did you mean 'global_average'\?\)"),
    ({"conv_filters": []}, r"conv_filters must be a non-empty list"),
    ({"conv_filters": 16}, r"conv_filters must be a non-empty list .* got 16"),
    ({"kernel_size": 0}, r"kernel_size must be a whole number >= 1"),
    ({"pool_input": "yes"}, r"pool_input must be true or false"),
    ({"convs_per_block": 0}, r"convs_per_block must be a whole number >= 1"),
    ({"block_pooling": [True, False]}, r"block_pooling must be one value or a list of 3 "
                                       r"\(one per block of conv_filters \[16, 32, 32\]\)"),
    ({"block_dropout": 1.0}, r"block_dropout must be a rate in \[0, 1\)"),
])
def test_invalid_architecture_values_are_clear_errors(changes: dict, message: str) -> None:
    with pytest.raises(ToonvisionError, match=message):
        ARTICLE.replace(**changes)


def test_misspelt_architecture_fields_get_a_did_you_mean(tmp_path: Path) -> None:
    with pytest.raises(ToonvisionError, match=r"unknown config field 'batchnorm' \(did you "
                                              r"mean 'batch_norm'\?\)"):
        ARTICLE.replace(batchnorm=True)
    config_file = tmp_path / "configs.toml"
    config_file.write_text('[configs.typo]\nbase = "optimized"\nconv_filter = [8]\n',
                           encoding="utf-8")
    with pytest.raises(ToonvisionError, match=r"configs\.typo: unknown field 'conv_filter' "
                                              r"\(did you mean 'conv_filters'\?\)"):
        load_config_file(config_file)
    config_file.write_text('[configs.bad]\nbase = "optimized"\npadding = "sam"\n',
                           encoding="utf-8")
    with pytest.raises(ToonvisionError, match=r"configs\.bad: .*\(did you mean 'same'\?\)"):
        load_config_file(config_file)


def test_architecture_survives_toml_and_json_as_tuples(tmp_path: Path) -> None:
    config_file = tmp_path / "configs.toml"
    config_file.write_text('[configs.wide]\nbase = "optimized"\nconv_filters = [8, 16]\n'
                           'block_dropout = [0.1, 0.0]\nconvs_per_block = 2\n', encoding="utf-8")
    wide = load_config_file(config_file)["wide"]
    assert (wide.conv_filters, wide.block_dropout, wide.convs_per_block) == ((8, 16), (0.1, 0.0),
                                                                             2)
    # As `comparison.json` stores it: the fields of `dataclasses.asdict`, lists for tuples.
    table = {key: list(value) if isinstance(value, tuple) else value
             for key, value in dataclasses.asdict(wide).items() if key != "name"}
    assert config_from_table("wide", table, BUILTIN_CONFIGS, "comparison.json") == wide


def test_article_next_steps_load_and_each_differs_from_optimized_as_documented() -> None:
    configs = load_config_file(NEXT_STEPS)
    assert list(configs) == NEXT_STEP_NAMES
    expected = {
        "no_first_pool": ({"pool_input": False, "padding": "same"}, 74_337),
        "dropout_between_blocks": ({"block_dropout": (0.25, 0.25, 0.0)}, 25_537),
        "two_convs_per_block": ({"convs_per_block": 2}, 44_945),
        "batch_norm": ({"batch_norm": True}, 25_777),
    }
    for name, (changes, parameters) in expected.items():
        config = configs[name]
        assert config == ARTICLE.replace(name=name, **changes)
        assert make_model(config, 2, (600, 200)).count_params() == parameters, name
    resolved = resolve_configs(["optimized", *NEXT_STEP_NAMES], NEXT_STEPS)
    assert [config.name for config in resolved] == ["optimized", *NEXT_STEP_NAMES]


def test_article_next_steps_train_on_tiny_images_and_explain_with_gradcam() -> None:
    from toonvision.data_visualization.gradcam import GradCam

    rng = np.random.default_rng(0)
    y = np.arange(24) % 2
    images = (rng.integers(0, 40, size=(24, *SMALL, 3)) + 200 * y[:, None, None, None]
              ).astype(np.uint8)
    split = stratified_split(y, seed=0)
    for name, config in load_config_file(NEXT_STEPS).items():
        trainer = Trainer(config.replace(epochs=1, batch_size=8), 2, SMALL)
        assert trainer.pools_input == config.pool_input
        assert (trainer.training_model is trainer.model) == (not config.pool_input)
        result = trainer.run(images, y, split, seed=0)
        assert result.epochs_run == 1 and np.isfinite(result.history["loss"]).all(), name
        heatmaps, probabilities = GradCam(trainer.model)(images[:2])
        assert heatmaps.shape == (2, *SMALL) and np.isfinite(heatmaps).all(), name
        assert probabilities.shape == (2, 2)

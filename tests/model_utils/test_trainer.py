"""Tests of the article's models, the configurations and the reusable Trainer (tiny images)."""

from __future__ import annotations

import threading
from pathlib import Path

import keras
import numpy as np
import pytest

from toonvision import ToonvisionError
from toonvision.data_processing.splits import stratified_split
from toonvision.model_utils.training import augment
from toonvision.model_utils.training.augment import max_pool_2x2
from toonvision.model_utils.training.configs import (
    BUILTIN_CONFIGS,
    TrainingConfig,
    load_config_file,
    resolve_configs,
)
from toonvision.model_utils.training.models import (
    loss_and_metrics,
    make_model,
    make_optimizer,
    predict_parts,
    predict_probabilities,
)
from toonvision.model_utils.training.trainer import (
    RunResult,
    Trainer,
    array_stream,
    targets_for,
    training_model_after_first_pooling,
)

IMAGE_SIZE = (96, 48)      # (height, width): the article's 3:1 shape, near the CNN's smallest


def bright_and_dark(count: int = 120, classes: int = 2, seed: int = 0) -> tuple[np.ndarray, ...]:
    """An easy task: images of class k are noise of width 40 from brightness 215 k / (classes-1)."""
    rng = np.random.default_rng(seed)
    y = np.arange(count) % classes
    noise = rng.integers(0, 40, size=(count, *IMAGE_SIZE, 3))
    images = (noise + 215 * y[:, None, None, None] // (classes - 1)).astype(np.uint8)
    return images, y, stratified_split(y, seed=seed)


def quick(name: str, **changes: object) -> TrainingConfig:
    """A built-in config shortened for tests."""
    settings = {"epochs": 2, "batch_size": 8, "learning_rate": 3e-3, **changes}
    return BUILTIN_CONFIGS[name].replace(**settings)


class WeightRecorder(keras.callbacks.Callback):
    """Remembers the model's weights when training starts and ends."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.initial = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.final = self.model.get_weights()


@pytest.fixture
def tf_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(name of the Python function, whether the call traced it) for every call of a
    tf.function from now on: what TensorFlow's "N out of the last M calls to <function ...>
    triggered tf.function retracing" warning counts, per Python function."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function traces are TensorFlow's")
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    manager = polymorphic_function._frequent_tracing_detector_manager
    calls: list[tuple[str, bool]] = []

    class Recording:
        def called_without_tracing(self, key: object) -> None:
            calls.append((getattr(key, "co_name", repr(key)), False))
            manager.called_without_tracing(key)

        def called_with_tracing(self, key: object, function: object, omit_warning: bool) -> None:
            calls.append((getattr(key, "co_name", repr(key)), True))
            manager.called_with_tracing(key, function, omit_warning)

    monkeypatch.setattr(polymorphic_function, "_frequent_tracing_detector_manager",
                        Recording())
    return calls


def traced(calls: list[tuple[str, bool]]) -> list[str]:
    """The functions that `calls` traced, one name per trace."""
    return [name for name, tracing in calls if tracing]


def would_warn(calls: list[tuple[str, bool]], name: str) -> bool:
    """Whether TensorFlow's retracing warning, fresh, would fire on these calls of `name`."""
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    detector = polymorphic_function._FrequentTracingDetector()
    for called, tracing in calls:
        if called == name and tracing:
            detector.called_with_tracing(name, omit_warning=False)
        elif called == name:
            detector.called_without_tracing()
    return detector._total_warning_count > 0


@pytest.fixture(scope="module")
def binary_task() -> tuple[np.ndarray, ...]:
    return bright_and_dark()


@pytest.fixture(scope="module")
def baseline_trainer() -> Trainer:
    # 4 epochs: with 2, one seed in six still sits at chance after its first steps.
    return Trainer(quick("baseline", epochs=4), 2, IMAGE_SIZE)


def test_binary_cnn_has_the_article_parameter_count() -> None:
    for name in ("baseline", "optimized"):
        model = make_model(BUILTIN_CONFIGS[name], 2, (600, 200))
        assert model.count_params() == 25_537
        assert model.input_shape == (None, 600, 200, 3)
        assert model.output_shape == (None, 1)
    assert make_model(BUILTIN_CONFIGS["baseline"], 4, (600, 200)).output_shape == (None, 4)


def test_cnn_rejects_images_too_small_for_its_layers() -> None:
    with pytest.raises(ValueError, match="too small"):
        make_model(BUILTIN_CONFIGS["baseline"], 2, (40, 40))


def test_mlp_family_layers_follow_the_config() -> None:
    model = make_model(BUILTIN_CONFIGS["mlp"], 9, (64, 64))
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [256, 128, 9]
    assert model.count_params() == (12288 * 256 + 256) + (256 * 128 + 128) + (128 * 9 + 9)
    assert dense[-1].activation.__name__ == "softmax"

    variant = BUILTIN_CONFIGS["mlp"].replace(hidden_units=(32,), hidden_activation="linear",
                                             output_activation="none")
    dense = [layer for layer in make_model(variant, 9, (64, 64)).layers
             if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [32, 9]
    assert [layer.activation.__name__ for layer in dense] == ["linear", "linear"]


def test_builtin_configs_match_the_article() -> None:
    baseline, optimized = BUILTIN_CONFIGS["baseline"], BUILTIN_CONFIGS["optimized"]
    assert (baseline.learning_rate, baseline.decay, baseline.dropout,
            baseline.augmentation) == (1e-3, 0.0, 0.0, False)
    assert (optimized.learning_rate, optimized.decay, optimized.dropout,
            optimized.augmentation) == (1e-3, 1e-5, 0.9, True)
    # The article's names are decay values, at its learning rate of 1e-3.
    for name, decay in (("optimized_1e-4", 1e-4), ("optimized_1e-5", 1e-5)):
        assert BUILTIN_CONFIGS[name] == optimized.replace(name=name, decay=decay)
    # The learning-rate variants say so in their names.
    for name, learning_rate in (("optimized_lr1e-4", 1e-4), ("optimized_lr1e-5", 1e-5)):
        assert BUILTIN_CONFIGS[name] == optimized.replace(name=name, learning_rate=learning_rate)
    assert BUILTIN_CONFIGS["mlp"].early_stopping_patience == 5


def test_unknown_config_name_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*known: baseline, optimized"):
        resolve_configs(["baseline", "nope"])
    with pytest.raises(ValueError, match="dropout must be in"):
        TrainingConfig(name="bad", dropout=1.5)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainingConfig(name="bad", optimizer="lion")
    with pytest.raises(ValueError, match="interpolation must be one of bilinear, nearest"):
        TrainingConfig(name="bad", interpolation="cubic")


def test_unknown_config_and_field_names_get_a_did_you_mean() -> None:
    with pytest.raises(ValueError, match=r"unknown configuration 'optimised' \(did you mean "
                                         r"'optimized'\?\); known: baseline, optimized"):
        resolve_configs(["optimised"])
    with pytest.raises(ValueError, match=r"unknown config field 'drop_out' \(did you mean "
                                         r"'dropout'\?\); known: name, family"):
        BUILTIN_CONFIGS["baseline"].replace(drop_out=0.5)


def test_toml_config_file_loads_with_bases_and_overrides(tmp_path: Path) -> None:
    config_file = tmp_path / "configs.toml"
    config_file.write_text(
        '[configs.small_batch]\nbase = "optimized"\nbatch_size = 16\nlearning_rate = 5e-4\n\n'
        '[configs.wide_mlp]\nbase = "mlp"\nhidden_units = [512, 256]\n'
        'hidden_activation = "sigmoid"\nearly_stopping_patience = false\n\n'
        '[configs.derived]\nbase = "small_batch"\ndropout = 0.5\ninterpolation = "nearest"\n',
        encoding="utf-8")
    configs = load_config_file(config_file)
    assert list(configs) == ["small_batch", "wide_mlp", "derived"]
    small = configs["small_batch"]
    assert (small.batch_size, small.learning_rate, small.dropout, small.augmentation,
            small.decay) == (16, 5e-4, 0.9, True, 1e-5)
    assert configs["wide_mlp"].hidden_units == (512, 256)
    assert configs["wide_mlp"].early_stopping_patience is None
    assert configs["derived"].batch_size == 16 and configs["derived"].dropout == 0.5
    assert configs["derived"].interpolation == "nearest" and small.interpolation == "bilinear"
    resolved = resolve_configs(["baseline", "derived"], config_file)
    assert [config.name for config in resolved] == ["baseline", "derived"]

    config_file.write_text('[configs.typo]\nlearning_rat = 0.1\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"configs\.toml: configs\.typo: unknown field "
                                         r"'learning_rat' \(did you mean 'learning_rate'\?\)"):
        load_config_file(config_file)
    config_file.write_text('[configs.typo]\nbase = "optimised"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown base 'optimised' \(did you mean "
                                         r"'optimized'\?\)"):
        load_config_file(config_file)
    config_file.write_text('[configs.orphan]\nbase = "missing"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown base 'missing'"):
        load_config_file(config_file)


def test_baseline_learns_an_easy_task(baseline_trainer: Trainer, binary_task: tuple) -> None:
    images, y, split = binary_task
    result = baseline_trainer.run(images, y, split, seed=1)
    assert isinstance(result, RunResult)
    assert result.epochs_run == 4 and result.config == "baseline"
    assert set(result.history) >= {"loss", "accuracy", "precision", "recall", "val_loss",
                                   "val_accuracy", "val_precision", "val_recall"}
    assert result.test_metrics["accuracy"] >= 0.8
    assert set(result.validation_metrics) >= {"loss", "accuracy", "precision", "recall"}
    # The last epoch validated on the validation split, as `evaluate` of its arrays does.
    for key in ("loss", "accuracy", "precision"):
        assert result.history[f"val_{key}"][-1] == pytest.approx(
            result.validation_metrics[key], rel=1e-5)


def test_optimized_learns_and_really_augments(binary_task: tuple,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    images, y, split = binary_task
    augmented_batches = []
    original = augment.augment_images

    interpolations: set[str] = set()

    def recording_augment(batch: np.ndarray, rng: np.random.Generator, pool: bool = False,
                          interpolation: str = "bilinear") -> np.ndarray:
        result = original(batch, rng, pool=pool, interpolation=interpolation)
        augmented_batches.append((max_pool_2x2(batch) if pool else batch, result))
        interpolations.add(interpolation)
        return result

    monkeypatch.setattr(augment, "augment_images", recording_augment)
    # 6 epochs: in float32 (CPUs without native bfloat16) seed 1 still sat at chance after 3
    # and at 0.71 after 4; with 6, seeds 1-8 all reach 1.0.
    trainer = Trainer(quick("optimized", epochs=6, dropout=0.5), 2, IMAGE_SIZE)
    assert trainer.model is not None          # builds and traces the model
    augmented_batches.clear()
    result = trainer.run(images, y, split, seed=1)
    assert result.test_metrics["accuracy"] >= 0.8
    # Training saw warped images: every training batch went through the augmentation (Keras
    # may also fetch a batch ahead to learn the data's shape).
    assert len(augmented_batches) >= 6 * int(np.ceil(len(split["train"]) / 8))
    assert all(not np.array_equal(before, after) for before, after in augmented_batches)
    assert interpolations == {"bilinear"}     # the article's, as the config says
    # Inference is deterministic and unaugmented: the model is the same plain function.
    test_images = images[split["test"]]
    first = predict_probabilities(trainer.model, test_images)
    second = predict_probabilities(trainer.model, test_images)
    np.testing.assert_array_equal(first, second)
    direct = np.asarray(trainer.model(test_images.astype(np.float32), training=False))
    np.testing.assert_allclose(first[:, 1], direct[:, 0], atol=2e-2)  # bfloat16 compute


def test_runs_never_trace_the_train_and_test_steps_again(
        binary_task: tuple, tf_calls: list[tuple[str, bool]]) -> None:
    images, y, _ = binary_task
    # Both trainers built first, then the runs (`compare` now builds each on first use,
    # which spreads the builds' traces over the runs: this is the harder case).
    trainers = [Trainer(quick(name, epochs=1), 2, IMAGE_SIZE)
                for name in ("baseline", "optimized")]
    for trainer in trainers:
        assert trainer.model is not None
    # Each trainer traces its train and test steps, and its full model's predict step for
    # one batch shape and then for any (None, ...).
    assert traced(tf_calls) == (["multi_step_on_iterator"] * 2
                                + ["one_step_on_data_distributed"] * 2) * 2
    per_run = []
    # Splits of 120, 99 and 79 images: 72 training images are 9 whole batches of 8 (a static
    # batch dimension), 59 and 47 end in a partial batch; parts of 24, 20 and 16 images.
    for run, count in enumerate((120, 99, 79)):
        split = stratified_split(y[:count], seed=run)
        start = len(tf_calls)
        for trainer in trainers:
            trainer.run(images, y, split, seed=run)
            predict_parts(trainer.model, images, split)
        per_run.append(traced(tf_calls[start:]))
    # Before, the warm-up's static (4, ...) batches made the baseline's run 0 trace its train
    # step again: the fifth trace of `multi_step_on_iterator` in five calls, and the warning.
    assert [names.count("multi_step_on_iterator") for names in per_run] == [0, 0, 0]
    assert not would_warn(tf_calls, "multi_step_on_iterator")
    # Before, each full model's predict step was traced for its first batch size in run 0
    # and once more, for any size, when a second one came: with three configurations six
    # traces in six calls, the same warning. Now no run traces anything.
    assert per_run == [[], [], []]
    assert not would_warn(tf_calls, "one_step_on_data_distributed")


def test_training_on_pooled_images_is_the_full_model(baseline_trainer: Trainer,
                                                    binary_task: tuple) -> None:
    images = binary_task[0][:10]
    full = np.asarray(baseline_trainer.model.predict_on_batch(images.astype(np.float32)))
    pooled = np.asarray(baseline_trainer.training_model.predict_on_batch(max_pool_2x2(images)))
    np.testing.assert_array_equal(full, pooled)
    assert all(a is b for a, b in zip(baseline_trainer.model.trainable_variables,
                                      baseline_trainer.training_model.trainable_variables,
                                      strict=True))


def test_training_on_pooled_images_is_training_the_full_model_on_full_images(
        binary_task: tuple) -> None:
    images, y, split = binary_task
    config = quick("baseline", precision="float32")
    result = Trainer(config, 2, IMAGE_SIZE).run(images, y, split, seed=3)
    # The same run without pre-pooling: the full model fitted on the full-size images, its
    # weights and shuffling seeded as `Trainer.reinitialise` seeds them.
    model = make_model(config, 2, IMAGE_SIZE)
    loss, metrics = loss_and_metrics(config, 2)
    model.compile(optimizer=make_optimizer(config), loss=loss, metrics=metrics)
    keras.utils.set_random_seed(3)
    for target, source in zip(model.variables, make_model(config, 2, IMAGE_SIZE).variables,
                              strict=True):
        target.assign(source)
    train, validate = split["train"], split["validate"]
    history = model.fit(images[train].astype(np.float32), targets_for(y[train], 2),
                        batch_size=config.batch_size, shuffle=True, epochs=config.epochs,
                        validation_data=(images[validate].astype(np.float32),
                                         targets_for(y[validate], 2)), verbose=0)
    np.testing.assert_allclose(result.history["loss"], history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(result.history["val_loss"], history.history["val_loss"],
                               rtol=1e-6)


def test_only_a_cnn_that_pools_its_input_first_trains_on_pooled_images() -> None:
    assert Trainer(quick("baseline"), 2, IMAGE_SIZE).pools_input
    assert not Trainer(quick("baseline", pool_input=False), 2, IMAGE_SIZE).pools_input
    assert not Trainer(quick("mlp"), 2, IMAGE_SIZE).pools_input
    unpooled = make_model(quick("baseline", pool_input=False, padding="same"), 2, IMAGE_SIZE)
    with pytest.raises(ToonvisionError, match="does not begin with Rescaling -> MaxPooling2D"):
        training_model_after_first_pooling(unpooled)
    pooled = training_model_after_first_pooling(make_model(quick("baseline"), 2, IMAGE_SIZE))
    assert pooled.input_shape == (None, IMAGE_SIZE[0] // 2, IMAGE_SIZE[1] // 2, 3)


def test_baseline_config_never_augments(baseline_trainer: Trainer, binary_task: tuple,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    images, y, split = binary_task
    calls = []
    monkeypatch.setattr(augment, "augment_images",
                        lambda batch, rng, **options: calls.append(1) or batch)
    baseline_trainer.run(images, y, split, seed=4)
    assert calls == []


def test_augmentation_warps_with_the_configs_interpolation(
        binary_task: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    images, y, split = binary_task
    seen: set[str] = set()
    original = augment.augment_images
    monkeypatch.setattr(augment, "augment_images",
                        lambda batch, rng, **options: seen.add(options["interpolation"])
                        or original(batch, rng, **options))
    for interpolation in ("nearest", "bilinear"):
        seen.clear()
        trainer = Trainer(quick("optimized", epochs=1, interpolation=interpolation), 2,
                          IMAGE_SIZE)
        trainer.run(images, y, split, seed=0)
        assert seen == {interpolation}


class EnqueuedFeed(keras.utils.PyDataset):
    """How earlier versions fed augmented batches: a finite `PyDataset` that Keras shuffles
    (batch order from Python's `random`) and reads through its enqueuer in 2 threads; Keras
    ends an epoch of it as `fit` begins, so its first epoch is numbered 1."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 pool: bool) -> None:
        super().__init__(workers=2, use_multiprocessing=False, max_queue_size=4)
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.seed, self.pool, self.epoch = seed, pool, 0
        self.order = np.random.default_rng((seed, 0)).permutation(len(images))

    def __len__(self) -> int:
        return int(np.ceil(len(self.images) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return (augment.augment_images(self.images[chosen], rng, pool=self.pool),
                self.labels[chosen])

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = np.random.default_rng((self.seed, self.epoch)).permutation(
            len(self.images))


def test_the_feed_trains_what_keras_enqueuer_trained_and_leaves_no_thread(
        binary_task: tuple) -> None:
    images, y, split = binary_task
    trainer = Trainer(quick("optimized", epochs=3), 2, IMAGE_SIZE)
    result = trainer.run(images, y, split, seed=4)
    assert not [thread for thread in threading.enumerate()
                if thread.name.startswith("toonvision-augment")]
    # The same run fed the earlier way: same seed, same re-initialisation, Keras' enqueuer.
    trainer.reinitialise(4)
    train, validate = split["train"], split["validate"]
    inputs = max_pool_2x2(images)
    reference = trainer.training_model.fit(
        EnqueuedFeed(images[train], targets_for(y[train], 2), 8, seed=4, pool=True),
        validation_data=(inputs[validate], targets_for(y[validate], 2)),
        validation_batch_size=64, epochs=3, verbose=0)
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(result.history[key], reference.history[key], rtol=1e-5)


def test_unaugmented_runs_train_what_keras_trained_on_the_arrays(binary_task: tuple) -> None:
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the endless array stream is the TensorFlow path")
    images, y, split = binary_task
    trainer = Trainer(quick("baseline", epochs=3), 2, IMAGE_SIZE)
    result = trainer.run(images, y, split, seed=5)
    # The same run fed the earlier way: same seed, same re-initialisation, the arrays to fit.
    trainer.reinitialise(5)
    train, validate = split["train"], split["validate"]
    inputs = max_pool_2x2(images)
    reference = trainer.training_model.fit(
        inputs[train], targets_for(y[train], 2), batch_size=8, shuffle=True,
        validation_data=(inputs[validate], targets_for(y[validate], 2)),
        validation_batch_size=64, epochs=3, verbose=0)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(result.history[key], reference.history[key], rtol=1e-5)


def test_the_array_stream_repeats_one_shuffled_order_drawn_from_the_seed() -> None:
    inputs = np.arange(20, dtype=np.uint8)[:, None]
    targets = inputs[:, 0] % 2

    def first_batches(seed: int, count: int) -> list[list[int]]:
        keras.utils.set_random_seed(seed)
        stream = iter(array_stream(inputs, targets, batch_size=8))
        batches = []
        for _ in range(count):
            batch, labels = next(stream)
            np.testing.assert_array_equal(labels.numpy(), batch.numpy()[:, 0] % 2)
            batches.append(batch.numpy()[:, 0].tolist())
        return batches

    batches = first_batches(3, 6)       # two epochs of 8 + 8 + 4
    assert [len(batch) for batch in batches] == [8, 8, 4] * 2
    epoch = sum(batches[:3], [])
    assert sorted(epoch) == list(range(20)) and epoch != list(range(20))
    assert batches[3:] == batches[:3]
    assert first_batches(3, 3) == batches[:3]
    assert first_batches(4, 3) != batches[:3]


def test_reused_trainer_reinitialises_and_matches_a_fresh_one(baseline_trainer: Trainer,
                                                              binary_task: tuple) -> None:
    images, y, split = binary_task
    first_run, second_run, fresh_run = WeightRecorder(), WeightRecorder(), WeightRecorder()
    first = baseline_trainer.run(images, y, split, seed=1, extra_callbacks=[first_run])
    second = baseline_trainer.run(images, y, split, seed=2, extra_callbacks=[second_run])
    fresh_trainer = Trainer(quick("baseline", epochs=4), 2, IMAGE_SIZE)
    fresh = fresh_trainer.run(images, y, split, seed=2, extra_callbacks=[fresh_run])

    assert not all(np.array_equal(a, b)
                   for a, b in zip(second_run.initial, first_run.final, strict=True))
    for reused, new in zip(second_run.initial, fresh_run.initial, strict=True):
        np.testing.assert_array_equal(reused, new)
    # Same seed, same result (as exactly as the CPU kernels allow).
    np.testing.assert_allclose(second.history["loss"], fresh.history["loss"], rtol=1e-4)
    assert second.test_metrics["accuracy"] == pytest.approx(fresh.test_metrics["accuracy"])
    assert first.setup_seconds >= 0 and second.setup_seconds < fresh.setup_seconds
    epochs = []
    baseline_trainer.run(images, y, split, seed=2,
                         epoch_callback=lambda epoch, logs: epochs.append((epoch, logs)))
    assert [epoch for epoch, _ in epochs] == [0, 1, 2, 3]
    assert epochs[-1][1]["loss"] == pytest.approx(second.history["loss"][-1], rel=1e-4)


def test_early_stopping_stops_and_restores_the_best_weights() -> None:
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(60, 16, 16, 3), dtype=np.uint8)
    y = np.arange(60) % 2                          # noise labels: validation loss soon rises
    config = quick("mlp", hidden_units=(32,), epochs=40, learning_rate=1e-2,
                   early_stopping_patience=1)
    result = Trainer(config, 2, (16, 16)).run(images, y, stratified_split(y, seed=5), seed=5)
    assert result.epochs_run < 40
    assert result.epochs_run == len(result.history["val_loss"])
    assert result.validation_metrics["loss"] == pytest.approx(min(result.history["val_loss"]),
                                                              rel=1e-3)


def test_multiclass_run_reports_macro_f1() -> None:
    images, y, split = bright_and_dark(count=90, classes=3, seed=2)
    result = Trainer(quick("baseline"), 3, IMAGE_SIZE).run(images, y, split, seed=0)
    assert {"macro_f1", "val_macro_f1", "accuracy"} <= set(result.history)
    assert 0.0 <= result.test_metrics["macro_f1"] <= 1.0
    assert {"loss", "accuracy", "macro_f1"} <= set(result.test_metrics)


def test_predict_probabilities_gives_one_row_per_image_summing_to_one() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(5, *IMAGE_SIZE, 3), dtype=np.uint8)
    for classes, output_activation in ((2, "auto"), (3, "auto"), (3, "none"), (2, "none")):
        config = BUILTIN_CONFIGS["baseline"].replace(output_activation=output_activation)
        probabilities = predict_probabilities(make_model(config, classes, IMAGE_SIZE), images,
                                              batch_size=2)
        assert probabilities.shape == (5, classes)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        assert (probabilities >= 0).all()


def test_trainer_rejects_mismatched_images(baseline_trainer: Trainer) -> None:
    images = np.zeros((4, 50, 50, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"shape \(N, 96, 48, 3\)"):
        baseline_trainer.run(images, np.zeros(4, dtype=int), {"train": np.arange(4)}, seed=0)

"""A fast trainer for repeated runs of one configuration's model.

`make_model` builds the ToonVision CNN (or the Pokemon deck's MLP) from a `TrainingConfig`.
`Trainer` builds and compiles that model once and then trains it many times, re-initialising
weights, optimizer state and random seeds for each run from the run's seed: the ~3 s spent
building and tracing a Keras model is paid once per configuration, not once per run.

Speed, measured on a 2-core CPU with AMX-BF16 (docs/training.md has the figures):
- augmentation is one OpenCV affine warp per image in the data feed (`toonvision.augment`)
  instead of Keras RandomRotation + RandomZoom layers (~5 ms per image each on a CPU);
- the `mixed_bfloat16` dtype policy where the CPU computes bfloat16 natively (the output
  layer stays float32);
- one compiled model per configuration, re-initialised per run;
- for the MLP, `steps_per_execution` and XLA on TensorFlow (its fused Adam update);
- the CNN's first Rescaling + MaxPooling2D (where its configuration pools the input first, as
  the article's does) done on the uint8 images before training (exactly the same numbers, a
  quarter of the data to move).
The training path uses only `keras.*`, numpy and OpenCV, so it runs on any Keras backend.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from toonvision import ToonvisionError
from toonvision.model_utils.training.augment import (
    TrainingFeed,
    max_pool_2x2,
    without_autotuning,
)
from toonvision.model_utils.training.configs import TrainingConfig
from toonvision.model_utils.training.models import (
    loss_and_metrics,
    make_model,
    make_optimizer,
    uses_xla,
)

if TYPE_CHECKING:
    import tensorflow as tf

LOGGER = logging.getLogger(__name__)

# Batches per compiled call for the MLP: its steps are so small that Python overhead between
# steps dominates (measured in benchmarks/bench_mlp.py).
MLP_STEPS_PER_EXECUTION = 16
EVALUATION_BATCH_SIZE = 64


@dataclass
class RunResult:
    """What one training run produced.

    Attributes:
        config: the configuration's name.
        seed: the run's seed.
        history: per-epoch values: loss, accuracy, val_loss, val_accuracy, plus
            precision/recall (binary) or macro_f1 (multiclass) and their val_ versions.
        validation_metrics: metrics of the final (or restored best) model on validation.
        test_metrics: the same metrics on the test split (empty when it is empty).
        epochs_run: epochs trained (fewer than configured when early stopping stopped).
        setup_seconds: model build (first run only), re-initialisation and tracing.
        train_seconds: training and evaluation.
    """

    config: str
    seed: int
    history: dict[str, list[float]]
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    epochs_run: int
    setup_seconds: float
    train_seconds: float


def targets_for(y: np.ndarray, num_classes: int) -> np.ndarray:
    """The training targets for class indices `y`: (N, 1) float32 for binary, (N,) int64."""
    y = np.asarray(y)
    if num_classes == 2:
        return y.reshape(-1, 1).astype(np.float32)
    return y.astype(np.int64)


class _EpochReporter(keras.callbacks.Callback):
    """Passes each epoch's logs to a plain function."""

    def __init__(self, report: Callable[[int, dict[str, float]], None]) -> None:
        super().__init__()
        self.report = report

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.report(epoch, {key: float(value) for key, value in (logs or {}).items()})


def training_model_after_first_pooling(model: keras.Model) -> keras.Model:
    """A model sharing `model`'s layers that takes images already 2x2 max-pooled.

    A CNN whose configuration has `pool_input` begins Rescaling -> MaxPooling2D(2).
    Rescaling is monotonic, so pooling the uint8 images first (`augment.max_pool_2x2`) and
    then rescaling gives exactly the same numbers; training on pooled images moves a quarter
    of the data and skips a full-size pass.

    Args:
        model: a CNN from `make_model` whose input is pooled first.

    Returns:
        A functional model with input (height // 2, width // 2, 3) and the same weights.

    Raises:
        ToonvisionError: when the model does not begin with Rescaling -> MaxPooling2D(2).
    """
    layers = model.layers[1:]                  # after the input layer
    if not (len(layers) >= 2 and isinstance(layers[0], keras.layers.Rescaling)
            and isinstance(layers[1], keras.layers.MaxPooling2D)
            and tuple(layers[1].pool_size) == (2, 2) and tuple(layers[1].strides) == (2, 2)):
        raise ToonvisionError(f"model {model.name!r} does not begin with Rescaling -> "
                              "MaxPooling2D(2); its input cannot be pooled ahead")
    rescaling, pooling, *rest = layers
    height, width = model.input_shape[1:3]
    inputs = keras.Input(shape=(height // 2, width // 2, 3), name="pooled_image")
    features = rescaling(inputs)
    for layer in rest:
        features = layer(features)
    return keras.Model(inputs, features, name=f"{model.name}_after_{pooling.name}")


def validation_arguments(data: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """`fit`'s validation arguments for (inputs, targets) validated every epoch in batches of
    `EVALUATION_BATCH_SIZE`.

    On TensorFlow the arrays go in as a plain batched `tf.data.Dataset`: Keras makes two
    iterators over the arrays' own (shuffling-capable) dataset at every evaluation, and the
    plain one made the 150x50 epochs of the article's CNN about 30 ms (10%) shorter on a
    2-core CPU, with the same validation numbers (docs/training.md).
    """
    if data is None:
        return {"validation_data": None}
    if keras.backend.backend() != "tensorflow":
        return {"validation_data": data, "validation_batch_size": EVALUATION_BATCH_SIZE}
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(data).batch(EVALUATION_BATCH_SIZE)
    return {"validation_data": without_autotuning(dataset)}


def array_stream(inputs: np.ndarray, targets: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Training arrays as one endless stream of batches, in the order Keras gives arrays
    (TensorFlow only; read with `fit(..., steps_per_epoch=ceil(len(inputs) / batch_size))`).

    Keras 3 batches arrays through a dataset that draws one permutation with
    `tf.random.shuffle` inside a tf.data function and makes a new iterator over it at every
    epoch. With the global seed set (each run sets it from its seed) every new iterator draws
    the same permutation again: a run sees its training crops in one order, the same every
    epoch (as tensorflow#29558 describes for datasets). The permutation is drawn here the same
    way, from the same global seed, and repeated: the batches, so the models, are exactly
    Keras' own (a test trains a run both ways), without the iterator Keras made every epoch,
    about 30 ms of a 300 ms baseline epoch at 150x50 on a 2-core CPU (docs/training.md).
    Written here because Keras has no endless form of its array input.
    """
    import tensorflow as tf

    def permutation(_: tf.Tensor) -> tf.Tensor:
        return tf.random.shuffle(tf.range(len(inputs), dtype=tf.int64))

    order = next(iter(tf.data.Dataset.range(1).map(permutation))).numpy()
    dataset = tf.data.Dataset.from_tensor_slices((inputs[order], targets[order]))
    return without_autotuning(dataset.batch(batch_size).repeat().prefetch(2))


class Trainer:
    """Builds and compiles one model per (config, num_classes, image_size) ONCE, and
    re-initialises its weights and optimizer state for every run (fresh weights, no new trace).

    For a CNN whose input is pooled first (`TrainingConfig.pool_input`, the article's),
    training and evaluation run on a model that shares every weight with `Trainer.model` but
    takes 2x2 max-pooled images (see `training_model_after_first_pooling`): the results are
    the same, the data four times smaller. Keras callbacks passed to `run` therefore see that
    training model; the full model (600x200 input) is `Trainer.model`. Any other model trains
    on the full-size images.

    Args:
        config: the training configuration.
        num_classes: number of classes (2 = binary with a sigmoid output).
        image_size: (height, width) of the images.
    """

    def __init__(self, config: TrainingConfig, num_classes: int,
                 image_size: tuple[int, int]) -> None:
        self.config = config
        self.num_classes = num_classes
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.pools_input = config.family == "cnn" and config.pool_input
        self._model: keras.Model | None = None
        self._training_model: keras.Model | None = None
        self._initial_optimizer_state: list[np.ndarray] = []
        self._pending_setup_seconds = 0.0
        self._cached_images: np.ndarray | None = None
        self._cached_inputs: np.ndarray | None = None

    @property
    def model(self) -> keras.Model:
        """The full model as trained by the last run (built on first access)."""
        if self._model is None:
            self._build()
        return self._model

    @property
    def training_model(self) -> keras.Model:
        """The compiled model `fit` trains (a CNN after its first pooling; else the model)."""
        if self._training_model is None:
            self._build()
        return self._training_model

    def _build(self) -> None:
        """Builds, compiles and traces the model once (a one-image fit, `_trace`), timing it
        as set-up."""
        start = time.perf_counter()
        model = make_model(self.config, self.num_classes, self.image_size)
        training_model = (training_model_after_first_pooling(model) if self.pools_input
                          else model)
        loss, metrics = loss_and_metrics(self.config, self.num_classes)
        training_model.compile(
            optimizer=make_optimizer(self.config), loss=loss, metrics=metrics,
            steps_per_execution=MLP_STEPS_PER_EXECUTION if self.config.family == "mlp" else 1,
            jit_compile=True if uses_xla(self.config) else "auto",
        )
        training_model.optimizer.build(training_model.trainable_variables)
        self._initial_optimizer_state = [np.array(variable.numpy())
                                         for variable in training_model.optimizer.variables]
        self._model, self._training_model = model, training_model
        self._trace()
        self._pending_setup_seconds = time.perf_counter() - start
        LOGGER.info("built and traced %s in %.2f s", self.config.name,
                    self._pending_setup_seconds)

    def _trace(self) -> None:
        """Traces the train and test steps with a one-image fit, for every run to come.

        Keras on TensorFlow runs each step through a `tf.function` (`multi_step_on_iterator`)
        that is traced once per input signature, and the signature of an array fed to `fit`
        or `evaluate` has a static batch dimension when the array's length is a multiple of
        the batch size (every batch full), else None. The warm-up used to fit 4 images in
        batches of 4: a static (4, ...) signature that no real split has, so the first run
        traced the train step again for (None, ...). That retrace was the fifth trace of
        `multi_step_on_iterator` in five calls of a two-configuration `compare` (each trainer
        built first traces its train and test step: four traces, all needed) and set off
        TensorFlow's "5 out of the last 5 calls ... triggered tf.function retracing" warning
        (it counts the traces of all functions made from the same Python code together).

        One image in batches of the real sizes gives the batch dimension None (a batch size
        of 1 gives (1, ...), as every real split then does), and a traced (None, ...)
        function serves every batch, full, partial or of a split whose length is a multiple:
        no run traces either step again, whatever the sizes of its split (a test checks it;
        docs/training.md has the figures). The weights and the optimizer state are
        re-initialised before each run.

        The full model's predict step (`predict_on_batch`, which `predict_parts` calls after
        every run) is traced per batch shape until a second shape makes Keras relax it to
        (None, ...). Left to the runs, that is two traces per model in the first run, back to
        back for three or more configurations (six calls, six traces: the same warning, for
        `one_step_on_data_distributed`); predicting one image and then two here makes the
        relaxed trace now, so no run traces it either.
        """
        warm_images = np.zeros((1, *self.image_size, 3), dtype=np.uint8)
        warm_targets = targets_for(np.zeros(1, dtype=np.int64), self.num_classes)
        warm_inputs = self._model_inputs(warm_images)
        self._fit(warm_images, warm_inputs, warm_targets, seed=0, epochs=1,
                  validation_data=(warm_inputs, warm_targets))
        for count in (1, 2):
            self._model.predict_on_batch(np.zeros((count, *self.image_size, 3), np.float32))

    def _fit(self, images: np.ndarray, inputs: np.ndarray, targets: np.ndarray, seed: int,
             epochs: int, **options: Any) -> keras.callbacks.History:
        """`fit` of the training model on full-size `images`, or the same images as the
        training model takes them (`inputs`, see `_model_inputs`), validating every epoch on
        `validation_data` (in `options`, with the callbacks).

        With augmentation the data is a `TrainingFeed` that warps (and pools) the batches
        ahead in worker threads (closed when `fit` ends). Without, the (pooled) arrays,
        batched and shuffled inside the framework: on TensorFlow as one endless stream in the
        order Keras gives arrays (`array_stream`), elsewhere, and for the MLP's several steps
        per call, the arrays themselves. A Python feed there left one of 2 CPU cores idle
        during the step (7.7 against 5.2 s per 600x200 epoch, benchmarks/README.md).
        """
        batch_size = self.config.batch_size
        common = {"epochs": epochs, "verbose": 0, **options,
                  **validation_arguments(options.get("validation_data"))}
        if not self.config.augmentation:
            if (keras.backend.backend() != "tensorflow"
                    or self.training_model.steps_per_execution > 1):
                # (several steps per call would read past an endless stream's epoch end)
                return self.training_model.fit(inputs, targets, batch_size=batch_size,
                                               shuffle=True, **common)
            return self.training_model.fit(array_stream(inputs, targets, batch_size),
                                           steps_per_epoch=math.ceil(len(inputs) / batch_size),
                                           shuffle=False, **common)
        # Warp at full size, then pool: exactly what the full model's layers would see.
        feed = TrainingFeed(images, targets, batch_size, augment=True, seed=seed,
                            pool=self.pools_input, interpolation=self.config.interpolation,
                            epochs=epochs)
        data = feed.tensorflow_dataset() if keras.backend.backend() == "tensorflow" else feed
        try:
            return self.training_model.fit(data, steps_per_epoch=len(feed), shuffle=False,
                                           **common)   # the feed shuffles
        finally:
            feed.close()

    def _model_inputs(self, images: np.ndarray) -> np.ndarray:
        """`images` as the training model takes them (pooled when the input is pooled first),
        cached per array."""
        if not self.pools_input:
            return images
        if self._cached_images is not images:
            self._cached_images, self._cached_inputs = images, max_pool_2x2(images)
        return self._cached_inputs

    def reinitialise(self, seed: int) -> None:
        """Gives the model fresh weights, optimizer state and random seeds from `seed`.

        A model built anew with the global seed set supplies the initial values, so a reused
        Trainer starts exactly where a brand-new one with the same seed would.
        """
        model, training_model = self.model, self.training_model
        keras.utils.set_random_seed(seed)
        fresh = make_model(self.config, self.num_classes, self.image_size)
        for target, source in zip(model.variables, fresh.variables, strict=True):
            target.assign(source)
        for variable, value in zip(training_model.optimizer.variables,
                                   self._initial_optimizer_state, strict=True):
            variable.assign(value)

    def run(self, images: np.ndarray, y: np.ndarray, split: Mapping[str, np.ndarray], seed: int,
            epoch_callback: Callable[[int, dict[str, float]], None] | None = None,
            extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> RunResult:
        """Trains from fresh weights on split["train"], validating on split["validate"].

        Args:
            images: (N, height, width, 3) uint8 images (`TaskData.images`).
            y: (N,) class indices.
            split: index arrays "train", "validate" and "test" (`splits.stratified_split`;
                "train" may already be balanced).
            seed: sets initial weights, shuffling, dropout and augmentation.
            epoch_callback: called after each epoch with (epoch index, logs).
            extra_callbacks: more Keras callbacks for `fit` (e.g. CSVLogger); they see the
                training model (see the class documentation).

        Returns:
            The run's `RunResult`.
        """
        self._check_inputs(images, y, split)
        start = time.perf_counter()
        self.reinitialise(seed)
        setup_seconds = time.perf_counter() - start + self._pending_setup_seconds
        self._pending_setup_seconds = 0.0

        train_start = time.perf_counter()
        inputs = self._model_inputs(images)
        train_indices = np.asarray(split["train"])
        validation_indices = np.asarray(split.get("validate", ()), dtype=np.int64)
        test_indices = np.asarray(split.get("test", ()), dtype=np.int64)
        train_targets = targets_for(y[train_indices], self.num_classes)
        validation_data = None
        if len(validation_indices):
            validation_data = (inputs[validation_indices],
                               targets_for(y[validation_indices], self.num_classes))
        callbacks = list(extra_callbacks)
        if epoch_callback is not None:
            callbacks.append(_EpochReporter(epoch_callback))
        if self.config.early_stopping_patience is not None:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss" if validation_data is not None else "loss",
                patience=self.config.early_stopping_patience, restore_best_weights=True))
        history = self._fit(images[train_indices], inputs[train_indices], train_targets, seed,
                            self.config.epochs, validation_data=validation_data,
                            callbacks=callbacks)
        validation_metrics = self._evaluate(inputs, y, validation_indices)
        test_metrics = self._evaluate(inputs, y, test_indices)
        train_seconds = time.perf_counter() - train_start
        history_values = {key: [float(value) for value in values]
                          for key, values in history.history.items()}
        return RunResult(
            config=self.config.name, seed=seed, history=history_values,
            validation_metrics=validation_metrics, test_metrics=test_metrics,
            epochs_run=len(history_values.get("loss", [])), setup_seconds=setup_seconds,
            train_seconds=train_seconds,
        )

    def _evaluate(self, inputs: np.ndarray, y: np.ndarray,
                  indices: np.ndarray) -> dict[str, float]:
        if len(indices) == 0:
            return {}
        results = self.training_model.evaluate(
            inputs[indices], targets_for(y[indices], self.num_classes),
            batch_size=EVALUATION_BATCH_SIZE, verbose=0, return_dict=True)
        return {key: float(value) for key, value in results.items()}

    def _check_inputs(self, images: np.ndarray, y: np.ndarray,
                      split: Mapping[str, np.ndarray]) -> None:
        expected = (*self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ToonvisionError(f"images must have shape (N, {expected[0]}, {expected[1]}, 3) "
                                  "for "
                                  f"this trainer; got {images.shape}")
        if len(y) != len(images):
            raise ToonvisionError(f"{len(images)} images but {len(y)} labels")
        if "train" not in split or len(split["train"]) == 0:
            raise ToonvisionError("split needs a non-empty 'train' part; got parts "
                                  f"{sorted(split)}")
        if len(y) and (np.min(y) < 0 or np.max(y) >= self.num_classes):
            raise ToonvisionError(f"class indices must be in 0..{self.num_classes - 1}; got "
                                  f"{int(np.min(y))}..{int(np.max(y))}")



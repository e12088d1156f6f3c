"""The Pokemon deck's MLP study as data: variants of the `mlp` configuration, one table.

The deck asked which parts of its MLP (Flatten -> Dense(256, relu) -> Dense(128, relu) ->
Dense(9, softmax)) matter: wider and deeper hidden layers, a single hidden layer, the ReLU
removed (linear hidden layers: the network collapses to one linear map), sigmoid instead of
ReLU, and no softmax (logits trained with a from-logits loss). Each variant here is the builtin
`mlp` configuration with one `.replace(...)`; every variant trains on the same seeded splits,
and the table reports the validation accuracy and macro F1 (mean and spread over seeds), the
test figures beside them, and where early stopping stopped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from toonvision import ToonvisionError, defaults, unknown_name_error
from toonvision.data_processing.splits import balance_indices, stratified_split

if TYPE_CHECKING:
    from toonvision.model_utils.engine.protocols import Engine
    from toonvision.model_utils.training.configs import TrainingConfig

logger = logging.getLogger(__name__)

BASE_CONFIG = "mlp"
BASELINE_VARIANT = "256-128"


@dataclass(frozen=True)
class Variant:
    """One row of the study.

    Attributes:
        name: short name, e.g. `512-256` or `sigmoid`.
        change: what differs from the deck's model, in words.
        changes: the `TrainingConfig.replace` arguments that make it from the base.
    """

    name: str
    change: str
    changes: dict

    def config(self, base: TrainingConfig) -> TrainingConfig:
        """Returns the variant's `TrainingConfig`, made from `base` with `.replace`."""
        return base.replace(name=f"{base.name}_{self.name}", **self.changes)


VARIANTS: tuple[Variant, ...] = (
    Variant(BASELINE_VARIANT, "the deck's model: hidden 256-128, relu, softmax", {}),
    Variant("512-256", "hidden layers 512-256", {"hidden_units": (512, 256)}),
    Variant("1024-512-256", "hidden layers 1024-512-256", {"hidden_units": (1024, 512, 256)}),
    Variant("1024-512", "hidden layers 1024-512", {"hidden_units": (1024, 512)}),
    Variant("256-128-64", "hidden layers 256-128-64", {"hidden_units": (256, 128, 64)}),
    Variant("no-relu", "ReLU removed (linear hidden layers)", {"hidden_activation": "linear"}),
    Variant("sigmoid", "sigmoid instead of ReLU", {"hidden_activation": "sigmoid"}),
    Variant("no-softmax", "no softmax: logits + from-logits loss", {"output_activation": "none"}),
    Variant("single-256", "a single hidden layer of 256", {"hidden_units": (256,)}),
)
VARIANT_NAMES: tuple[str, ...] = tuple(variant.name for variant in VARIANTS)


def select_variants(names: Sequence[str] | None = None) -> list[Variant]:
    """Returns the variants named (all when None), in the study's order, baseline first.

    Raises:
        ToonvisionError: for an unknown name, with the closest known one and all of them.
    """
    if names is None:
        return list(VARIANTS)
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise ToonvisionError(f"no ablation variant named; known: {', '.join(VARIANT_NAMES)}")
    for name in names:
        if name not in VARIANT_NAMES:
            raise unknown_name_error("ablation variant", name, VARIANT_NAMES)
    return [variant for variant in VARIANTS if variant.name in names]


@dataclass
class AblationRun:
    """One variant trained on one seed's split.

    Attributes:
        variant: the variant's name.
        seed: split and initialisation seed.
        validation_accuracy: accuracy of the final (restored best) model on validation.
        validation_macro_f1: macro F1 on validation.
        test_accuracy: accuracy on test (NaN when the test split is empty).
        test_macro_f1: macro F1 on test.
        epochs_run: epochs trained (early stopping may stop before the configured count).
        best_epoch: the epoch (from 1) with the lowest validation loss, whose weights are kept
            when early stopping restores them.
        seconds: training time.
        history: per-epoch metrics.
    """

    variant: str
    seed: int
    validation_accuracy: float
    validation_macro_f1: float
    test_accuracy: float
    test_macro_f1: float
    epochs_run: int
    best_epoch: int
    seconds: float
    history: dict[str, list[float]]


def _scores(probabilities: np.ndarray | None, truth: np.ndarray, metrics: dict[str, float]
            ) -> tuple[float, float]:
    """Accuracy and macro F1 of one split part, from its images' predicted probabilities.

    The trainer's own evaluation (`metrics`) is used when it has a macro F1 (multiclass
    tasks); a binary task's is computed from the predictions with scikit-learn. The
    probabilities come with the run's outcome (`engine.RunOutcome`), so no model is needed
    here: on Ray it stays on its worker.
    """
    from sklearn.metrics import accuracy_score, f1_score

    if len(truth) == 0:
        return float("nan"), float("nan")
    if "accuracy" in metrics and "macro_f1" in metrics:
        return float(metrics["accuracy"]), float(metrics["macro_f1"])
    predicted = np.asarray(probabilities).argmax(axis=1)
    return (
        float(accuracy_score(truth, predicted)),
        float(f1_score(truth, predicted, average="macro", zero_division=0)),
    )


def run_ablation(
    images: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    seeds: Sequence[int],
    variants: Sequence[Variant] | None = None,
    base: TrainingConfig | None = None,
    ratios: Sequence[float] = defaults.RATIOS,
    balance: str = "none",
    epoch_callback: Callable[[str, int, int, dict[str, float]], None] | None = None,
    engine: Engine | None = None,
) -> Iterator[AblationRun]:
    """Trains every variant on every seed's split and yields each run as it finishes.

    Seed `s` draws `splits.stratified_split(y, ratios, s)` (then balances its training part
    with `balance`), so every variant sees the same images. Each (variant, seed) is one task
    of the engine (`engine.RunTask`: run = the seed's position, the variant's configuration),
    so on Ray workers several train at once; one trainer per variant is built once (per
    worker) and re-initialised per seed. The runs come back in the study's order whatever the
    engine, and equal with the same threads per worker.

    Args:
        images: (N, height, width, 3) uint8.
        y: (N,) class indices.
        num_classes: the number of classes.
        seeds: the seeds, one split each.
        variants: the variants (default: all of `VARIANTS`).
        base: the `TrainingConfig` the variants change (default: the builtin `mlp`).
        ratios: train, validate, test shares.
        balance: `none`, `undersample` or `oversample`, applied to the training part only.
        epoch_callback: called as (variant, seed, epoch index, logs) after each epoch (by the
            serial engine; Ray workers do not report epochs).
        engine: where the runs train (`engine.make_engine`); default `engine.SerialEngine()`,
            in this process.

    Yields:
        One `AblationRun` per (variant, seed), variant by variant, each as soon as it and the
        runs before it are trained.
    """
    from toonvision.model_utils.engine.serial import (
        EngineJob,
        RunTask,
        SerialEngine,
        in_task_order,
    )
    from toonvision.model_utils.training.configs import BUILTIN_CONFIGS
    from toonvision.model_utils.training.trainer import Trainer

    base = BUILTIN_CONFIGS[BASE_CONFIG] if base is None else base
    variants = list(VARIANTS) if variants is None else list(variants)
    if not seeds:
        raise ToonvisionError("need at least one seed")
    engine = engine if engine is not None else SerialEngine()
    y = np.asarray(y)
    image_size = (int(images.shape[1]), int(images.shape[2]))
    splits = {}
    for seed in seeds:
        split = stratified_split(y, ratios, seed)
        split["train"] = balance_indices(split["train"], y, balance, seed)
        splits[seed] = split
    configs = {variant.config(base).name: variant for variant in variants}
    # A variant's seeds train one after another: a worker needs one trainer at a time.
    job = EngineJob(images, y, [variant.config(base) for variant in variants], Trainer,
                    num_classes, image_size, keep_trainers=1)
    tasks = [RunTask(run=index, config=name, seed=seed, split=splits[seed], keep_model=False)
             for name in configs for index, seed in enumerate(seeds)]
    callback = None
    if epoch_callback is not None:
        def callback(name: str, run: int, epoch: int, logs: dict) -> None:
            epoch_callback(configs[name].name, seeds[run], epoch, logs)
    for outcome in in_task_order(engine.run(tasks, job, callback), tasks):
        task, result = outcome.task, outcome.result
        split = splits[task.seed]
        validation = _scores(outcome.probabilities.get("validate"), y[split["validate"]],
                             result.validation_metrics)
        test = _scores(outcome.probabilities.get("test"), y[split["test"]],
                       result.test_metrics)
        losses = result.history.get("val_loss") or result.history.get("loss") or [0.0]
        yield AblationRun(
            variant=configs[task.config].name, seed=task.seed,
            validation_accuracy=validation[0], validation_macro_f1=validation[1],
            test_accuracy=test[0], test_macro_f1=test[1],
            epochs_run=result.epochs_run, best_epoch=int(np.nanargmin(losses)) + 1,
            seconds=result.setup_seconds + result.train_seconds, history=result.history,
        )


def ablation_table(runs: Sequence[AblationRun], variants: Sequence[Variant] | None = None
                   ) -> pd.DataFrame:
    """Returns one row per variant: means (and standard deviations) over its seeds.

    Columns: variant, change, seeds, validation_accuracy, validation_accuracy_std,
    validation_macro_f1, validation_macro_f1_std, test_accuracy, test_macro_f1, epochs_run,
    best_epoch, seconds, and the difference in validation accuracy from the deck's model
    (`delta_validation_accuracy`, when it is in the table).
    """
    variants = list(VARIANTS) if variants is None else list(variants)
    frame = pd.DataFrame([
        {key: value for key, value in dataclasses.asdict(run).items() if key != "history"}
        for run in runs
    ])
    rows = []
    for variant in variants:
        mine = frame[frame["variant"] == variant.name] if len(frame) else frame
        if len(mine) == 0:
            continue
        rows.append({
            "variant": variant.name,
            "change": variant.change,
            "seeds": len(mine),
            "validation_accuracy": mine["validation_accuracy"].mean(),
            "validation_accuracy_std": mine["validation_accuracy"].std(ddof=0),
            "validation_macro_f1": mine["validation_macro_f1"].mean(),
            "validation_macro_f1_std": mine["validation_macro_f1"].std(ddof=0),
            "test_accuracy": mine["test_accuracy"].mean(),
            "test_macro_f1": mine["test_macro_f1"].mean(),
            "epochs_run": mine["epochs_run"].mean(),
            "best_epoch": mine["best_epoch"].mean(),
            "seconds": mine["seconds"].mean(),
        })
    table = pd.DataFrame(rows)
    if len(table) and BASELINE_VARIANT in set(table["variant"]):
        reference = table.loc[table["variant"] == BASELINE_VARIANT, "validation_accuracy"]
        table["delta_validation_accuracy"] = table["validation_accuracy"] - reference.iloc[0]
    return table


def format_table(table: pd.DataFrame) -> str:
    """Renders the ablation table for a terminal: 3 decimals, spreads as +/-."""
    if len(table) == 0:
        return "(no runs)"
    shown = pd.DataFrame({
        "variant": table["variant"],
        "val acc": [f"{mean:.3f} +/- {spread:.3f}" for mean, spread in
                    zip(table["validation_accuracy"], table["validation_accuracy_std"],
                        strict=True)],
        "val macro F1": [f"{mean:.3f} +/- {spread:.3f}" for mean, spread in
                         zip(table["validation_macro_f1"], table["validation_macro_f1_std"],
                             strict=True)],
        "test acc": table["test_accuracy"].map("{:.3f}".format),
        "test F1": table["test_macro_f1"].map("{:.3f}".format),
        "epochs": table["epochs_run"].map("{:.1f}".format),
        "best epoch": table["best_epoch"].map("{:.1f}".format),
        "s/run": table["seconds"].map("{:.1f}".format),
        "change": table["change"],
    })
    return shown.to_string(index=False)

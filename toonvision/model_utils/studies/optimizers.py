"""The article's optimizer study: one model and split, trained with each optimizer in turn.

Its figure is `data_visualization.comparison_figures.optimizers_figure`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from toonvision import defaults
from toonvision.data_processing.splits import stratified_split
from toonvision.model_utils.comparison.summary import history_table

if TYPE_CHECKING:
    from toonvision.model_utils.engine.protocols import Engine, TrainerFactory


def optimizer_configs(base_config: Any, optimizers: Sequence[str],
                      learning_rate: float = defaults.OPTIMIZER_LEARNING_RATE) -> list[Any]:
    """One configuration per optimizer: `base_config` with it, named after it."""
    return [base_config.replace(name=optimizer, optimizer=optimizer, learning_rate=learning_rate)
            for optimizer in optimizers]


def compare_optimizers(
    task_data: Any,
    base_config: Any,
    optimizers: Sequence[str] | None = None,
    learning_rate: float = defaults.OPTIMIZER_LEARNING_RATE,
    seed: int = defaults.SEED,
    ratios: Sequence[float] = defaults.RATIOS,
    trainer_factory: TrainerFactory | None = None,
    epoch_callback: Callable[[str, int, dict[str, float]], None] | None = None,
    engine: Engine | None = None,
) -> Iterator[tuple[str, Any]]:
    """The article's optimizer study: one model, one split, one optimizer per task.

    Every optimizer is one task of the engine (`engine.RunTask`, run 0, on the same split and
    seed), so on Ray workers several train at once; the results come back in the order of
    `optimizers` whatever the engine, and equal with the same threads per worker.

    Args:
        task_data: the `dataset.TaskData`.
        base_config: the `TrainingConfig` every optimizer is plugged into (e.g. baseline,
            with the wanted epochs).
        optimizers: optimizer names; default every one of `model_utils.OPTIMIZERS` (Adam,
            Adamax, Nadam, RMSprop, SGD, Adadelta, Adagrad, Ftrl).
        learning_rate: the same learning rate for all.
        seed: the split's and the weights' seed (the same for every optimizer).
        ratios: train, validate and test shares.
        trainer_factory: default `model_utils.Trainer` (for Ray, importable by name).
        epoch_callback: called as `(optimizer, epoch, logs)` after every epoch (by the serial
            engine; Ray workers do not report epochs).
        engine: where the optimizers train (`engine.make_engine`); default
            `engine.SerialEngine()`, in this process.

    Yields:
        `(optimizer, RunResult)` in the order of `optimizers`, each as soon as it and the
        ones before it are trained.
    """
    from toonvision.model_utils.engine.serial import (
        EngineJob,
        RunTask,
        SerialEngine,
        in_task_order,
    )

    if trainer_factory is None:
        from toonvision.model_utils.training.trainer import Trainer as trainer_factory
    if optimizers is None:
        from toonvision.model_utils.training.configs import OPTIMIZERS

        optimizers = tuple(OPTIMIZERS)
    engine = engine if engine is not None else SerialEngine()
    split = stratified_split(task_data.y, ratios, seed=seed)
    configs = optimizer_configs(base_config, optimizers, learning_rate)
    # Trained one after another on a worker: a trainer is not needed again once it is done.
    job = EngineJob(task_data.images, task_data.y, configs, trainer_factory,
                    len(task_data.class_names), tuple(task_data.images.shape[1:3]),
                    keep_trainers=1)
    tasks = [RunTask(run=0, config=config.name, seed=seed, split=split, keep_model=False)
             for config in configs]
    callback = None
    if epoch_callback is not None:
        def callback(optimizer: str, run: int, epoch: int, logs: dict) -> None:
            epoch_callback(optimizer, epoch, logs)
    for outcome in in_task_order(engine.run(tasks, job, callback), tasks):
        yield outcome.task.config, outcome.result


def optimizer_table(results: dict[str, Any]) -> Any:
    """One row per optimizer and epoch: the history plus the final test metrics."""
    import pandas as pd

    frames = []
    for optimizer, result in results.items():
        table = history_table(result.history)
        table.insert(0, "optimizer", optimizer)
        for key, value in result.test_metrics.items():
            table[f"test_{key}"] = value
        frames.append(table)
    return pd.concat(frames, ignore_index=True)

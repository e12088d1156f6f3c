"""The article's optimizer study: one model and split, trained with each optimizer in turn.

Its figure is `data_visualization.comparison_figures.optimizers_figure`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from toonvision import defaults
from toonvision.data_processing.splits import stratified_split
from toonvision.model_utils.comparison_summary import history_table


def compare_optimizers(
    task_data: Any,
    base_config: Any,
    optimizers: Sequence[str] | None = None,
    learning_rate: float = defaults.OPTIMIZER_LEARNING_RATE,
    seed: int = defaults.SEED,
    ratios: Sequence[float] = defaults.RATIOS,
    trainer_factory: Callable[[Any, int, tuple[int, int]], Any] | None = None,
    epoch_callback: Callable[[str, int, dict[str, float]], None] | None = None,
) -> Iterator[tuple[str, Any]]:
    """The article's optimizer study: one model, one split, one optimizer at a time.

    Args:
        task_data: the `dataset.TaskData`.
        base_config: the `TrainingConfig` every optimizer is plugged into (e.g. baseline,
            with the wanted epochs).
        optimizers: optimizer names; default every one of `model_utils.OPTIMIZERS` (Adam,
            Adamax, Nadam, RMSprop, SGD, Adadelta, Adagrad, Ftrl).
        learning_rate: the same learning rate for all.
        seed: the split's and the weights' seed (the same for every optimizer).
        ratios: train, validate and test shares.
        trainer_factory: default `model_utils.Trainer`.
        epoch_callback: called as `(optimizer, epoch, logs)` after every epoch.

    Yields:
        `(optimizer, RunResult)` as each optimizer finishes.
    """
    if trainer_factory is None:
        from toonvision.model_utils.trainer import Trainer as trainer_factory
    if optimizers is None:
        from toonvision.model_utils.configs import OPTIMIZERS

        optimizers = tuple(OPTIMIZERS)
    split = stratified_split(task_data.y, ratios, seed=seed)
    image_size = tuple(task_data.images.shape[1:3])
    for optimizer in optimizers:
        config = base_config.replace(name=optimizer, optimizer=optimizer,
                                     learning_rate=learning_rate)
        trainer = trainer_factory(config, len(task_data.class_names), image_size)
        callback = None
        if epoch_callback is not None:
            def callback(epoch: int, logs: dict, optimizer: str = optimizer) -> None:
                epoch_callback(optimizer, epoch, logs)
        yield optimizer, trainer.run(task_data.images, task_data.y, split, seed=seed,
                                     epoch_callback=callback)


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

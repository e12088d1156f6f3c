"""Which images each run of a comparison trains, validates and tests on.

One place decides a run's split, so the serial and parallel engines, resume and the summary
all see the same images: a fresh stratified 60/20/20 split per run (the article's protocol),
or fold `r % K` of repetition `r // K` with cross-validation, then balancing of the training
part when the settings ask for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from toonvision.data_processing.splits import (
    balance_indices,
    cross_validation_split,
    stratified_split,
)

if TYPE_CHECKING:
    from toonvision.model_utils.stored_settings import ComparisonSettings


def split_for_run(settings: ComparisonSettings, y: np.ndarray, run: int
                  ) -> tuple[int, dict[str, np.ndarray], dict[str, int]]:
    """The split of run `run`: the one place that decides which images a run uses.

    Without cross-validation, a fresh stratified split with seed `seed + run`. With
    `settings.cv = K`, run `r` is fold `r % K` of repetition `r // K`, the folds of a
    repetition cut with seed `seed + r // K` (`splits.cross_validation_split`). The
    training part is then balanced as the settings say; the weights' seed stays `seed + run`.

    Returns:
        `(split seed, split, fold fields)`: the fold fields are `{"repetition": ..., "fold":
        ...}` for `RunRecord.from_result` with cross-validation, else empty.
    """
    folds: dict[str, int] = {}
    if settings.cv:
        repetition, fold = divmod(run, settings.cv)
        split_seed = settings.seed + repetition
        split = cross_validation_split(y, settings.cv, fold, settings.ratios, seed=split_seed)
        folds = {"repetition": repetition, "fold": fold}
    else:
        split_seed = settings.seed + run
        split = stratified_split(y, settings.ratios, seed=split_seed)
    if settings.balance != "none":
        split["train"] = balance_indices(split["train"], y, settings.balance, seed=split_seed)
    return split_seed, split, folds

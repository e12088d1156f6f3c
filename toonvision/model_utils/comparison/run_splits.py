"""Which images each run of a comparison trains, validates and tests on.

One place decides a run's split, so the serial and parallel engines, resume and the summary
all see the same images: a fresh stratified 60/20/20 split per run (the article's protocol),
or fold `r % K` of repetition `r // K` with cross-validation, then balancing of the training
part when the settings ask for it. A comparison grouped by screenshot, near duplicates or a
CSV column (`settings.group_by`) keeps every group in one part of every run's split, so
that no crop is tested beside a sibling it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from toonvision import ToonvisionError
from toonvision.data_processing.folds import cross_validation_split
from toonvision.data_processing.splits import balance_indices, grouped_stratified_split


class SplitRule(Protocol):
    """What `split_for_run` reads: a comparison's `ComparisonSettings`, or the
    `provenance.SplitRecord` a kept model's sidecar holds."""

    seed: int
    ratios: Sequence[float]
    balance: str
    cv: int | None
    group_by: str
    groups_fingerprint: str


def split_for_run(settings: SplitRule, y: np.ndarray, run: int,
                  groups: Sequence[object] | np.ndarray | None = None
                  ) -> tuple[int, dict[str, np.ndarray], dict[str, int]]:
    """The split of run `run`: the one place that decides which images a run uses.

    Without cross-validation, a fresh stratified split with seed `seed + run`. With
    `settings.cv = K`, run `r` is fold `r % K` of repetition `r // K`, the folds of a
    repetition cut with seed `seed + r // K` (`folds.cross_validation_split`). With
    `groups`, both keep each group whole (`splits.grouped_stratified_split`, and
    scikit-learn's `StratifiedGroupKFold` for the folds). The training part is then balanced
    as the settings say; the weights' seed stays `seed + run`.

    Args:
        settings: the comparison's settings (or a kept model's `provenance.SplitRecord`).
        y: the class of every image.
        run: the run number.
        groups: the group of every image (`TaskData.groups`); needed exactly when
            `settings.group_by` is not `none`, and must be the groups the settings were made
            with (their fingerprint is checked when the settings record one).

    Returns:
        `(split seed, split, fold fields)`: the fold fields are `{"repetition": ..., "fold":
        ...}` for `RunRecord.from_result` with cross-validation, else empty.

    Raises:
        ToonvisionError: if the groups do not match the settings or the images.
    """
    _check_groups(settings, y, groups)
    folds: dict[str, int] = {}
    if settings.cv:
        repetition, fold = divmod(run, settings.cv)
        split_seed = settings.seed + repetition
        split = cross_validation_split(y, settings.cv, fold, settings.ratios, seed=split_seed,
                                       groups=groups)
        folds = {"repetition": repetition, "fold": fold}
    else:
        split_seed = settings.seed + run
        split = grouped_stratified_split(y, groups, settings.ratios, seed=split_seed)
    if settings.balance != "none":
        split["train"] = balance_indices(split["train"], y, settings.balance, seed=split_seed)
    return split_seed, split, folds


def _check_groups(settings: SplitRule, y: np.ndarray,
                  groups: Sequence[object] | np.ndarray | None) -> None:
    """Refuses groups that are not the ones the comparison's settings were made with."""
    from toonvision.model_utils.comparison.stored_settings import groups_fingerprint

    grouping = settings.group_by
    if grouping == "none":
        if groups is not None:
            raise ToonvisionError("groups were given for a comparison that does not keep "
                                  "groups whole (group_by none)")
        return
    if groups is None:
        raise ToonvisionError(f"the comparison keeps groups whole (group_by {grouping}) but "
                              "no groups were given: set TaskData.groups (compare --group-by "
                              "computes them)")
    if len(groups) != len(y):
        raise ToonvisionError(f"need one group per image: {len(y)} images but {len(groups)} "
                              "groups")
    expected = settings.groups_fingerprint
    if expected and groups_fingerprint(groups) != expected:
        raise ToonvisionError(f"the groups (group_by {grouping}) are not the ones the "
                              "comparison was made with (groups_fingerprint differs)")

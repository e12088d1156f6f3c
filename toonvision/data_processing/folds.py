"""K-fold cross-validation splits (`compare --cv K`): stratified, and grouped when asked.

Each fold of a repetition is the test set once; the validation part is drawn from the other
folds. With groups (`splits.split_groups`: a screenshot, a near-duplicate cluster, a CSV
column's value), scikit-learn's `StratifiedGroupKFold` cuts the folds so that no group is in
two of them, and the validation part is drawn group by group too: no test crop then shares a
screenshot with a training crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toonvision import ToonvisionError, defaults
from toonvision.data_processing.splits import check_ratios, grouped_stratified_split


def cross_validation_split(
    y: Sequence[int] | np.ndarray,
    folds: int,
    fold: int,
    ratios: Sequence[float] = defaults.RATIOS,
    seed: int = 0,
    groups: Sequence[object] | np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Fold `fold` of a stratified K-fold cross-validation: that fold is the test set.

    scikit-learn's `StratifiedKFold(folds, shuffle=True, random_state=seed)` cuts the items
    into `folds` stratified folds; fold `fold` is the test set, and the validation set is
    drawn (stratified, with the same seed) from the other folds with the validate share of
    `ratios` relative to train + validate (60/20/20: a quarter of the rest). Over the `folds`
    values of `fold` with one seed, every item is tested exactly once.

    With `groups`, `StratifiedGroupKFold` (same arguments) cuts the folds instead, each group
    whole in one fold, and the validation set is drawn with `splits.grouped_stratified_split`,
    so no group straddles two parts. The folds are then only as stratified as the groups
    allow.

    Args:
        y: the class index of every item.
        folds: K, at least 2 and at most the size of the smallest class (and, with groups,
            the number of groups).
        fold: which fold is the test set, 0..K-1.
        ratios: the train, validate and test shares; only train : validate is used.
        seed: the seed of the folds (one per repetition) and of the validation draw.
        groups: the group of every item; None: items are split one by one.

    Returns:
        `{"train": indices, "validate": indices, "test": indices}`, each sorted.

    Raises:
        ToonvisionError: if K or the fold is out of range, a class has fewer than K items,
            there are fewer than K groups, or `groups` does not have one value per item.

    Example:
        >>> tests = [cross_validation_split(y, 5, fold, seed=3)["test"] for fold in range(5)]
        >>> sorted(np.concatenate(tests)) == list(range(len(y)))  # doctest: +SKIP
        True
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    train_share, validate_share, _ = check_ratios(ratios)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ToonvisionError(f"cross-validation needs a whole number of at least 2 folds; "
                              f"got {folds!r}")
    if not 0 <= fold < folds:
        raise ToonvisionError(f"fold must be 0..{folds - 1}; got {fold!r}")
    smallest = min((int(count) for count in np.unique(y, return_counts=True)[1]), default=0)
    if smallest < folds:
        raise ToonvisionError(f"{folds}-fold cross-validation needs at least {folds} images "
                              f"of every class; the smallest class has {smallest}")
    if groups is None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        rest, test = list(splitter.split(np.zeros(len(y)), y))[fold]
    else:
        groups = np.asarray(groups).astype(str)
        if groups.shape != y.shape:
            raise ToonvisionError(f"need one group per item: {len(y)} items but groups of "
                                  f"shape {groups.shape}")
        count = len(np.unique(groups))
        if count < folds:
            raise ToonvisionError(f"{folds}-fold cross-validation that keeps groups whole "
                                  f"needs at least {folds} groups; there are {count}")
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        rest, test = list(splitter.split(np.zeros(len(y)), y, groups))[fold]
    inner = grouped_stratified_split(y[rest], None if groups is None else groups[rest],
                                     (train_share, validate_share, 0.0), seed=seed)
    return {"train": np.sort(rest[inner["train"]]), "validate": np.sort(rest[inner["validate"]]),
            "test": np.sort(test)}

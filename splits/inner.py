"""Validation inside a training fold, grouped like the outer split.

One place decides how a model validates inside its training fold: ridge's
alpha search, a stacker's inner out-of-fold predictions and a neural model's
early-stopping hold-out all call these, with the outer split's group labels of
the training samples (e.g. performers under ``lopo``), so no group is on both
sides of an inner split either. The outer test fold never enters.
"""

from __future__ import annotations

import numpy as np

from benchmark.errors import ConfigError


def inner_cv(groups: np.ndarray | None, n_splits: int, random_state: int | None = None):
    """An inner cross-validator for a training fold.

    Parameters
    ----------
    groups : ndarray (n_train,) or None
        The outer split's group labels of the training samples.
    n_splits : int
        Folds wanted; with groups, at most the number of groups (and at least 2).
    random_state : int, optional
        Shuffles the samples of the ungrouped K-fold.

    Returns
    -------
    sklearn cross-validator
        ``GroupKFold`` when ``groups`` is given, else a shuffled ``KFold``.
    """
    from sklearn.model_selection import GroupKFold, KFold

    if groups is not None:
        return GroupKFold(n_splits=max(2, min(n_splits, len(np.unique(groups)))))
    return KFold(n_splits=n_splits, shuffle=True, random_state=random_state)


def holdout(n_samples: int, groups: np.ndarray | None = None, *, fraction: float = 0.2,
            random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split a training fold into a fitting part and a validation part, grouped like the outer split.

    With groups, whole groups go to validation: the groups are shuffled by
    ``random_state`` and taken in turn until at least ``fraction`` of the
    samples are held out (at least one group, never all of them). Without
    groups, a random ``fraction`` of the samples.

    Parameters
    ----------
    n_samples : int
        Size of the training fold.
    groups : ndarray (n_samples,), optional
    fraction : float, default 0.2
        Share of the training fold held out, in (0, 1).
    random_state : int

    Returns
    -------
    fit_idx, val_idx : ndarray of int
        Positions into the training fold, disjoint, covering it.

    Raises
    ------
    ConfigError
        ``fraction`` outside (0, 1), fewer than 2 samples, or a single group.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"validation fraction={fraction} must be in (0, 1)")
    if n_samples < 2:
        raise ConfigError(f"cannot hold out a validation part of {n_samples} training sample(s)")
    rng = np.random.default_rng(random_state)
    if groups is None:
        order = rng.permutation(n_samples)
        n_val = min(n_samples - 1, max(1, int(round(fraction * n_samples))))
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    groups = np.asarray(groups)
    if len(groups) != n_samples:
        raise ConfigError(f"groups has {len(groups)} labels for {n_samples} samples")
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise ConfigError(f"the training fold holds one group ({uniq[0]!r}); a grouped validation part needs two")
    held, count = [], 0
    for g in rng.permutation(uniq):
        if count >= fraction * n_samples or len(held) == len(uniq) - 1:
            break
        held.append(g)
        count += int(np.sum(groups == g))
    is_val = np.isin(groups, held)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)

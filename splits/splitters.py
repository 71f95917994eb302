"""Group splitters: sklearn's grouped cross-validators, with errors that name the column."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmark.errors import ConfigError


class GroupSplitter:
    """Wrap a sklearn group cross-validator so that missing groups name their column.

    Parameters
    ----------
    cv : sklearn cross-validator
        ``LeaveOneGroupOut()`` or ``GroupKFold(...)``.
    column : str
        The metadata column the groups come from; used in error messages.
    name : str
        The split's registry name; used in error messages.
    """

    def __init__(self, cv: Any, column: str, name: str) -> None:
        self.cv = cv
        self.column = column
        self.name = name

    def _require(self, groups: Any) -> None:
        if groups is None:
            raise ConfigError(
                f"split {self.name!r} groups samples by the column {self.column!r} but no groups "
                f"were given; pass groups=meta[{self.column!r}]"
            )

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Return the number of folds.

        Raises
        ------
        ConfigError
            If the count depends on the groups (leave-one-group-out) and none are given.
        """
        if hasattr(self.cv, "n_splits"):
            return int(self.cv.n_splits)
        self._require(groups)
        return int(self.cv.get_n_splits(X, y, groups))

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` integer index arrays; no group is on both sides.

        Parameters
        ----------
        X : array-like, shape (n_samples, ...)
            Only its length is used.
        y : ignored
        groups : array-like, shape (n_samples,)
            Group label of each sample (values of :attr:`column`).

        Raises
        ------
        ConfigError
            If ``groups`` is None.
        """
        self._require(groups)
        for train, test in self.cv.split(X, y, groups):
            yield np.asarray(train, dtype=np.intp), np.asarray(test, dtype=np.intp)

    def __repr__(self) -> str:
        return f"GroupSplitter({self.cv!r}, column={self.column!r})"

"""Passage-consensus deviation features: how a performance differs from other players' of the same passage.

A rating such as "tempo: fast" or "dynamics: loud" is relative to what the
music asks for. Absolute features mix the passage (a fast étude) with the
player (who takes it faster than the others). For each segment the
:class:`PassageDeviation` transformer subtracts, feature by feature, the mean
of the *other* performances of the same passage, and the model sees both the
features and these deviations.

The consensus comes from the training fold only:

* at fit time a training segment's consensus is the mean of the other
  training segments of its passage (leave-one-out: it never sees itself);
* at predict time a segment's consensus is the mean of the training fold's
  segments of its passage. No test feature and no label enters it.

The passage id reaches the model as data: the registry entry names metadata
columns (``meta_columns``) that the runner appends to the model's matrix as
integer codes, last column first (the segment's ``excerpt``: piece, bars and
segment number, the same notes played by every player). A segment whose
passage has no other training performance gets NaN deviations, which the
model's imputer (or LightGBM) handles.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError

from models.base import SklearnModel
from models.classical import LGBMModel
from models.registry import MODELS


class PassageDeviation:
    """Feature minus the mean of the other training performances of the same passage.

    NaN features are left out of the sums and counts column by column; a NaN
    passage id means "no passage" (its deviations are NaN).
    """

    def fit(self, X: np.ndarray, ids: np.ndarray) -> PassageDeviation:
        """Store per-passage sums and counts of the training rows ``X`` (n, p) with passage ``ids`` (n,)."""
        X = np.asarray(X, dtype=float)
        ids = np.asarray(ids, dtype=float)
        if X.ndim != 2 or ids.shape != (len(X),):
            raise ValueError(f"expected X (n, p) and ids (n,); got {X.shape} and {ids.shape}")
        ok = np.isfinite(ids)
        self.passages_, inv = np.unique(ids[ok], return_inverse=True)
        p = X.shape[1]
        present = np.isfinite(X[ok])
        self.sums_ = np.zeros((len(self.passages_), p))
        self.counts_ = np.zeros((len(self.passages_), p))
        np.add.at(self.sums_, inv, np.where(present, X[ok], 0.0))
        np.add.at(self.counts_, inv, present.astype(float))
        return self

    def _lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the sums and counts of its passage (zeros when the passage is unseen or the id is NaN)."""
        if not hasattr(self, "sums_"):
            raise NotFittedError("PassageDeviation is not fitted; call fit(X, ids) first")
        ids = np.asarray(ids, dtype=float)
        n, p = len(ids), self.sums_.shape[1]
        sums, counts = np.zeros((n, p)), np.zeros((n, p))
        if len(self.passages_):
            pos = np.clip(np.searchsorted(self.passages_, ids), 0, len(self.passages_) - 1)
            hit = np.isfinite(ids) & (self.passages_[pos] == ids)
            sums[hit], counts[hit] = self.sums_[pos[hit]], self.counts_[pos[hit]]
        return sums, counts

    @staticmethod
    def _deviation(X: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            consensus = np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)
        return X - consensus

    def transform_train(self, X: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Deviations of the rows the transformer was fitted on, each left out of its own consensus."""
        X = np.asarray(X, dtype=float)
        sums, counts = self._lookup(ids)
        present = np.isfinite(X) & np.isfinite(np.asarray(ids, dtype=float))[:, None]
        sums = sums - np.where(present, X, 0.0)
        counts = counts - present
        return self._deviation(X, sums, counts)

    def transform(self, X: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Deviations of new rows from the fitted (training) consensus of their passage."""
        X = np.asarray(X, dtype=float)
        sums, counts = self._lookup(ids)
        if X.shape != sums.shape:
            raise ValueError(f"expected X ({len(sums)}, {sums.shape[1]}) matching ids; got {X.shape}")
        return self._deviation(X, sums, counts)


class DeviationMixin:
    """Splits the passage id (last column) off ``X`` and appends passage-consensus deviations."""

    def _split_ids(self, X) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] < 2:
            raise ValueError(f"expected X (n, p + 1) with the passage id last; got shape {X.shape}")
        return X[:, :-1], X[:, -1]

    def fit(self, X, y, *, groups=None):
        feats, ids = self._split_ids(X)
        self.deviation_ = PassageDeviation().fit(feats, ids)
        return SklearnModel.fit(self, np.hstack([feats, self.deviation_.transform_train(feats, ids)]), y,
                                groups=groups)

    def predict(self, X):
        if not hasattr(self, "deviation_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        feats, ids = self._split_ids(X)
        return SklearnModel.predict(self, np.hstack([feats, self.deviation_.transform(feats, ids)]))


class LGBMDevModel(DeviationMixin, LGBMModel):
    """LightGBM on the features plus their deviations from the passage's training consensus."""


MODELS.register("lgbm_dev", inputs=("midi", "audio", "score"), tags=("trees", "boosting", "audio"),
                meta_columns=("excerpt",),
                description="LightGBM on MIDI + audio + score-aligned features plus each feature's deviation "
                            "from the mean of other players' training performances of the same passage")(LGBMDevModel)

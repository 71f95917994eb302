"""Simulated data sets on a real segment layout, and the toy learners and predictors the nulls are made of.

Each repetition draws features and one rating with performer and passage
effects on the layout (:func:`draw_data`), then produces the out-of-fold
predictions of two "models" under one scenario (:func:`toy_cells`):

* ``learner null``: ridge regressions on two random subsets of equally
  informative features: two deterministic learning algorithms of equal
  expected performance (the question "are the learners different?").
* ``predictor null`` (sharp): one fitted predictor, each model adding
  independent noise of equal size: the two prediction sets are exchangeable
  within every unit (the unit-swap permutation test's null).
* ``weak predictor null``: one fitted predictor, each unit's noise larger for
  one model and smaller for the other (log-sd +-h, h drawn per unit and
  symmetric about 0): the predictors differ unit by unit, and their expected
  difference over the population of units is zero (the null the cluster
  interval targets).
* ``effect``: learner B sees its features through added noise of sd
  ``noise``; the expected fold-level r difference grows with ``noise``.
* ``degraded``: learner B is learner A (same subset) seeing its features
  through noise of sd ``noise``: the same expected difference as ``effect``
  (the two subsets are exchangeable), without the spread two random subsets
  add, so a few repetitions measure it (:func:`simulation.power.effect_map`).

The result is a :class:`reports.units.Cells`: the report's own code scores it.
"""

from __future__ import annotations

import numpy as np

from simulation.designs import Design, Layout, folds_of

SCENARIOS = ("learner null", "predictor null", "weak predictor null", "effect", "degraded")
#: Features drawn per segment, and the size of each learner's random subset.
N_FEATURES, SUBSET = 20, 8
#: Spread of the per-unit log noise sd of the weak predictor null.
WEAK_H = 0.5


def draw_data(rng: np.random.Generator, layout: Layout, n_features: int = N_FEATURES):
    """Features (n, p) and one rating (n,) with performer and passage effects; all features equally informative."""
    _, perf = np.unique(layout.performer, return_inverse=True)
    _, pas = np.unique(layout.passage, return_inverse=True)
    n = perf.size
    X = (rng.normal(size=(n, n_features)) + 0.5 * rng.normal(size=(perf.max() + 1, n_features))[perf]
         + 0.3 * rng.normal(size=(pas.max() + 1, n_features))[pas])
    beta = rng.choice([-1.0, 1.0], size=n_features) / np.sqrt(n_features)
    y = X @ beta + 0.5 * rng.normal(size=perf.max() + 1)[perf] + 0.3 * rng.normal(size=pas.max() + 1)[pas]
    return X, y + rng.normal(size=n)


def ridge_predict(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, alpha: float = 1.0):
    """Ridge regression (intercept unpenalised) fitted on ``train``, predicting ``test``."""
    mx, my = X[train].mean(axis=0), y[train].mean()
    A = X[train] - mx
    coef = np.linalg.solve(A.T @ A + alpha * np.eye(X.shape[1]), A.T @ (y[train] - my))
    return (X[test] - mx) @ coef + my


def _fold_predictions(design: Design, layout: Layout, Xa: np.ndarray, Xb: np.ndarray, y: np.ndarray):
    """Out-of-fold predictions of ridge on Xa and on Xb over the design's seeds, as Cells' fields."""
    n = y.size
    pa, pb, rows, seeds, folds, n_tr, n_te = [], [], [], [], [], [], []
    for s in range(design.n_seeds):
        split = folds_of(design, layout, s)
        if design.partition:
            fa, fb = np.zeros(n), np.zeros(n)
            for k, (tr, te) in enumerate(split):
                fa[te] = ridge_predict(Xa, y, tr, te)
                fb[te] = ridge_predict(Xb, y, tr, te)
                rows.append(te)
                seeds.append(s)
                folds.append(k)
                n_tr.append(tr.size)
                n_te.append(te.size)
            pa += [fa[:, None]] * len(split)
            pb += [fb[:, None]] * len(split)
        else:
            # A fixed test set: the fold models' predictions averaged, one unit per seed.
            te = split[0][1]
            fa, fb = np.zeros(n), np.zeros(n)
            fa[te] = np.mean([ridge_predict(Xa, y, tr, te) for tr, _ in split], axis=0)
            fb[te] = np.mean([ridge_predict(Xb, y, tr, te) for tr, _ in split], axis=0)
            pa.append(fa[:, None])
            pb.append(fb[:, None])
            rows.append(te)
            seeds.append(s)
            folds.append(-1)
            n_tr.append(np.nan)
            n_te.append(te.size)
    return np.stack(pa), np.stack(pb), rows, np.asarray(seeds), np.asarray(folds), np.asarray(n_tr, float), \
        np.asarray(n_te, float)


def toy_cells(design: Design, layout: Layout, rng: np.random.Generator, scenario: str, *, noise: float = 1.0):
    """One repetition's :class:`reports.units.Cells` under ``scenario`` (see the module docstring).

    Parameters
    ----------
    design : Design
    layout : Layout
    rng : numpy Generator
        All of the repetition's randomness (data, subsets, noise).
    scenario : one of :data:`SCENARIOS`
    noise : float
        Feature noise sd of learner B under ``effect``.

    Returns
    -------
    Cells
        Restricted to the fixed test set's segments when the design has one.
    """
    from reports.units import Cells

    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; use one of {SCENARIOS}")
    X, y = draw_data(rng, layout)
    p = X.shape[1]
    Xa = X[:, rng.choice(p, SUBSET, replace=False)]
    Xb = X[:, rng.choice(p, SUBSET, replace=False)]
    if scenario in ("predictor null", "weak predictor null", "degraded"):
        Xb = Xa
    if scenario in ("effect", "degraded"):
        Xb = Xb + rng.normal(0.0, noise, Xb.shape)
    pa, pb, rows, seeds, folds, n_tr, n_te = _fold_predictions(design, layout, Xa, Xb, y)
    units = layout.units(design.unit)
    if scenario == "predictor null":
        # One fitted predictor, each model adding its own independent noise: exchangeable per unit.
        sd = float(np.std(pa)) * 0.5
        pa = pa + rng.normal(0, sd, pa.shape)
        pb = pb + rng.normal(0, sd, pb.shape)
    elif scenario == "weak predictor null":
        # Unit-level differences with a zero mean over units: per unit, one model's noise sd is
        # multiplied by exp(h), the other's by exp(-h), h ~ N(0, WEAK_H^2) (symmetric, so no model
        # is better in expectation).
        sd = float(np.std(pa)) * 0.5
        labels, codes = np.unique(units, return_inverse=True)
        h = rng.normal(0.0, WEAK_H, labels.size)[codes]
        pa = pa + rng.normal(0, 1.0, pa.shape) * (sd * np.exp(h))[None, :, None]
        pb = pb + rng.normal(0, 1.0, pb.shape) * (sd * np.exp(-h))[None, :, None]
    y2 = y[:, None]
    keep = np.unique(np.concatenate(rows))
    if keep.size < y.size:  # fixed test set: only its units are units
        return Cells(y2[keep], pa[:, keep], pb[:, keep], [np.arange(keep.size)] * len(rows), seeds, folds,
                     units[keep], n_tr, n_te)
    return Cells(y2, pa, pb, rows, seeds, folds, units, n_tr, n_te)

"""The statistical unit of a run, and the paired tests that resample or permute it.

A split generalises over a unit: performers (``lopo``, ``percepiano_performer4``),
pieces (``piece``), passages (``excerpt``), composers, or segments (``kfold``).
Every test and interval here resamples or permutes *whole units*: swapping
single segments on grouped folds rejects a true null far too often (20-40% at
alpha 0.05 on this data's LOPO folds).

The estimand of a comparison is one number, the **fold-level mean metric**:
the metric (Pearson r or R^2) of each test fold, averaged over targets and
folds. Its difference between two models, that difference's CI and every
p-value of a row are on this same quantity:

* Seeds that do not change the folds (manifest ``seeded: false``: lopo, piece,
  composer, performer4) are not replicates. They are averaged within each
  fold, and the fold-level tests use J = number of folds. Seeds that do change
  the folds (kfold, excerpt) are repeats of the cross-validation: J = folds x
  seeds with the repeated-CV correction (Nadeau & Bengio 2003; Bouckaert &
  Frank 2004).
* A fixed test set (``percepiano_performer4``: every fold model scores the
  same segments) is scored with the fold-averaged predictions, as the paper's
  protocol averages its 4 models; its units are the test set's performers.
* Below :data:`FEW_GROUPS` units no group-level p-value or CI is computed:
  the cell says ``too few groups (n)`` (with 3 performers the smallest exact
  sign-flip p is 0.25).

:class:`reports.scoring.UnitScorer` computes the metric of every (fold,
target) cell from per-unit moment sums, so a cluster-bootstrap resample
(weights per unit) or a permutation (swap whole units between the two models)
costs one matrix product. The run's design (:class:`reports.rundata.Design`,
its units, :data:`FEW_GROUPS`) is read in :mod:`reports.rundata`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import rankdata

from benchmark.errors import ConfigError, DataError
from reports.bootstrap import bca_bounds
from reports.rundata import FEW_GROUPS, Design, RunData, run_design, too_few, unit_labels
from reports.scoring import Cells, UnitScorer, nanmean_last

__all__ = ["FEW_GROUPS", "Cells", "Design", "UnitComparison", "UnitScorer", "compare_units", "fold_unit_values",
           "pair_cells", "rank_intervals", "run_design", "too_few", "unit_labels"]


@dataclass(frozen=True)
class UnitComparison:
    """Model A - model B on the fold-level mean metric: one estimand, its CI and its p-values.

    Attributes
    ----------
    diff : float
        A - B of the fold-level mean metric (targets averaged, or one target).
    ci_low, ci_high : float
        Cluster-bootstrap t interval over units at the requested confidence (see
        :func:`compare_units`; NaN with too few units): the predictor-level claim's interval.
    se_boot : float
        The sd of the cluster-bootstrap replicates (the interval is ``diff -+ sqrt(G/(G-1))
        t_{G-1} se_boot``; :func:`reports.claims.bootstrap_t_pvalue` is its p-value).
    perm_p : float
        Two-sided permutation p, whole units swapped between A and B (NaN with too few units).
        Tests these two fitted predictors on these units, not the learning algorithms (secondary).
    perm_floor : float
        Smallest attainable ``perm_p`` (1 / (n_permutations + 1)).
    fold_diffs, fold_a, fold_b : ndarray
        The per-fold differences and scores (seeds averaged within fold unless they change the folds).
    n_units, J : int
    few : bool
        Fewer than :data:`FEW_GROUPS` units: no group-level number.
    ci_alternatives : dict, optional
        With ``compare_units(alternatives=True)``: name -> (low, high) of the
        percentile, BCa and expanded BCa intervals from the same replicates.
    """

    diff: float
    ci_low: float
    ci_high: float
    se_boot: float
    perm_p: float
    perm_floor: float
    fold_diffs: np.ndarray
    fold_a: np.ndarray
    fold_b: np.ndarray
    n_units: int
    J: int
    few: bool
    ci_alternatives: dict | None = None


def fold_unit_values(scorer: UnitScorer, seeded: bool, target: int | None = None) -> tuple:
    """Per fold-unit scores of A and B (targets averaged, or one target), seeds averaged within fold
    unless ``seeded``; returns (a, b, n_train, n_test)."""
    c = scorer.cells
    sa, sb = scorer.scores("a"), scorer.scores("b")
    if target is None:
        va, vb = nanmean_last(sa), nanmean_last(sb)
    else:
        va, vb = sa[:, target], sb[:, target]
    frame = pd.DataFrame({"seed": c.seed, "fold": c.fold, "a": va, "b": vb, "n_train": c.n_train,
                          "n_test": c.n_test})
    if not seeded:
        frame = frame.groupby("fold", sort=True)[["a", "b", "n_train", "n_test"]].mean()
    return (frame["a"].to_numpy(), frame["b"].to_numpy(), frame["n_train"].to_numpy(dtype=float),
            frame["n_test"].to_numpy(dtype=float))


def compare_units(scorer: UnitScorer, *, seeded: bool, n_resamples: int = 2000,
                  confidence: float = 0.95, seed: int = 0,
                  alternatives: bool = False) -> tuple[UnitComparison, list[UnitComparison]]:
    """Difference A - B with a cluster-bootstrap CI and a unit-swap permutation p (the predictor-level tests).

    One set of draws serves the target-averaged statistic and every target's.
    The CI is ``diff -+ sqrt(G / (G - 1)) t_{G-1, 1 - alpha/2} SE``, SE the sd
    of the cluster-bootstrap replicates over the G units (the normal-theory
    bootstrap interval with Student's quantile and the small-sample factor of
    Hesterberg's (2015) expanded intervals). On this data's LOPO design (22
    performers) the percentile interval rejected a true null of the fitted
    predictors 9.5% of the time, BCa 11.5%, expanded BCa 8.5%, this interval
    6.5% (400 simulations; ``alternatives=True`` returns the others for
    docs/calibration.md, which reports all four). The learner-level test is
    :func:`reports.claims.learner_claim` on the same scorer.

    Returns
    -------
    overall : UnitComparison
        Targets averaged.
    per_target : list of UnitComparison
        One per target.

    Raises
    ------
    ConfigError
        ``n_resamples < 1`` or a bad ``confidence``.
    """
    if int(n_resamples) < 1:
        raise ConfigError(f"n_resamples={n_resamples!r} must be >= 1 (2000 is usual)")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence={confidence!r} must lie strictly between 0 and 1, e.g. 0.95")
    G = scorer.n_units
    few = G < FEW_GROUPS
    observed = scorer.per_target()  # (1, T)
    boot = null = jack = None
    if not few:
        rng = np.random.default_rng(seed)
        boot, null = [], []
        for start in range(0, int(n_resamples), 256):
            p = min(256, int(n_resamples) - start)
            draws = rng.integers(0, G, size=(p, G))
            w = np.zeros((p, G))
            np.add.at(w, (np.repeat(np.arange(p), G), draws.ravel()), 1.0)
            boot.append(scorer.per_target(weights=w))
            null.append(scorer.per_target(swap=rng.random((p, G)) < 0.5))
        boot, null = np.concatenate(boot), np.concatenate(null)
        if alternatives:  # leave-one-unit-out statistics, for the BCa acceleration
            jack = scorer.per_target(weights=1.0 - np.eye(G))
    floor = 1.0 / (int(n_resamples) + 1)
    T = observed.shape[1]
    alpha = (1.0 - confidence) / 2.0
    # Bootstrap-t interval with the bootstrap SE: Student's t with G - 1 df and the sqrt(G / (G - 1)) that
    # undoes the plug-in variance's shrinkage (Hesterberg 2015, "expanded" intervals).
    ci_factor = float(np.sqrt(G / (G - 1.0)) * stats.t.ppf(1.0 - alpha, G - 1)) if G > 1 else np.nan

    def summarise(target: int | None) -> UnitComparison:
        def reduce(per_t: np.ndarray) -> np.ndarray:
            return nanmean_last(per_t) if target is None else per_t[:, target]

        diff = float(reduce(observed)[0])
        lo = hi = perm_p = se = np.nan
        others = {}
        if boot is not None and np.isfinite(diff):
            b = reduce(boot)
            b = b[np.isfinite(b)]
            if b.size > 1:
                se = float(np.std(b, ddof=1))
                lo, hi = diff - ci_factor * se, diff + ci_factor * se
            if alternatives and b.size:
                others["percentile"] = tuple(float(x) for x in np.quantile(b, [alpha, 1.0 - alpha]))
                for name, n_units in (("BCa", None), ("expanded BCa", G)):
                    others[name] = tuple(float(x) for x in bca_bounds(reduce(boot), diff, reduce(jack),
                                                                      confidence=confidence, n_units=n_units))
            nl = reduce(null)
            tol = 1e-12 * max(1.0, abs(diff))
            perm_p = float((1 + np.sum(np.abs(nl) >= abs(diff) - tol)) / (1 + nl.size))
        a, b_, _, _ = fold_unit_values(scorer, seeded, target)
        d = a - b_
        return UnitComparison(diff, lo, hi, se, perm_p, floor, d, a, b_, G, int(np.isfinite(d).sum()), few, others)

    return summarise(None), [summarise(j) for j in range(T)]


def pair_cells(run: RunData, model: str, base: str, seeds: list[int], run_b=None) -> Cells:
    """:class:`Cells` of ``model`` (A) and ``base`` (B) over ``seeds`` (complete for both).

    Partition splits: one fold unit per (seed, fold), scored on its test segments.
    A fixed test set: one unit per seed, scored with the fold models' averaged predictions.
    ``run_b`` (default ``run``): the run whose ``base`` predictions are B; it must
    have ``run``'s folds (``benchmark compare`` checks them), whose units and
    fold structure are used.

    Raises
    ------
    DataError
        The two models predict different segments.
    """
    other = run if run_b is None else run_b
    ids, y, sa, rep_a = run.stack(model, seeds)
    ids_b, _, sb, rep_b = other.stack(base, seeds)
    if not np.array_equal(ids, ids_b):
        where = "the run is inconsistent" if run_b is None else "were segments skipped in one run?"
        raise DataError(f"models {model!r} and {base!r} predict different segments; {where}")
    groups = unit_labels(run, ids)
    if not run.partition:
        pa = np.stack([sa[rep_a == s].mean(axis=0) for s in seeds])
        pb = np.stack([sb[rep_b == s].mean(axis=0) for s in seeds])
        rows = [np.arange(len(ids))] * len(seeds)
        nan = np.full(len(seeds), np.nan)
        return Cells(y, pa, pb, rows, np.asarray(seeds), np.full(len(seeds), -1), groups, nan, nan)
    pos = pd.Series(np.arange(len(ids)), index=ids)
    p = run.preds[(run.preds["model"] == model) & run.preds["seed"].isin(seeds)]
    folds = p.drop_duplicates(["seed", "fold", "sample_id"])
    sizes = run.rows[(run.rows["model"] == model) & (run.rows["status"] == "ok")].drop_duplicates(["seed", "fold"])
    sizes = sizes.set_index(["seed", "fold"])[["n_train", "n_test"]]
    pa, pb, rows, seed_of, fold_of, n_tr, n_te = [], [], [], [], [], [], []
    for (s, k), grp in folds.groupby(["seed", "fold"], sort=True):
        i = seeds.index(int(s))
        rows.append(pos[grp["sample_id"].to_numpy()].to_numpy())
        pa.append(sa[i])
        pb.append(sb[i])
        seed_of.append(int(s))
        fold_of.append(int(k))
        n_tr.append(float(sizes.loc[(s, k), "n_train"]) if (s, k) in sizes.index else np.nan)
        n_te.append(float(len(grp)))
    return Cells(y, np.stack(pa), np.stack(pb), rows, np.asarray(seed_of), np.asarray(fold_of), groups,
                 np.asarray(n_tr), np.asarray(n_te))


def rank_intervals(run: RunData, models: list[str] | None = None, *, metric: str = "pearson", n_resamples: int = 2000,
                   confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Each model's rank on the fold-level mean metric, with a percentile interval from a cluster bootstrap.

    Every draw resamples whole units of the split (the same draw for every
    model, so the ranks are joint) and re-ranks the models (1 = best, ties
    averaged). Below :data:`FEW_GROUPS` units the interval is NaN and
    ``note`` says ``too few groups (n)``.

    Parameters
    ----------
    run : RunData
    models : list of str, optional
        Default: the run's models with a complete seed. Scored on the seeds complete for all of them.
    metric : {"pearson", "r2"}
    n_resamples : int
    confidence : float
    seed : int

    Returns
    -------
    DataFrame, one row per model (best first)
        ``model``, ``score``, ``rank``, ``rank_lo``, ``rank_hi``, ``note``; models
        whose metric is undefined everywhere (a constant predictor's r) get NaN.

    Raises
    ------
    ConfigError
        Fewer than two models, no seed complete for all, ``n_resamples < 1`` or a bad ``confidence``.
    """
    if int(n_resamples) < 1:
        raise ConfigError(f"n_resamples={n_resamples!r} must be >= 1 (2000 is usual)")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence={confidence!r} must lie strictly between 0 and 1, e.g. 0.95")
    models = [m for m in (models or run.models) if run.complete_seeds(m)]
    if len(models) < 2:
        raise ConfigError(f"ranking needs at least two models with a complete seed, got {models}")
    seeds = [s for s in run.seeds if all(s in run.complete_seeds(m) for m in models)]
    if not seeds:
        raise ConfigError(f"no seed is complete for every model of {models}; resume the run or rank fewer models")
    scorers = [UnitScorer(pair_cells(run, m, m, seeds), metric) for m in models]
    G = scorers[0].n_units
    few = G < FEW_GROUPS

    def stats(w: np.ndarray) -> np.ndarray:  # (P, M): target-averaged statistic of each model
        cols = [nanmean_last(s.statistic(w)) for s in scorers]
        return np.stack(cols, axis=1)

    observed = stats(np.ones((1, G)))[0]
    defined = np.isfinite(observed)

    def ranks(v: np.ndarray) -> np.ndarray:
        out = np.full(v.shape, np.nan)
        out[..., defined] = rankdata(-v[..., defined], axis=-1)
        return out

    rank = ranks(observed[None])[0]
    lo = np.full(len(models), np.nan)
    hi = lo.copy()
    if not few:
        rng = np.random.default_rng(seed)
        draws = []
        for start in range(0, int(n_resamples), 256):
            p = min(256, int(n_resamples) - start)
            idx = rng.integers(0, G, size=(p, G))
            w = np.zeros((p, G))
            np.add.at(w, (np.repeat(np.arange(p), G), idx.ravel()), 1.0)
            draws.append(ranks(np.nan_to_num(stats(w), nan=-np.inf)))
        boot = np.concatenate(draws)
        alpha = (1.0 - confidence) / 2.0
        lo[defined] = np.quantile(boot[:, defined], alpha, axis=0)
        hi[defined] = np.quantile(boot[:, defined], 1.0 - alpha, axis=0)
    note = [too_few(G) if few and d else ("" if d else "metric undefined (constant predictions)") for d in defined]
    out = pd.DataFrame({"model": models, "score": observed, "rank": rank, "rank_lo": lo, "rank_hi": hi,
                        "note": note}).sort_values("rank", kind="stable", na_position="last").reset_index(drop=True)
    out.attrs.update(metric=metric, unit=run.design.unit, n_units=G, few=few, n_resamples=int(n_resamples),
                     confidence=confidence, seeds=seeds)
    return out

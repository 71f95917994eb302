"""The two claims a comparison can make, and the one primary test of each.

A row "model A - model B" can answer two different questions:

* **Are the learning algorithms different?** (a *learner-level* claim: run
  again on new training data, with new seeds, would A still beat B?) Its
  primary test is :func:`learner_test`: the corrected resampled t-test over
  the fold units (Nadeau & Bengio 2003, with the design's calibrated factor),
  plus, where seeds do not change the folds, the between-seed variance of each
  model's fold-level mean (model seeds are replicates of the learner's own
  randomness; Bouthillier et al. 2021). A stochastic learner with one seed
  gives no learner-level answer: its seed variance is unknown.
* **Are these two fitted predictors different on this population of units?**
  (a *predictor-level* claim.) Its primary test is the cluster-bootstrap t
  interval over the split's units and the p-value of that same interval
  (:func:`bootstrap_t_pvalue`).

For each claim the interval, the p-value and the significance mark come
from the same variance and the same critical value, so they cannot disagree:
with a multiplicity adjustment the interval's level is the one the adjusted
decision implies (:func:`compatible_levels`), so "the interval excludes 0",
"p_adj < alpha" and "marked" are one statement. Other tests (the unit-swap
permutation, the Bayesian posterior, TOST) are shown as secondary and never
mark a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from benchmark.errors import ConfigError

ALPHA = 0.05
#: What each claim is called in tables and notes.
CLAIMS = {"learner": "are the learning algorithms different", "predictor": "are these fitted predictors different"}


@dataclass(frozen=True)
class LearnerTest:
    """Outcome of :func:`learner_test`.

    Attributes
    ----------
    diff : float
        Mean over fold units of A - B (each model's seeds averaged within a fold when seeds
        do not change the folds).
    se, df : float
        Standard error of ``diff`` and its Satterthwaite degrees of freedom.
    pvalue : float
        Two-sided; NaN when ``reason`` says why no test is possible.
    v_folds, v_seeds : float
        The two variance components: training sets and test folds (corrected t), and the
        model seeds (0 for deterministic learners or when seeds change the folds).
    n_seeds_a, n_seeds_b : int
    J : int
        Fold units.
    reason : str
        Empty when tested, else why not (e.g. ``needs >= 2 model seeds``).
    """

    diff: float
    se: float
    df: float
    pvalue: float
    v_folds: float
    v_seeds: float
    n_seeds_a: int
    n_seeds_b: int
    J: int
    reason: str = ""

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The interval of ``diff`` at ``confidence``, from the test's own variance and df."""
        return t_interval(self.diff, self.se, self.df, confidence)


def t_interval(diff: float, se: float, df: float, confidence: float) -> tuple[float, float]:
    """``diff -+ t_{df, (1 + confidence) / 2} se``; NaN when any input is undefined."""
    if not (np.isfinite(diff) and np.isfinite(se) and np.isfinite(df) and df > 0):
        return np.nan, np.nan
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df)) * se
    return diff - half, diff + half


def t_pvalue(diff: float, se: float, df: float) -> float:
    """Two-sided p of ``diff / se`` under Student's t with ``df``: the interval of :func:`t_interval` at level
    ``1 - p`` has 0 on its edge. Zero ``se``: 1 for a zero difference, else 0."""
    if not (np.isfinite(diff) and np.isfinite(se) and np.isfinite(df) and df > 0):
        return np.nan
    if se == 0.0:
        return 1.0 if diff == 0.0 else 0.0
    return float(2.0 * stats.t.sf(abs(diff) / se, df))


def _seed_components(x: np.ndarray) -> tuple[float, float]:
    """Variance of a model's seed means over its K seeds, and the seed x fold residual mean square.

    ``x`` (K, J): fold scores per seed. With ``x[s, k] = mu + f_k + u_s + e_sk`` the first
    estimates Var(u) + Var(e) / J, the second Var(e) (two-way ANOVA without replication).
    """
    K, J = x.shape
    if K < 2:
        return 0.0, 0.0
    seed_means = x.mean(axis=1)
    resid = x - seed_means[:, None] - x.mean(axis=0)[None, :] + x.mean()
    ms_res = float((resid ** 2).sum() / ((K - 1) * (J - 1))) if J > 1 else 0.0
    return float(seed_means.var(ddof=1)), ms_res


def learner_test(a, b, n_train, n_test, *, ratio_scale: float = 1.0, seeded: bool = False,
                 deterministic: tuple[bool, bool] = (False, False), min_seeds: int = 2) -> LearnerTest:
    """The learner-level test of A - B: corrected resampled t plus the between-seed variance.

    Seeds that do not change the folds (``seeded=False``): ``a`` is (K_A, J), one row of
    fold scores per model seed, ``b`` (K_B, J). With ``d_k`` the difference of the
    seed-averaged fold scores and ``s2_A`` the variance of A's seed means over its
    seeds,

        V = (1/J + c n_test/n_train) * max(0, var_k(d) - MS_A/K_A - MS_B/K_B) + s2_A/K_A + s2_B/K_B

    where ``c`` is the design's calibrated factor and ``MS`` the seed x fold residual
    mean square, which ``var_k(d)`` holds and ``s2`` counts already. The
    Satterthwaite df combine J - 1, K_A - 1 and K_B - 1. A deterministic learner
    has no seed variance (one seed suffices); a stochastic one with fewer than
    ``min_seeds`` seeds gives no test (``reason`` says so).

    Seeds that change the folds (``seeded=True``): ``a`` and ``b`` are (R, k), one row per
    repeat of the cross-validation, paired cell by cell; the test is the repeated-CV
    corrected t over the J = R k cells (each repeat's own model seed is part of
    that cell's randomness).

    Parameters
    ----------
    a, b : array-like, shape (K, J)
    n_train, n_test : float or array-like
        Mean training and test sizes of the fold units.
    ratio_scale : float
        The design's calibrated factor of the n_test/n_train term (1 = Nadeau-Bengio).
    seeded : bool
    deterministic : (bool, bool)
        Whether A, B are deterministic learners (registry metadata or identical
        predictions across seeds).
    min_seeds : int
        Seeds a stochastic learner needs (the calibration's answer for its family and design).

    Returns
    -------
    LearnerTest

    Raises
    ------
    ConfigError
        Shapes that do not match, fewer than 2 fold units, bad sizes or factor.
    """
    a = np.atleast_2d(np.asarray(a, dtype=float))
    b = np.atleast_2d(np.asarray(b, dtype=float))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or (seeded and a.shape != b.shape):
        raise ConfigError(f"fold scores must be (seeds, folds) with the same folds, got {a.shape} and {b.shape}")
    J = a.shape[1] * (a.shape[0] if seeded else 1)
    if J < 2:
        raise ConfigError(f"need at least 2 fold units, got {J}")
    n_tr = float(np.mean(n_train))
    n_te = float(np.mean(n_test))
    if not (np.isfinite(n_tr) and np.isfinite(n_te) and n_tr > 0 and n_te > 0):
        raise ConfigError(f"n_train and n_test must be positive sizes, got {n_train!r} and {n_test!r}")
    if not (np.isfinite(ratio_scale) and ratio_scale >= 0.0):
        raise ConfigError(f"ratio_scale={ratio_scale!r} must be a finite number >= 0 (1 = Nadeau-Bengio)")
    K_A, K_B = a.shape[0], b.shape[0]
    nan = np.nan
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return LearnerTest(nan, nan, nan, nan, nan, nan, K_A, K_B, J, "undefined fold scores")
    q = ratio_scale * n_te / n_tr
    if seeded:
        d = (a - b).ravel()
        v = (1.0 / J + q) * float(d.var(ddof=1))
        se = float(np.sqrt(v))
        return LearnerTest(float(d.mean()), se, float(J - 1), t_pvalue(float(d.mean()), se, J - 1), v, 0.0,
                           K_A, K_B, J)
    short = [name for name, K, det in (("A", K_A, deterministic[0]), ("B", K_B, deterministic[1]))
             if not det and K < min_seeds]
    d = a.mean(axis=0) - b.mean(axis=0)
    diff = float(d.mean())
    if short:
        reason = f"needs >= {min_seeds} model seeds"
        return LearnerTest(diff, nan, nan, nan, nan, nan, K_A, K_B, J, reason)
    parts_seed, parts_df, ms = [], [], 0.0
    for x, det in ((a, deterministic[0]), (b, deterministic[1])):
        # A deterministic learner has no seed variance; one seed of a learner whose family the
        # calibration found needs only one (min_seeds=1) has none that can be estimated.
        if det or x.shape[0] < 2:
            continue
        s2, ms_res = _seed_components(x)
        parts_seed.append(s2 / x.shape[0])
        parts_df.append(x.shape[0] - 1)
        ms += ms_res / x.shape[0]
    v_folds = (1.0 / J + q) * max(0.0, float(d.var(ddof=1)) - ms)
    v_seeds = float(sum(parts_seed))
    v = v_folds + v_seeds
    # Satterthwaite (1946): each component's df; the fold part keeps J - 1.
    denom = v_folds ** 2 / (J - 1) + sum(p ** 2 / k for p, k in zip(parts_seed, parts_df, strict=True))
    df = v ** 2 / denom if denom > 0 else float(J - 1)
    se = float(np.sqrt(v))
    return LearnerTest(diff, se, float(df), t_pvalue(diff, se, df), v_folds, v_seeds, K_A, K_B, J)


def seed_matrix(values: np.ndarray, seed: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Fold-unit values arranged (seeds, folds), seeds and folds in sorted order (NaN where a cell is missing)."""
    seeds, si = np.unique(np.asarray(seed), return_inverse=True)
    folds, fi = np.unique(np.asarray(fold), return_inverse=True)
    out = np.full((seeds.size, folds.size), np.nan)
    out[si, fi] = values
    return out


def learner_claim(scorer, *, seeded: bool, ratio_scale: float, deterministic=(False, False), min_seeds: int = 2,
                  target: int | None = None) -> LearnerTest:
    """:func:`learner_test` on a model pair's scored cells (a :class:`reports.units.UnitScorer`).

    Each (seed, fold) cell's metric of A and of B (targets averaged, or one ``target``)
    is arranged (seeds, folds); the sizes are the cells' mean training and test sizes.
    """
    cells = scorer.cells
    vals = []
    for model in ("a", "b"):
        s = scorer.scores(model)
        if target is not None:
            vals.append(s[:, target])
            continue
        ok = np.isfinite(s)
        with np.errstate(invalid="ignore", divide="ignore"):
            vals.append(np.where(ok, s, 0.0).sum(axis=1) / ok.sum(axis=1))
    a = seed_matrix(vals[0], cells.seed, cells.fold)
    b = seed_matrix(vals[1], cells.seed, cells.fold)
    return learner_test(a, b, float(np.nanmean(cells.n_train)), float(np.nanmean(cells.n_test)),
                        ratio_scale=ratio_scale, seeded=seeded, deterministic=deterministic, min_seeds=min_seeds)


def bootstrap_t_se_factor(n_units: int) -> float:
    """``sqrt(G / (G - 1))``: the small-sample expansion of the cluster-bootstrap SE (Hesterberg 2015)."""
    return float(np.sqrt(n_units / (n_units - 1.0))) if n_units > 1 else np.nan


def bootstrap_t_pvalue(diff: float, se_boot: float, n_units: int) -> float:
    """Two-sided p of the printed cluster-bootstrap interval ``diff -+ sqrt(G/(G-1)) t_{G-1} se_boot``.

    The interval at level ``1 - p`` has 0 on its edge, so the interval at 95%
    excludes 0 exactly when p < 0.05.
    """
    return t_pvalue(diff, bootstrap_t_se_factor(n_units) * se_boot, n_units - 1.0)


def compatible_levels(p_raw, method: str, alpha: float = ALPHA) -> np.ndarray:
    """The confidence level of each row's interval that agrees with the adjusted decision.

    Holm (step-down): the i-th smallest p is rejected at ``alpha / (m - i + 1)``; a
    rejected row's interval at level ``1 - alpha / (m - i + 1)`` excludes 0, and every
    retained row's interval at ``1 - alpha / (m - r)`` (r rejections) covers 0.
    Benjamini-Hochberg (step-up): the R selected rows get level ``1 - R alpha / m``,
    the others ``1 - (R + 1) alpha / m`` (Benjamini & Yekutieli 2005's false
    coverage-statement rate intervals). Bonferroni: ``1 - alpha / m`` for all.
    NaN p-values are left out of the family and get ``1 - alpha``.

    Parameters
    ----------
    p_raw : array-like of float
        The unadjusted p-values of the family (any shape).
    method : {"holm", "fdr_bh", "bonferroni", "none"}

    Returns
    -------
    ndarray, same shape: the level of each row's interval.

    Raises
    ------
    ConfigError
        An unknown method.
    """
    p = np.asarray(p_raw, dtype=float)
    flat = p.ravel()
    out = np.full(flat.shape, 1.0 - alpha)
    ok = np.flatnonzero(np.isfinite(flat))
    m = ok.size
    if method == "none" or m == 0:
        return out.reshape(p.shape)
    order = ok[np.argsort(flat[ok], kind="stable")]
    ps = flat[order]
    if method == "bonferroni":
        out[ok] = 1.0 - alpha / m
    elif method == "holm":
        thresholds = alpha / (m - np.arange(m))
        fail = np.flatnonzero(ps > thresholds)
        r = int(fail[0]) if fail.size else m
        levels = np.where(np.arange(m) < r, 1.0 - thresholds, 1.0 - alpha / max(m - r, 1))
        out[order] = levels
    elif method == "fdr_bh":
        below = np.flatnonzero(ps <= alpha * np.arange(1, m + 1) / m)
        R = int(below[-1]) + 1 if below.size else 0
        selected = np.zeros(m, dtype=bool)
        selected[:R] = True
        out[order] = np.where(selected, 1.0 - R * alpha / m, 1.0 - min(R + 1, m) * alpha / m)
    else:
        raise ConfigError(f"unknown adjustment {method!r}; use holm, fdr_bh, bonferroni or none")
    return out.reshape(p.shape)


def detectable_effect(se: float, df: float, confidence: float = 1.0 - ALPHA, power: float = 0.8) -> float:
    """The smallest true difference a two-sided t test with this ``se`` and ``df`` detects with ``power``.

    ``(t_{df, (1 + confidence)/2} + t_{df, power}) se`` (the usual normal-theory
    formula with Student's quantiles; docs/calibration.md checks it against
    the simulated power of each design).
    """
    if not (np.isfinite(se) and np.isfinite(df) and df > 0):
        return np.nan
    return float((stats.t.ppf(0.5 + confidence / 2.0, df) + stats.t.ppf(power, df)) * se)


@dataclass(frozen=True)
class Verdict:
    """The Bayesian reading of a learner test (posterior t) and the TOST equivalence test, same variance."""

    p_better: float
    p_equivalent: float
    p_worse: float
    verdict: str
    tost_p: float


def bayes_and_tost(diff: float, se: float, df: float, *, rope: float, threshold: float = 0.95,
                   alpha: float = ALPHA) -> Verdict:
    """Posterior probabilities of A better / equivalent / worse within ``rope``, and the TOST p-value.

    The posterior of the true difference is Student's t with ``df`` centred on
    ``diff`` with scale ``se`` (Benavoli et al. 2017's correlated t-test, with the
    learner test's own variance, seeds included). The verdict names the region
    whose probability reaches ``threshold`` ("undecided" otherwise). TOST
    (Schuirmann 1987): two one-sided t-tests against -rope and +rope with the
    same se and df; equivalence when ``tost_p < alpha``.
    """
    nan = np.nan
    if not (np.isfinite(diff) and np.isfinite(se) and np.isfinite(df) and df > 0 and se > 0):
        return Verdict(nan, nan, nan, "not tested", nan)
    if rope < 0:
        raise ConfigError(f"rope={rope!r} must be >= 0")
    p_b = float(stats.t.cdf((-rope - diff) / se, df))
    p_a = float(stats.t.sf((rope - diff) / se, df))
    p_eq = max(0.0, 1.0 - p_a - p_b)
    probs = {"better": p_a, "equivalent": p_eq, "worse": p_b}
    best = max(probs, key=probs.get)
    tost = max(float(stats.t.sf((diff + rope) / se, df)), float(stats.t.sf((rope - diff) / se, df)))
    return Verdict(p_a, p_eq, p_b, best if probs[best] >= threshold else "undecided", tost)


@dataclass(frozen=True)
class PairClaims:
    """Both claims of one comparison (A - B), before the family's multiplicity adjustment.

    Attributes
    ----------
    diff : float
        The fold-level mean difference both claims are about.
    learner : LearnerTest or None
        None when the learner claim has no answer on this run (``learner_note`` says why).
    learner_note : str
    pred_scale : float
        The predictor claim's standard error as its interval uses it, ``sqrt(G/(G-1)) se_boot``,
        with ``pred_df = G - 1``.
    pred_df : float
    pred_p : float
    pred_note : str
    perm_p, perm_floor : float
        The secondary unit-swap permutation test.
    n_units : int
    """

    diff: float
    learner: LearnerTest | None
    learner_note: str
    pred_scale: float
    pred_df: float
    pred_p: float
    pred_note: str
    perm_p: float
    perm_floor: float
    n_units: int

    @property
    def learner_p(self) -> float:
        return np.nan if self.learner is None else self.learner.pvalue


def pair_claims(scorer, comparison, key, *, partition: bool, families=(None, None), target: int | None = None,
                few_text: str = "") -> PairClaims:
    """Both claims of a model pair on a run, each withheld where docs/calibration.md does not back it.

    Parameters
    ----------
    scorer : reports.units.UnitScorer
    comparison : reports.units.UnitComparison
        Of the same scorer (the target-averaged one, or ``target``'s).
    key : reports.calibrated.RunKey
        The run's design (its model seeds per model where seeds do not change the folds).
    partition : bool
        False for a fixed test set (no fold-level test).
    families : (str or None, str or None)
        Learner family of A and B: ``deterministic``, ``tabular``, ``neural`` or None (unknown).
    few_text : str
        What a cell says with too few units (``too few groups (n)``).
    """
    from reports import calibrated

    G = comparison.n_units
    nan = np.nan
    if comparison.few:
        return PairClaims(comparison.diff, None, few_text, nan, nan, nan, few_text, nan, comparison.perm_floor, G)
    pred_note = calibrated.predictor_withheld(key)
    scale = bootstrap_t_se_factor(G) * comparison.se_boot
    pred_p = nan if pred_note else t_pvalue(comparison.diff, scale, G - 1.0)
    learner, note = None, ""
    if not partition:
        note = "n/a (fixed test set)"
    else:
        note, need = calibrated.learner_withheld(key, families)
        if not note:
            det = tuple(f == "deterministic" for f in families)
            learner = learner_claim(scorer, seeded=key.seeded, ratio_scale=calibrated.ratio_scale(key),
                                    deterministic=det, min_seeds=need, target=target)
            if learner.reason:
                note, learner = learner.reason, None
    return PairClaims(comparison.diff, learner, note, scale, G - 1.0, pred_p, pred_note,
                      nan if pred_note else comparison.perm_p, comparison.perm_floor, G)


def claim_columns(c: PairClaims, level_learner: float, level_pred: float, p_adj_learner: float,
                  p_adj_pred: float) -> dict:
    """A comparison's table columns for both claims at their family-compatible interval levels.

    ``learner_lo/hi``, ``learner_p``, ``learner_p_adj``, ``learner_df``, ``learner_level``,
    ``learner_mde`` (the smallest true difference this test would detect with 80% power at that
    level, given only where the claim is not significant) and ``learner_note``; the same with
    ``pred_`` for the predictor claim.
    """
    out = {}
    for name, ok, diff, se, df, p, p_adj, level, note in (
            ("learner", c.learner is not None, c.diff, getattr(c.learner, "se", np.nan),
             getattr(c.learner, "df", np.nan), c.learner_p, p_adj_learner, level_learner, c.learner_note),
            ("pred", not c.pred_note and np.isfinite(c.pred_p), c.diff, c.pred_scale, c.pred_df, c.pred_p, p_adj_pred,
             level_pred, c.pred_note)):
        lo, hi = t_interval(diff, se, df, level) if ok else (np.nan, np.nan)
        sig = ok and np.isfinite(p_adj) and p_adj < ALPHA
        out.update({f"{name}_lo": lo, f"{name}_hi": hi, f"{name}_p": p if ok else np.nan,
                    f"{name}_p_adj": p_adj if ok else np.nan, f"{name}_df": df if ok else np.nan,
                    f"{name}_level": level if ok else np.nan,
                    f"{name}_mde": detectable_effect(se, df, level) if ok and not sig else np.nan,
                    f"{name}_note": "" if ok else note})
    return out

"""Every printed test under every null, on one design: the engine of docs/calibration.md and ``benchmark power``.

:func:`decide` passes one repetition's :class:`reports.units.Cells` through the
report's own code (:mod:`reports.units`, :mod:`reports.claims`) and returns what
each printed rule decides. :func:`simulate_toy` repeats that on simulated data
sets (independent repetitions: Wilson intervals); :func:`bank_rates` forms
learner nulls from a bank of a real learner's out-of-fold predictions (pairs
of seed groups: jackknife intervals over seeds).

The rules, exactly as the report prints them:

* ``learner t``: the learner-level claim's primary test
  (:func:`reports.claims.learner_test`: corrected resampled t with the
  design's calibrated factor, plus the between-seed variance);
* ``Bayesian verdict``: "better"/"worse" from the same posterior at the
  printed threshold and ROPE (:func:`reports.claims.bayes_and_tost`);
* ``TOST``: equivalence within the ROPE declared (a false positive when the
  true difference is at the ROPE's edge or beyond);
* ``cluster bootstrap t``: the predictor-level claim's primary test (its
  interval excludes 0);
* ``unit-swap permutation``: secondary, predictor-level;
* ``corrected t, seeds ignored``: the learner t without the seed variance
  (what the report printed before; kept to show why it is not enough);
* three intervals the report does not print (percentile, BCa, expanded BCa).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from reports.claims import bayes_and_tost, bootstrap_t_pvalue, learner_test, seed_matrix
from simulation.designs import Design

ALPHA = 0.05
ROPE = 0.01
THRESHOLD = 0.975
LEARNER = "learner t"
NAIVE = "corrected t, seeds ignored"
BAYES = "Bayesian verdict"
TOST = "TOST equivalence"
CLUSTER = "cluster bootstrap t"
PERM = "unit-swap permutation"
ALT_CIS = {"percentile": "percentile CI (not printed)", "BCa": "BCa CI (not printed)",
           "expanded BCa": "expanded BCa CI (not printed)"}
#: What each rule answers: the learner-level claim, the predictor-level claim, or neither (not printed).
ROLE = {LEARNER: "learner", BAYES: "learner", TOST: "learner", NAIVE: "none", CLUSTER: "predictor",
        PERM: "predictor", **{v: "none" for v in ALT_CIS.values()}}


def cell_scores(scorer) -> np.ndarray:
    """Each fold unit's metric for A and B (targets averaged) from a :class:`reports.units.UnitScorer`: (2, U)."""
    out = []
    for model in ("a", "b"):
        s = scorer.scores(model)
        ok = np.isfinite(s)
        with np.errstate(invalid="ignore"):
            out.append(np.where(ok, s, 0.0).sum(axis=1) / ok.sum(axis=1))
    return np.stack(out)


def learner_from_scores(a: np.ndarray, b: np.ndarray, n_train: float, n_test: float, design: Design, *,
                        ratio_scale: float, deterministic=(False, False), min_seeds: int = 2,
                        rope: float = ROPE, threshold: float = THRESHOLD) -> dict:
    """The learner-level rules on (seeds, folds) score matrices: learner t, Bayesian verdict, TOST, naive t."""
    out = {}
    res = learner_test(a, b, n_train, n_test, ratio_scale=ratio_scale, seeded=design.seeded,
                       deterministic=deterministic, min_seeds=min_seeds)
    naive = learner_test(a, b, n_train, n_test, ratio_scale=ratio_scale, seeded=design.seeded,
                         deterministic=(True, True))
    out[NAIVE] = bool(naive.pvalue < ALPHA)
    out["_diff"] = res.diff
    out["_se"], out["_df"] = res.se, res.df
    out["_reason"] = res.reason
    if res.reason:
        out[LEARNER] = out[BAYES] = out[TOST] = None  # no test: counted apart, never as a rejection
        return out
    out[LEARNER] = bool(res.pvalue < ALPHA)
    v = bayes_and_tost(res.diff, res.se, res.df, rope=rope, threshold=threshold)
    out[BAYES] = v.verdict in ("better", "worse")
    out[TOST] = bool(v.tost_p < ALPHA)
    return out


def decide(cells, design: Design, *, ratio_scale: float, n_resamples: int = 499, seed: int = 0,
           deterministic=(True, True), min_seeds: int = 2, metric: str = "pearson", rope: float = ROPE,
           threshold: float = THRESHOLD, alternatives: bool = True) -> dict:
    """What every printed rule decides on one repetition (True = rejects / declares).

    Keys are the rule names of this module (None where the rule gives no answer, e.g. a
    learner test that needs more seeds); ``_diff`` is the fold-level mean difference,
    ``_folds`` the learner test's inputs (for fitting the factor), ``_units`` the unit count.
    """
    from reports.units import FEW_GROUPS, UnitScorer, compare_units

    scorer = UnitScorer(cells, metric)
    G = scorer.n_units
    out: dict = {"_units": G, "_few": G < FEW_GROUPS}
    if n_resamples > 0 and G >= FEW_GROUPS:
        res, _ = compare_units(scorer, seeded=design.seeded, n_resamples=n_resamples, seed=seed,
                               alternatives=alternatives)
        out[PERM] = bool(res.perm_p < ALPHA)
        out[CLUSTER] = bool(bootstrap_t_pvalue(res.diff, res.se_boot, G) < ALPHA)
        out["_cluster_se"] = res.se_boot
        for key, row in ALT_CIS.items():
            lo, hi = (res.ci_alternatives or {}).get(key, (np.nan, np.nan))
            out[row] = bool(lo > 0 or hi < 0)
    scores = cell_scores(scorer)
    c = cells
    if design.partition and G >= FEW_GROUPS:
        a = seed_matrix(scores[0], c.seed, c.fold)
        b = seed_matrix(scores[1], c.seed, c.fold)
        n_tr, n_te = float(np.nanmean(c.n_train)), float(np.nanmean(c.n_test))
        out["_folds"] = (a, b, n_tr, n_te)
        d = (a - b).ravel() if design.seeded else np.nanmean(a, axis=0) - np.nanmean(b, axis=0)
        out["_fold_sd"] = float(np.nanstd(d, ddof=1))
        out.update(learner_from_scores(a, b, n_tr, n_te, design, ratio_scale=ratio_scale,
                                       deterministic=deterministic, min_seeds=min_seeds, rope=rope,
                                       threshold=threshold))
    else:
        out["_diff"] = float(np.mean(scores[0] - scores[1]))
    return out


def fit_scale(reps: list[dict], design: Design) -> float:
    """The factor of the n_test/n_train term whose false-positive rate on ``reps`` is closest to alpha.

    ``reps`` are learner-null repetitions of deterministic learners (:func:`decide`'s
    ``_folds``). The rate falls as the factor grows; among the factors of a fine grid
    with the best rate, the midpoint (in log scale) is taken. One pass over the grid.
    """
    m, v, J, q = [], [], [], []
    for r in reps:
        if "_folds" not in r:
            continue
        a, b, n_tr, n_te = r["_folds"]
        d = (a - b).ravel() if design.seeded else a.mean(axis=0) - b.mean(axis=0)
        d = d[np.isfinite(d)]
        if d.size < 2:
            continue
        m.append(d.mean())
        v.append(d.var(ddof=1))
        J.append(d.size)
        q.append(n_te / n_tr)
    if not m:
        return 1.0
    m, v, J, q = (np.asarray(x, dtype=float) for x in (m, v, J, q))
    crit = stats.t.ppf(1 - ALPHA / 2, J - 1)
    grid = np.exp(np.linspace(np.log(0.02), np.log(50.0), 801))
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.abs(m)[None, :] / np.sqrt((1.0 / J[None, :] + grid[:, None] * q[None, :]) * v[None, :])
    rates = np.where(np.isfinite(t), t > crit[None, :], False).sum(axis=1) / len(reps)
    err = np.abs(rates - ALPHA)
    best = grid[err <= err.min() + 1e-12]
    return float(np.exp(np.log(best).mean()))


def toy_reps(design: Design, layout, scenario: str, n: int, *, seed: int, ratio_scale: float, n_resamples: int,
             noise: float = 1.0, start: int = 0, metric: str = "pearson", alternatives: bool = True) -> list[dict]:
    """``n`` independent repetitions of ``scenario`` (:func:`simulation.toy.toy_cells`), decided by :func:`decide`."""
    from simulation.toy import SCENARIOS, toy_cells

    out = []
    tag = SCENARIOS.index(scenario)
    for r in range(start, start + n):
        rng = np.random.default_rng([seed, r, tag, int(round(noise * 1000))])
        cells = toy_cells(design, layout, rng, scenario, noise=noise)
        out.append(decide(cells, design, ratio_scale=ratio_scale, n_resamples=n_resamples, seed=r, metric=metric,
                          alternatives=alternatives))
    return out


def rates_of(reps: list[dict], rules) -> dict:
    """Independent repetitions' rate of each rule (repetitions where a rule gave no answer left out)."""
    from simulation.rates import independent_rate

    out = {}
    for rule in rules:
        vals = [r[rule] for r in reps if r.get(rule) is not None]
        if vals:
            out[rule] = independent_rate(vals)
    return out


def bank_rates(scores: np.ndarray, bank, design: Design, *, ratio_scale: float, ks=(1, 2, 3, 5),
               n_pairs: int = 4000, seed: int = 0, rope: float = ROPE, threshold: float = THRESHOLD) -> dict:
    """Learner-null rates from a bank: pairs of disjoint seed groups of one learner, run through the report's rules.

    Parameters
    ----------
    scores : ndarray (S, C)
        Each bank seed's fold-unit metric (:func:`simulation.bank.bank_scores`).
    bank : simulation.bank.BankDesign
    design : Design
    ratio_scale : float
        The design's calibrated factor.
    ks : tuple of int
        Model seeds per learner (unseeded designs); a seeded design uses its own
        repeats (one model seed per repeat, as a run does).
    n_pairs : int
        Random pairs per k (an incomplete U-statistic).

    Returns
    -------
    dict k -> {rule: Rate}, plus ``"_n_seeds"``; a k whose 2k seeds the bank lacks is absent.
    """
    from simulation.rates import group_pairs, jackknife_rate

    S = scores.shape[0]
    rng = np.random.default_rng(seed)
    n_tr, n_te = float(np.mean(bank.n_train)), float(np.mean(bank.n_test))
    out: dict = {"_n_seeds": S}
    reps = sorted(set(bank.cell_seed.tolist()))
    if design.seeded:
        ks = (len(reps),)
    for k in ks:
        if S < 2 * k:
            continue
        pairs = group_pairs(S, k, n_pairs, rng)
        decisions = []
        for grp in pairs:
            if design.seeded:
                # Repeat r of learner A uses A's r-th seed, as a run's seed r is its model seed too.
                a = np.stack([scores[grp[0][r]][bank.cell_seed == s] for r, s in enumerate(reps)])
                b = np.stack([scores[grp[1][r]][bank.cell_seed == s] for r, s in enumerate(reps)])
            else:
                a, b = scores[grp[0]], scores[grp[1]]
            decisions.append(learner_from_scores(a, b, n_tr, n_te, design, ratio_scale=ratio_scale,
                                                 deterministic=(False, False), min_seeds=2, rope=rope,
                                                 threshold=threshold))
        rates = {}
        for rule in (LEARNER, BAYES, NAIVE):
            ok = np.array([d.get(rule) is not None for d in decisions])
            if ok.any():
                vals = np.array([bool(d[rule]) for d, o in zip(decisions, ok, strict=True) if o])
                rates[rule] = jackknife_rate(vals, pairs[ok], S)
        out[k] = rates
    return out

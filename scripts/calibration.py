"""Calibration of every test the report prints, on this data's real split designs.

For each design (``lopo`` with the real performers' fold sizes, ``kfold`` x 3
seeds, ``excerpt`` x 3 seeds over the real passages, ``kfold_grouped`` x 3 seeds
over the real performances, ``piece`` over the real pieces,
``percepiano_performer4``)
and each repetition, a fresh data set is drawn on the real segment layout
(performer and passage effects on features and ratings), two learners are
cross-validated on the design's folds, and their out-of-fold predictions go
through the report's own code (:mod:`reports.units`): the fold-level mean r
difference, its cluster-bootstrap CI, the corrected resampled t-test, the
whole-unit swap permutation test and the Bayesian correlated t-test.

Two nulls, because the tests answer two questions:

* **learner null**: two ridge regressions on different random subsets of
  equally informative features: equal expected performance, the question "is
  learner A better than learner B on new performers?". The corrected t-test,
  the bootstrap CI and the Bayesian test are meant for it.
* **predictor null**: one fitted predictor plus independent noise of equal
  size for each model: the two sets of predictions are exchangeable within
  each unit, the null the unit-swap permutation test tests ("are these two
  fitted predictors different on these units?").

The known effect: learner B sees its features through added noise. Power is
the rejection rate under it. A test is *calibrated* for a design when its
false-positive rate at alpha = 0.05 lies in [0.03, 0.07] under its own null.

Writes ``docs/calibration.md`` and ``reports/calibration.json`` (read by the
report to say which tests are calibrated for a run's split).

Usage::

    nice -n 10 .venv/bin/python scripts/calibration.py --reps 200 --out docs/calibration.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from reports.paired import bayesian_correlated_ttest, corrected_resampled_ttest  # noqa: E402
from reports.units import FEW_GROUPS, Cells, UnitScorer, compare_units, fold_unit_values  # noqa: E402

ALPHA = 0.05
RANGE = (0.03, 0.07)
SCOPE = (" The fitted factors describe ridge learners on ratings simulated with this layout's performer and passage effects; learners whose fold scores correlate more (or less) across training sets would need their own calibration, so read a p-value near 0.05 with that in mind.")
TESTS = ("corrected t (NB)", "cluster bootstrap CI", "Bayesian correlated t", "unit-swap permutation")
LEARNER_TESTS = TESTS[:3]
#: Other intervals from the same bootstrap replicates, simulated to show why the printed one was chosen.
ALT_CIS = {"percentile": "percentile CI (not printed)", "BCa": "BCa CI (not printed)",
           "expanded BCa": "expanded BCa CI (not printed)"}
ROWS = TESTS + tuple(ALT_CIS.values())


@dataclass(frozen=True)
class Layout:
    """Segments of the data set: performer, passage, piece and performance of each."""

    performer: np.ndarray
    passage: np.ndarray
    piece: np.ndarray
    performance: np.ndarray

    def units(self, unit: str) -> np.ndarray:
        """The label of each segment's unit (``segments``: the segment itself)."""
        if unit == "segments":
            return np.arange(self.performer.size).astype(str)
        return getattr(self, UNIT_ATTR[unit])


#: A design's unit -> the Layout attribute that labels it.
UNIT_ATTR = {"performers": "performer", "passages": "passage", "pieces": "piece", "performances": "performance"}


@dataclass(frozen=True)
class Design:
    """A split design: name, unit, seeds and a function (layout, seed) -> list of (train, test)."""

    name: str
    unit: str
    seeded: bool
    partition: bool
    n_seeds: int


def real_layout(data_dir: Path | None) -> Layout | None:
    """Performer, passage, piece and performance of every PercePiano segment; None if the data is absent.

    The passage is the ``excerpt`` split's own group (:func:`splits.passage_groups`:
    excerpts that overlap in bars, found from the notes), not the excerpt label
    (``excerpt_leaky``); the performance is ``kfold_grouped``'s
    (:func:`splits.performance_groups`: one player's rendition of one piece,
    note-identical renditions joined). Finding them reads every MIDI file, so
    the excerpt-to-passage and piece_player-to-performance maps are kept in the
    feature cache, keyed by the label file's content.
    """
    import hashlib

    from benchmark.dataset import MEAN_LABELS, load_dataset, resolve_data_dir
    from benchmark.errors import BenchmarkError
    from features.cache import resolve_cache_dir
    from splits.registry import performer_units

    try:
        root = resolve_data_dir(data_dir)
    except BenchmarkError:
        return None
    meta = load_dataset(root).meta
    key = hashlib.sha256((root / MEAN_LABELS).read_bytes()).hexdigest()[:16]
    path = Path(resolve_cache_dir(None)) / f"calibration_groups_{key}.json"
    base = meta["piece"].astype(str) + "_" + meta["player"].astype(str)
    if path.is_file():
        maps = json.loads(path.read_text())
    else:
        from splits import passage_groups, performance_groups, shared_note_matrix

        shared = shared_note_matrix(meta)
        maps = {"passage": dict(zip(meta["excerpt"].astype(str), map(str, passage_groups(meta, shared)),
                                    strict=True)),
                "performance": dict(zip(base, map(str, performance_groups(meta, shared)), strict=True))}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(maps, indent=0, sort_keys=True))
    # The lopo split's own performer units: the two deadpan renderings are one (splits.performer_units).
    return Layout(performer_units(meta).astype(str),
                  meta["excerpt"].astype(str).map(maps["passage"]).to_numpy(),
                  meta["piece"].astype(str).to_numpy(), base.map(maps["performance"]).to_numpy())


def synthetic_layout(n_performers: int = 22, n_passages: int = 60, rng_seed: int = 0) -> Layout:
    """A small layout like PercePiano's: unequal performers, passages played by several performers.

    Every 3 passages form a piece; a performance is one performer's segments of one piece.
    """
    rng = np.random.default_rng(rng_seed)
    sizes = rng.integers(6, 30, n_performers)
    performer = np.repeat(np.arange(n_performers), sizes).astype(str)
    passage_id = rng.integers(0, n_passages, performer.size)
    piece = (passage_id // 3).astype(str)
    return Layout(performer, passage_id.astype(str), piece, np.char.add(np.char.add(piece, "_"), performer))


def folds_of(design: Design, layout: Layout, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut

    n = layout.performer.size
    X = np.zeros((n, 1))
    if design.name == "lopo":
        return list(LeaveOneGroupOut().split(X, groups=layout.performer))
    if design.name == "kfold":
        return list(KFold(5, shuffle=True, random_state=seed).split(X))
    if design.name == "excerpt":
        return list(GroupKFold(4, shuffle=True, random_state=seed).split(X, groups=layout.passage))
    if design.name == "kfold_grouped":
        return list(GroupKFold(5, shuffle=True, random_state=seed).split(X, groups=layout.performance))
    if design.name == "piece":
        return list(LeaveOneGroupOut().split(X, groups=layout.piece))
    if design.name == "percepiano_performer4":
        # The paper's shape: a fixed test set of 3 performers, 4 models trained on the others.
        perf = np.unique(layout.performer)
        test = np.flatnonzero(np.isin(layout.performer, perf[:3]))
        rest = perf[3:]
        out = []
        for k in range(4):
            val = rest[k::4]
            train = np.flatnonzero(~np.isin(layout.performer, np.concatenate([perf[:3], val])))
            out.append((train, test))
        return out
    raise ValueError(f"unknown design {design.name!r}")


DESIGNS = {
    "lopo": Design("lopo", "performers", False, True, 1),
    "kfold": Design("kfold", "segments", True, True, 3),
    "excerpt": Design("excerpt", "passages", True, True, 3),
    "kfold_grouped": Design("kfold_grouped", "performances", True, True, 3),
    "piece": Design("piece", "pieces", False, True, 1),
    "percepiano_performer4": Design("percepiano_performer4", "performers", False, False, 1),
}


def draw_data(rng: np.random.Generator, layout: Layout, n_features: int = 20):
    """Features and one rating with performer and passage effects; all features equally informative."""
    _, perf = np.unique(layout.performer, return_inverse=True)
    _, pas = np.unique(layout.passage, return_inverse=True)
    n = perf.size
    X = (rng.normal(size=(n, n_features)) + 0.5 * rng.normal(size=(perf.max() + 1, n_features))[perf]
         + 0.3 * rng.normal(size=(pas.max() + 1, n_features))[pas])
    beta = rng.choice([-1.0, 1.0], size=n_features) / np.sqrt(n_features)
    y = X @ beta + 0.5 * rng.normal(size=perf.max() + 1)[perf] + 0.3 * rng.normal(size=pas.max() + 1)[pas]
    return X, y + rng.normal(size=n)


def ridge_predict(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, alpha: float = 1.0):
    mx, my = X[train].mean(axis=0), y[train].mean()
    A = X[train] - mx
    coef = np.linalg.solve(A.T @ A + alpha * np.eye(X.shape[1]), A.T @ (y[train] - my))
    return (X[test] - mx) @ coef + my


def one_rep(design: Design, layout: Layout, rep: int, scenario: str, *, subset: int, n_resamples: int,
            seed: int) -> dict:
    """Rejections of every test on one simulated data set under ``scenario``."""
    rng = np.random.default_rng([seed, rep, ("learner null", "predictor null", "effect").index(scenario)])
    X, y = draw_data(rng, layout)
    n, p = X.shape
    cols_a = rng.choice(p, subset, replace=False)
    cols_b = rng.choice(p, subset, replace=False)
    Xa, Xb = X[:, cols_a], X[:, cols_b]
    if scenario == "effect":
        Xb = Xb + rng.normal(0, 1.0, Xb.shape)
    if scenario == "predictor null":
        Xb = Xa
    y2 = y[:, None]
    units = layout.units(design.unit)
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
    pa, pb = np.stack(pa), np.stack(pb)
    if scenario == "predictor null":
        # One fitted predictor, each model adding its own independent noise: exchangeable per unit.
        sd = float(np.std(pa)) * 0.5
        pa = pa + rng.normal(0, sd, pa.shape)
        pb = pb + rng.normal(0, sd, pb.shape)
    keep = np.unique(np.concatenate(rows))
    cells = Cells(y2, pa, pb, rows, np.asarray(seeds), np.asarray(folds), units,
                  np.asarray(n_tr, dtype=float), np.asarray(n_te, dtype=float))
    if keep.size < n:  # fixed test set: only its units are units
        cells = Cells(y2[keep], pa[:, keep], pb[:, keep], [np.arange(keep.size)] * len(rows), cells.seed,
                      cells.fold, units[keep], cells.n_train, cells.n_test)
    scorer = UnitScorer(cells, "pearson")
    few = scorer.n_units < FEW_GROUPS
    out = {"_few": few, "_units": scorer.n_units}
    if n_resamples > 0:
        res, _ = compare_units(scorer, seeded=design.seeded, partition=design.partition,
                               n_resamples=n_resamples, seed=rep, alternatives=True)
        out.update({"unit-swap permutation": bool(res.perm_p < ALPHA),
                    "cluster bootstrap CI": bool(res.ci_low > 0 or res.ci_high < 0)})
        for key, row in ALT_CIS.items():
            lo, hi = (res.ci_alternatives or {}).get(key, (np.nan, np.nan))
            out[row] = bool(lo > 0 or hi < 0)
    fa, fb, n_tr_u, n_te_u = fold_unit_values(scorer, design.seeded)
    ok = np.isfinite(fa - fb)
    out["_diff"] = float(np.mean(fa[ok] - fb[ok])) if ok.any() else np.nan
    if design.partition and not few and ok.sum() >= 2:
        out["_folds"] = (fa[ok], fb[ok], n_tr_u[ok], n_te_u[ok])
    else:
        out["_folds"] = (fa[ok], fb[ok], None, None)
    return out


def fold_rejections(reps: list[dict], scale: float) -> dict[str, float]:
    """Rejection rates of the corrected t-test and the Bayesian test with the ratio term scaled by ``scale``."""
    nb, bay = [], []
    for r in reps:
        a, b, n_tr, n_te = r["_folds"]
        if n_tr is None:
            nb.append(False)
            bay.append(False)
            continue
        nb.append(corrected_resampled_ttest(a, b, n_tr, n_te, ratio_scale=scale).pvalue < ALPHA)
        q = scale * float(n_te.mean() / n_tr.mean())
        post = bayesian_correlated_ttest(a, b, q / (1 + q), rope=0.0)
        bay.append(max(post.p_a_better, post.p_b_better) > 1 - ALPHA / 2)
    return {"corrected t (NB)": float(np.mean(nb)), "Bayesian correlated t": float(np.mean(bay))}


def _t_parts(reps: list[dict]) -> tuple[np.ndarray, ...]:
    """Per repetition: mean difference, its variance, J and n_test/n_train (NaN where untested)."""
    m, v, J, q = (np.full(len(reps), np.nan) for _ in range(4))
    for i, r in enumerate(reps):
        a, b, n_tr, n_te = r["_folds"]
        if n_tr is None:
            continue
        d = np.asarray(a) - np.asarray(b)
        m[i], v[i], J[i], q[i] = d.mean(), d.var(ddof=1), d.size, float(np.mean(n_te) / np.mean(n_tr))
    return m, v, J, q


def fit_scale(reps: list[dict]) -> float:
    """The factor of the n_test/n_train term whose false-positive rate on ``reps`` is closest to alpha.

    The rate falls as the factor grows; among the factors of a fine grid with the
    best rate, the midpoint (in log scale) is taken. The rate is the corrected
    t-test's, computed in one pass over the grid (|t| > t_{J-1, 1 - alpha/2}).
    """
    from scipy import stats

    m, v, J, q = _t_parts(reps)
    ok = np.isfinite(m)
    m, v, J, q = m[ok], v[ok], J[ok], q[ok]
    crit = stats.t.ppf(1 - ALPHA / 2, J - 1)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 601))
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.abs(m)[None, :] / np.sqrt((1.0 / J[None, :] + grid[:, None] * q[None, :]) * v[None, :])
    rates = np.where(np.isfinite(t), t > crit[None, :], False).sum(axis=1) / len(reps)
    err = np.abs(rates - ALPHA)
    best = grid[err <= err.min() + 1e-12]
    return float(np.exp(np.log(best).mean()))


def simulate(design: Design, layout: Layout, n_reps: int, *, subset: int = 8, n_resamples: int = 499,
             seed: int = 0, fit: bool = True, scale: float | None = None, fit_reps: int | None = None) -> dict:
    """Rejection rates of every test under the learner null, the predictor null and the effect.

    With ``fit``, the corrected t-test's factor is fitted on ``fit_reps``
    learner-null repetitions (default ``max(n_reps, 1000)``; they need no
    resampling, so they are cheap, and many of them make the fitted factor
    precise) and every rate is reported on fresh repetitions (seed + 1000), so
    a fitted factor is never judged on the data it was fitted to. A given
    ``scale`` (e.g. the stored one) is used as it is.
    """
    out = {"design": design.name, "unit": design.unit, "n_reps": n_reps, "rates": {}, "effect": np.nan,
           "scale": 1.0, "fit_reps": 0}

    def run(scenario: str, s: int, n: int = n_reps, resamples: int = n_resamples) -> list[dict]:
        return [one_rep(design, layout, r, scenario, subset=subset, n_resamples=resamples, seed=s)
                for r in range(n)]

    if scale is not None:
        fit = False
        out["scale"] = float(scale)
    evaluate = run("learner null", seed + 1000)
    out["n_units"], out["few"] = evaluate[0]["_units"], evaluate[0]["_few"]
    if fit and design.partition and not out["few"]:
        n_fit = max(n_reps, 1000) if fit_reps is None else int(fit_reps)
        first = run("learner null", seed, n_fit, 0)
        out["scale"], out["fit_reps"] = fit_scale(first), n_fit
        out["rates_nb_heuristic"] = fold_rejections(first, 1.0)
    else:
        out["rates_nb_heuristic"] = fold_rejections(evaluate, 1.0)
    scenarios = {"learner null": evaluate, "predictor null": run("predictor null", seed),
                 "effect": run("effect", seed)}
    for scenario, reps in scenarios.items():
        rates = {t: float(np.mean([r.get(t, False) for r in reps]))
                 for t in ("cluster bootstrap CI", "unit-swap permutation", *ALT_CIS.values())}
        rates.update(fold_rejections(reps, out["scale"]))
        out["rates"][scenario] = {t: rates[t] for t in ROWS}
        if scenario == "effect":
            out["effect"] = float(np.mean([r["_diff"] for r in reps]))
    return out


#: What a test answers when its false-positive rate is in range under each null.
NULL_MEANING = {"learner null": "the learning algorithms", "predictor null": "these two fitted predictors"}


def calibrated(res: dict) -> dict[str, str]:
    """For every test whose false-positive rate lies in :data:`RANGE` under some null: what it is calibrated for.

    A test can be calibrated under both nulls (e.g. the unit-swap permutation on
    lopo), under one, or under none (then it is absent, and the report prints no
    number for it on this split).
    """
    if res["few"]:
        return {}
    out = {}
    for t in TESTS:
        ok = [NULL_MEANING[n] for n in NULL_MEANING if RANGE[0] <= res["rates"][n][t] <= RANGE[1]]
        if ok:
            out[t] = " and ".join(ok)
    return out


def _wilson(rate: float, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def to_markdown(results: list[dict], seconds: float, command: str, source: str, jobs: int = 1) -> str:
    jobs = "single process" if jobs <= 1 else f"{jobs} processes, one per design"
    lines = [
        "# Calibration of the report's tests on this data's designs",
        "",
        "Generated by `scripts/calibration.py`; rerun with:",
        "",
        "```",
        command,
        "```",
        "",
        f"Segment layout: {source}. Each repetition draws a fresh data set on that layout (performer and "
        "passage effects on 20 equally informative features and on the rating), cross-validates two ridge "
        "learners on the design's folds, and passes their out-of-fold predictions through the report's own "
        "code (`reports/units.py`). Learner null: ridge on two random subsets of 8 features (equal expected "
        "performance). Predictor null: one fitted predictor, each model adding independent noise (the null of "
        "the unit-swap permutation test: it tests the two fitted predictors, not the learners). Effect: the "
        "second learner sees its features through added noise (mean fold-level r difference given). A test is "
        f"calibrated for a question when its false-positive rate under that question's null lies in "
        f"[{RANGE[0]}, {RANGE[1]}] at alpha = {ALPHA}: the learner null for \"the learning algorithms\", the "
        "predictor null for \"these two fitted predictors\"; 95% Wilson intervals in brackets." + SCOPE,
        "",
        "Designs: `lopo` (leave one of the 21 performer units out, the two deadpan renderings being one: the real "
        "fold sizes, 13 to 116 segments); `kfold` "
        "(5 shuffled folds x 3 seeds); `excerpt` (GroupKFold(4) over the split's own passages: excerpts that "
        "overlap in bars joined, as `splits.passage_groups` finds them from the notes, x 3 seeds); "
        "`kfold_grouped` (GroupKFold(5) over the split's own performances, `splits.performance_groups`, x 3 "
        "seeds); `piece` (leave one of the pieces out: the real, very unequal fold sizes); "
        "`percepiano_performer4` (a fixed test set of 3 performers, 4 fold models averaged).",
        "",
        "The printed cluster-bootstrap CI of a difference is `diff -+ sqrt(G/(G-1)) t_{G-1} SE_boot` over the "
        "split's G units (`reports.units.compare_units`). The rows marked \"not printed\" are the other "
        "intervals from the same replicates (percentile; BCa, Efron 1987; BCa with the same sqrt(G/(G-1)) "
        "t_{G-1} expansion, Hesterberg 2015): with 21 performer units they reject more often, which is why the "
        "report does not use them.",
        "",
        "The report (`benchmark report`, `benchmark compare`) reads `reports/calibration.json`: on a split "
        "simulated here, a test that is calibrated for neither question is not printed as a number (its cells "
        "say \"not calibrated for <split>\"); the notes say which question each printed test is calibrated for.",
        "",
    ]
    for res in results:
        n = res["n_reps"]
        lines += [f"## {res['design']} (unit: {res['unit']}, {res['n_units']} units, {n} repetitions)", ""]
        if res["few"]:
            lines += [f"Fewer than {FEW_GROUPS} {res['unit']}: the report prints \"too few groups "
                      f"({res['n_units']})\" for every group-level CI and p-value; nothing to calibrate.", ""]
            continue
        lines += ["| test | FPR, learner null | FPR, predictor null | power at the effect | calibrated for |",
                  "|---|---|---|---|---|"]
        cal = calibrated(res)
        for t in ROWS:
            cells = []
            for scen in ("learner null", "predictor null", "effect"):
                r = res["rates"][scen][t]
                lo, hi = _wilson(r, n)
                cells.append(f"{r:.3f} [{lo:.3f}, {hi:.3f}]")
            verdict = cal.get(t, "not calibrated") if t in TESTS else "(not printed)"
            lines.append(f"| {t} | " + " | ".join(cells) + f" | {verdict} |")
        nb = res["rates_nb_heuristic"]["corrected t (NB)"]
        lines += ["", f"Effect: mean fold-level r difference {res['effect']:+.3f}. Corrected t-test: the "
                  f"n_test/n_train term is scaled by {res['scale']:.2f}, fitted on {res['fit_reps']} other learner-null "
                  f"repetitions (Nadeau-Bengio's own factor 1 rejected {nb:.3f} of them); the Bayesian "
                  "correlated t-test's rho is scaled alike.", ""]
    lines += [f"Runtime {seconds:.0f} s on {platform.processor() or platform.machine()} "
              f"(Python {platform.python_version()}; {jobs}).", ""]
    return "\n".join(lines)


def _simulate_task(task: tuple, options: dict) -> dict:
    design, layout, reps = task
    return simulate(design, layout, reps, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=200, help="simulated data sets per scenario (default 200)")
    parser.add_argument("--designs", default=",".join(DESIGNS), help="comma-separated designs")
    parser.add_argument("--resamples", type=int, default=499, help="bootstrap resamples and permutations")
    parser.add_argument("--data-dir", type=Path, default=None, help="PercePiano folder (real segment layout)")
    parser.add_argument("--synthetic", action="store_true", help="use a small synthetic layout (fast)")
    parser.add_argument("--fit-reps", type=int, default=1000,
                        help="learner-null repetitions the corrected t-test's factor is fitted on (default 1000; "
                             "cheap: no resampling)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="designs simulated in parallel processes")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "calibration.json",
                        help="where the report reads which tests are calibrated (with --out)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error(f"--reps={args.reps} must be >= 1")
    layout = None if args.synthetic else real_layout(args.data_dir)
    source = "PercePiano's 1189 segments (real performers and passages)"
    if layout is None:
        layout, source = synthetic_layout(), "a synthetic layout (PercePiano not found)"
    start = time.perf_counter()
    names = args.designs.split(",")
    for name in names:
        if name not in DESIGNS:
            parser.error(f"unknown design {name!r}; use {','.join(DESIGNS)}")
    tasks = [(DESIGNS[name], layout, args.reps) for name in names]
    options = {"n_resamples": args.resamples, "seed": args.seed, "fit_reps": args.fit_reps}
    if args.jobs > 1:
        # One process per design; every design seeds its own repetitions, so the numbers do not change.
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(args.jobs, len(tasks))) as pool:
            results = list(pool.map(_simulate_task, tasks, [options] * len(tasks)))
    else:
        results = [_simulate_task(t, options) for t in tasks]
    for res in results:
        name = res["design"]
        for scen, rates in res["rates"].items():
            print(f"{name:22s} {scen:15s} " + "  ".join(f"{t}: {r:.3f}" for t, r in rates.items()))
    seconds = time.perf_counter() - start
    if args.out is not None:
        command = ".venv/bin/python scripts/calibration.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(to_markdown(results, seconds, command.strip(), source, min(args.jobs, len(tasks))))
        cal = {r["design"]: calibrated(r) for r in results}
        scale = {r["design"]: r["scale"] for r in results}
        args.json.write_text(json.dumps({"alpha": ALPHA, "range": RANGE, "source": source, "reps": args.reps,
                                         "calibrated": cal, "ratio_scale": scale}, indent=2) + "\n")
        print(f"wrote {args.out} and {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

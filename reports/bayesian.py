"""The Bayesian reading of the learner claim, and TOST, of every model against a baseline.

Both use the learner t's own variance (:mod:`reports.claims`), so the posterior,
the equivalence test and the learner claim's interval can never tell different
stories; docs/calibration.md simulates the printed rule (its ROPE and threshold).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reports.claims import bayes_and_tost
from reports.comparisons import calibration_note, pair_claims_of
from reports.paired import five_by_two_cv_ftest
from reports.rundata import RunData, load_run_data, resolve_baseline, too_few


def bayesian_table(
    run_dir: str | Path | RunData,
    *,
    baseline: str | None = None,
    rope: float = 0.01,
    metric: str = "pearson",
    threshold: float = 0.975,
    families: dict | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """The Bayesian reading of the learner claim, and TOST, of every model against the baseline, with a ROPE.

    Both use the learner t's own variance (:mod:`reports.claims`: corrected resampled
    t over the fold units with the design's factor, plus the between-seed variance):
    the posterior of the true difference is Student's t centred on the difference
    (Benavoli et al. 2017's correlated t-test), and the verdict names the region
    (better, equivalent within the ROPE, worse) whose posterior probability reaches
    ``threshold`` ("undecided" otherwise); ``tost_p`` is the two one-sided tests
    p-value of equivalence within the ROPE (Schuirmann 1987). docs/calibration.md
    simulates exactly this rule. Where the learner claim has no number (a stochastic
    learner with too few model seeds, a design not calibrated, a fixed test set,
    fewer than 10 units) the verdict says why. When the run is a 5x2 design (5 seeds
    of a 2-fold split), Alpaydin's combined 5x2cv F-test is added (``cv5x2_f``, ``cv5x2_p``).

    Returns
    -------
    DataFrame, one row per non-baseline model: ``model``, ``p_better``,
    ``p_equivalent``, ``p_worse``, ``verdict``, ``tost_p``, ``n_units``, ``cv5x2_f``, ``cv5x2_p``.
    """
    run = load_run_data(run_dir)
    base = resolve_baseline(run, baseline)
    design = run.design
    base_seeds = set(run.complete_seeds(base))
    design_5x2 = (run.partition and len(run.seeds) == 5 and all(n == 2 for n in run.n_folds.values()))
    recs, tested_seeds = [], []
    for model in run.models:
        if model == base:
            continue
        seeds = [s for s in run.complete_seeds(model) if s in base_seeds]
        rec = {"model": model, "p_better": np.nan, "p_equivalent": np.nan, "p_worse": np.nan,
               "verdict": "not tested", "tost_p": np.nan, "n_units": 0, "cv5x2_f": np.nan, "cv5x2_p": np.nan}
        if not run.partition:
            rec["verdict"] = "not tested (fixed test set)"
        elif design.few:
            rec["verdict"] = too_few(design.n_units)
        elif seeds:
            tested_seeds = tested_seeds or seeds
            claim, _ = pair_claims_of(run, model, base, metric, seeds, families=families, n_resamples=n_resamples,
                                      seed=seed, confidence=0.95)
            t = claim.learner
            rec["n_units"] = 0 if t is None else t.J
            if t is None:
                rec["verdict"] = claim.learner_note
            else:
                v = bayes_and_tost(t.diff, t.se, t.df, rope=rope, threshold=threshold)
                rec.update(p_better=v.p_better, p_equivalent=v.p_equivalent, p_worse=v.p_worse, verdict=v.verdict,
                           tost_p=v.tost_p)
            if design_5x2:
                a = run.fold_level(model, metric, seeds)
                b = run.fold_level(base, metric, seeds)
                if len(a) == 10 and np.isfinite(a).all() and np.isfinite(b).all():
                    cv = five_by_two_cv_ftest(a.unstack("fold").to_numpy(), b.unstack("fold").to_numpy())
                    rec.update(cv5x2_f=cv.statistic, cv5x2_p=cv.pvalue)
        recs.append(rec)
    table = pd.DataFrame(recs, columns=["model", "p_better", "p_equivalent", "p_worse", "verdict", "tost_p",
                                        "n_units", "cv5x2_f", "cv5x2_p"])
    table.attrs.update({"kind": "bayesian", "baseline": base, "metric": metric, "rope": rope, "threshold": threshold,
                        "notes": [
        f"Posterior of the learner-level difference against '{base}' (Benavoli et al. 2017's correlated t-test "
        f"with the learner t's own variance: {design.fold_level}"
        + ("" if design.seeded else ", plus the between-seed variance") + f") of the fold-level mean {metric}; "
        f"ROPE ±{rope}; verdict when a posterior probability reaches {threshold} (the rule docs/calibration.md "
        f"simulates). TOST: equivalence within ±{rope} (two one-sided t-tests, same variance).",
        "5x2cv combined F-test (Alpaydin 1999): only for runs of 5 seeds x 2 folds "
        "(e.g. --split kfold --n-splits 2 --seeds 0,1,2,3,4); NaN otherwise.",
        *([calibration_note(run, tested_seeds, families)] if tested_seeds else [])]})
    return table

"""Compare two runs of the same split, model by model (``benchmark compare RUN_A RUN_B``).

Two runs are comparable only when their segments are predicted under the same
conditions: the same data (manifest data hash), the same split with the same
options, and the same fold assignment in every shared seed. Then a model's
out-of-fold predictions in run A and run B are paired segment by segment,
and their difference (A - B) gets a paired bootstrap CI over segments
(:func:`reports.bootstrap.paired_bootstrap_diff`) and a paired permutation
test (:func:`reports.permutation.permutation_test_predictions`). Typical
use: the same models before and after a code change, or with other options.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError
from reports.bootstrap import paired_bootstrap_diff
from reports.permutation import permutation_test_predictions
from reports.results import model_stack, nanmean, run_id
from reports.rundata import RunData, load_run_data
from reports.summary import column_pearson, column_r2

METRICS = {"pearson": column_pearson, "r2": column_r2}


def _side_by_side(y_true: np.ndarray, stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lay replicates side by side: (n_reps, n, t) -> (n, n_reps * t), so a resampled row moves every seed."""
    n_reps, n, t = stack.shape
    return np.tile(y_true, (1, n_reps)), stack.transpose(1, 0, 2).reshape(n, n_reps * t)


def _metric(name: str):
    fn = METRICS[name]

    def score(y: np.ndarray, p: np.ndarray) -> float:
        # Mean over every (replicate, target) column = mean over seeds of the target-averaged metric.
        return float(nanmean(fn(y, p)))

    return score


def _folds(run: RunData):
    if run.folds is None:
        raise ConfigError(f"run {run_id(run)} has no folds.parquet; it cannot be compared")
    return run.folds


def check_comparable(a: RunData, b: RunData) -> list[int]:
    """Refuse runs that differ in data, split or folds; return the shared seeds.

    Raises
    ------
    ConfigError
        Different data hashes, splits (name or options), targets, fold
        assignments, or no shared seed.
    """
    if a.manifest.get("data_hash") != b.manifest.get("data_hash"):
        raise ConfigError(f"runs used different data (hash {str(a.manifest.get('data_hash'))[:12]} vs "
                          f"{str(b.manifest.get('data_hash'))[:12]}); compare runs on the same data")
    # The description is prose that may be reworded between versions, and options may be spelled
    # differently (the default n_splits or the same number written out): the fold check below is the real test.
    sa, sb = (r.manifest.get("split", {}).get("name") for r in (a, b))
    na, nb = a.manifest["config"].get("n_splits"), b.manifest["config"].get("n_splits")
    if sa != sb:
        raise ConfigError(f"runs use different splits ({sa!r}, n_splits={na} vs {sb!r}, n_splits={nb}); "
                          "compare runs of the same split")
    if a.targets != b.targets:
        raise ConfigError("runs predict different targets; compare runs of the same dataset version")
    seeds = [int(s) for s in a.manifest["config"]["seeds"] if int(s) in {int(x) for x in b.manifest["config"]["seeds"]}]
    if not seeds:
        raise ConfigError(f"runs share no seed (A: {a.manifest['config']['seeds']}, B: "
                          f"{b.manifest['config']['seeds']}); rerun one with a shared --seeds")
    fa, fb = _folds(a), _folds(b)
    for s in seeds:
        if not fa.same_as(fb, s):
            raise ConfigError(f"fold assignments differ in seed {s} (different split version or options, "
                              f"n_splits={na} vs {nb}); compare runs with the same folds")
    return seeds


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    metrics: tuple[str, ...] = ("pearson", "r2"),
    n_resamples: int = 2000,
    n_permutations: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per model present in both runs: pooled metrics in each, and A - B with a CI and a p-value.

    A model is compared on the seeds complete in both runs; with several
    seeds, the replicates are laid side by side so that a resampled or
    swapped segment carries all its seeds' predictions.

    Parameters
    ----------
    run_a, run_b : path
    metrics : tuple of {"pearson", "r2"}
        Mean over targets of pooled Pearson r / R^2.
    n_resamples : int
        Paired bootstrap resamples (over segments, percentile interval).
    n_permutations : int
        Permutations of the paired permutation test (two-sided).
    confidence : float
    seed : int

    Returns
    -------
    DataFrame, one row per shared model (run A's order)
        ``model``, ``seeds``, ``n_segments``, then per metric ``m``:
        ``m_a``, ``m_b``, ``m_diff`` (A - B), ``m_diff_lo``, ``m_diff_hi``,
        ``m_p``; and ``note``. ``attrs``: run ids, split, resampled
        ("segments"), n_resamples, n_permutations, confidence.

    Raises
    ------
    ConfigError
        The runs are not comparable (:func:`check_comparable`), share no
        model, or a metric is unknown.
    """
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ConfigError(f"unknown metric {bad[0]!r}; use {tuple(METRICS)}")
    a, b = load_run_data(run_a), load_run_data(run_b)
    seeds = check_comparable(a, b)
    models = [m for m in a.models if m in b.models]
    if not models:
        raise ConfigError(f"the runs share no model (A: {', '.join(a.models)}; B: {', '.join(b.models)})")
    rows = []
    for model in models:
        rec: dict = {"model": model}
        common = [s for s in seeds if s in a.complete_seeds(model) and s in b.complete_seeds(model)]
        if not common:
            rec["note"] = "no seed complete in both runs: not compared"
            rows.append(rec)
            continue
        sa, sb = model_stack(a, model, common), model_stack(b, model, common)
        if not np.array_equal(sa.sample_ids, sb.sample_ids):
            raise ConfigError(f"model {model!r} predicts different segments in the two runs; "
                              "were segments skipped in one of them?")
        y, pa = _side_by_side(sa.y_true, sa.stack)
        _, pb = _side_by_side(sb.y_true, sb.stack)
        rec.update(seeds=",".join(map(str, common)), n_segments=len(sa.sample_ids))
        for m in metrics:
            score = _metric(m)
            rec[f"{m}_a"], rec[f"{m}_b"] = score(y, pa), score(y, pb)
            perm = permutation_test_predictions(y, pa, pb, score, n_permutations=n_permutations, seed=seed)
            rec[f"{m}_diff"], rec[f"{m}_p"] = perm.statistic, perm.pvalue
            if np.isfinite(perm.statistic):
                ci = paired_bootstrap_diff(y, pa, pb, score, n_resamples=n_resamples, confidence=confidence,
                                           seed=seed, resampled="segments")
                rec[f"{m}_diff_lo"], rec[f"{m}_diff_hi"] = ci.low, ci.high
            else:
                rec[f"{m}_diff_lo"] = rec[f"{m}_diff_hi"] = np.nan
        rec["note"] = "" if np.allclose(sa.y_true, sb.y_true) else "y_true differs between runs"
        rows.append(rec)
    cols = ["model", "seeds", "n_segments"] + [f"{m}_{c}" for m in metrics
                                               for c in ("a", "b", "diff", "diff_lo", "diff_hi", "p")] + ["note"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out.attrs.update(run_a=run_id(a), run_b=run_id(b), split=a.split, resampled="segments",
                     n_resamples=int(n_resamples), n_permutations=int(n_permutations), confidence=confidence,
                     metrics=list(metrics))
    return out


def format_comparison(table: pd.DataFrame) -> str:
    """Markdown rendering of :func:`compare_runs`."""
    at = table.attrs
    metrics = at.get("metrics", ["pearson", "r2"])
    label = {"pearson": "r", "r2": "R^2"}
    head = ["model", "seeds"]
    for m in metrics:
        head += [f"{label.get(m, m)} A", f"{label.get(m, m)} B", f"{label.get(m, m)} A-B [CI]", "p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def num(v, fmt="{:.3f}"):
        return "n/a" if v is None or pd.isna(v) else fmt.format(v)

    for _, r in table.iterrows():
        cells = [str(r["model"]), "" if pd.isna(r.get("seeds")) else str(r["seeds"])]
        for m in metrics:
            diff = (f"{num(r[f'{m}_diff'], '{:+.3f}')} [{num(r[f'{m}_diff_lo'], '{:+.3f}')}, "
                    f"{num(r[f'{m}_diff_hi'], '{:+.3f}')}]")
            cells += [num(r[f"{m}_a"]), num(r[f"{m}_b"]), diff, num(r[f"{m}_p"], "{:.4f}")]
        lines.append("| " + " | ".join(cells) + " |")
    conf = int(round(100 * at.get("confidence", 0.95)))
    lines += ["", f"A = {at.get('run_a')}, B = {at.get('run_b')}; split `{at.get('split')}`. Metrics: mean over "
              "targets of pooled out-of-fold Pearson r / R^2, averaged over the seeds complete in both runs. "
              f"A-B: {conf}% percentile paired bootstrap over segments ({at.get('n_resamples')} resamples); "
              f"p: two-sided paired permutation test swapping a segment's predictions between the runs "
              f"({at.get('n_permutations')} permutations)."]
    notes = [f"{r['model']}: {r['note']}" for _, r in table.iterrows() if isinstance(r.get("note"), str) and r["note"]]
    if notes:
        lines.append("Notes: " + "; ".join(notes))
    return "\n".join(lines)

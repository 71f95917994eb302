"""How the epoch cap bound the neural jobs of a run: epochs, early stops, CPU seconds, per model.

Usage::

    python scripts/epoch_budget.py RUN_DIR [--per-fold]

Reads what every neural job of the run stored (``jobs/<job>.params.json``: the
fitted summary of :func:`models.training.train`) and its metric rows, and prints
one markdown row per neural model: its epoch cap and patience, folds, epochs run
(median, max), folds that stopped at the cap (``hit_epoch_cap``) and those whose
best epoch was the last one (validation r still rising), the per-fold mean
Pearson r over the 19 targets (mean over folds, as the runner scored them), the
job's wall seconds (``fit_seconds``) and the fit's CPU seconds (median, max: on a
shared machine the CPU seconds of a one-thread job are what it takes alone).
``--per-fold`` adds one row per (model, fold). The pooled r and the paired tests
are ``benchmark report``'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def job_table(run_dir: str | Path) -> pd.DataFrame:
    """One row per finished neural job: model, fold, cap, patience, epochs, best epoch (1-based), timings, r."""
    from benchmark.store import RunStore

    store = RunStore(run_dir)
    rows, _ = store.read_jobs()
    ok = rows[(rows["status"] == "ok") & (rows["metric"] == "pearson")]
    r = ok.groupby(["model", "seed", "fold"])["value"].mean()
    secs = ok.groupby(["model", "seed", "fold"])["fit_seconds"].first()
    out = []
    for key in store.job_keys():
        params = store.read_job_params(key) or {}
        fitted = params.get("fitted") or {}
        if "epochs_run" not in fitted or (key.model, key.seed, key.fold) not in r.index:
            continue  # not a neural job, or not finished
        epochs = int(params["params"]["epochs"])
        best = int(fitted["best_epoch"]) + 1
        run = int(fitted["epochs_run"])
        patience = int(params["params"]["patience"])
        cap = fitted.get("hit_epoch_cap", run == epochs and run - best < patience)
        out.append({"model": key.model, "seed": key.seed, "fold": key.fold, "epochs": epochs, "patience": patience,
                    "epochs_run": run, "best_epoch": best, "hit_cap": bool(cap), "rising": best == epochs,
                    "best_val_r": float(fitted["best_val_r"]), "fold_r": float(r[(key.model, key.seed, key.fold)]),
                    "fit_s": float(secs[(key.model, key.seed, key.fold)]),
                    "cpu_s": float(fitted.get("cpu_seconds", np.nan))})
    return pd.DataFrame(out)


def summary(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per model (see the module docstring)."""
    g = jobs.groupby("model", sort=False)
    return pd.DataFrame({
        "cap": g["epochs"].first(), "patience": g["patience"].first(), "folds": g.size(),
        "epochs run (median, max)": g["epochs_run"].agg(lambda s: f"{s.median():g}, {s.max()}"),
        "stopped at the cap": g["hit_cap"].sum(), "best epoch = last": g["rising"].sum(),
        "per-fold mean r": g["fold_r"].mean().round(3),
        "job s, wall (median, max)": g["fit_s"].agg(lambda s: f"{s.median():.0f}, {s.max():.0f}"),
        "fit s, CPU (median, max)": g["cpu_s"].agg(lambda s: f"{s.median():.0f}, {s.max():.0f}"),
    })


def markdown(df: pd.DataFrame) -> str:
    """A pipe table (pandas' own needs the optional tabulate)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--per-fold", action="store_true")
    args = ap.parse_args()
    jobs = job_table(args.run_dir)
    if jobs.empty:
        raise SystemExit(f"{args.run_dir}: no finished neural job")
    print(markdown(summary(jobs).reset_index()))
    if args.per_fold:
        print()
        print(markdown(jobs.round(3)))


if __name__ == "__main__":
    main()

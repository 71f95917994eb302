"""Time neural models on single folds of a real split, as the runner runs them (one thread per job).

Usage::

    PERCEPIANO_CACHE=/work/cache python scripts/neural_timing.py --models ast_tiny,hybrid --split lopo --folds 0,7

Prints, per (model, fold): wall and CPU seconds of the job (fit + predict; on a
shared machine the CPU seconds of a one-thread job are what it takes alone), epochs run,
seconds per epoch, the best epoch, parameter count, the test fold's mean
Pearson r over the 19 targets (per-fold, not pooled) and the process's peak
resident memory. Jobs go through :func:`benchmark.execute.run_job`, exactly as
``benchmark run`` executes them; nothing is written to a run directory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="ast_tiny,hybrid")
    ap.add_argument("--split", default="lopo")
    ap.add_argument("--folds", default="0", help="comma-separated fold numbers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir")
    ap.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                    help="override a model parameter for every model, e.g. --set epochs=10")
    args = ap.parse_args()

    from benchmark.execute import run_job
    from benchmark.jobs import Job
    from benchmark.metrics import per_target
    from benchmark.runner import RunConfig, Runner
    from benchmark.store import JobKey
    from models import MODELS

    params = {}
    for item in args.set:
        k, v = item.split("=", 1)
        try:
            params[k] = int(v)
        except ValueError:
            try:
                params[k] = float(v)
            except ValueError:
                params[k] = v
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    cfg = RunConfig(models=models, split=args.split, seeds=[args.seed], data_dir=args.data_dir, device="cpu")
    runner = Runner(cfg, tempfile.mkdtemp(prefix="neural-timing-"), progress=False, command=["neural_timing"])
    runner.prepare()
    folds = [int(f) for f in args.folds.split(",")]
    print("| model | fold | held out | n_train | params | epochs run (best) | s/epoch | job s (wall) | job s (CPU) | fold mean r | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for model in models:
        spec = MODELS.get(model)
        for k in folds:
            job = Job(JobKey(model, args.seed, k), model, tuple(sorted(params.items())))
            ctx = runner.inputs([job], threads=args.threads).for_job(job)
            t0, c0 = time.perf_counter(), time.process_time()
            out = run_job(job, spec, ctx)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if not out.ok:
                print(f"| {model} | {k} | failed: {out.error} |")
                continue
            tr, te = runner.folds[args.seed][k]
            r = float(np.mean(per_target(runner.dataset.y[te], out.pred)["pearson"]))
            held = ",".join(sorted(set(map(str, runner.dataset.meta["player"].to_numpy()[te]))))
            f = out.fitted
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"| {model} | {k} | {held} | {len(tr)} | {f.get('n_params', 0) / 1e6:.2f}M | "
                  f"{f.get('epochs_run')} ({f.get('best_epoch')}) | {f.get('seconds_per_epoch', 0):.2f} | "
                  f"{wall:.1f} | {cpu:.1f} | {r:.3f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()

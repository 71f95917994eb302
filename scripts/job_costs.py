"""Measure per-model job costs and per-segment feature costs; write benchmark/costs.json and docs/benchmarks.md.

Usage::

    python scripts/job_costs.py RUN_DIR [RUN_DIR ...] [--features midi,audio,score,mel,roll --sample 40]
    python scripts/job_costs.py --render     # only rewrite the docs block from benchmark/costs.json

Per registered model run under its own name with its own defaults (no study
variant), the median ``fit_seconds`` of its finished reported jobs and the
median training-fold size, read from each run directory's job rows (a run
interrupted after a few folds counts too); ``--features`` times each feature
set cold (a fresh temporary cache, one process) on ``--sample`` segments and
gives seconds per segment. Entries measured now replace the file's; the
others are kept. ``benchmark run`` prints its plan's estimate from this file
(:mod:`benchmark.progress`), and the block between ``<!-- job-costs:begin -->``
and ``<!-- job-costs:end -->`` in ``docs/benchmarks.md`` is rendered from it, so
the documented costs and the estimate are the same numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COSTS = ROOT / "benchmark" / "costs.json"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- job-costs:begin -->", "<!-- job-costs:end -->"


def measure_runs(run_dirs: list[str]) -> dict[str, dict]:
    """Per model: median fit seconds of its ok reported jobs, median n_train, job count, source runs."""
    import pandas as pd

    from benchmark.store import RunStore

    found: dict[str, list] = {}
    for run in run_dirs:
        store = RunStore(run)
        manifest = store.read_manifest()
        variants = manifest.get("config", {}).get("variants") or {}
        rows, _ = store.read_jobs()
        rows = rows[rows["status"] == "ok"].drop_duplicates(["model", "seed", "fold"])
        for model, r in rows.groupby("model"):
            if model in variants:  # a variant's parameters differ from the registered defaults
                continue
            found.setdefault(str(model), []).append((r, Path(run).name, manifest.get("created", "")))
    out = {}
    for model, parts in found.items():
        r = pd.concat([p[0] for p in parts])
        out[model] = {"seconds": round(float(statistics.median(r["fit_seconds"])), 3),
                      "n_train": int(statistics.median(r["n_train"])), "n_jobs": int(len(r)),
                      "runs": sorted({p[1] for p in parts}), "measured": max(p[2] for p in parts)[:10]}
    return out


def measure_features(names: list[str], sample: int, data_dir: str | None) -> dict[str, dict]:
    """Seconds per segment of each feature set built cold (fresh cache) on ``sample`` segments, one process."""
    from benchmark.dataset import load_dataset
    from features.build import build_features
    from features.cache import Cache

    ds = load_dataset(data_dir)
    meta = ds.meta.iloc[:: max(1, len(ds.meta) // sample)].head(sample)
    out = {}
    for name in names:
        with tempfile.TemporaryDirectory(prefix="job-costs-") as tmp:
            t0 = time.perf_counter()
            build_features(meta, [name], Cache(tmp), n_jobs=1, progress=False)
            seconds = time.perf_counter() - t0
        out[name] = {"seconds": round(seconds / len(meta), 3), "n_segments": int(len(meta)),
                     "measured": dt.date.today().isoformat()}
    return out


def tag_costs(jobs: dict[str, dict]) -> dict[str, dict]:
    """Per registry tag: the median cost of the measured models carrying it (for models never measured)."""
    from models import MODELS

    by_tag: dict[str, list] = {}
    for name, entry in jobs.items():
        if name in MODELS:
            for tag in MODELS.get(name).tags:
                by_tag.setdefault(tag, []).append(entry)
    return {tag: {"seconds": round(statistics.median(e["seconds"] for e in es), 2),
                  "n_train": int(statistics.median(e["n_train"] for e in es)),
                  "from": sorted(n for n, e in jobs.items() if e in es)} for tag, es in sorted(by_tag.items())}


def render(costs: dict) -> str:
    """The docs block: every measured cost, as :mod:`benchmark.progress` reads it."""
    lines = [BEGIN, "## Measured costs behind `benchmark run`'s estimate", "",
             f"Written by `python scripts/job_costs.py` into `benchmark/costs.json` ({costs.get('machine', '?')}). "
             "`benchmark run` prints its estimate from these numbers before it starts: a job costs its model's "
             "median `fit_seconds` (one worker, its own measured run) scaled by the training-fold size, a stacker's "
             "member about 5 times that, an ensemble nothing; the total is divided by the workers. A model never "
             "measured costs the median of the measured models sharing its first tag. While the jobs run, the ETA "
             "uses each model's own finished jobs instead.", ""]
    if costs.get("note"):
        lines += [costs["note"], ""]
    lines += ["| model | s per job (median) | n_train | jobs measured | measured | run |", "|---|---|---|---|---|---|"]
    for name, e in sorted(costs["jobs"].items(), key=lambda kv: kv[1]["seconds"]):
        lines.append(f"| {name} | {e['seconds']:.2f} | {e['n_train']} | {e.get('n_jobs', '?')} | "
                     f"{e.get('measured', '?')} | {', '.join(e.get('runs', []))} |")
    if costs.get("features"):
        lines += ["", "| feature set | s per segment, cold, one process | segments timed | measured |", "|---|---|---|---|"]
        for name, e in sorted(costs["features"].items()):
            lines.append(f"| {name} | {e['seconds']:.3f} | {e['n_segments']} | {e.get('measured', '?')} |")
        lines += ["", "`audio` and `mel` each include rendering the MIDI (shared through the cache when both are "
                      "built), so together they cost less than the sum."]
    lines.append(END)
    return "\n".join(lines)


def write_doc(costs: dict, path: Path = DOC) -> None:
    text = path.read_text()
    block = render(costs)
    pattern = re.compile(rf"{re.escape(BEGIN)}.*?{re.escape(END)}", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help="run directories whose finished jobs are measured")
    ap.add_argument("--features", default="", help="comma-separated feature sets to time cold")
    ap.add_argument("--sample", type=int, default=40, help="segments per feature set (default 40)")
    ap.add_argument("--data-dir")
    ap.add_argument("--note", help="a sentence on the conditions (load, other processes), kept in the file")
    ap.add_argument("--render", action="store_true", help="only rewrite the docs block from the file")
    args = ap.parse_args()
    costs = json.loads(COSTS.read_text()) if COSTS.is_file() else {"jobs": {}, "features": {}}
    if not args.render:
        costs["jobs"].update(measure_runs(args.runs))
        names = [n.strip() for n in args.features.split(",") if n.strip()]
        if names:
            costs.setdefault("features", {}).update(measure_features(names, args.sample, args.data_dir))
        costs["tags"] = tag_costs(costs["jobs"])
        costs["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        if args.note:
            costs["note"] = args.note
        COSTS.write_text(json.dumps(costs, indent=1, sort_keys=True) + "\n")
    write_doc(costs)
    print(render(costs))


if __name__ == "__main__":
    main()

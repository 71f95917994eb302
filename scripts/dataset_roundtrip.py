"""PercePiano through the generic format: the full check that --dataset reproduces the native loader bit for bit.

Usage: python scripts/dataset_roundtrip.py --out /work/runs/dataset/roundtrip [--models ridge,rf,lgbm_all]
       [--splits lopo,kfold_grouped] [--plan SPLIT=MODELS ...] [--jobs 1] [--data-dir DIR] [--file docs/benchmarks.md]
       [--marker dataset-roundtrip]

``--plan`` (repeatable) gives one split its own models, in place of ``--models`` x ``--splits`` (on a
shared machine the full lopo run of lgbm_all may not fit in the time at hand).

Exports PercePiano (``benchmark dataset export --format generic OUT/generic``), then for every split runs the
models twice, on the native loader (``--data-dir``) and on the export (``--dataset``), writes each run's report
(``benchmark report --format csv``), and compares: ``predictions.parquet`` exactly, ``metrics.parquet`` exactly
but for ``run_id`` and ``fit_seconds``, ``folds.parquet`` exactly, and every report table (CSV bytes). Prints a
Markdown block, and with ``--file`` pastes it between ``<!-- results:dataset-roundtrip -->`` markers
(``--marker`` names another block).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import pandas as pd

from benchmark.cli import main as cli
from benchmark.dataset import load_dataset
from benchmark.description import load_described


def _run(args: list[str], what: str) -> float:
    t0 = time.perf_counter()
    rc = cli(args)
    if rc != 0:
        raise SystemExit(f"{what} exited with {rc}")
    return time.perf_counter() - t0


def _only(folder: Path) -> Path:
    runs = sorted(p for p in folder.iterdir() if p.is_dir())
    if len(runs) != 1:
        raise SystemExit(f"{folder}: expected one run directory, found {len(runs)}; use a fresh --out")
    return runs[0]


def _tables(run: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    m = pd.read_parquet(run / "metrics.parquet").drop(columns=["run_id", "fit_seconds"])
    m = m.sort_values(["model", "seed", "fold", "metric", "target"]).reset_index(drop=True)
    p = pd.read_parquet(run / "predictions.parquet").sort_values(["model", "seed", "fold", "sample_id", "target"])
    return m, p.reset_index(drop=True), pd.read_parquet(run / "folds.parquet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="a fresh folder for the export and the runs")
    ap.add_argument("--models", default="ridge,rf,lgbm_all")
    ap.add_argument("--splits", default="lopo,kfold_grouped")
    ap.add_argument("--plan", action="append", metavar="SPLIT=MODELS",
                    help="one split and its models (repeatable); replaces --models x --splits")
    ap.add_argument("--jobs", default="1")
    ap.add_argument("--data-dir")
    ap.add_argument("--file", help="paste the Markdown block into this file (between the markers)")
    ap.add_argument("--marker", default="dataset-roundtrip",
                    help="the block's marker name: <!-- results:NAME --> ... <!-- /results:NAME -->")
    args = ap.parse_args()
    out = Path(args.out)
    generic = out / "generic"
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    t_export = _run(["dataset", "export", str(generic), "--format", "generic", *data], "export")
    native, described = load_dataset(args.data_dir), load_described(generic)
    same_items = native.y.tobytes() == described.y.tobytes() and list(native.meta["sample_id"]) == list(
        described.meta["sample_id"])
    if args.plan:
        if any("=" not in p for p in args.plan):
            raise SystemExit("--plan takes SPLIT=MODELS, e.g. lopo=ridge,rf")
        plan = [tuple(p.split("=", 1)) for p in args.plan]
    else:
        plan = [(split, args.models) for split in args.splits.split(",")]
    rows = []
    for split, models in plan:
        seconds, runs = {}, {}
        for kind, flag in (("native", data), ("described", ["--dataset", str(generic)])):
            folder = out / f"{split}_{kind}"
            seconds[kind] = _run(["run", "--no-progress", "--models", models, "--split", split, "--jobs",
                                  args.jobs, "--out", str(folder), *flag], f"{kind} run of {split}")
            runs[kind] = _only(folder)
            _run(["report", str(runs[kind]), "--format", "csv", "--no-plots", "--no-html"], f"{kind} report")
        a, b = (_tables(runs[k]) for k in ("native", "described"))
        same = [x.equals(y) for x, y in zip(a, b, strict=True)]
        ra = {p.name: p.read_bytes() for p in sorted((runs["native"] / "report").glob("*.csv"))}
        rb = {p.name: p.read_bytes() for p in sorted((runs["described"] / "report").glob("*.csv"))}
        rows.append(f"| `{split}` | {models.replace(',', ', ')} | {len(a[1]):,} | {'identical' if same[1] else 'DIFFER'} | "
                    f"{'identical' if same[0] else 'DIFFER'} | {'identical' if same[2] else 'DIFFER'} | "
                    f"{'identical' if ra == rb and ra else 'DIFFER'} ({len(ra)} tables) | "
                    f"{seconds['native']:.0f} s / {seconds['described']:.0f} s |")
    how = " ".join(f"--plan {s}={m}" for s, m in plan)
    block = "\n".join([
        f"<!-- results:{args.marker} -->",
        f"Generated by `python scripts/dataset_roundtrip.py {how} --jobs {args.jobs}` on {native.n_samples} segments (data sha256 {native.content_hash()[:12]}); export "
        f"{t_export:.0f} s; items and ratings read back {'bit-identical' if same_items else 'DIFFERENT'}.",
        "",
        "| split | models | prediction rows | predictions | metrics (less run_id, fit_seconds) | folds | report tables (CSV) "
        "| run time native / described |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        f"<!-- /results:{args.marker} -->",
    ])
    print(block)
    if args.file:
        path = Path(args.file)
        text = path.read_text()
        marker = re.escape(args.marker)
        pattern = re.compile(rf"<!-- results:{marker} -->.*?<!-- /results:{marker} -->", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{path}: no <!-- results:{args.marker} --> block")
        path.write_text(pattern.sub(lambda _: block, text))
    if not same_items or any("DIFFER" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()

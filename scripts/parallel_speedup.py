"""Measure the speed-up of ``--jobs 2`` over ``--jobs 1`` and write it to docs/benchmarks.md.

Usage: python scripts/parallel_speedup.py [--models rf,lgbm] [--seeds 0,1,2] [--out docs/benchmarks.md]

Runs ``benchmark run --models rf,lgbm --split lopo --seeds 0,1,2`` with ``--jobs 1``
and with ``--jobs 2`` (same grid, feature cache warmed first so both time the fits
only) and records wall times, the ratio, and the machine's load average before and
after each run: on a shared machine the ratio is only meaningful when the load was
low, and the section says what it was.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
BEGIN, END = "<!-- parallel-speedup:begin -->", "<!-- parallel-speedup:end -->"


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([str(BIN / "benchmark"), *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"benchmark {' '.join(args)} failed:\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="rf,lgbm")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--split", default="lopo")
    ap.add_argument("--out", default="docs/benchmarks.md")
    args = ap.parse_args()
    grid = ["run", "--models", args.models, "--split", args.split, "--seeds", args.seeds, "--no-progress"]
    with tempfile.TemporaryDirectory(prefix="pb-speedup-") as tmp:
        run([*grid, "--seeds", args.seeds.split(",")[0], "--models", "mean", "--out", tmp])  # warm the feature cache
        times, loads = {}, {}
        for jobs in (1, 2):
            before = os.getloadavg()[0]
            times[jobs] = run([*grid, "--jobs", str(jobs), "--out", tmp])
            loads[jobs] = (before, os.getloadavg()[0])
    ratio = times[1] / times[2]
    cmd = f"benchmark run --models {args.models} --split {args.split} --seeds {args.seeds} --jobs N"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # The 1-minute load average read right after a run includes the run's own processes (about jobs + the
    # driver); more than that means other processes competed for the cores during the measurement.
    busy = any(loads[j][1] > j + 0.6 for j in (1, 2))
    section = "\n".join([
        BEGIN,
        "## `--jobs 2` vs `--jobs 1` (issue 8)",
        "",
        f"`{cmd}`, feature cache warm; measured {stamp} with `python scripts/parallel_speedup.py`"
        f" on {os.cpu_count()} cores.",
        "",
        "| jobs | wall s | 1-min load average before / after |",
        "|---|---|---|",
        *(f"| {j} | {times[j]:.1f} | {loads[j][0]:.1f} / {loads[j][1]:.1f} |" for j in (1, 2)),
        "",
        f"Speed-up: **{ratio:.2f}x** (bar: at least 1.7x)."
        + (" Measured under load from other processes (the load average after a run exceeded its own workers "
           "plus the driver): the ratio understates what an idle machine gives." if busy else
           " The load averages after each run are those of the run's own processes (workers plus driver)."),
        END,
    ])
    out = Path(args.out)
    text = out.read_text() if out.exists() else "# Measured timings\n"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    out.write_text(text)
    print(section)


if __name__ == "__main__":
    main()

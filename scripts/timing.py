"""Measure the issue bars and write them to docs/benchmarks.md.

Usage: python scripts/timing.py [--repeats 3] [--skip-audio] [--out docs/benchmarks.md]

Times, on this machine, with fresh cache folders so "cold" really is cold:
1. ``benchmark run --models mean,ridge,rf,lgbm --split lopo --jobs 2`` with an
   empty feature cache (median of N), and the MIDI feature step with the cache warm
   (median of N);
2. ``benchmark features build --features midi,audio,mel,score --jobs 2`` cold (once)
   with peak memory, and warm (median of N);
3. the rendering real-time factor over 30 segments.
Figures on a shared 2-core machine are noisy: read ratios and medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
RUN = ["run", "--models", "mean,ridge,rf,lgbm", "--split", "lopo", "--jobs", "2", "--no-progress"]
BUILD = ["features", "build", "--features", "midi,audio,mel,score", "--jobs", "2"]


def timed(args: list[str]) -> tuple[float, str, float]:
    """Run the benchmark CLI; return wall seconds, stdout, and peak RSS (MB) of its process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    res = subprocess.run([str(BIN / "benchmark"), *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{res.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, res.stdout, max(peak, before) / 1024


def warm_midi_step(cache: str) -> float:
    code = ("import time;from benchmark.dataset import load_dataset;from features.build import build_features;"
            "from features.cache import Cache;ds=load_dataset();t=time.perf_counter();"
            f"build_features(ds.meta,['midi'],Cache({cache!r}),progress=False);print(time.perf_counter()-t)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def render_rtf(n: int = 30) -> tuple[float, float]:
    code = ("import time,glob;from features.render import render;fs=sorted(glob.glob("
            f"'../shared/percepiano/virtuoso/data/all_2rounds/*.mid'))[::40][:{n}];a=r=0.0\n"
            "for f in fs:\n t=time.perf_counter();y=render(f);r+=time.perf_counter()-t;a+=len(y)/22050\n"
            "print(r/a, a)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-audio", action="store_true")
    ap.add_argument("--out", default="docs/benchmarks.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pb-timing-"))
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `python scripts/timing.py`.", ""]

    cold, feat = [], []
    for i in range(args.repeats):
        wall, out, _ = timed([*RUN, "--cache-dir", str(tmp / f"cold{i}"), "--out", str(tmp / "runs")])
        cold.append(wall)
        feat.append(float(re.search(r"features ([\d.]+)s", out).group(1)))
    warm = [warm_midi_step(str(tmp / "cold0")) for _ in range(args.repeats)]
    lines += ["## `benchmark run --models mean,ridge,rf,lgbm --split lopo --jobs 2` (issue 2)", "",
              "| measurement | median | all runs |", "|---|---|---|",
              f"| whole run, feature cache cold (wall s) | {statistics.median(cold):.1f} | "
              f"{', '.join(f'{x:.1f}' for x in cold)} |",
              f"| MIDI feature step inside that run, cold (s) | {statistics.median(feat):.1f} | "
              f"{', '.join(f'{x:.1f}' for x in feat)} |",
              f"| MIDI feature step, cache warm (s) | {statistics.median(warm):.2f} | "
              f"{', '.join(f'{x:.2f}' for x in warm)} |", "",
              "Bars: under 300 s cold; under 2 s for the warm feature step.", ""]

    if not args.skip_audio:
        cache = str(tmp / "audio")
        wall_cold, out, peak = timed([*BUILD, "--cache-dir", cache])
        warm_b = [timed([*BUILD, "--cache-dir", cache])[0] for _ in range(args.repeats)]
        rtf, audio_s = render_rtf()
        size = sum(f.stat().st_size for f in Path(cache).rglob("*.npz")) / 1e9
        lines += ["## `benchmark features build --features midi,audio,mel,score --jobs 2` (issue 3)", "",
                  "| measurement | value |", "|---|---|",
                  f"| cold build, all labelled segments (wall s, once) | {wall_cold:.1f} |",
                  f"| warm build (wall s, median of {args.repeats}; includes interpreter start) | "
                  f"{statistics.median(warm_b):.1f} ({', '.join(f'{x:.1f}' for x in warm_b)}) |",
                  f"| peak memory of the largest process (MB) | {peak:.0f} |",
                  f"| rendering real-time factor (render s / audio s, {audio_s:.0f} s of audio, 1 core) | "
                  f"{rtf:.4f} ({1 / rtf:.0f}x faster than real time) |",
                  f"| cache size on disk (GB) | {size:.2f} |", "",
                  "Bars: cold under 600 s; warm under 5 s.", "", "Output of the cold build:", "", "```",
                  out.strip(), "```", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("# Measured timings\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

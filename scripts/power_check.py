"""Check `benchmark power` against docs/calibration.md, and time it (writes a block of docs/benchmarks.md).

For each split, `benchmark power --split SPLIT` with its defaults is run (timed),
and its power at each effect docs/calibration.md also simulated is compared
with the rate stored in reports/calibration.json: the two are independent
simulations of the same design and rule, so their difference is judged by a
two-proportion z statistic (Monte-Carlo error only; |z| < 2.58 at the 1% level).

Usage::

    nice -n 10 .venv/bin/python scripts/power_check.py --splits lopo,piece --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

BEGIN, END = "<!-- power-check:begin -->", "<!-- power-check:end -->"


def z_two(p1: float, n1: int, p2: float, n2: int) -> float:
    """Two-proportion z statistic with the pooled proportion (0 when both are 0 or 1)."""
    p = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return 0.0 if se == 0 else float((p1 - p2) / se)


def check(split: str) -> tuple[list[str], float, float, int]:
    """Rows of the comparison for ``split``, the seconds `benchmark power` took, the largest |z|, and the
    data sets per effect docs/calibration.md simulated."""
    from reports.calibrated import stored_design
    from simulation.power import POWER_RULES, format_power, run_power

    stored = stored_design(split)
    if not stored or not stored.get("power", {}).get("effects"):
        raise SystemExit(f"error: reports/calibration.json holds no power rows for {split!r}; run scripts/calibration.py")
    t0 = time.perf_counter()
    res = run_power(split)
    seconds = time.perf_counter() - t0
    print(format_power(res), flush=True)
    rows, worst = [], 0.0
    for e in res.effects:
        if not e.get("requested"):
            continue
        ref = min(stored["power"]["effects"], key=lambda s: abs(s["effect"] - e["effect"]))
        if abs(ref["effect"] - e["effect"]) > 1e-3:
            continue
        for rule in POWER_RULES:
            a, b = e["rates"].get(rule), ref["rates"].get(rule)
            if a is None or b is None:
                continue
            z = z_two(a.rate, a.n, b["rate"], b["n"])
            worst = max(worst, abs(z))
            rows.append(f"| {split} | +{e['effect']:.3f} | {rule} | {a.rate:.3f} ({a.n}) | {b['rate']:.3f} ({b['n']}) "
                        f"| {z:+.2f} |")
    return rows, seconds, worst, int(stored["power"].get("reps") or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--splits", default="lopo,piece")
    parser.add_argument("--out", type=Path, default=None, help="docs/benchmarks.md: replace its power-check block")
    args = parser.parse_args(argv)
    rows, times, worst, ref_reps = [], [], 0.0, set()
    for split in args.splits.split(","):
        r, sec, w, n_ref = check(split)
        ref_reps.add(n_ref)
        rows += r
        times.append(f"`benchmark power --split {split}`: {sec:.0f} s")
        worst = max(worst, w)
    block = [BEGIN, "## `benchmark power` (issue 21 item 5; `scripts/power_check.py`, generated)", "",
             f"Default settings (100 data sets per effect, 199 resamples), one process, niced, on this shared 2-core "
             f"machine ({platform.processor() or platform.machine()}): " + "; ".join(times) + ". Each power below "
             "is compared with docs/calibration.md's rate at the same effect (an independent simulation of the same "
             f"design and rule, {'/'.join(map(str, sorted(ref_reps)))} data sets per effect): the two-proportion z "
             f"is Monte-Carlo error only, |z| < 2.58 at the 1% level; the largest here is {worst:.2f}.", "",
             "| split | effect | test | `benchmark power` (n) | docs/calibration.md (n) | z |", "|---|---|---|---|---|---|",
             *rows, END]
    text = "\n".join(block)
    print(text)
    if args.out is not None:
        old = args.out.read_text() if args.out.is_file() else ""
        if BEGIN in old and END in old:
            head, rest = old.split(BEGIN, 1)
            new = head + text + rest.split(END, 1)[1]
        else:
            new = old.rstrip("\n") + "\n\n" + text + "\n"
        args.out.write_text(new)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

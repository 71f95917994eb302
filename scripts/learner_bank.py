"""Build (or resume) the learner banks docs/calibration.md forms its real-learner nulls from.

Each stage is ``DESIGN:LEARNER:FIRST-LAST`` (model seeds FIRST..LAST); stages run in
order and skip every seed already on disk, so the command can be rerun after an
interruption. One process, one thread per fit; run it niced.

Usage::

    nice -n 10 .venv/bin/python scripts/learner_bank.py --root /work/runs/stats/banks \
        lopo:rf50:0-79 piece:rf50:0-79 kfold_grouped:rf50:0-79 excerpt:rf50:0-79 lopo:ast_ultratiny_e3:0-39
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from simulation.bank import BANK_DESIGNS, LEARNERS, build_bank  # noqa: E402


def parse_stage(text: str) -> tuple[str, str, range]:
    try:
        design, learner, seeds = text.split(":")
        first, last = (int(v) for v in seeds.split("-"))
    except ValueError:
        raise SystemExit(f"error: stage {text!r}: use DESIGN:LEARNER:FIRST-LAST, e.g. lopo:rf50:0-79") from None
    if design not in BANK_DESIGNS:
        raise SystemExit(f"error: stage {text!r}: unknown design; use one of {', '.join(BANK_DESIGNS)}")
    if learner not in LEARNERS:
        raise SystemExit(f"error: stage {text!r}: unknown learner; use one of {', '.join(LEARNERS)}")
    if last < first or first < 0:
        raise SystemExit(f"error: stage {text!r}: seeds FIRST-LAST with 0 <= FIRST <= LAST")
    return design, learner, range(first, last + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stages", nargs="+", help="DESIGN:LEARNER:FIRST-LAST, in order")
    parser.add_argument("--root", type=Path, required=True, help="the banks' directory")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    stages = [parse_stage(s) for s in args.stages]
    for design, learner, seeds in stages:
        t0 = time.perf_counter()
        done = build_bank(args.root, design, LEARNERS[learner], seeds, cache_dir=args.cache_dir,
                          data_dir=args.data_dir, notify=lambda m: print(m, flush=True))
        print(f"stage {design}:{learner}: {len(done['fitted'])} seeds fitted, {len(done['skipped'])} already there, "
              f"{done['seconds']:.0f} s CPU, {time.perf_counter() - t0:.0f} s wall", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

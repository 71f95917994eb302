"""Calibration of every test the report prints, on this data's real split designs (writes docs/calibration.md).

A thin wrapper over the ``simulation`` package (the same code ``benchmark power``
and the tests use): per design, :func:`simulation.calibrate.calibrate_design`
under the toy nulls and the learner banks found under ``--banks`` (built by
``scripts/learner_bank.py``), then :mod:`simulation.render` writes the Markdown
report and ``reports/calibration.json`` (what the report reads: per design its
key, the corrected t's factor, which claim is calibrated and how many model
seeds each learner family needs).

Usage::

    nice -n 10 .venv/bin/python scripts/calibration.py --banks /work/runs/stats/banks --out docs/calibration.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from simulation.designs import DESIGNS, real_layout, synthetic_layout  # noqa: E402


def find_banks(root: Path | None, design: str, min_seeds: int = 4) -> dict:
    """Learner label -> (scores, BankDesign, family, CPU seconds) for every bank of ``design`` under ``root``."""
    from simulation.bank import bank_scores

    out = {}
    if root is None or not (root / design).is_dir():
        return out
    for d in sorted(p for p in (root / design).iterdir() if p.is_dir() and not p.name.startswith("_")):
        spec = d / "spec.json"
        if not spec.is_file() or len(list(d.glob("seed_*.npz"))) < min_seeds:
            continue
        info = json.loads(spec.read_text())
        _, scores, bank = bank_scores(root, design, d.name)
        # Banks built by two processes at once may have lost some seeds' times (spec.json rewritten):
        # count those at the recorded mean.
        secs = list(info.get("seconds", {}).values())
        out[d.name] = (scores, bank, info["family"], float(np.mean(secs) * scores.shape[0]) if secs else 0.0)
    return out


def _task(args: tuple) -> dict:
    name, layout, options, banks_root, reuse = args
    from simulation.calibrate import calibrate_design, rebank

    banks = find_banks(banks_root, name)
    log = lambda m: print(m, flush=True)  # noqa: E731
    if reuse is not None:
        return rebank(reuse, banks, ks=options["ks"], n_pairs=options["n_pairs"], seed=options["seed"], log=log)
    return calibrate_design(DESIGNS[name], layout, banks=banks, log=log, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--designs", default=",".join(DESIGNS), help="comma-separated designs")
    parser.add_argument("--learner-reps", type=int, default=2000, help="toy learner-null data sets (no resampling)")
    parser.add_argument("--predictor-reps", type=int, default=1000, help="data sets per predictor null")
    parser.add_argument("--reference-reps", type=int, default=200,
                        help="toy learner-null data sets for the predictor rules (reference only)")
    parser.add_argument("--fit-reps", type=int, default=2000, help="data sets the corrected t's factor is fitted on")
    parser.add_argument("--power-reps", type=int, default=200, help="data sets per effect of the power curve")
    parser.add_argument("--tost-reps", type=int, default=400, help="data sets at the ROPE's edge (TOST)")
    parser.add_argument("--resamples", type=int, default=499, help="bootstrap resamples and permutations")
    parser.add_argument("--banks", type=Path, default=None, help="learner banks' root (scripts/learner_bank.py)")
    parser.add_argument("--ks", default="1,2,3,5", help="model seeds per learner formed from a bank")
    parser.add_argument("--pairs", type=int, default=4000, help="random pairs of seed groups per k")
    parser.add_argument("--data-dir", type=Path, default=None, help="PercePiano folder (real segment layout)")
    parser.add_argument("--synthetic", action="store_true", help="use a small synthetic layout (fast)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="designs simulated in parallel processes")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "calibration.json",
                        help="where the report reads the verdicts (with --out)")
    parser.add_argument("--full", type=Path, default=None, help="also write every rate and timing as JSON here")
    parser.add_argument("--reuse", type=Path, nargs="+", default=None,
                        help="--full JSON files of earlier runs: keep their toy nulls and power, recompute the banks only")
    parser.add_argument("--costs", type=Path, default=None,
                        help="write the CPU-time block into this file (docs/benchmarks.md), with --out")
    args = parser.parse_args(argv)
    for flag in ("learner_reps", "predictor_reps", "fit_reps", "power_reps", "tost_reps", "resamples", "pairs"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')}={getattr(args, flag)} must be >= 1")
    names = args.designs.split(",")
    for name in names:
        if name not in DESIGNS:
            parser.error(f"unknown design {name!r}; use {','.join(DESIGNS)}")
    try:
        ks = tuple(int(k) for k in args.ks.split(","))
    except ValueError:
        parser.error(f"--ks {args.ks!r}: use comma-separated integers, e.g. 1,2,3,5")
    layout = None if args.synthetic else real_layout(args.data_dir)
    source = "PercePiano's 1189 segments (real performers, passages, pieces and performances)"
    if layout is None:
        layout, source = synthetic_layout(), "a synthetic layout (PercePiano not found)"
    options = {"learner_reps": args.learner_reps, "predictor_reps": args.predictor_reps,
               "reference_reps": args.reference_reps, "fit_reps": args.fit_reps, "n_resamples": args.resamples,
               "seed": args.seed, "ks": ks, "n_pairs": args.pairs, "power_reps": args.power_reps,
               "tost_reps": args.tost_reps}
    start = time.perf_counter()
    reused = {}
    if args.reuse is not None:
        from simulation.calibrate import from_json

        for path in args.reuse:
            reused.update({r["design"]: r for r in from_json(json.loads(path.read_text()))})
        missing = [n for n in names if n not in reused]
        if missing:
            parser.error(f"--reuse lacks the designs {', '.join(missing)}")
    tasks = [(name, layout, options, args.banks, reused.get(name)) for name in names]
    if args.jobs > 1:
        # One process per design; every design seeds its own repetitions, so the numbers do not change.
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(args.jobs, len(tasks))) as pool:
            results = list(pool.map(_task, tasks))
    else:
        results = [_task(t) for t in tasks]
    seconds = time.perf_counter() - start
    from simulation.calibrate import to_json as full_json
    from simulation.render import cost_block, replace_block, to_json, to_markdown

    command = ".venv/bin/python scripts/calibration.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if reused:
        # The toy part came from an earlier run: name its command too, first.
        earlier = {r.get("command") for n, r in reused.items() if n in names and r.get("command")}
        command = "\n".join([*sorted(earlier), command.strip()])
    for res in results:
        res.setdefault("command", command.strip())
    if args.full is not None:
        args.full.parent.mkdir(parents=True, exist_ok=True)
        args.full.write_text(json.dumps([full_json(r) for r in results], indent=1, default=float) + "\n")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(to_markdown(results, seconds, command.strip(), source))
        args.json.write_text(json.dumps(to_json([full_json(r) for r in results], source, command.strip()),
                                        indent=1, default=float) + "\n")
        print(f"wrote {args.out} and {args.json}")
        if args.costs is not None:
            args.costs.write_text(replace_block(args.costs.read_text() if args.costs.is_file() else "",
                                                cost_block(results, command.strip(), args.jobs)))
            print(f"wrote the calibration-cost block of {args.costs}")
    for res in results:
        v = res.get("verdicts", {})
        print(f"{res['design']:22s} learner: {v.get('learner', {}).get('min_seeds')}  "
              f"predictor calibrated: {v.get('predictor', {}).get('calibrated')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

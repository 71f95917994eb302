"""docs/calibration.md and reports/calibration.json from :func:`simulation.calibrate.calibrate_design` results."""

from __future__ import annotations

import platform

import numpy as np

from simulation.engine import ALT_CIS, BAYES, CLUSTER, LEARNER, NAIVE, PERM, ROPE, THRESHOLD, TOST
from simulation.rates import ALPHA, BAND, Rate

VERSION = 2


def _r(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, dict):
        x = Rate(**x)
    return x.text()


def _seeds_text(v: dict, family: str) -> str:
    k = v["learner"]["min_seeds"].get(family)
    if k is None:
        return "not calibrated"
    top = v["learner"].get("max_seeds", {}).get(family)
    return f">= {k} model seeds" + (f" (simulated up to {top})" if top and family != "deterministic" else "")


def design_section(res: dict) -> list[str]:
    key = res["key"]
    head = (f"## {res['design']} (unit: {res['unit']}; {key['n_folds']} folds x "
            f"{key['n_seeds']} {'CV repeats' if res['seeded'] else 'seed'}; {res['n_units']} units)")
    lines = [head, ""]
    if res["few"] or not res["partition"]:
        lines += [f"{res['n_units']} {res['unit']} in the fixed test set: fewer than 10 units, so the report prints "
                  f"\"too few groups ({res['n_units']})\" for every group-level interval and p-value, for both "
                  "claims; nothing to calibrate (no repetition can make a 3-unit test informative: the smallest "
                  "exact sign-flip p over 3 units is 0.25).", ""]
        return lines
    v = res["verdicts"]
    fams = [f for f in v["learner"]["min_seeds"] if f != "deterministic"]
    lines += [
        f"**Learner claim** (are the learning algorithms different?), primary test `{LEARNER}`: "
        + ("calibrated for deterministic learners" if v["learner"]["calibrated"] else "not calibrated")
        + "".join(f"; {f} learners: {_seeds_text(v, f)}" for f in fams)
        + ("" if fams else "; no learner bank on this design, so for randomized (tabular or neural) learners the "
           "learner claim prints \"not calibrated for this design\"") + ".",
        f"**Predictor claim** (are these fitted predictors different?), primary test `{CLUSTER}`: "
        + ("calibrated" if v["predictor"]["calibrated"] else "not calibrated") + ".",
        "",
        f"Learner rules under the learner nulls (false-positive rate at alpha {ALPHA} [95% interval], "
        "repetitions or pairs):",
        "",
        f"| null | seeds per learner | {LEARNER} | {BAYES} | {NAIVE} |",
        "|---|---|---|---|---|",
    ]
    toy = res["toy"]["learner null"]
    n = toy[LEARNER].n if LEARNER in toy else 0
    lines.append(f"| toy learner null (ridge, deterministic; {n} data sets) | 1 | {_r(toy.get(LEARNER))} | "
                 f"{_r(toy.get(BAYES))} | {_r(toy.get(NAIVE))} |")
    for label, bank in res["banks"].items():
        for k, rates in sorted(bank["rates"].items(), key=lambda kv: int(kv[0])):
            n_p = next(iter(rates.values())).n if rates else 0
            kk = f"{k} (one per CV repeat)" if res["seeded"] else str(k)
            lines.append(f"| {label} bank ({bank['family']}; {bank['n_seeds']} seeds, {n_p} pairs) | {kk} | "
                         f"{_r(rates.get(LEARNER)) if LEARNER in rates else 'needs >= 2 model seeds'} | "
                         f"{_r(rates.get(BAYES)) if BAYES in rates else '-'} | {_r(rates.get(NAIVE))} |")
    lines += ["", "Predictor rules (the toy learner null is not their null: shown for reference):", "",
              "| rule | sharp predictor null | weak predictor null | toy learner null |", "|---|---|---|---|"]
    for rule in (CLUSTER, PERM, *ALT_CIS.values()):
        lines.append(f"| {rule} | {_r(res['toy']['predictor null'].get(rule))} | "
                     f"{_r(res['toy']['weak predictor null'].get(rule))} | {_r(toy.get(rule))} |")
    p = res.get("power")
    if p:
        lines += ["", f"Power at known effects (fold-level mean r difference; {p['reps']} data sets each, toy "
                  "learners):", "", f"| effect | {LEARNER} | {CLUSTER} | {PERM} |", "|---|---|---|---|"]
        for e in p["effects"]:
            lines.append(f"| +{e['effect']:.3f} | " + " | ".join(_r(e["rates"].get(r)) for r in (LEARNER, CLUSTER, PERM))
                         + " |")
        mde = ", ".join(f"{r} {_fmt_mde(p['mde'].get(r))}" for r in (LEARNER, CLUSTER, PERM))
        formula = ", ".join(f"{r} {_fmt_mde(p['mde_formula'].get(r))}" for r in (LEARNER, CLUSTER))
        lines += ["", f"Minimum detectable effect at 80% power (simulated curve): {mde}; from the tests' own mean "
                  f"standard error, (t_crit + t_0.8) x SE: {formula}."]
    t = res.get("tost", {})
    if t.get("rate") is not None:
        lines += ["", f"TOST (equivalence within +-{ROPE}, same variance as `{LEARNER}`) declared equivalence in "
                  f"{_r(t['rate'])} of data sets whose true difference is +{t['effect']:.3f} (the ROPE's edge): "
                  f"its false-equivalence rate; valid when at most alpha."]
    nb = res.get("nb_factor1")
    lines += ["", f"Corrected t factor: the n_test/n_train term is scaled by {res['scale']:.3f}, fitted on "
              f"{res['fit_reps']} other toy learner-null data sets"
              + (f" (Nadeau-Bengio's own factor 1 rejected {_r(nb)} of them)" if nb else "") + ".", ""]
    return lines


def _fmt_mde(x) -> str:
    return "not reached" if x is None or not np.isfinite(x) else f"+{x:.3f}"


def to_markdown(results: list[dict], seconds: float, command: str, source: str) -> str:
    lines = [
        "# Calibration of the report's tests on this data's designs",
        "",
        "Generated by `scripts/calibration.py` (the engine is the `simulation` package, which `benchmark power` "
        "and the tests use too); rerun with:",
        "",
        "```",
        command,
        "```",
        "",
        f"Segment layout: {source}. Every rule is run through the report's own code (`reports/units.py`, "
        "`reports/claims.py`).",
        "",
        "**Two claims, one primary test each.** A comparison row answers two questions. *Are the learning "
        f"algorithms different?* Primary test `{LEARNER}`: the corrected resampled t over the fold units with "
        "this design's fitted factor, plus the between-seed variance of each model's fold-level mean where seeds "
        "do not change the folds (`reports.claims.learner_test`); the Bayesian verdict and TOST read the same "
        f"posterior t. *Are these fitted predictors different?* Primary test `{CLUSTER}`: the cluster-bootstrap "
        "interval over the split's units, diff -+ sqrt(G/(G-1)) t_{G-1} SE_boot, and the p-value of that same "
        f"interval; the `{PERM}` (whole units swapped) is secondary.",
        "",
        "**Nulls.** *Toy learner null*: on each simulated data set (performer and passage effects on 20 equally "
        "informative features and on the rating) two ridge learners on random 8-feature subsets: deterministic "
        "learners of equal expected performance, data varying. *Bank nulls*: one real randomized learner of the "
        "harness, run on the real features and ratings with many model seeds (the seed shared by every fold of a "
        "repeat, as runs do); a null pair is two disjoint groups of k seeds of that learner, so only the learner's "
        "own randomness differs (`simulation.bank`). *Sharp predictor null*: one fitted predictor, each model "
        "adding independent noise (exchangeable within every unit). *Weak predictor null*: one fitted predictor, "
        "each unit's noise sd multiplied by exp(h) for one model and exp(-h) for the other (h ~ N(0, 0.5^2) per "
        "unit): the predictors differ unit by unit, with no difference in expectation over units.",
        "",
        f"**Calibrated** means: the false-positive rate's 95% interval lies inside [{BAND[0]}, {BAND[1]}] at alpha "
        f"{ALPHA}. Intervals: Wilson for independent data sets; for pairs formed from a bank (they share seeds, "
        "so the rate is a U-statistic) the delete-one-seed jackknife (Arvesen 1969) over the bank's seeds. The "
        "learner claim is calibrated for a learner family at k model seeds per learner when the toy null (the "
        "fold part) is calibrated and that family's bank null at k (and at every larger k simulated) is valid: "
        f"its interval ends at or below {BAND[1]} (calibrated, or conservative: a real learner's own randomness "
        "then never produces more false marks than alpha; the forest's learner t is conservative, about 0.03); "
        "a run with fewer "
        "seeds prints \"needs >= k model seeds\"; a run with more than the largest k simulated, or another fold, "
        "seed or unit count than the design's key, prints \"not calibrated for this design\" (run "
        "`benchmark power` for it). Deterministic learners (identical predictions across seeds, or registry "
        "metadata) need one seed. Tabular families other than the banked forest are assumed to need what it "
        "needs; neural families what the banked AST needs, on the designs where it was banked.",
        "",
        f"**Printed rules = simulated rules.** Bayesian verdict: \"better\"/\"worse\" when that posterior "
        f"probability (ROPE +-{ROPE}) reaches {THRESHOLD}; its false-decision rate is shown under each learner null. "
        f"TOST: equivalence within +-{ROPE} at alpha {ALPHA}, checked where the true difference is the ROPE's edge.",
        "",
    ]
    for res in results:
        lines += design_section(res)
    lines += [f"Runtime {seconds:.0f} s on {platform.processor() or platform.machine()} "
              f"(Python {platform.python_version()}); the banks' CPU time is in docs/benchmarks.md.", ""]
    return "\n".join(lines)


def to_json(results: list[dict], source: str, command: str) -> dict:
    """What the report reads (reports/calibration.json, version 2): per design its key, factor and verdicts."""
    designs = {}
    for res in results:
        v = res.get("verdicts") or {}
        p = res.get("power") or {}
        designs[res["design"]] = {
            "key": res["key"], "seeded": res["seeded"], "partition": res["partition"], "few": res["few"],
            "ratio_scale": res.get("scale", 1.0),
            "learner": v.get("learner", {}), "predictor": v.get("predictor", {}),
            "secondary": v.get("secondary", {}),
            "mde": {k: (None if x is None or not np.isfinite(x) else x) for k, x in (p.get("mde") or {}).items()},
            # The simulated power rows, so `benchmark power` can be checked against them.
            "power": {"reps": p.get("reps"), "effects": [{"effect": e["effect"], "rates": e["rates"]}
                                                          for e in p.get("effects", [])]} if p else {},
        }
    return {"version": VERSION, "alpha": ALPHA, "band": list(BAND), "rope": ROPE, "threshold": THRESHOLD,
            "tests": {"learner": LEARNER, "predictor": CLUSTER, "secondary": [PERM, BAYES, TOST]},
            "source": source, "command": command, "designs": designs}


COST_BEGIN, COST_END = "<!-- calibration-cost:begin -->", "<!-- calibration-cost:end -->"


def cost_block(results: list[dict], command: str, jobs: int) -> str:
    """docs/benchmarks.md's block: the CPU time of each design's calibration and of its learner banks."""
    lines = [COST_BEGIN, "## Calibration cost per design (issue 20; `scripts/calibration.py`, generated)", "",
             f"Measured by the commands below ({'one process' if jobs <= 1 else f'{jobs} processes'} each, niced, "
             "on this 2-core machine shared with other jobs: wall time, so an idle machine is faster). The banks' "
             "CPU time is the process time `scripts/learner_bank.py` recorded for each model seed (every fit on one "
             "thread; a seed whose time was not recorded is counted at the recorded seeds' mean).",
             "", "```", command, "```",
             "", "| design | toy nulls (s) | power curve (s) | bank | seeds | bank CPU (s) | per seed (s) |",
             "|---|---|---|---|---|---|---|"]
    for res in results:
        sec = res.get("seconds", {})
        banks = res.get("banks") or {"-": None}
        for i, (label, b) in enumerate(banks.items()):
            head = (f"| {res['design']} | {sec.get('toy', 0):.0f} | {sec.get('power', 0):.0f} " if i == 0
                    else "| | | ")
            if b is None:
                lines.append(head + "| - | - | - | - |")
            else:
                per = b["cpu_seconds"] / max(b["n_seeds"], 1)
                lines.append(head + f"| {label} ({b['family']}) | {b['n_seeds']} | {b['cpu_seconds']:.0f} | "
                             f"{per:.1f} |")
    lines.append(COST_END)
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    """``text`` with its calibration-cost block replaced by ``block`` (appended when absent)."""
    if COST_BEGIN in text and COST_END in text:
        head, rest = text.split(COST_BEGIN, 1)
        return head + block + rest.split(COST_END, 1)[1]
    return text.rstrip("\n") + "\n\n" + block + "\n"

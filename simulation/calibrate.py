"""One design's calibration: the corrected t's factor, every rule under every null, and the verdicts.

:func:`calibrate_design` runs, on one real design,

1. the factor of the corrected t's n_test/n_train term, fitted on toy
   learner-null repetitions (deterministic learners, no resampling: cheap) and
   judged on fresh ones;
2. the toy nulls: the learner null (learner rules on ``learner_reps``
   repetitions, predictor rules on ``reference_reps`` for reference), the sharp
   and the weak predictor null (predictor rules, ``predictor_reps``);
3. the bank nulls: each learner bank's pairs of k-seed groups (learner rules);
4. the power curve and MDE (:func:`simulation.power.power_curve`), and the
   TOST's false-equivalence rate at an effect as large as the ROPE.

:func:`verdicts` then says, per claim, whether its primary test is
calibrated (every relevant null's 95% interval inside [0.02, 0.08]) and, for
the learner claim, how many model seeds each learner family needs.
"""

from __future__ import annotations

import time

import numpy as np

from simulation.designs import Design, Layout, design_key
from simulation.engine import (
    ALT_CIS,
    BAYES,
    CLUSTER,
    LEARNER,
    NAIVE,
    PERM,
    ROPE,
    TOST,
    fit_scale,
    rates_of,
    toy_reps,
)
from simulation.rates import BAND, Rate

LEARNER_RULES = (LEARNER, BAYES, NAIVE)
PREDICTOR_RULES = (CLUSTER, PERM, *ALT_CIS.values())


def calibrate_design(design: Design, layout: Layout, *, learner_reps: int = 2000, predictor_reps: int = 1000,
                     reference_reps: int = 200, fit_reps: int = 2000, n_resamples: int = 499, seed: int = 0,
                     banks: dict | None = None, ks=(1, 2, 3, 5), n_pairs: int = 4000, power_reps: int = 200,
                     tost_reps: int = 400, scale: float | None = None, log=print) -> dict:
    """Every rule under every null on ``design``; see the module docstring.

    Parameters
    ----------
    banks : dict, optional
        Learner label -> (scores (S, C), BankDesign, family, cpu seconds) from
        :func:`simulation.bank.bank_scores`.
    scale : float, optional
        Use this factor instead of fitting one.

    Returns
    -------
    dict (JSON-ready after :func:`to_json`)
    """
    from simulation.engine import bank_rates
    from simulation.power import effect_map, noise_for, power_curve

    t0 = time.perf_counter()
    key = design_key(design, layout)
    res: dict = {"design": design.name, "unit": design.unit, "key": key.as_dict(), "seeded": design.seeded,
                 "partition": design.partition, "n_units": key.n_units, "few": key.n_units < 10, "toy": {},
                 "banks": {}, "seconds": {}}
    if res["few"] or not design.partition:
        res["scale"], res["fit_reps"] = 1.0, 0
        res["seconds"]["toy"] = time.perf_counter() - t0
        res["verdicts"] = verdicts(res)
        return res
    if scale is None:
        first = toy_reps(design, layout, "learner null", fit_reps, seed=seed, ratio_scale=1.0, n_resamples=0)
        res["scale"], res["fit_reps"] = fit_scale(first, design), fit_reps
        res["nb_factor1"] = rates_of(first, [NAIVE])[NAIVE]
    else:
        res["scale"], res["fit_reps"] = float(scale), 0
    c = res["scale"]
    log(f"{design.name}: factor {c:.3f} ({time.perf_counter() - t0:.0f} s)")
    learner = toy_reps(design, layout, "learner null", learner_reps, seed=seed + 1000, ratio_scale=c, n_resamples=0)
    rates = rates_of(learner, LEARNER_RULES)
    ref = toy_reps(design, layout, "learner null", reference_reps, seed=seed + 1000, ratio_scale=c,
                   n_resamples=n_resamples)
    rates.update(rates_of(ref, PREDICTOR_RULES))
    res["toy"]["learner null"] = rates
    for scenario in ("predictor null", "weak predictor null"):
        reps = toy_reps(design, layout, scenario, predictor_reps, seed=seed, ratio_scale=c, n_resamples=n_resamples)
        res["toy"][scenario] = rates_of(reps, PREDICTOR_RULES)
        log(f"{design.name}: {scenario} done ({time.perf_counter() - t0:.0f} s)")
    res["seconds"]["toy"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    # TOST's size: the rate of declaring equivalence when the true difference is as large as the ROPE.
    noise, pilot = effect_map(design, layout, seed=seed)
    # "degraded": B is A seeing noisier features, so every repetition's true difference is the ROPE's.
    at_rope = toy_reps(design, layout, "degraded", tost_reps, seed=seed + 3, ratio_scale=c, n_resamples=0,
                       noise=noise_for(ROPE, noise, pilot))
    res["tost"] = {"effect": float(np.nanmean([r["_diff"] for r in at_rope])),
                   "rate": rates_of(at_rope, [TOST]).get(TOST)}
    res["power"] = power_curve(design, layout, ratio_scale=c, reps=power_reps, n_resamples=n_resamples,
                               seed=seed + 5).as_dict()
    res["seconds"]["power"] = time.perf_counter() - t1
    for label, (scores, bank, family, cpu) in (banks or {}).items():
        t2 = time.perf_counter()
        rates = bank_rates(scores, bank, design, ratio_scale=c, ks=ks, n_pairs=n_pairs, seed=seed)
        res["banks"][label] = {"family": family, "n_seeds": rates.pop("_n_seeds"), "cpu_seconds": cpu,
                               "rates": rates, "seconds": time.perf_counter() - t2}
        log(f"{design.name}: bank {label} done")
    res["verdicts"] = verdicts(res)
    return res


def _ok(rate: Rate | None) -> bool:
    return rate is not None and rate.inside


def _valid(rate: Rate | None) -> bool:
    return rate is not None and rate.valid


def min_seeds(bank: dict, seeded: bool) -> int | None:
    """The fewest model seeds per learner from which the learner t keeps its level at every simulated k.

    Under a real learner's bank null the test must be *valid*: its false-positive rate's 95% interval ends at
    or below the band's upper edge (calibrated, or conservative: the forest's learner t rejects a true null
    about 3% of the time at alpha 5%, so no difference it marks is an artefact of the learner's randomness;
    :attr:`simulation.rates.Rate.valid`). The fold part (the toy learner null) must be calibrated, both
    edges. A seeded design has one k (its repeats): that k if valid, else None.
    """
    ks = sorted(k for k in bank["rates"] if LEARNER in bank["rates"][k])
    good = [k for k in ks if _valid(bank["rates"][k][LEARNER])]
    if seeded:
        return ks[0] if ks and good == ks else None
    for i, k in enumerate(ks):
        if all(k2 in good for k2 in ks[i:]):
            return k
    return None


def verdicts(res: dict) -> dict:
    """Per claim: its primary test, whether it is calibrated, and (learner claim) the seeds each family needs."""
    if res["few"] or not res["partition"]:
        return {"learner": {"test": LEARNER, "calibrated": False, "min_seeds": {}},
                "predictor": {"test": CLUSTER, "calibrated": False}, "secondary": {}}
    toy = res["toy"]
    pred_ok = _ok(toy["predictor null"].get(CLUSTER)) and _ok(toy["weak predictor null"].get(CLUSTER))
    det_ok = _ok(toy["learner null"].get(LEARNER))
    seeds = {"deterministic": 1 if det_ok else None}
    max_k = {}
    for bank in res["banks"].values():
        k = min_seeds(bank, res["seeded"]) if det_ok else None
        fam = bank["family"]
        seeds[fam] = k if fam not in seeds or seeds[fam] is None or k is None else max(seeds[fam], k)
        max_k[fam] = max(bank["rates"]) if bank["rates"] else None
    secondary = {
        PERM: {n: toy[n][PERM].status for n in ("predictor null", "weak predictor null") if PERM in toy[n]},
        BAYES: {"toy learner null": toy["learner null"][BAYES].status if BAYES in toy["learner null"] else None,
                **{f"{label} (k={k})": r[BAYES].status for label, b in res["banks"].items()
                   for k, r in b["rates"].items() if BAYES in r}},
        TOST: ("valid" if res.get("tost", {}).get("rate") is not None and res["tost"]["rate"].high <= BAND[1]
               else "liberal or unknown"),
    }
    return {"learner": {"test": LEARNER, "calibrated": det_ok, "min_seeds": seeds, "max_seeds": max_k},
            "predictor": {"test": CLUSTER, "calibrated": pred_ok}, "secondary": secondary}


def from_json(data):
    """The inverse of :func:`to_json`: every rate dict back to a :class:`Rate`, bank k keys back to int."""
    if isinstance(data, dict):
        if set(data) == {"rate", "low", "high", "n", "method"}:
            return Rate(**data)
        return {(int(k) if k.isdigit() else k): from_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [from_json(v) for v in data]
    return data


def rebank(res: dict, banks: dict, *, ks=(1, 2, 3, 5), n_pairs: int = 4000, seed: int = 0, log=print) -> dict:
    """A stored design result with its bank nulls recomputed from ``banks`` (the toy part kept as it is)."""
    from simulation.designs import DESIGNS
    from simulation.engine import bank_rates

    res = dict(res)
    res["banks"] = {}
    if not res["few"] and res["partition"]:
        design = DESIGNS[res["design"]]
        for label, (scores, bank, family, cpu) in banks.items():
            t2 = time.perf_counter()
            rates = bank_rates(scores, bank, design, ratio_scale=res["scale"], ks=ks, n_pairs=n_pairs, seed=seed)
            res["banks"][label] = {"family": family, "n_seeds": rates.pop("_n_seeds"), "cpu_seconds": cpu,
                                   "rates": rates, "seconds": time.perf_counter() - t2}
            log(f"{res['design']}: bank {label} done")
    res["verdicts"] = verdicts(res)
    return res


def to_json(res: dict) -> dict:
    """``res`` with every :class:`Rate` as a dict (for reports/calibration.json)."""
    def conv(x):
        if isinstance(x, Rate):
            return x.as_dict()
        if isinstance(x, dict):
            return {str(k): conv(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [conv(v) for v in x]
        if isinstance(x, np.floating | np.integer):
            return x.item()
        return x
    return conv(res)

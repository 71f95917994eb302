"""False-positive rate, power curve and minimum detectable effect of a design (``benchmark power``).

The design's real layout and folds are simulated as docs/calibration.md does
(:mod:`simulation.toy`, :func:`simulation.engine.decide`): under the toy
learner null for the false-positive rate, and under known effects for the
power. An effect is the expected difference of the fold-level mean metric
(what the report tests): learner B sees its features through noise of sd
``s``, and a pilot maps ``s`` to the mean difference it causes on this design
(:func:`effect_map`), so a requested effect of +0.02 is simulated at the noise
that gives it. The minimum detectable effect (MDE) at 80% power is read off
the simulated power curve (linear in the probit of power between the two
simulated effects that straddle 80%).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from simulation.designs import Design, Layout
from simulation.engine import CLUSTER, LEARNER, PERM, toy_reps
from simulation.rates import Rate, independent_rate

#: The rules a power curve is drawn for: each claim's primary test, and the secondary permutation.
POWER_RULES = (LEARNER, CLUSTER, PERM)
#: Noise sds of learner B's features the pilot tries (0: no effect).
PILOT_NOISE = (0.15, 0.3, 0.5, 0.8, 1.2, 2.0, 3.5)


@dataclass
class PowerResult:
    """What ``benchmark power`` prints for one design."""

    design: str
    key: dict
    ratio_scale: float
    reps: int
    null: dict = field(default_factory=dict)  # rule -> Rate under the toy learner null
    effects: list = field(default_factory=list)  # [{"target", "effect", "noise", "rates": {rule: Rate}}]
    mde: dict = field(default_factory=dict)  # rule -> effect at 80% power (NaN: not reached)
    mde_formula: dict = field(default_factory=dict)  # rule -> (t_crit + t_power) * mean SE, for comparison
    fold_sd: float = float("nan")  # mean sd of the fold-level differences under the null (the toy's scale)
    seeded: bool = False  # whether the seeds are CV repeats (else model seeds of deterministic toy learners)
    stored_factor: bool = False  # whether the corrected t's factor is the stored calibration's
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"design": self.design, "key": self.key, "ratio_scale": self.ratio_scale, "reps": self.reps,
                "null": {k: v.as_dict() for k, v in self.null.items()},
                "effects": [{**{k: v for k, v in e.items() if k != "rates"},
                             "rates": {r: x.as_dict() for r, x in e["rates"].items()}} for e in self.effects],
                "mde": self.mde, "mde_formula": self.mde_formula, "fold_sd": self.fold_sd, "seconds": self.seconds}


def effect_map(design: Design, layout: Layout, *, reps: int = 8, seed: int = 0, noise=PILOT_NOISE,
               metric: str = "pearson") -> tuple[np.ndarray, np.ndarray]:
    """Mean fold-level difference (A - B) caused by each noise sd of learner B, from ``reps`` pilot repetitions.

    Returns the noise sds and the effects, both increasing (a pilot mean that fails to
    increase is replaced by the running maximum, so the map can be inverted).
    """
    eff = []
    for s in noise:
        reps_s = toy_reps(design, layout, "degraded", reps, seed=seed + 7919, ratio_scale=1.0, n_resamples=0,
                          noise=s, metric=metric)
        eff.append(float(np.nanmean([r["_diff"] for r in reps_s])))
    return np.asarray(noise, dtype=float), np.maximum.accumulate(np.asarray(eff))


def noise_for(effect: float, noise: np.ndarray, effects: np.ndarray) -> float:
    """The noise sd whose pilot effect is ``effect`` (log-linear interpolation; clipped to the pilot's range)."""
    e = np.concatenate([[0.0], effects])
    s = np.concatenate([[noise[0] / 4], noise])
    return float(np.exp(np.interp(effect, e, np.log(s))))


def mde_from_curve(effects, power, target: float = 0.8) -> float:
    """The effect at ``target`` power on a simulated curve: linear in probit(power) between the points that
    straddle it; NaN when the curve never reaches it."""
    e = np.asarray(effects, dtype=float)
    p = np.clip(np.asarray(power, dtype=float), 1e-3, 1 - 1e-3)
    order = np.argsort(e)
    e, p = e[order], p[order]
    z, zt = stats.norm.ppf(p), stats.norm.ppf(target)
    above = np.flatnonzero(p >= target)
    if not above.size:
        return np.nan
    i = int(above[0])
    if i == 0:
        return float(e[0])
    # Interpolate between the last point below and the first point at or above the target.
    w = (zt - z[i - 1]) / (z[i] - z[i - 1]) if z[i] != z[i - 1] else 1.0
    return float(e[i - 1] + w * (e[i] - e[i - 1]))


def power_curve(design: Design, layout: Layout, *, ratio_scale: float, effects=(0.01, 0.02, 0.05), reps: int = 100,
                n_resamples: int = 199, seed: int = 0, extra: int = 3, pilot_reps: int = 8,
                metric: str = "pearson") -> PowerResult:
    """False-positive rate and power of each primary test on ``design``, and the MDE at 80% power.

    Parameters
    ----------
    design : Design
    layout : Layout
    ratio_scale : float
        The design's calibrated factor (the corrected t's n_test/n_train term).
    effects : tuple of float
        Expected fold-level differences to report power at.
    reps : int
        Repetitions per effect (and under the null).
    n_resamples : int
        Bootstrap resamples and permutations per repetition.
    extra : int
        Further effects simulated beyond the requested ones, doubling the largest, until
        each rule's power passes 80% (for the MDE).
    """
    from simulation.designs import design_key

    t0 = time.perf_counter()
    key = design_key(design, layout).as_dict()
    out = PowerResult(design.name, key, float(ratio_scale), int(reps))
    null = toy_reps(design, layout, "learner null", reps, seed=seed, ratio_scale=ratio_scale,
                    n_resamples=n_resamples, metric=metric, alternatives=False)
    out.null = _rates(null)
    out.fold_sd = float(np.nanmean([r.get("_fold_sd", np.nan) for r in null]))
    noise, pilot = effect_map(design, layout, reps=pilot_reps, seed=seed, metric=metric)
    targets = sorted(float(e) for e in effects)
    done: list = []

    def run(target: float) -> None:
        s = noise_for(target, noise, pilot)
        reps_e = toy_reps(design, layout, "effect", reps, seed=seed + 1, ratio_scale=ratio_scale,
                          n_resamples=n_resamples, noise=s, metric=metric, alternatives=False)
        # The effect is the pilot's (precise); the repetitions' own mean carries the spread of random subsets.
        done.append({"target": target, "effect": float(np.interp(np.log(s), np.log(np.r_[noise[0] / 4, noise]), np.r_[0.0, pilot])),
                     "noise": s,
                     "realised": float(np.nanmean([r["_diff"] for r in reps_e])),
                     "rates": _rates(reps_e), "requested": target in targets,
                     "se": {LEARNER: float(np.nanmean([r.get("_se", np.nan) for r in reps_e])),
                            CLUSTER: float(np.nanmean([r.get("_cluster_se", np.nan) for r in reps_e]))},
                     "df": float(np.nanmean([r.get("_df", np.nan) for r in reps_e]))})

    for t in targets:
        run(t)
    nxt = max(targets)
    for _ in range(extra):
        if all(max((e["rates"].get(r, Rate(0, 0, 0, 0, "")).rate for e in done), default=0) >= 0.8
               for r in POWER_RULES if r in out.null):
            break
        nxt = min(2.0 * nxt, float(pilot[-1]))
        if any(abs(e["target"] - nxt) < 1e-9 for e in done):
            break
        run(nxt)
    out.effects = sorted(done, key=lambda e: e["effect"])
    for rule in POWER_RULES:
        pts = [(e["effect"], e["rates"][rule].rate) for e in out.effects if rule in e["rates"]]
        if pts:
            out.mde[rule] = mde_from_curve(*zip(*pts, strict=True))
    from reports.claims import bootstrap_t_se_factor, detectable_effect

    G = key["n_units"]
    for rule in (LEARNER, CLUSTER):
        se = np.nanmean([e["se"][rule] for e in out.effects])
        if rule == LEARNER:
            out.mde_formula[rule] = detectable_effect(se, np.nanmean([e["df"] for e in out.effects]))
        else:
            out.mde_formula[rule] = detectable_effect(bootstrap_t_se_factor(G) * se, G - 1.0)
    out.seconds = time.perf_counter() - t0
    return out


def _rates(reps: list[dict]) -> dict:
    out = {}
    for rule in POWER_RULES:
        vals = [r[rule] for r in reps if r.get(rule) is not None]
        if vals:
            out[rule] = independent_rate(vals)
    return out


#: ``--metric`` names -> the report's metric of the fold-level mean.
METRICS = {"fold_r": "pearson", "fold_r2": "r2"}


def run_power(split: str, *, seeds: int | None = None, n_splits: int | None = None, effects=(0.01, 0.02, 0.05),
              metric: str = "fold_r", reps: int = 100, n_resamples: int = 199, seed: int = 0, data_dir=None,
              fit_reps: int = 300, layout: Layout | None = None) -> PowerResult:
    """``benchmark power``: the false-positive rate, power and MDE of ``split``'s real design.

    The corrected t's factor is the stored one (reports/calibration.json) when this
    design's key is the one calibrated there (same folds, repeats and units), else it
    is fitted here on ``fit_reps`` toy learner-null data sets (no resampling). ``layout``
    replaces the data's real segment layout (tests).

    Raises
    ------
    ConfigError
        A split the calibration cannot simulate, a bad metric, effect, seed count or rep count.
    """
    from benchmark.errors import ConfigError
    from reports.calibrated import stored_design
    from simulation.designs import DESIGNS, design_key, real_layout
    from simulation.engine import fit_scale

    if split not in DESIGNS:
        raise ConfigError(f"benchmark power simulates the designs {', '.join(DESIGNS)}; got split {split!r}")
    if metric not in METRICS:
        raise ConfigError(f"--metric {metric!r}; use one of {', '.join(METRICS)}")
    effects = tuple(float(e) for e in effects)
    if not effects or any(not np.isfinite(e) or e <= 0 or e >= 1 for e in effects):
        raise ConfigError(f"--effect {effects!r}: give differences of the fold-level metric in (0, 1), e.g. 0.01,0.02")
    if int(reps) < 10:
        raise ConfigError(f"--reps {reps!r}: at least 10 repetitions per effect (100 is the default)")
    design = DESIGNS[split].with_splits(n_splits)
    if seeds is not None:
        if int(seeds) < 1:
            raise ConfigError(f"--seeds {seeds!r} must be >= 1")
        design = design.with_seeds(int(seeds))
    if layout is None:
        layout = real_layout(data_dir)
    if layout is None:
        raise ConfigError("benchmark power simulates the data's real segment layout: PercePiano was not found; "
                          "pass --data-dir")
    if not design.partition:
        raise ConfigError(f"split {split!r} scores one fixed test set of {design_key(design, layout).n_units} "
                          "units: too few for any group-level test, so there is no power to simulate")
    key = design_key(design, layout, seeds)
    stored = stored_design(split)
    m = METRICS[metric]
    same = bool(stored) and all(stored["key"].get(k) == v for k, v in key.as_dict().items()
                                if k != "n_seeds" or design.seeded)
    if same and m == "pearson":
        scale = float(stored["ratio_scale"])
    else:
        first = toy_reps(design, layout, "learner null", fit_reps, seed=seed + 424242, ratio_scale=1.0,
                         n_resamples=0, metric=m)
        scale = fit_scale(first, design)
    res = power_curve(design, layout, ratio_scale=scale, effects=effects, reps=reps, n_resamples=n_resamples,
                      seed=seed, metric=m)
    res.key = key.as_dict()
    res.seeded = design.seeded
    res.stored_factor = same and m == "pearson"
    return res


def format_power(res: PowerResult, metric: str = "fold_r") -> str:
    """The text ``benchmark power`` prints."""
    k = res.key
    lines = [f"design {k['split']}: {k['n_folds']} folds x {k['n_seeds']} seeds, {k['n_units']} units; "
             f"{res.reps} simulated data sets per row; corrected t factor {res.ratio_scale:.3f} "
             + ("(reports/calibration.json's, this design's key)" if res.stored_factor
                else "(fitted here: this design is not the one stored in reports/calibration.json)"),
             f"rows: the false-positive rate (toy learner null), then power at each expected difference of {metric} "
             "(95% Wilson intervals)", ""]
    width = max(len(r) for r in POWER_RULES) + 2
    lines.append("effect".ljust(10) + "".join(r.ljust(width + 16) for r in POWER_RULES))
    lines.append("0 (null)".ljust(10) + "".join(res.null[r].text().ljust(width + 16) if r in res.null else "-"
                                                for r in POWER_RULES))
    for e in res.effects:
        tag = "" if e.get("requested") else " *"
        lines.append(f"+{e['effect']:.3f}{tag}".ljust(10)
                     + "".join(e["rates"][r].text().ljust(width + 16) if r in e["rates"] else "-" for r in POWER_RULES))
    lines.append("")
    for r in POWER_RULES:
        mde = res.mde.get(r, np.nan)
        text = f"+{mde:.3f}" if np.isfinite(mde) else "not reached at the effects simulated"
        lines.append(f"minimum detectable effect at 80% power, {r}: {text}")
    ratio = res.mde.get(LEARNER, np.nan) / res.fold_sd if res.fold_sd > 0 else np.nan
    lines += ["", "* simulated beyond the requested effects to find the 80% point.",
              "The learners are docs/calibration.md's toy ridge learners on this design's real layout; their fold-level "
              f"differences have sd {res.fold_sd:.3f} under the null. Power scales with that spread: learners whose "
              "fold-level differences spread less (a run's 'fold sd' of the difference) detect proportionally smaller "
              f"effects (learner t MDE about {ratio:.2f} x that sd on this design). A run's report states the "
              "detectable effect from its own standard error beside each non-significant difference.",
              *([] if res.seeded else ["The toy learners are deterministic: their model seeds change nothing here. "
                                       "A stochastic learner's seed variance adds to the learner t's (its runs need "
                                       "the model seeds docs/calibration.md gives per family), so its power is "
                                       "lower."]),
              f"{res.seconds:.0f} s"]
    return "\n".join(lines)

"""A run's model pairs, both claims of each, and their adjustment over a table's family.

The glue between a run (:class:`reports.rundata.RunData`) and the claims
(:mod:`reports.claims`): which design key the run has (:func:`run_key`), which
learner family each model is (:func:`model_family`), each pair's scored cells
and both claims (:func:`pair_claims_of`, computed once per run), and the
adjusted p-values with the interval levels that agree with them
(:func:`adjust_family`).
"""

from __future__ import annotations

import numpy as np

from reports import calibrated
from reports.calibrated import RunKey
from reports.claims import CLAIMS, PairClaims, compatible_levels, pair_claims
from reports.multitest import adjust_pvalues
from reports.rundata import RunData, too_few
from reports.units import UnitComparison, UnitScorer, compare_units, pair_cells

#: The learner families the calibration knows.
FAMILIES = ("deterministic", "tabular", "neural")


def run_key(run: RunData, seeds: list[int]) -> RunKey:
    """The design key of ``run`` scored on ``seeds``: split, folds per seed, seeds, units."""
    design = run.design
    n_folds = int(run.n_folds[seeds[0]]) if seeds else 0
    return RunKey(run.split, n_folds, len(seeds), int(design.n_units), bool(design.seeded))


def model_family(run: RunData, model: str, seeds: list[int], families: dict | None) -> str | None:
    """``model``'s learner family: ``deterministic`` when its predictions are identical across two or more seeds
    that share the folds, or when ``families`` (registry metadata the caller passes) says so; else what
    ``families`` says (``tabular``, ``neural``), or None (unknown: the strictest family applies)."""
    given = (families or {}).get(model)
    if given == "deterministic":
        return given
    if len(seeds) >= 2 and not run.design.seeded and run.partition:
        _, _, stack, _ = run.stack(model, seeds)
        if np.allclose(stack, stack[:1], rtol=0.0, atol=1e-12 * max(1.0, float(np.nanmax(np.abs(stack))))):
            return "deterministic"
    return given if given in FAMILIES else None


def pair_scorer(run: RunData, model: str, base: str, metric: str, seeds: list[int]) -> UnitScorer:
    """The :class:`reports.units.UnitScorer` of ``model`` (A) against ``base`` (B) on ``seeds`` (once per run)."""
    return run.memo(("scorer", model, base, metric, tuple(seeds)),
                    lambda: UnitScorer(pair_cells(run, model, base, seeds), metric))


def compare_pair(run: RunData, model: str, base: str, metric: str, seeds: list[int], *, n_resamples: int,
                 seed: int, confidence: float) -> tuple[UnitComparison, list[UnitComparison]]:
    """``model - base`` on the fold-level mean metric, targets averaged and per target (once per run).

    See :mod:`reports.units`: whole units of the split are resampled and swapped;
    seeds are averaged within fold unless they change the folds.
    """
    def compute():
        return compare_units(pair_scorer(run, model, base, metric, seeds), seeded=run.design.seeded,
                             n_resamples=n_resamples, confidence=confidence, seed=seed)

    return run.memo(("compare", model, base, metric, tuple(seeds), int(n_resamples), int(seed), float(confidence)),
                    compute)


def pair_claims_of(run: RunData, model: str, base: str, metric: str, seeds: list[int], *, families: dict | None,
                   n_resamples: int, seed: int, confidence: float) -> tuple[PairClaims, list[PairClaims]]:
    """Both claims of ``model - base``: targets averaged and per target (once per run).

    Raises
    ------
    ConfigError, DataError
        As :func:`compare_pair`.
    """
    def compute():
        overall, per_t = compare_pair(run, model, base, metric, seeds, n_resamples=n_resamples, seed=seed,
                                      confidence=confidence)
        scorer = pair_scorer(run, model, base, metric, seeds)
        key = run_key(run, seeds)
        fams = (model_family(run, model, seeds, families), model_family(run, base, seeds, families))
        few = too_few(overall.n_units)
        return (pair_claims(scorer, overall, key, partition=run.partition, families=fams, few_text=few),
                [pair_claims(scorer, c, key, partition=run.partition, families=fams, target=j, few_text=few)
                 for j, c in enumerate(per_t)])

    fam_key = tuple(sorted((families or {}).items()))
    return run.memo(("claims", model, base, metric, tuple(seeds), int(n_resamples), int(seed), float(confidence),
                     fam_key), compute)


def adjust_family(p: np.ndarray, correction: str) -> tuple[np.ndarray, np.ndarray]:
    """Adjusted p-values of one family (any shape; NaN left out) and each row's compatible interval level."""
    p = np.asarray(p, dtype=float)
    return adjust_pvalues(p, correction)[0], compatible_levels(p, correction)


def calibration_note(run: RunData, seeds: list[int], families: dict | None = None) -> str:
    """What docs/calibration.md says of this run's design, claim by claim."""
    return key_calibration_note(run_key(run, seeds), families)


def key_calibration_note(key: RunKey, families: dict | None = None) -> str:
    """What docs/calibration.md says of the design ``key``, claim by claim (``families``: model -> family)."""
    entry, _ = calibrated.lookup(key)
    lines = [f"Design {key.label()}."]
    pred = calibrated.predictor_withheld(key)
    lines.append(f"Predictor claim ({CLAIMS['predictor']}): cluster bootstrap t, "
                 + ("calibrated on this design (docs/calibration.md: false-positive rate's 95% interval inside "
                    "[0.02, 0.08] under the sharp and the weak predictor null)." if not pred else pred + "."))
    if entry is None:
        lines.append(f"Learner claim ({CLAIMS['learner']}): {calibrated.learner_withheld(key, (None, None))[0]}.")
        return " ".join(lines)
    seeds_need = entry.get("learner", {}).get("min_seeds", {})
    need = "; ".join(f"{f}: " + (f">= {k} model seed{'s' if k != 1 else ''}" if k is not None else "not calibrated")
                     for f, k in seeds_need.items())
    fams = sorted({f for f in (families or {}).values() if f})
    lines.append(f"Learner claim ({CLAIMS['learner']}): learner t (corrected resampled t with this design's factor "
                 f"{entry.get('ratio_scale', float('nan')):.3f}"
                 + ("" if key.seeded else ", plus the between-seed variance of each model") + "); calibrated by "
                 f"family: {need or 'none'}" + (f" (this run's families: {', '.join(fams)})" if fams else "") + ".")
    return " ".join(lines)

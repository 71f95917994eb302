"""What docs/calibration.md found calibrated, keyed by design: read from ``reports/calibration.json``.

That file is written by ``scripts/calibration.py`` (the ``simulation``
package): for every simulated design its key (split, folds per seed, seeds,
units), the corrected t's fitted factor, and per claim whether its primary
test is calibrated:

* the **learner claim** (``learner t``): calibrated for deterministic learners
  on the design, and, per learner family (``tabular``, ``neural``), from how
  many model seeds per learner on;
* the **predictor claim** (``cluster bootstrap t``): calibrated or not.

A run is looked up by its own :class:`RunKey`. A stored entry applies only
when the split, the fold count, the unit count and (where seeds change the
folds) the number of CV repeats are the ones simulated; otherwise the cells
say ``not calibrated for this design`` and point to ``benchmark power``.
Where seeds do not change the folds, the number of model seeds decides the
learner claim: fewer than the family needs -> ``needs >= k model seeds``;
more than the calibration simulated -> not calibrated for this design.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PATH = Path(__file__).with_name("calibration.json")
#: Where the cells of an uncalibrated design point.
HOW = "run `benchmark power --split {split}` or scripts/calibration.py for it"


def _read() -> dict:
    if not PATH.is_file():
        return {}
    data = json.loads(PATH.read_text())
    return data if data.get("version") == 2 else {}


#: The stored calibration (``designs``: split -> entry); tests may replace it.
STORE = _read()


@dataclass(frozen=True)
class RunKey:
    """A run's design as the calibration keys it.

    ``n_seeds`` counts CV repeats where seeds change the folds, and each model's
    seeds otherwise (model seeds: the folds stay the same).
    """

    split: str
    n_folds: int
    n_seeds: int
    n_units: int
    seeded: bool

    def label(self) -> str:
        kind = ("CV repeat" if self.seeded else "model seed") + ("s" if self.n_seeds != 1 else "")
        return f"{self.split}, {self.n_folds} folds, {self.n_seeds} {kind}, {self.n_units} units"


def stored_design(split: str) -> dict | None:
    """The stored entry of ``split``'s simulated design, or None."""
    return STORE.get("designs", {}).get(split)


def lookup(key: RunKey) -> tuple[dict | None, str]:
    """The stored entry that applies to ``key``, or None with the reason."""
    entry = stored_design(key.split)
    if entry is None:
        return None, f"not calibrated for this design ({key.split} was not simulated; {HOW.format(split=key.split)})"
    k = entry["key"]
    same = k["n_folds"] == key.n_folds and k["n_units"] == key.n_units
    if key.seeded:
        same = same and k["n_seeds"] == key.n_seeds
    if not same:
        return None, (f"not calibrated for this design ({key.label()}; simulated: {k['n_folds']} folds, "
                      f"{k['n_seeds']} {'CV repeats' if key.seeded else 'seed'}, {k['n_units']} units; "
                      f"{HOW.format(split=key.split)})")
    return entry, ""


def ratio_scale(key: RunKey) -> float | None:
    """The corrected t's fitted factor for ``key``'s design; None when no stored calibration applies."""
    entry, _ = lookup(key)
    return None if entry is None else float(entry["ratio_scale"])


def predictor_withheld(key: RunKey) -> str:
    """The text shown instead of the predictor claim's numbers ("" = printed)."""
    entry, why = lookup(key)
    if entry is None:
        return why
    if not entry.get("predictor", {}).get("calibrated"):
        return f"not calibrated for this design ({key.split}: the cluster interval's false-positive rate is out of range)"
    return ""


def learner_withheld(key: RunKey, families: tuple[str | None, str | None]) -> tuple[str, int]:
    """The text shown instead of the learner claim's numbers ("" = printed), and the seeds per model it needs.

    ``families`` names each model's learner family: ``deterministic`` (needs one seed),
    ``tabular``, ``neural``, or None when the run does not say: then the strictest
    family simulated on the design applies.
    """
    entry, why = lookup(key)
    if entry is None:
        return why, 1
    learner = entry.get("learner", {})
    if not learner.get("calibrated"):
        return f"not calibrated for this design ({key.split}: the learner t is out of range even for deterministic learners)", 1
    need = 1
    seeds = learner.get("min_seeds", {})
    for fam in families:
        if fam == "deterministic":
            continue
        if fam is None:  # unknown: the strictest simulated family
            known = [f for f in seeds if f != "deterministic"]
            if not known:
                return (f"not calibrated for this design (no stochastic learner null simulated on {key.split}; "
                        f"{HOW.format(split=key.split)})"), 1
            fam = max(known, key=lambda f: (seeds[f] is None, seeds[f] or 0))
        k = seeds.get(fam)
        if k is None:
            return (f"not calibrated for this design (no {fam} learner null simulated or calibrated on {key.split}; "
                    f"{HOW.format(split=key.split)})"), 1
        need = max(need, int(k))
        top = learner.get("max_seeds", {}).get(fam)
        if not key.seeded and top is not None and key.n_seeds > int(top):
            return (f"not calibrated for this design ({key.n_seeds} model seeds; {fam} learners simulated up to "
                    f"{top})"), need
    if not key.seeded and key.n_seeds < need:
        return f"needs >= {need} model seeds", need
    return "", need


def mde(split: str) -> dict:
    """The simulated minimum detectable effects of ``split``'s design (toy learners), by rule."""
    entry = stored_design(split) or {}
    return dict(entry.get("mde", {}))

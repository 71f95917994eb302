"""Which printed tests are calibrated on which split: read from ``reports/calibration.json``.

That file is written by ``scripts/calibration.py`` (with ``docs/calibration.md``):
for every split design it simulated, the tests whose false-positive rate at
alpha 0.05 fell in [0.03, 0.07], and under which null.

A test that the calibration found *out of range* on a split is not printed as a
number for that split: :func:`withheld` gives the text its cells show instead
(``not calibrated for excerpt``). A split the calibration did not simulate
keeps its numbers, with a note that their calibration is unknown.
"""

from __future__ import annotations

import json
from pathlib import Path

PATH = Path(__file__).with_name("calibration.json")

#: The tests the report prints, as scripts/calibration.py names them.
TESTS = ("corrected t (NB)", "cluster bootstrap CI", "Bayesian correlated t", "unit-swap permutation")


def _read() -> dict:
    if not PATH.is_file():
        return {}
    return json.loads(PATH.read_text())


def load() -> dict[str, dict[str, str]]:
    """``{split: {test: what it is calibrated for}}``; empty when the calibration was never run."""
    return _read().get("calibrated", {})


CALIBRATED = load()


def ratio_scale(split: str) -> float:
    """The corrected t-test's calibrated factor for ``split`` (1.0, Nadeau-Bengio's, when not calibrated)."""
    return float(_read().get("ratio_scale", {}).get(split, 1.0))


def covered(split: str) -> bool:
    """Whether docs/calibration.md simulated ``split``'s design."""
    return split in CALIBRATED


def withheld(split: str, test: str) -> str:
    """The text shown instead of ``test``'s number on ``split``, or "" when the number may be printed.

    Raises
    ------
    KeyError
        ``test`` is not one of :data:`TESTS`.
    """
    if test not in TESTS:
        raise KeyError(f"unknown test {test!r}; use one of {TESTS}")
    if not covered(split) or test in CALIBRATED[split]:
        return ""
    return f"not calibrated for {split}"

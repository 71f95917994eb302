"""Which printed tests are calibrated on which split: read from ``reports/calibration.json``.

That file is written by ``scripts/calibration.py`` (with ``docs/calibration.md``):
for every split design it simulated, the tests whose false-positive rate at
alpha 0.05 fell in [0.03, 0.07], and under which null.
"""

from __future__ import annotations

import json
from pathlib import Path

PATH = Path(__file__).with_name("calibration.json")


def load() -> dict[str, dict[str, str]]:
    """``{split: {test: what it is calibrated for}}``; empty when the calibration was never run."""
    if not PATH.is_file():
        return {}
    return json.loads(PATH.read_text()).get("calibrated", {})


CALIBRATED = load()


def ratio_scale(split: str) -> float:
    """The corrected t-test's calibrated factor for ``split`` (1.0, Nadeau-Bengio's, when not calibrated)."""
    if not PATH.is_file():
        return 1.0
    return float(json.loads(PATH.read_text()).get("ratio_scale", {}).get(split, 1.0))

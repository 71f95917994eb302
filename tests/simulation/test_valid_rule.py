"""The learner claim under a real learner's bank null needs a *valid* test (its false-positive rate's interval
ends at or below the band's upper edge: calibrated or conservative), the fold part a calibrated one."""

from simulation.calibrate import min_seeds
from simulation.rates import BAND, Rate


def _bank(rates):
    return {"rates": {k: {"learner t": Rate(r, lo, hi, 100, "jackknife")} for k, (r, lo, hi) in rates.items()}}


def test_conservative_counts_as_valid_and_liberal_or_uncertain_above_does_not():
    conservative = Rate(0.033, 0.019, 0.048, 78, "jackknife")
    assert conservative.valid and not conservative.inside and conservative.status == "uncertain"
    assert not Rate(0.06, 0.03, 0.091, 8, "jackknife").valid  # might exceed the band: not valid
    assert Rate(0.05, 0.03, BAND[1], 8, "x").valid
    # the forest's lopo bank as simulated: conservative at 2, 3, 5 seeds -> from 2 seeds
    assert min_seeds(_bank({2: (0.033, 0.019, 0.048), 3: (0.03, 0.015, 0.046), 5: (0.036, 0.014, 0.058)}),
                     seeded=False) == 2
    # the small AST's: the interval at 2 seeds reaches 0.091 -> not at 2; at 3 it reaches 0.2 -> never
    assert min_seeds(_bank({2: (0.024, 0.0, 0.091), 3: (0.05, 0.0, 0.2)}), seeded=False) is None
    # valid from 3 on only
    assert min_seeds(_bank({2: (0.09, 0.06, 0.12), 3: (0.04, 0.02, 0.07), 5: (0.03, 0.01, 0.05)}), seeded=False) == 3
    # a seeded design has one k: valid or not
    assert min_seeds(_bank({3: (0.03, 0.01, 0.05)}), seeded=True) == 3
    assert min_seeds(_bank({3: (0.07, 0.05, 0.10)}), seeded=True) is None

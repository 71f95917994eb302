"""The simulation engine behind docs/calibration.md, ``benchmark power`` and the report's calibration.

* :mod:`simulation.designs`: the real split designs (segment layout, folds, units).
* :mod:`simulation.toy`: simulated data sets and learners (the toy learner null, the sharp and
  the weak predictor nulls, known effects).
* :mod:`simulation.bank`: banks of out-of-fold predictions of the harness's own randomized
  learners (one file per model seed, data fixed), from which learner nulls are formed.
* :mod:`simulation.rates`: rejection rates with their 95% intervals (Wilson for independent
  repetitions, a jackknife over seeds for pairs formed from a bank).
* :mod:`simulation.engine`: every printed test under every null, per design; what is calibrated.
* :mod:`simulation.power`: false-positive rate, power curve and minimum detectable effect of a design.

Nothing here is imported by the runner or the CLI at start-up; torch is only touched by a neural
bank, through the model registry.
"""

"""The benchmark's engine and commands, over a small core every package may use.

* **core** (imported by ``features``, ``splits``, ``models`` and ``reports``): ``errors`` (one
  ``BenchmarkError``), ``registry`` (the one registry of models, splits and feature sets), ``dataset``
  (the PercePiano loader) and ``raters`` (per-rater answer sheets), ``metrics`` (the one Pearson r and
  the one R^2; a new metric's formula goes here), ``store`` (the run-directory layout), ``hashing``,
  ``provenance``.
* **engine**: ``jobs`` (the plan), ``assembly`` (what a job reads), ``execute`` (fitting one job),
  ``backends``, ``runner``, ``study``, ``fonts``, ``refit`` (a finished run's jobs rebuilt from its
  directory), ``importance``, ``explain``.
* **commands**: ``cli`` (the parser and the one error boundary), and one module per command group,
  imported when its command runs: ``cli_run``, ``cli_report`` (report, compare, ceiling, importance),
  ``cli_data`` (list, splits, features, render, cache), ``cli_ssast`` (pretrain, explain).

Nothing below the engine imports it (``tests/test_layers.py``).
"""

"""The benchmark's engine and commands, over a small core every package may use.

* **core** (imported by ``features``, ``splits``, ``models`` and ``reports``): ``errors`` (one
  ``BenchmarkError``), ``registry`` (the one registry of models, splits and feature sets), ``dataset``
  (the PercePiano loader) and ``raters`` (per-rater answer sheets), ``metrics`` (the one Pearson r and
  the one R^2; a new metric's formula goes here), ``store`` (the run-directory layout), ``hashing``,
  ``provenance``.
* **engine**: ``jobs`` (the plan), ``assembly`` (what a job reads), ``execute`` (fitting one job),
  ``backends``, ``runner``, ``study``, ``fonts``, ``refit`` (a finished run's jobs rebuilt from its
  directory), ``importance``, ``explain``.
* **the Python API**: ``api`` (:func:`benchmark.evaluate`, also ``benchmark.evaluate``): the same
  config, runner, store and cache as ``benchmark run``, for a script.
* **commands**: ``cli`` (the parser and the one error boundary), and one module per command group,
  imported when its command runs: ``cli_run``, ``cli_report`` (report, compare, ceiling, importance),
  ``cli_data`` (list, splits, features, render, cache), ``cli_ssast`` (pretrain, explain).

Nothing below the engine imports it (``tests/test_layers.py``).
"""

__all__ = ["Evaluation", "evaluate"]


def __getattr__(name: str):
    # ``benchmark.evaluate``: the Python API (benchmark.api), imported on first use so that importing a core
    # module (benchmark.errors, ...) stays light.
    if name in __all__:
        from benchmark import api

        return getattr(api, name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")

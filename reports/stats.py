"""Statistics core of the benchmark: one import point for every test and interval.

Pure functions on numpy arrays and pandas frames, each in the module named:

* :mod:`reports.paired` - paired tests over matched (seed, fold) units
  (:func:`paired_ttest`, :func:`corrected_resampled_ttest`,
  :func:`wilcoxon_test`, :func:`five_by_two_cv_ttest`,
  :func:`bayesian_correlated_ttest`) and :func:`effect_size`; results are
  :class:`TestResult` / :class:`BayesianTestResult` / :class:`EffectSize`.
* :mod:`reports.permutation` - :func:`permutation_test_predictions` on
  out-of-fold predictions, one unit per segment.
* :mod:`reports.bootstrap` - :func:`bootstrap_ci` over segments or whole
  groups (performers, pieces) and :func:`paired_bootstrap_diff`.
* :mod:`reports.multitest` - :func:`adjust_pvalues` (Holm, Benjamini-Hochberg).
* :mod:`reports.ranking` - :func:`friedman_nemenyi`, :func:`nemenyi_cd`,
  :func:`nemenyi_q_alpha` (Demsar 2006).

The noise ceiling of the targets is in :mod:`reports.ceiling`.
"""

from reports.bootstrap import BOOTSTRAP_METHODS, BootstrapResult, bootstrap_ci, paired_bootstrap_diff
from reports.multitest import PVALUE_METHODS, adjust_pvalues
from reports.paired import (
    NAN_POLICIES,
    BayesianTestResult,
    EffectSize,
    TestResult,
    bayesian_correlated_ttest,
    corrected_resampled_ttest,
    effect_size,
    five_by_two_cv_ttest,
    paired_ttest,
    wilcoxon_test,
)
from reports.permutation import permutation_test_predictions
from reports.ranking import FriedmanNemenyiResult, friedman_nemenyi, nemenyi_cd, nemenyi_q_alpha

__all__ = [
    "BOOTSTRAP_METHODS",
    "NAN_POLICIES",
    "PVALUE_METHODS",
    "BayesianTestResult",
    "BootstrapResult",
    "EffectSize",
    "FriedmanNemenyiResult",
    "TestResult",
    "adjust_pvalues",
    "bayesian_correlated_ttest",
    "bootstrap_ci",
    "corrected_resampled_ttest",
    "effect_size",
    "five_by_two_cv_ttest",
    "friedman_nemenyi",
    "nemenyi_cd",
    "nemenyi_q_alpha",
    "paired_bootstrap_diff",
    "paired_ttest",
    "permutation_test_predictions",
    "wilcoxon_test",
]

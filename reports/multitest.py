"""Multiple-comparison adjustment of p-values."""

from __future__ import annotations

import numpy as np

from benchmark.errors import ConfigError

PVALUE_METHODS = ("holm", "fdr_bh", "bonferroni", "fdr_by")


def adjust_pvalues(p, method: str = "holm", *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Adjust p-values for multiple comparisons (statsmodels ``multipletests``).

    ``"holm"`` controls the family-wise error rate under any dependence
    (Holm 1979); ``"fdr_bh"`` controls the false discovery rate under
    independence or positive dependence (Benjamini & Hochberg 1995);
    ``"bonferroni"`` and ``"fdr_by"`` (any dependence) are also accepted. The
    method is always passed explicitly: statsmodels' own default is Holm-Sidak.

    Parameters
    ----------
    p : array-like of float in [0, 1], any shape
        NaN entries (e.g. an untestable comparison) are left out of the family
        and come back as NaN, not rejected.
    method : {"holm", "fdr_bh", "bonferroni", "fdr_by"}
    alpha : float

    Returns
    -------
    p_adjusted : ndarray of float, same shape as ``p``
    reject : ndarray of bool, same shape as ``p``

    Raises
    ------
    ConfigError
        Unknown method, p outside [0, 1], bad alpha.
    """
    from statsmodels.stats.multitest import multipletests

    if method not in PVALUE_METHODS:
        raise ConfigError(f"unknown p-value adjustment {method!r}; use one of {PVALUE_METHODS}")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha={alpha!r} must lie strictly between 0 and 1")
    p = np.asarray(p, dtype=float)
    flat = p.ravel()
    ok = ~np.isnan(flat)
    if np.any((flat[ok] < 0.0) | (flat[ok] > 1.0)):
        raise ConfigError("p-values must lie in [0, 1]")
    adjusted = np.full(flat.shape, np.nan)
    reject = np.zeros(flat.shape, dtype=bool)
    if ok.any():
        rej, padj, _, _ = multipletests(flat[ok], alpha=alpha, method=method)
        adjusted[ok] = padj
        reject[ok] = rej
    return adjusted.reshape(p.shape), reject.reshape(p.shape)

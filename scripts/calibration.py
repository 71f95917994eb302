"""Calibration of the paired tests under a true null: naive vs corrected t-test.

Two "models" are the same learner with different seeds: ridge regression on
a random subset of the features, the subset drawn from the seed. All features
are equally informative in the population, so any two subsets have the same
expected error, and H0 (equal expected performance) holds. On one finite
data set, though, one subset may fit better by chance; that difference is
shared by every fold of a repeated cross-validation of the same data, which
is exactly the correlation the naive paired t-test ignores (Nadeau & Bengio
2003; Bouckaert & Frank 2004).

Each repetition draws a fresh grouped data set (performers with random
intercepts and shifted features), runs r repeats of a shuffled GroupKFold,
scores each fold by Pearson r, and tests the r * k paired fold scores. The
false-positive rate is the share of repetitions with p < alpha.

Usage::

    .venv/bin/python scripts/calibration.py --out docs/calibration.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from reports.stats import corrected_resampled_ttest, paired_ttest, wilcoxon_test  # noqa: E402


class SubspaceRidge:
    """Ridge on ``n_features`` columns drawn once from ``random_state``."""

    def __init__(self, n_features: int = 8, alpha: float = 1.0, random_state: int = 0):
        self.n_features = n_features
        self.alpha = alpha
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> SubspaceRidge:
        rng = np.random.default_rng(self.random_state)
        self.columns_ = np.sort(rng.choice(X.shape[1], size=self.n_features, replace=False))
        self.model_ = Ridge(alpha=self.alpha).fit(X[:, self.columns_], y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X[:, self.columns_])


def make_grouped_data(rng: np.random.Generator, n_groups: int, per_group: int, n_features: int):
    """Performers with random feature shifts and rating intercepts; all features equally useful."""
    groups = np.repeat(np.arange(n_groups), per_group)
    X = rng.normal(size=(groups.size, n_features)) + 0.5 * rng.normal(size=(n_groups, n_features))[groups]
    beta = rng.choice([-1.0, 1.0], size=n_features) / np.sqrt(n_features)
    y = X @ beta + 0.5 * rng.normal(size=n_groups)[groups] + rng.normal(size=groups.size)
    return X, y, groups


def one_repetition(rep: int, *, n_groups, per_group, n_features, subset, n_repeats, n_folds, seed):
    """Fold scores of the two seeds on one fresh data set; returns (a, b, n_train, n_test)."""
    rng = np.random.default_rng([seed, rep])
    X, y, groups = make_grouped_data(rng, n_groups, per_group, n_features)
    a, b, n_train, n_test = [], [], [], []
    for r in range(n_repeats):
        cv = GroupKFold(n_splits=n_folds, shuffle=True, random_state=r)
        for train, test in cv.split(X, y, groups):
            for scores, model_seed in ((a, 0), (b, 1)):
                pred = SubspaceRidge(subset, random_state=model_seed).fit(X[train], y[train]).predict(X[test])
                scores.append(np.corrcoef(pred, y[test])[0, 1])
            n_train.append(train.size)
            n_test.append(test.size)
    return np.array(a), np.array(b), np.array(n_train), np.array(n_test)


def simulate(
    n_reps: int = 200,
    *,
    n_groups: int = 20,
    per_group: int = 15,
    n_features: int = 20,
    subset: int = 8,
    n_repeats: int = 10,
    n_folds: int = 10,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """Run the null simulation; return rejection rates and the settings."""
    if n_reps < 1:
        raise ValueError(f"n_reps={n_reps} must be >= 1")
    kw = dict(
        n_groups=n_groups,
        per_group=per_group,
        n_features=n_features,
        subset=subset,
        n_repeats=n_repeats,
        n_folds=n_folds,
        seed=seed,
    )
    p = {"naive paired t-test": [], "corrected resampled t-test": [], "Wilcoxon signed-rank": []}
    diffs = []
    for rep in range(n_reps):
        a, b, n_train, n_test = one_repetition(rep, **kw)
        p["naive paired t-test"].append(paired_ttest(a, b).pvalue)
        p["corrected resampled t-test"].append(corrected_resampled_ttest(a, b, n_train, n_test).pvalue)
        p["Wilcoxon signed-rank"].append(wilcoxon_test(a, b).pvalue)
        diffs.append(float(np.mean(a - b)))
        ratio = float(np.mean(n_test) / np.mean(n_train))
    rates = {name: float(np.mean(np.asarray(v) < alpha)) for name, v in p.items()}
    return {"rates": rates, "pvalues": p, "mean_diffs": diffs, "n_reps": n_reps, "alpha": alpha, "ratio": ratio, **kw}


def _wilson(rate: float, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def to_markdown(res: dict, seconds: float, command: str) -> str:
    n = res["n_reps"]
    lines = [
        "# Calibration of the paired tests under a true null",
        "",
        "Generated by `scripts/calibration.py`; rerun with:",
        "",
        "```",
        command,
        "```",
        "",
        "Two models that are the same learner with different seeds (ridge on a random "
        f"subset of {res['subset']} of {res['n_features']} equally informative features) are compared on "
        f"{n} freshly drawn grouped data sets ({res['n_groups']} performers x {res['per_group']} segments, "
        "random performer intercepts and feature shifts), each evaluated by "
        f"{res['n_repeats']} repeats of shuffled GroupKFold({res['n_folds']}), "
        f"J = {res['n_repeats'] * res['n_folds']} paired Pearson-r fold scores per data set. "
        "H0 is true, so a calibrated test rejects in "
        f"{res['alpha']:.0%} of data sets (mean n_test/n_train = {res['ratio']:.4f}).",
        "",
        f"| test | false-positive rate at alpha = {res['alpha']} | 95% Wilson CI |",
        "|---|---|---|",
    ]
    for name, rate in res["rates"].items():
        lo, hi = _wilson(rate, n)
        lines.append(f"| {name} | {rate:.3f} | [{lo:.3f}, {hi:.3f}] |")
    lines += [
        "",
        "The naive tests treat the J overlapping folds as independent; the corrected "
        "resampled t-test (Nadeau & Bengio 2003) inflates the variance by "
        "(1/J + n_test/n_train) and is the one to use for fold scores.",
        "",
        f"Runtime {seconds:.0f} s on {platform.processor() or platform.machine()} "
        f"(Python {platform.python_version()}, single process).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=200, help="simulated data sets (default 200)")
    parser.add_argument("--repeats", type=int, default=10, help="CV repeats per data set (default 10)")
    parser.add_argument("--folds", type=int, default=10, help="GroupKFold folds (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    res = simulate(args.reps, n_repeats=args.repeats, n_folds=args.folds, seed=args.seed)
    seconds = time.perf_counter() - start
    for name, rate in res["rates"].items():
        print(f"{name:30s} false-positive rate {rate:.3f}")
    print(f"({res['n_reps']} data sets, {seconds:.0f} s)")
    if args.out is not None:
        command = ".venv/bin/python scripts/calibration.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(to_markdown(res, seconds, command.strip()))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The Bayesian correlated t-test table and the 5x2cv test against the reference functions."""

import numpy as np
import pytest

from reports.bayesian import bayesian_table
from reports.paired import bayesian_correlated_ttest, tost_corrected
from reports.rundata import fold_scores, load_run_data


def test_bayesian_table_matches_reference(small_run, tmp_path):
    # 4 performers: no group-level test at all.
    few = bayesian_table(small_run, baseline="rf", rope=0.01).set_index("model")
    assert "rf" not in few.index and set(few["verdict"]) == {"too few groups (4)"}
    from tests.reports.test_significance import make_run, noisy

    run_dir = make_run(tmp_path / "r", {"rf": noisy(0.6, 1), "ridge": noisy(0.5, 2)})
    table = bayesian_table(run_dir, baseline="rf", rope=0.01).set_index("model")
    run = load_run_data(run_dir)
    a = fold_scores(run, "ridge", "pearson", [0])
    b = fold_scores(run, "rf", "pearson", [0])
    # The report tests' calibration store backs every design with factor 1 (Nadeau-Bengio's).
    q = float(a["n_test"].mean() / a["n_train"].mean())
    rho = q / (1 + q)
    ref = bayesian_correlated_ttest(a["value"].to_numpy(), b["value"].to_numpy(), rho, 0.01)
    row = table.loc["ridge"]
    assert row["p_better"] == pytest.approx(ref.p_a_better, abs=1e-12)
    assert row["p_equivalent"] == pytest.approx(ref.p_rope, abs=1e-12)
    assert row["p_worse"] == pytest.approx(ref.p_b_better, abs=1e-12)
    assert row["p_better"] + row["p_equivalent"] + row["p_worse"] == pytest.approx(1.0)
    # The printed rule is the simulated one: a region whose posterior reaches 0.975.
    probs = {"better": ref.p_a_better, "equivalent": ref.p_rope, "worse": ref.p_b_better}
    best = max(probs, key=probs.get)
    assert row["verdict"] == (best if probs[best] >= 0.975 else "undecided")
    assert np.isnan(row["cv5x2_p"])  # a lopo run is not a 5x2 design
    tost = tost_corrected(a["value"].to_numpy(), b["value"].to_numpy(), a["n_train"], a["n_test"], 0.01)
    assert row["tost_p"] == pytest.approx(tost.pvalue, abs=1e-12)


def test_five_by_two_design_adds_alpaydin_f_test(fake_data_dir, tmp_path):
    from benchmark.cli import main

    out = tmp_path / "runs"
    study = tmp_path / "study.toml"
    # The test is about the statistic, not the forest: a small one, under a name of its own.
    study.write_text('[models.rf20]\nmodel = "rf"\nn_estimators = 20\n')
    assert main(["run", "--no-progress", "--study", str(study), "--models", "ridge,rf20", "--split", "kfold",
                 "--n-splits", "2", "--seeds", "0,1,2,3,4", "--data-dir", str(fake_data_dir), "--cache-dir",
                 str(tmp_path / "c"), "--out", str(out)]) == 0
    (run_dir,) = list(out.iterdir())
    row = bayesian_table(run_dir, baseline="rf20").set_index("model").loc["ridge"]
    run = load_run_data(run_dir)
    a = fold_scores(run, "ridge", "pearson", [0, 1, 2, 3, 4])["value"].unstack("fold").to_numpy()
    b = fold_scores(run, "rf20", "pearson", [0, 1, 2, 3, 4])["value"].unstack("fold").to_numpy()
    p = a - b
    s2 = ((p - p.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    f = (p**2).sum() / (2 * s2.sum())  # Alpaydin (1999), F(10, 5)
    from scipy import stats

    assert row["n_units"] == 10
    assert row["cv5x2_f"] == pytest.approx(f, rel=1e-12)
    assert row["cv5x2_p"] == pytest.approx(stats.f.sf(f, 10, 5), rel=1e-9)

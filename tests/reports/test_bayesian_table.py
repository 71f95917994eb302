"""The Bayesian correlated t-test table and the 5x2cv test against the reference functions."""

import numpy as np
import pytest

from reports.paired import bayesian_correlated_ttest, five_by_two_cv_ttest
from reports.rundata import fold_scores, load_run_data
from reports.significance import bayesian_table


def test_bayesian_table_matches_reference(small_run):
    table = bayesian_table(small_run, baseline="rf", rope=0.01).set_index("model")
    assert "rf" not in table.index and table.loc["mean", "verdict"] == "not tested"
    run = load_run_data(small_run)
    a = fold_scores(run, "ridge", "pearson", [0])
    b = fold_scores(run, "rf", "pearson", [0])
    rho = float((a["n_test"] / (a["n_train"] + a["n_test"])).mean())
    ref = bayesian_correlated_ttest(a["value"].to_numpy(), b["value"].to_numpy(), rho, 0.01)
    row = table.loc["ridge"]
    assert row["p_better"] == pytest.approx(ref.p_a_better, abs=1e-12)
    assert row["p_equivalent"] == pytest.approx(ref.p_rope, abs=1e-12)
    assert row["p_worse"] == pytest.approx(ref.p_b_better, abs=1e-12)
    assert row["p_better"] + row["p_equivalent"] + row["p_worse"] == pytest.approx(1.0)
    assert row["verdict"] in {"better", "worse", "equivalent", "undecided"}
    assert np.isnan(row["cv5x2_p"])  # a lopo run is not a 5x2 design


def test_five_by_two_design_adds_dietterich_test(fake_data_dir, tmp_path):
    from benchmark.cli import main

    out = tmp_path / "runs"
    assert main(["run", "--no-progress", "--models", "ridge,rf", "--split", "kfold", "--n-splits", "2",
                 "--seeds", "0,1,2,3,4", "--data-dir", str(fake_data_dir), "--cache-dir", str(tmp_path / "c"),
                 "--out", str(out)]) == 0
    (run_dir,) = list(out.iterdir())
    row = bayesian_table(run_dir, baseline="rf").set_index("model").loc["ridge"]
    run = load_run_data(run_dir)
    a = fold_scores(run, "ridge", "pearson", [0, 1, 2, 3, 4])["value"].unstack("fold").to_numpy()
    b = fold_scores(run, "rf", "pearson", [0, 1, 2, 3, 4])["value"].unstack("fold").to_numpy()
    ref = five_by_two_cv_ttest(a, b)
    assert row["n_units"] == 10
    assert row["cv5x2_t"] == pytest.approx(ref.statistic, abs=1e-12)
    assert row["cv5x2_p"] == pytest.approx(ref.pvalue, abs=1e-12)

"""Rank intervals: each model's rank on the fold-level mean metric, bootstrapped over whole units of the split."""

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import ConfigError
from reports.rundata import load_run_data
from reports.units import rank_intervals
from tests.reports.test_significance import PLAYERS, constant, make_run, noisy


def _fold_scores(run_dir, model, metric="pearson"):
    rows = pd.concat(pd.read_parquet(p) for p in (run_dir / "jobs").glob(f"{model}__*.rows.parquet"))
    return rows[rows["metric"] == metric].groupby("fold")["value"].mean().sort_index().to_numpy()


def test_separated_models_have_exact_ranks_and_ties_average(tmp_path):
    models = {"good": noisy(0.2, 2), "rf": noisy(0.6, 1), "twin": noisy(0.6, 1), "bad": noisy(1.5, 3),
              "mean": constant}
    run_dir = make_run(tmp_path / "run", models)
    t = rank_intervals(load_run_data(run_dir), n_resamples=200).set_index("model")
    assert t.attrs["unit"] == "performers" and t.attrs["n_units"] == 12
    assert t.loc["good", ["rank", "rank_lo", "rank_hi"]].tolist() == [1.0, 1.0, 1.0]
    assert t.loc["bad", ["rank", "rank_lo", "rank_hi"]].tolist() == [4.0, 4.0, 4.0]
    # Identical predictions tie in every draw: both always share ranks 2 and 3.
    assert t.loc["rf", ["rank", "rank_lo", "rank_hi"]].tolist() == [2.5, 2.5, 2.5]
    assert np.isnan(t.loc["mean", "rank"]) and "undefined" in t.loc["mean", "note"]
    assert t.loc["good", "score"] == pytest.approx(_fold_scores(run_dir, "good").mean(), abs=1e-12)


def test_close_models_rank_interval_matches_an_explicit_performer_bootstrap(tmp_path):
    run_dir = make_run(tmp_path / "run", {"a": noisy(0.55, 1), "b": noisy(0.6, 2)})
    n = 200
    t = rank_intervals(load_run_data(run_dir), n_resamples=n, seed=4).set_index("model")
    order = np.argsort(PLAYERS)  # units sorted by label; LOPO fold k tests PLAYERS[k]
    fa, fb = _fold_scores(run_dir, "a")[order], _fold_scores(run_dir, "b")[order]
    draws = np.random.default_rng(4).integers(0, 12, size=(n, 12))
    ma, mb = fa[draws].mean(axis=1), fb[draws].mean(axis=1)
    rank_a = np.where(np.isclose(ma, mb, rtol=0, atol=1e-12), 1.5, np.where(ma > mb, 1.0, 2.0))
    assert 0 < np.mean(rank_a == 1.0) < 1  # the two models swap places in some draws
    assert t.loc["a", "rank_lo"] == pytest.approx(np.quantile(rank_a, 0.025))
    assert t.loc["a", "rank_hi"] == pytest.approx(np.quantile(rank_a, 0.975))


def test_few_units_give_no_interval(tmp_path):
    run_dir = make_run(tmp_path / "f", {"a": noisy(0.6, 30), "b": noisy(0.3, 31)}, seeds=(0, 1), split="fixed")
    t = rank_intervals(load_run_data(run_dir), n_resamples=50)
    assert t[["rank_lo", "rank_hi"]].isna().all().all() and (t["note"] == "too few groups (3)").all()
    assert t["rank"].tolist() == [1.0, 2.0] and t["model"].tolist() == ["b", "a"]
    with pytest.raises(ConfigError, match="at least two models"):
        rank_intervals(load_run_data(run_dir), ["a"])


def test_report_shows_rank_intervals(tmp_path):
    from reports.report import build_report
    from reports.tables import make_displays, to_markdown

    run_dir = make_run(tmp_path / "run", {"good": noisy(0.2, 2), "rf": noisy(0.6, 1), "bad": noisy(1.5, 3)})
    report = build_report(run_dir, n_resamples=99, rope=None)
    table = report.tables["rank_intervals"]
    assert table["model"].tolist() == ["good", "rf", "bad"] and table["rank_lo"].tolist() == [1.0, 2.0, 3.0]
    md = "".join(to_markdown(d) for d in make_displays(table, "rank_intervals"))
    assert "cluster bootstrap over 12 performers" in md and "| good |" in md

"""Error analysis: hardest groups with CIs, error matrices; permutation importance refitted on held-out folds by
``benchmark importance`` (benchmark/importance.py) and only read by the reports."""

import shutil

import numpy as np
import pandas as pd
import pytest

import features.build
from benchmark.cli import EXIT_ERROR, main
from benchmark.errors import ConfigError
from benchmark.importance import feature_units, run_importance
from reports.analysis import error_matrix, error_table, hardest, importance_table
from reports.results import best_model, model_predictions
from reports.rundata import load_run_data


def synthetic_predictions(hard_performer="p3", hard_piece=None, hard_target=None, seed=0):
    """4 performers x 3 pieces x 4 segments x 3 targets; one group gets errors ~5x larger."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in ("p1", "p2", "p3", "p4"):
        for piece in ("A", "B", "C"):
            for k in range(4):
                sid = f"{piece}_{p}_{k}"
                for t in ("t1", "t2", "t3"):
                    y = rng.uniform(0.2, 0.8)
                    hard = p == hard_performer or piece == hard_piece or t == hard_target
                    err = rng.normal(0, 0.25 if hard else 0.05)
                    rows.append({"sample_id": sid, "performer": p, "piece": piece, "model": "m", "seed": 0,
                                 "fold": 0, "target": t, "y_true": y, "y_pred": y + err})
    return pd.DataFrame(rows)


def test_hardest_performer_is_the_one_made_hard():
    preds = synthetic_predictions(hard_performer="p3")
    t = error_table(preds, "performer", n_resamples=500)
    assert t["performer"].iloc[0] == "p3"
    assert list(t.columns) == ["performer", "mae", "mae_lo", "mae_hi", "n_segments", "n_units"]
    assert (t["mae_lo"] <= t["mae"]).all() and (t["mae"] <= t["mae_hi"]).all()
    assert t["mae"].is_monotonic_decreasing and (t["n_segments"] == 12).all()
    # The hard performer's interval lies above every other performer's estimate.
    assert t["mae_lo"].iloc[0] > t["mae"].iloc[1:].max()
    # by hand: mean |error| over the performer's segments and targets
    d = preds[preds["performer"] == "p3"]
    assert t["mae"].iloc[0] == pytest.approx((d["y_pred"] - d["y_true"]).abs().mean())
    assert t.attrs["resampled"] == "segments"


def test_cluster_bootstrap_resamples_the_crossed_factor():
    preds = synthetic_predictions(hard_performer=None, hard_piece="B")
    t = error_table(preds, "piece", resample="performers", n_resamples=300)
    assert t["piece"].iloc[0] == "B" and (t["n_units"] == 4).all() and t.attrs["resampled"] == "performers"
    tt = error_table(synthetic_predictions(hard_performer=None, hard_target="t2"), "target", n_resamples=300)
    assert tt["target"].iloc[0] == "t2" and "pearson" in tt


def test_hardest_targets_give_r_over_the_pianists_beside_all_players():
    """A performer renamed Score (a deadpan rendering): the targets' r over the pianists is the pooled r of the
    other performers' rows, by hand; without such a player the column is absent (it would repeat r)."""
    preds = synthetic_predictions(hard_performer=None, hard_target="t2")
    assert "pearson_pianists" not in error_table(preds, "target", n_resamples=50)
    preds["performer"] = preds["performer"].replace("p1", "Score")
    t = error_table(preds, "target", n_resamples=50).set_index("target")
    for target, row in t.iterrows():
        d = preds[preds["target"] == target]
        assert row["pearson"] == pytest.approx(np.corrcoef(d["y_true"], d["y_pred"])[0, 1], abs=1e-12)
        h = d[d["performer"] != "Score"]
        assert row["pearson_pianists"] == pytest.approx(np.corrcoef(h["y_true"], h["y_pred"])[0, 1], abs=1e-12)
        assert row["pearson_pianists"] != row["pearson"]


def test_error_table_rejects_bad_options():
    preds = synthetic_predictions()
    with pytest.raises(ConfigError, match="one unit per group"):
        error_table(preds, "performer", resample="performers")
    with pytest.raises(ConfigError, match="by="):
        error_table(preds, "composer")
    two = pd.concat([preds, preds.assign(model="other")])
    with pytest.raises(ConfigError, match="2 models"):
        error_table(two, "performer")


def test_hardest_and_error_matrix_on_a_run(small_run):
    run = load_run_data(small_run)
    h = hardest(run, "performer", top=2, n_resamples=100)
    assert len(h) == 2 and h.attrs["model"] == best_model(run)
    m = error_matrix(run, "performer")
    assert list(m.columns) == ["mean", "ridge", "rf"] and list(m.index) == ["1", "2", "3", "Score"]
    # the MAE cell of rf for performer 1 by hand
    p = model_predictions(run, "rf")
    d = p[p["performer"] == "1"]
    assert m.loc["1", "rf"] == pytest.approx((d["y_pred"] - d["y_true"]).abs().mean())
    mt = error_matrix(run, "piece", columns="target", value="pearson", model="rf")
    assert mt.shape == (2, 19)


def test_feature_units_group_by_family_prefix():
    units = feature_units({"midi": ["vel_mean", "vel_std", "ioi_mean"], "audio": ["au_rms_mean"]})
    assert units == {"vel": [0, 1], "ioi": [2], "au_rms": [3]}
    assert feature_units({"midi": ["vel_mean", "ioi_mean"]}, by="feature") == {"vel_mean": [0], "ioi_mean": [1]}


@pytest.fixture()
def run_copy(small_run, tmp_path):
    return shutil.copytree(small_run, tmp_path / "run")


def test_importance_refits_the_runs_folds_exactly(run_copy):
    assert importance_table(run_copy, "rf") is None  # nothing stored yet: the report shows none, never refits
    tidy = run_importance(run_copy, "rf", n_repeats=1, max_folds=2)
    assert set(tidy["scope"]) == {"fold", "pooled"} and set(tidy.loc[tidy["scope"] == "fold", "fold"]) == {0, 1}
    imp = importance_table(run_copy, "rf", n_resamples=50)
    assert imp.attrs["jobs"] == [(0, 0), (0, 1)] and (imp["n_folds"] == 2).all()
    # Same training rows, groups, features and seed as the run: the refit reproduces its stored predictions.
    assert imp.attrs["max_abs_diff_to_run"] < 1e-9
    assert set(imp["family"]) >= {"vel", "ioi", "pitch"} and imp["drop_r"].is_monotonic_decreasing
    fold_rows = tidy[tidy["scope"] == "fold"]
    vel = fold_rows[fold_rows["unit"] == "vel"]["drop_r"]
    assert imp.set_index("family").loc["vel", "drop_r"] == pytest.approx(vel.mean())


def test_importance_ranks_signal_family_above_noise_family(run_copy, monkeypatch):
    real = features.build.build_features

    def with_noise(meta, names, cache, **kw):
        fm = real(meta, names, cache, **kw)
        rng = np.random.default_rng(1)
        pitch = [c for c in fm.X.columns if c.startswith("pitch_")]
        fm.X[pitch] = rng.normal(size=(len(fm.X), len(pitch)))  # pure noise, unrelated to the ratings
        return fm

    monkeypatch.setattr(features.build, "build_features", with_noise)
    run_importance(run_copy, "rf", n_repeats=3)
    imp = importance_table(run_copy, "rf", n_resamples=200).set_index("family")
    # The synthetic ratings are driven by velocity (loudness): its family matters, noise does not.
    assert imp.loc["vel", "drop_r"] > 0.05
    assert imp.loc["vel", "drop_r"] > imp.loc["pitch", "drop_r"] + 0.03
    assert imp.loc["vel", "increase_mse"] > imp.loc["pitch", "increase_mse"]
    assert imp.loc["vel", "drop_r_lo"] <= imp.loc["vel", "drop_r"] <= imp.loc["vel", "drop_r_hi"]


def test_importance_rejects_bad_options(run_copy):
    with pytest.raises(ConfigError, match="not in run"):
        run_importance(run_copy, "lgbm")
    with pytest.raises(ConfigError, match="by="):
        run_importance(run_copy, "rf", by="group")
    with pytest.raises(ConfigError, match="max_folds"):
        run_importance(run_copy, "rf", max_folds=0)


def test_importance_cli_stores_and_report_reads(run_copy, capsys):
    assert main(["report", str(run_copy), "--importance", "rf", "--no-plots", "--no-html"]) == EXIT_ERROR
    assert "benchmark importance" in capsys.readouterr().err
    assert main(["importance", str(run_copy), "--model", "rf", "--n-repeats", "1", "--max-folds", "1"]) == 0
    assert "stored in" in capsys.readouterr().out
    assert (run_copy / "importance" / "rf__family.parquet").is_file()
    assert main(["report", str(run_copy), "--importance", "rf", "--no-plots", "--no-html"]) == 0
    assert (run_copy / "report" / "importance_rf.csv").is_file()


def test_reports_never_refit():
    """reports/ reads stored importance; it never builds or fits a model."""
    from pathlib import Path

    root = Path(__file__).parents[2] / "reports"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "MODELS.build" not in text and ".fit(" not in text and "from models" not in text, path.name


def test_importance_fits_with_the_groups_stored_in_the_runs_folds(run_copy, monkeypatch):
    """The refit passes the fold table's own group labels (what the runner fitted with), not a metadata column."""

    folds = pd.read_parquet(run_copy / "folds.parquet")
    folds["group"] = "g-" + folds["group"].astype(str)  # labels no metadata column holds
    folds.to_parquet(run_copy / "folds.parquet", index=False)
    seen = []
    from benchmark import execute

    real_fit = execute._fit_predict

    def recording_fit(spec, params, seed, X_train, y_train, groups_train, *rest):
        seen.append(None if groups_train is None else set(groups_train))
        return real_fit(spec, params, seed, X_train, y_train, groups_train, *rest)

    monkeypatch.setattr(execute, "_fit_predict", recording_fit)
    run_importance(run_copy, "rf", n_repeats=1, max_folds=1, write=False)
    train = folds[(folds["seed"] == 0) & (folds["fold"] == 0) & (folds["role"] == "train")]
    assert seen == [set(train["group"])]

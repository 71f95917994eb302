"""``benchmark compare``: refuses incomparable runs, finds no difference between a run and itself, and
tests at the split's unit (whole performers swapped and resampled), like the significance table."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.cli import EXIT_ERROR, main
from benchmark.errors import ConfigError
from reports.compare import compare_runs, format_comparison
from tests.reports.test_significance import PLAYERS, make_run, noisy


def edited_copy(run, dest, **manifest_changes):
    dest = shutil.copytree(run, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    for key, value in manifest_changes.items():
        if key == "split_name":
            manifest["split"]["name"] = value
            manifest["config"]["split"] = value
        else:
            manifest[key] = value
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def test_a_run_compared_with_itself_shows_no_difference(small_run):
    t = compare_runs(small_run, small_run, n_resamples=100)
    assert list(t["model"]) == ["mean", "ridge", "rf"]
    for m in ("pearson", "r2"):
        ok = t.dropna(subset=[f"{m}_a"])
        np.testing.assert_allclose(ok[f"{m}_a"], ok[f"{m}_b"])
        assert (ok[f"{m}_diff"] == 0).all()
        # 4 performers: no group-level CI or p-value.
        assert ok[[f"{m}_pred_lo", f"{m}_pred_hi", f"{m}_pred_p", f"{m}_learner_p", f"{m}_perm_p"]].isna().all().all()
        assert (ok[f"{m}_pred_note"] == "too few groups (4)").all()
    assert t.attrs["unit"] == "performers" and t.attrs["n_units"] == 4 and t.attrs["few"]
    md = format_comparison(t)
    assert "| rf |" in md and "too few groups (4)" in md.split("| rf |")[1].splitlines()[0]


def _fold_scores(run_dir, model, metric):
    """Each LOPO fold's target-averaged metric as the runner stored it, by fold (= performer PLAYERS[fold])."""
    rows = pd.concat(pd.read_parquet(p) for p in (run_dir / "jobs").glob(f"{model}__*.rows.parquet"))
    return rows[rows["metric"] == metric].groupby("fold")["value"].mean().sort_index().to_numpy()


@pytest.fixture()
def twelve(tmp_path):
    """Two runs of the same 12-performer LOPO split whose rf differs."""
    a = make_run(tmp_path / "a", {"rf": noisy(0.55, 1), "same": noisy(0.6, 9)})
    b = make_run(tmp_path / "b", {"rf": noisy(0.6, 2), "same": noisy(0.6, 9)})
    return a, b


def test_compare_swaps_and_resamples_whole_performers(twelve):
    a, b = twelve
    n = 200
    t = compare_runs(a, b, n_resamples=n, seed=3).set_index("model")
    assert t.attrs["unit"] == "performers" and t.attrs["n_units"] == 12 and not t.attrs["few"]
    order = np.argsort(PLAYERS)  # units are sorted by label; fold k tests performer PLAYERS[k]
    for m in ("pearson", "r2"):
        fa, fb = _fold_scores(a, "rf", m), _fold_scores(b, "rf", m)
        assert t.loc["rf", f"{m}_a"] == pytest.approx(fa.mean(), abs=1e-12)
        assert t.loc["rf", f"{m}_b"] == pytest.approx(fb.mean(), abs=1e-12)
        d = (fa - fb)[order]
        assert t.loc["rf", f"{m}_diff"] == pytest.approx(d.mean(), abs=1e-12)
        # One LOPO fold is one performer: resampling a performer draws its fold, swapping it flips its sign.
        rng = np.random.default_rng(3)
        draws = rng.integers(0, 12, size=(n, 12))
        swap = rng.random((n, 12)) < 0.5
        boot = d[draws].mean(axis=1)
        null = np.where(swap, -d, d).mean(axis=1)
        # The predictor claim: the bootstrap-t interval (bootstrap SE, Student's t with 11 df, sqrt(12 / 11)) at
        # the level that agrees with its Holm-adjusted p, and that interval's p.
        se = np.sqrt(12 / 11) * boot.std(ddof=1)
        half = stats.t.ppf(0.5 + t.loc["rf", f"{m}_pred_level"] / 2, 11) * se
        assert t.loc["rf", f"{m}_pred_lo"] == pytest.approx(d.mean() - half, abs=1e-12)
        assert t.loc["rf", f"{m}_pred_hi"] == pytest.approx(d.mean() + half, abs=1e-12)
        assert t.loc["rf", f"{m}_pred_p"] == pytest.approx(2 * stats.t.sf(abs(d.mean()) / se, 11), rel=1e-9)
        # Secondary: whole performers swapped.
        p_perm = (1 + np.sum(np.abs(null) >= abs(d.mean()) - 1e-12)) / (n + 1)
        assert t.loc["rf", f"{m}_perm_p"] == pytest.approx(p_perm)
        assert t.loc["same", f"{m}_diff"] == 0 and t.loc["same", f"{m}_perm_p"] == 1.0
        assert t.loc["same", f"{m}_pred_p"] == 1.0 and t.loc["same", f"{m}_learner_p"] == 1.0


def test_compare_p_agrees_with_scipys_exact_test_over_performers(twelve):
    from scipy.stats import permutation_test

    a, b = twelve
    t = compare_runs(a, b, n_resamples=20000, metrics=("pearson",)).set_index("model")
    fa, fb = _fold_scores(a, "rf", "pearson"), _fold_scores(b, "rf", "pearson")
    ref = permutation_test((fa, fb), lambda x, y: np.mean(x - y), permutation_type="samples",
                           n_resamples=np.inf).pvalue  # all 2^12 performer swaps
    assert 0.02 < ref < 0.98  # a p-value away from the edges, so the check has teeth
    assert t.loc["rf", "pearson_perm_p"] == pytest.approx(ref, abs=0.015)


def test_worse_predictions_show_a_positive_difference(twelve, tmp_path):
    a, _ = twelve
    worse = shutil.copytree(a, tmp_path / "worse")
    rng = np.random.default_rng(0)
    for path in (worse / "jobs").glob("rf__*.preds.parquet"):
        p = pd.read_parquet(path)
        p["y_pred"] += rng.normal(0, 1.0, len(p))
        p.to_parquet(path, index=False)
    t = compare_runs(a, worse, n_resamples=300).set_index("model")
    assert t.loc["rf", "r2_diff"] > 0 and t.loc["rf", "r2_pred_lo"] > 0 and t.loc["rf", "r2_pred_p_adj"] < 0.05
    assert t.loc["rf", "r2_learner_lo"] > 0 and t.loc["rf", "r2_learner_p_adj"] < 0.05
    md = format_comparison(t.reset_index())
    assert "†" in md.split("| rf |")[1].splitlines()[0] and "‡" in md.split("| rf |")[1].splitlines()[0]
    assert t.loc["same", "r2_diff"] == 0


@pytest.mark.parametrize("change, match", [
    ({"split_name": "kfold"}, "different splits"),
    ({"data_hash": "f" * 64}, "different data"),
])
def test_incomparable_runs_are_refused(small_run, tmp_path, change, match):
    other = edited_copy(small_run, tmp_path / "other", **change)
    with pytest.raises(ConfigError, match=match):
        compare_runs(small_run, other)


def test_different_fold_assignments_are_refused(small_run, tmp_path):
    other = shutil.copytree(small_run, tmp_path / "other")
    folds = pd.read_parquet(other / "folds.parquet")
    test0 = folds.index[(folds["fold"] == 0) & (folds["role"] == "test")][0]
    folds.loc[test0, "fold"] = 1  # one segment moved to another fold
    folds.to_parquet(other / "folds.parquet", index=False)
    with pytest.raises(ConfigError, match="fold assignments differ"):
        compare_runs(small_run, other)


def test_compare_cli(small_run, tmp_path, capsys):
    assert main(["compare", str(small_run), str(small_run), "--n-resamples", "50"]) == 0
    out = capsys.readouterr().out
    assert "| rf | 0 |" in out and "whole performers swapped" in out and "too few groups (4)" in out
    other = edited_copy(small_run, tmp_path / "other", data_hash="0" * 64)
    assert main(["compare", str(small_run), str(other)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1 and "different data" in err

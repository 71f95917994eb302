"""``benchmark compare``: refuses incomparable runs, finds no difference between a run and itself."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import EXIT_ERROR, main
from benchmark.errors import ConfigError
from reports.compare import compare_runs, format_comparison


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
    t = compare_runs(small_run, small_run, n_resamples=100, n_permutations=100)
    assert list(t["model"]) == ["mean", "ridge", "rf"]
    for m in ("pearson", "r2"):
        ok = t.dropna(subset=[f"{m}_a"])
        np.testing.assert_allclose(ok[f"{m}_a"], ok[f"{m}_b"])
        assert (ok[f"{m}_diff"] == 0).all() and (ok[f"{m}_p"] == 1.0).all()
        assert (ok[f"{m}_diff_lo"] == 0).all() and (ok[f"{m}_diff_hi"] == 0).all()
    assert t.attrs["resampled"] == "segments"
    assert "| rf |" in format_comparison(t)


def test_worse_predictions_show_a_positive_difference(small_run, tmp_path):
    noisy = shutil.copytree(small_run, tmp_path / "noisy")
    rng = np.random.default_rng(0)
    for path in (noisy / "jobs").glob("rf__*.preds.parquet"):
        p = pd.read_parquet(path)
        p["y_pred"] += rng.normal(0, 0.3, len(p))
        p.to_parquet(path, index=False)
    t = compare_runs(small_run, noisy, n_resamples=300, n_permutations=300).set_index("model")
    assert t.loc["rf", "r2_diff"] > 0 and t.loc["rf", "r2_diff_lo"] > 0 and t.loc["rf", "r2_p"] < 0.05
    assert t.loc["ridge", "r2_diff"] == 0


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
    assert main(["compare", str(small_run), str(small_run), "--n-resamples", "50", "--n-permutations", "50"]) == 0
    out = capsys.readouterr().out
    assert "| rf | 0 |" in out and "permutation" in out
    other = edited_copy(small_run, tmp_path / "other", data_hash="0" * 64)
    assert main(["compare", str(small_run), str(other)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1 and "different data" in err

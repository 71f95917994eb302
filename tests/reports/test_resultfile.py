"""The result file: written by every run, valid under docs/result.schema.json, readable on its own.

Every run of the suite writes ``result.json`` through :func:`benchmark.export.export_result`, which
validates it against the schema before writing (a file that fails is an error, never written), so every
run of the suite is checked; the tests here check the content against the run's own numbers.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.errors import DataError
from benchmark.export import export_result, model_source
from benchmark.metrics import SPREAD_METRICS, column_metric
from benchmark.store import Folds, RunStore
from reports.pooled import POPULATIONS, metrics_table, pooled_value
from reports.resultfile import SCHEMA_VERSION, read_result, schema, validate_result
from reports.rundata import load_run_data
from reports.scoring import pooled_metric


def _root_conftest():
    spec = importlib.util.spec_from_file_location("_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rated_run(tmp_path_factory) -> Path:
    """mean, ridge, rf under lopo on the synthetic dataset with per-rater answer sheets (read-only)."""
    conf = _root_conftest()
    root = tmp_path_factory.mktemp("rated")
    data = conf.write_fake_raters(conf.make_fake_percepiano(root / "percepiano"))
    code = main(["run", "--no-progress", "--models", "mean,ridge,rf", "--split", "lopo", "--data-dir", str(data),
                 "--cache-dir", str(root / "cache"), "--out", str(root / "runs")])
    assert code == 0
    (run,) = [d for d in (root / "runs").iterdir() if d.is_dir()]
    return run


def test_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["schema_version"]["pattern"].startswith("^" + SCHEMA_VERSION.split(".")[0])


def test_every_run_writes_a_valid_result_file_readable_alone(rated_run, tmp_path):
    path = rated_run / "result.json"
    assert path.is_file()
    alone = tmp_path / "elsewhere.json"
    shutil.copy(path, alone)
    res = read_result(alone)  # validates; nothing of the run directory is read
    jsonschema.validate(res, schema())
    manifest = json.loads((rated_run / "manifest.json").read_text())
    assert res["schema_version"] == SCHEMA_VERSION and res["run"]["run_id"] == rated_run.name
    assert res["data"]["sha256"] == manifest["data_hash"] and res["harness"]["run_git_commit"] == manifest["git_commit"]
    assert res["split"]["name"] == "lopo" and res["split"]["unit"] == "performers" and not res["split"]["seeded"]
    # The fold hash is the store's one definition, of this run's folds.
    assert res["split"]["fold_assignment_hash"] == RunStore(rated_run).read_folds().assignment_hash()
    assert [m["name"] for m in res["models"]] == ["mean", "ridge", "rf"]
    rf = res["models"][2]
    assert rf["source"] == "registered" and rf["base"] == "rf" and rf["feature_sets"] == ["midi"]
    assert rf["params"]["n_estimators"] > 0 and rf["status"] == "complete" and rf["jobs_ok"] == rf["jobs_planned"] == 4
    assert set(rf["scores"]) == {"pearson", "r2", "mse", "ccc", *SPREAD_METRICS}
    for m, entry in rf["scores"].items():
        assert entry["pooled"]["aggregation"] == "pooled" and entry["per_fold"]["aggregation"] == "per_fold"
        assert entry["pooled"]["population"] == "all" and entry["pooled_pianists"]["population"] == "pianists"
        assert entry["pooled"]["ci_units"] is None and entry["pooled"]["ci_units_note"] == "too few groups (4)", m
        lo, hi = entry["pooled"]["ci_segments"]
        assert lo <= entry["pooled"]["value"] <= hi
    # The mean predictor's r is undefined (constant within every fold), its CCC and MSE are not.
    mean = res["models"][0]["scores"]
    assert mean["pearson"]["pooled"]["value"] is None and "undefined" in mean["pearson"]["pooled"]["note"]
    assert mean["mse"]["pooled"]["value"] > 0 and mean["ccc"]["pooled"]["value"] is not None


def test_result_numbers_are_the_runs(rated_run):
    """Pooled values recomputed by hand from predictions.parquet and the stored spread; per-fold means from
    metrics.parquet (which now holds MSE, CCC and the rater-spread rows too)."""
    res = json.loads((rated_run / "result.json").read_text())
    preds = pd.read_parquet(rated_run / "predictions.parquet")
    rows = pd.read_parquet(rated_run / "metrics.parquet")
    spread = pd.read_parquet(rated_run / "rater_spread.parquet").pivot(index="sample_id", columns="target", values="sd")
    assert {"mse", "ccc", *SPREAD_METRICS} <= set(rows["metric"])
    targets = res["data"]["targets"]
    p = preds[preds["model"] == "rf"]
    wide = p.pivot(index="sample_id", columns="target", values="y_pred")[targets]
    truth = p.pivot(index="sample_id", columns="target", values="y_true")[targets]
    sd = spread.loc[wide.index, targets].to_numpy()
    pianist = ~pd.Series(wide.index).str.contains("_Score").to_numpy()
    rf = res["models"][2]
    for metric in ("pearson", "r2", "mse", "ccc", "acc_0.5sd"):
        full = np.mean(column_metric(metric, truth.to_numpy(), wide.to_numpy(), sd))
        only = np.mean(column_metric(metric, truth.to_numpy()[pianist], wide.to_numpy()[pianist], sd[pianist]))
        assert rf["scores"][metric]["pooled"]["value"] == pytest.approx(full, abs=1e-12)
        assert rf["scores"][metric]["pooled_pianists"]["value"] == pytest.approx(only, abs=1e-12)
        folds = rows[(rows["model"] == "rf") & (rows["metric"] == metric)].groupby("fold")["value"].mean()
        assert rf["scores"][metric]["per_fold"]["mean"] == pytest.approx(folds.mean(), abs=1e-12)
        assert rf["per_target"][metric][targets[0]] == pytest.approx(
            column_metric(metric, truth.to_numpy(), wide.to_numpy(), sd)[0], abs=1e-12)
    assert pianist.sum() < len(pianist)  # the synthetic data has a Score player: the two populations differ
    fs = rf["fold_scores"]
    assert [f["fold"] for f in fs] == [0, 1, 2, 3] and all(f["unit"] is not None for f in fs)
    assert {"pearson", "r2", "mse", "ccc", *SPREAD_METRICS} <= set(fs[0]["values"])


def test_the_metrics_table_and_report_show_the_literatures_metrics(rated_run, tmp_path):
    run = load_run_data(rated_run)
    table = metrics_table(run, n_resamples=50)
    assert table.attrs["metrics"] == ["pearson", "r2", "mse", "ccc", *SPREAD_METRICS]
    for pop in POPULATIONS:
        sfx = "" if pop == "all" else f"_{pop}"
        assert table.loc[2, f"ccc{sfx}"] == pytest.approx(pooled_value(run, "rf", [0], "ccc", pop))
    code = main(["report", str(rated_run), "--out", str(tmp_path / "rep"), "--no-plots", "--no-html",
                 "--n-resamples", "50", "--no-ceiling"])
    assert code == 0
    md = (tmp_path / "rep" / "metrics.md").read_text()
    assert "CCC [95% CI]" in md and "acc ±0.1 sd pianists only [95% CI]" in md and "MSE fold-level" in md
    per_target = (tmp_path / "rep" / "per_target.md").read_text()
    assert "rf r, pianists" in per_target and "MSE per target" in per_target and "acc ±1 sd per target" in per_target
    sig = (tmp_path / "rep" / "significance.md").read_text()
    assert "r, pianists only [95% CI, segments]" in sig and "R², pianists only [95% CI, segments]" in sig
    summary = (rated_run / "summary.md").read_text()
    assert "mean r, pianists only [95% CI]" in summary


def test_pianists_only_leaves_out_the_deadpan_renderings(tmp_path):
    """A run whose Score player is predicted perfectly: over all players r is higher than over the pianists,
    and the pianists' value is the metric of the other rows, computed by hand."""
    from tests.reports.test_significance import make_run

    def perfect_for_score(y, perf, seed_fold):
        noise = np.random.default_rng(seed_fold[1]).normal(0, 1.0, y.shape)
        return np.where((perf == 0)[:, None], y, y + noise)

    run_dir = make_run(tmp_path / "run", {"rf": perfect_for_score})
    for path in (run_dir / "jobs").glob("*.preds.parquet"):  # performer "1" becomes the deadpan rendering
        p = pd.read_parquet(path)
        p["performer"] = p["performer"].replace("1", "Score")
        p.to_parquet(path, index=False)
    run = load_run_data(run_dir)
    preds = pd.concat([pd.read_parquet(p) for p in (run_dir / "jobs").glob("*.preds.parquet")])
    keep = preds[preds["performer"] != "Score"]
    wide = keep.pivot(index="sample_id", columns="target", values="y_pred")
    truth = keep.pivot(index="sample_id", columns="target", values="y_true")
    expect = pooled_metric(truth.to_numpy(), wide.to_numpy()[None], "pearson")
    assert pooled_value(run, "rf", [0], "pearson", "pianists") == pytest.approx(expect, abs=1e-12)
    assert pooled_value(run, "rf", [0], "pearson", "all") > pooled_value(run, "rf", [0], "pearson", "pianists")


def test_a_run_without_rater_sheets_says_so(small_run, tmp_path):
    """The shared synthetic run has no rater file: no rater-spread metric, and the manifest says why."""
    manifest = json.loads((small_run / "manifest.json").read_text())
    assert manifest["rater_spread"]["available"] is False and "rater file" in manifest["rater_spread"]["reason"]
    res = read_result(small_run / "result.json")
    assert set(res["models"][1]["scores"]) == {"pearson", "r2", "mse", "ccc"}
    assert res["data"]["rater_spread"]["available"] is False
    assert not (small_run / "rater_spread.parquet").exists()


def test_export_rewrites_an_older_runs_result(rated_run, tmp_path, capsys):
    """`benchmark export` of a run without result.json (older runs): the same numbers; an older run without
    the stored spread takes it from its data folder when its labels reproduce the run's truth."""
    old = tmp_path / "old"
    shutil.copytree(rated_run, old)
    (old / "result.json").unlink()
    (old / "rater_spread.parquet").unlink()
    manifest = json.loads((old / "manifest.json").read_text())
    manifest.pop("rater_spread")
    (old / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "exported.json"
    assert main(["export", str(old), "-o", str(out), "--n-resamples", "2000"]) == 0
    assert str(out) in capsys.readouterr().out
    new, ref = read_result(out), read_result(rated_run / "result.json")
    assert new["data"]["rater_spread"]["source"] == "data_dir"
    a = new["models"][2]["scores"]["acc_1sd"]["pooled"]
    b = ref["models"][2]["scores"]["acc_1sd"]["pooled"]
    assert a["value"] == pytest.approx(b["value"], abs=1e-15) and a["ci_segments"] == b["ci_segments"]
    assert new["split"]["fold_assignment_hash"] == ref["split"]["fold_assignment_hash"]


def test_the_fold_hash_follows_the_assignment_only():
    a = Folds(pd.DataFrame({"sample_id": ["x", "y", "z", "x", "y", "z"], "seed": 0, "fold": [0, 0, 0, 1, 1, 1],
                            "role": ["train", "train", "test", "test", "test", "train"], "group": "g"}))
    shuffled = Folds(a.frame.sample(frac=1.0, random_state=1).assign(group="other labels"))
    moved = Folds(a.frame.assign(role=["train", "test", "train", "test", "test", "train"]))
    assert a.assignment_hash() == shuffled.assignment_hash() != moved.assignment_hash()
    assert len(a.assignment_hash()) == 64 and set(a.assignment_hashes()) == {"0"}


@pytest.mark.parametrize("edit, match", [
    (lambda r: r.update(schema_version="0.9"), "no longer reads; re-export"),
    (lambda r: r.update(schema_version="2.0"), "newer than this harness reads"),
    (lambda r: r.pop("schema_version"), "no readable schema_version"),
    (lambda r: r.update(kind="something else"), "not a percepiano-bench result file"),
    (lambda r: r["models"][0].update(jobs_ok="four"), "at models/0/jobs_ok"),
    (lambda r: r["models"][0]["scores"]["r2"]["pooled"].update(aggregation="average"), "aggregation"),
])
def test_other_versions_and_damaged_files_are_refused_in_one_line(rated_run, tmp_path, edit, match):
    res = json.loads((rated_run / "result.json").read_text())
    edit(res)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(res))
    with pytest.raises(DataError, match=match):
        read_result(path)


def test_a_later_minor_version_is_read(rated_run, tmp_path):
    """1.x files only add fields: a 1.0 reader reads a 1.3 file with a field it does not know."""
    res = json.loads((rated_run / "result.json").read_text())
    res["schema_version"] = "1.3"
    res["models"][0]["new_field"] = {"anything": 1}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(res))
    assert read_result(path)["models"][0]["new_field"] == {"anything": 1}


def test_an_invalid_result_is_never_written(rated_run, tmp_path, monkeypatch):
    import benchmark.export as export

    run = tmp_path / "run"
    shutil.copytree(rated_run, run)
    (run / "result.json").unlink()
    real = export.build_result
    monkeypatch.setattr(export, "build_result", lambda *a, **k: {**real(*a, **k), "schema_version": 3})
    with pytest.raises(DataError, match="schema_version"):
        export_result(run, n_resamples=20)
    assert not (run / "result.json").exists()
    with pytest.raises(DataError):
        validate_result({"schema_version": "1.0"})


def test_model_source():
    assert model_source("rf") == "registered"
    assert model_source("no_such_model") == "unknown" and model_source(None) == "unknown"


def test_parameter_values_json_cannot_hold_are_written_as_names():
    """A scikit-learn class's error_score=nan (or an infinite bound) in a model's parameters keeps the result
    file strict JSON: the value is written as its name."""
    from reports.resultfile import _json_value

    params = {"error_score": float("nan"), "bounds": (0.0, float("inf")), "nested": {"c": float("-inf")}, "a": 1.5}
    out = _json_value(params)
    assert out == {"error_score": "nan", "bounds": [0.0, "inf"], "nested": {"c": "-inf"}, "a": 1.5}
    json.dumps(out, allow_nan=False)

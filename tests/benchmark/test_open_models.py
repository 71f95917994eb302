"""Issue 19: models from outside the repository. A plugin package (an entry point of ``percepiano_bench.models``
made in a test) appears in ``benchmark list models`` with its source and runs; a built-in name wins over it
with a warning; a broken entry point is one line naming it. A study's ``class_path`` runs, its parameters
checked against the class. ``benchmark.evaluate`` runs ``sklearn.svm.SVR()`` under lopo (predictions equal a
hand-written loop over the run's folds) and gives a search the grouped inner CV.

Known answers: every "outside" model here predicts the training-fold mean, so its predictions equal the
built-in ``mean`` model's, fold by fold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.store import RunStore
from tests.conftest import make_fake_percepiano

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("open_models")
    return make_fake_percepiano(root / "percepiano"), root


def _preds(run: Path, model: str) -> pd.DataFrame:
    _, preds = RunStore(run).read_jobs()
    p = preds[preds["model"] == model].drop(columns="model")
    return p.sort_values(["seed", "fold", "sample_id", "target"]).reset_index(drop=True)


def _assert_same_predictions(run: Path, a: str, b: str) -> None:
    pa, pb = _preds(run, a), _preds(run, b)
    assert len(pa) and len(pa) == len(pb)
    pd.testing.assert_frame_equal(pa.drop(columns="y_pred"), pb.drop(columns="y_pred"))
    np.testing.assert_allclose(pa["y_pred"], pb["y_pred"], rtol=0, atol=1e-12)


def _plugin_site(tmp: Path, dist: str, entries: dict[str, str]) -> Path:
    """A site folder holding an installed distribution ``dist`` whose only content is its entry points."""
    site = tmp / f"site_{dist}"
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[percepiano_bench.models]\n{lines}\n")
    return site


def _cli(site: Path, *args) -> subprocess.CompletedProcess:
    """``benchmark ARGS`` in a fresh interpreter that has the plugin installed (entry points load at import)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)


def test_a_plugin_package_is_listed_with_its_source_and_runs(data, tmp_path):
    data_dir, root = data
    site = _plugin_site(tmp_path, "pb-demo", {"demo": "tests.benchmark.open_models:register",
                                             "demo_cls": "tests.benchmark.open_models:TrainMean"})
    listed = _cli(site, "list", "models")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert rows["demo_mean"].endswith("[source: plugin:pb-demo]") and "training mean, from a plugin" in rows["demo_mean"]
    assert rows["demo_cls"].endswith("[source: plugin:pb-demo]")
    # The built-in ridge wins over the plugin's, which is named in a warning.
    assert rows["ridge"].endswith("[source: built-in]") and "Standardised ridge" in rows["ridge"]
    assert "'ridge' from plugin:pb-demo is not registered: the name is taken" in listed.stderr
    ran = _cli(site, "run", "--no-progress", "--models", "mean,demo_mean,demo_cls", "--seeds", "0",
               "--data-dir", data_dir, "--cache-dir", root / "cache", "--out", tmp_path / "runs")
    assert ran.returncode == 0, ran.stderr[-2000:]
    [run] = list((tmp_path / "runs").iterdir())
    _assert_same_predictions(run, "mean", "demo_mean")
    _assert_same_predictions(run, "mean", "demo_cls")
    # Without the plugin installed, the name is unknown: the plugin is where it came from.
    code = main(["run", "--no-progress", "--models", "demo_mean", "--data-dir", str(data_dir), "--out",
                 str(tmp_path / "x")])
    assert code == 2


def test_a_broken_entry_point_is_one_line_naming_it(tmp_path):
    site = _plugin_site(tmp_path, "pb-broken", {"oops": "pb_no_such_module:register"})
    res = _cli(site, "list", "models")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith("error: plugin entry point 'oops' = 'pb_no_such_module:register'")
    assert "from pb-broken" in lines[0] and "ModuleNotFoundError" in lines[0] and "uninstall pb-broken" in lines[0]


def test_class_path_in_a_study_runs_with_its_parameters_checked(data, tmp_path, capsys):
    data_dir, root = data
    study = tmp_path / "study.toml"
    study.write_text('[study]\nsplit = "lopo"\nseeds = [0]\n\n[models.mean]\n\n'
                     '[models.mine]\nclass_path = "tests.benchmark.open_models:TrainMean"\n\n'
                     '[models.mine_shift]\nclass_path = "tests.benchmark.open_models:TrainMean"\nshift = 0.5\n')
    assert main(["run", "--no-progress", "--study", str(study), "--data-dir", str(data_dir), "--cache-dir",
                 str(root / "cache"), "--out", str(tmp_path / "runs")]) == 0
    [run] = list((tmp_path / "runs").iterdir())
    _assert_same_predictions(run, "mean", "mine")
    shifted, base = _preds(run, "mine_shift"), _preds(run, "mean")
    np.testing.assert_allclose(shifted["y_pred"], base["y_pred"] + 0.5, atol=1e-12)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["variants"]["mine_shift"] == {"model": "tests.benchmark.open_models:TrainMean",
                                                            "params": {"shift": 0.5}}
    capsys.readouterr()
    assert main(["list", "models", "--study", str(study)]) == 0
    listed = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.strip()}
    assert listed["mine"].endswith("[source: class_path tests.benchmark.open_models:TrainMean]")
    # A parameter the class does not take, and both model and class_path: one line each, nothing run.
    bad = tmp_path / "bad.toml"
    bad.write_text('[models.mine]\nclass_path = "tests.benchmark.open_models:TrainMean"\nshfit = 0.5\n')
    assert main(["run", "--no-progress", "--study", str(bad), "--data-dir", str(data_dir), "--out",
                 str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "[models.mine]" in err and "shfit" in err and "shift" in err and len(err.strip().splitlines()) == 1
    bad.write_text('[models.mine]\nmodel = "rf"\nclass_path = "tests.benchmark.open_models:TrainMean"\n')
    assert main(["run", "--no-progress", "--study", str(bad), "--data-dir", str(data_dir), "--out",
                 str(tmp_path / "bad")]) == 2
    assert "sets both model and class_path" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_svr_through_evaluate_under_lopo_equals_a_hand_loop(data, tmp_path):
    from sklearn.impute import SimpleImputer
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.svm import SVR

    import benchmark
    from benchmark.refit import open_run

    data_dir, root = data
    result = benchmark.evaluate(["mean", SVR(C=2.0)], split="lopo", seeds=(0,), data_dir=data_dir,
                                cache_dir=root / "cache", out=tmp_path / "runs")
    assert result.models == ["mean", "SVR"] and result.counts["failed"] == 0
    assert set(result.metrics["model"]) == {"mean", "SVR"}
    assert {"model", "seed", "fold", "metric", "target", "value"} <= set(result.metrics.columns)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["config"]["variants"]["SVR"]["model"] == "sklearn.svm._classes:SVR"
    assert manifest["config"]["variants"]["SVR"]["params"]["C"] == 2.0
    # The hand loop: the run's own folds and feature matrix, one SVR per rating.
    asm, store = open_run(result.run_dir, ["SVR"])
    X = np.asarray(asm.matrix("SVR")[np.arange(len(asm.dataset.y))], dtype=float)
    assert np.isnan(X).any()  # what the adapter fills with the training fold's median
    folds = store.read_folds()
    ids = asm.dataset.meta["sample_id"].to_numpy()
    pos = {s: i for i, s in enumerate(ids)}
    got = result.predictions[result.predictions["model"] == "SVR"]
    names = list(asm.dataset.target_names)
    n_folds = folds.n_folds(0)
    assert n_folds == len(set(asm.dataset.meta["player"]))  # lopo: one fold per performer unit
    for k in range(n_folds):
        f = folds.frame[(folds.frame["seed"] == 0) & (folds.frame["fold"] == k)]
        tr = np.array([pos[s] for s in f.loc[f["role"] == "train", "sample_id"]])
        te = np.array([pos[s] for s in f.loc[f["role"] == "test", "sample_id"]])
        imp = SimpleImputer(strategy="median", keep_empty_features=True).fit(X[tr])  # the features hold NaN
        want = MultiOutputRegressor(SVR(C=2.0)).fit(imp.transform(X[tr]), asm.dataset.y[tr]).predict(imp.transform(X[te]))
        g = got[got["fold"] == k].pivot(index="sample_id", columns="target", values="y_pred")
        np.testing.assert_allclose(g.loc[ids[te], names].to_numpy(), want, rtol=1e-10, atol=1e-12)
    # The result's report: tables as DataFrames, written where asked.
    report = result.report(baseline="mean", out=tmp_path / "report", formats=("csv",), n_resamples=200)
    assert "SVR" in set(report.tables["significance"]["model"])
    assert (tmp_path / "report" / "significance.csv").is_file()


def test_a_search_gets_the_grouped_inner_cv_of_the_training_fold():
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.svm import SVR

    from models.adapters import ClassFactory

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 2))
    groups = np.repeat(np.arange(8), 5)
    est = ClassFactory(GridSearchCV)(estimator=SVR(), param_grid={"C": [0.5, 2.0]}, random_state=3)
    seen = []
    real_split = GroupKFold.split

    def spy(self, X, y=None, groups=None):
        for tr, te in real_split(self, X, y, groups):
            seen.append((set(groups[tr]), set(groups[te])))
            yield tr, te

    GroupKFold.split = spy
    try:
        est.fit(X, y, groups=groups)
    finally:
        GroupKFold.split = real_split
    # Two ratings, one search each (MultiOutputRegressor), 5 grouped inner folds each, no group on both sides.
    assert len(seen) == 2 * 5 and all(not (a & b) for a, b in seen)
    assert est.predict(X[:4]).shape == (4, 2)


def test_evaluate_refuses_what_the_cli_refuses(data, tmp_path):
    import benchmark
    from benchmark.errors import ConfigError, UnknownNameError

    data_dir, _ = data
    with pytest.raises(UnknownNameError, match="did you mean 'ridge'"):
        benchmark.evaluate(["ridgee"], data_dir=data_dir, out=tmp_path)

    class Local:
        def fit(self, X, y):
            return self

        def predict(self, X):
            return X

        def get_params(self, deep=False):
            return {}

    with pytest.raises(ConfigError, match="cannot be imported by path"):
        benchmark.evaluate([Local()], data_dir=data_dir, out=tmp_path)
    from sklearn.svm import SVR

    with pytest.raises(ConfigError, match="'ridge' is a registered model"):
        benchmark.evaluate([("ridge", SVR())], data_dir=data_dir, out=tmp_path)
    with pytest.raises(ConfigError, match="given twice"):
        benchmark.evaluate([("a", SVR()), ("a", SVR(C=2.0))], data_dir=data_dir, out=tmp_path)
    with pytest.raises(ConfigError, match="split"):
        benchmark.evaluate(["mean"], split="nope", data_dir=data_dir, out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_cli_and_evaluate_make_the_same_run(data, tmp_path, monkeypatch):
    # benchmark run goes through benchmark.api.run_config, as evaluate does: same plan, same results.
    import benchmark
    import benchmark.api

    data_dir, root = data
    calls = []
    real = benchmark.api.run_config
    monkeypatch.setattr("benchmark.cli_run.run_config", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert main(["run", "--no-progress", "--models", "mean,sklearn.svm:SVR", "--data-dir", str(data_dir),
                 "--cache-dir", str(root / "cache"), "--out", str(tmp_path / "cli")]) == 0
    assert len(calls) == 1
    [cli_run] = list((tmp_path / "cli").iterdir())
    api = benchmark.evaluate(["mean", "sklearn.svm:SVR"], data_dir=data_dir, cache_dir=root / "cache",
                             out=tmp_path / "api")
    for model in ("mean", "sklearn.svm:SVR"):
        pd.testing.assert_frame_equal(_preds(cli_run, model), _preds(api.run_dir, model), check_exact=True)
    a = json.loads((cli_run / "manifest.json").read_text())
    b = json.loads((api.run_dir / "manifest.json").read_text())
    assert a["config"] == b["config"] and a["fold_hash"] == b["fold_hash"]
    assert b["command"] == ["benchmark.evaluate"]

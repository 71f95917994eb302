"""The study file: checked before any job starts, saved in the manifest, overridden by flags."""

import json
from pathlib import Path

import pytest

from benchmark.cli import EXIT_ERROR, main
from benchmark.errors import ConfigError
from benchmark.study import load_study

DOCS_STUDY = Path(__file__).resolve().parents[2] / "docs" / "study.toml"

GOOD = """
[study]
split = "lopo"
seeds = [0, 1]

[models.mean]
[models.ridge_narrow]
model = "ridge"
alphas = [1.0, 10.0]

[models.ensemble_mean]
members = ["mean", "ridge_narrow"]

[report]
baseline = "mean"
n_resamples = 200
"""


def write(tmp_path, text, name="study.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_study_in_docs_is_valid():
    study = load_study(DOCS_STUDY)
    assert {"rf", "rf_deep", "stack", "rf_bag5"} <= set(study["models"])
    assert study["variants"]["rf_deep"] == {"model": "rf", "params": {"min_samples_leaf": 1, "n_estimators": 500}}
    assert study["backend"]["name"] == "joblib"


@pytest.mark.parametrize("text, match", [
    ("[study]\nseed = [0]\n[models.rf]\n", "unknown key 'seed' in \\[study\\]; did you mean 'seeds'"),
    ("[models.rf]\nn_estimator = 10\n", "has no parameter 'n_estimator'; did you mean 'n_estimators'"),
    ("[models.big]\nmodel = 'rff'\n", "unknown model 'rff'; did you mean 'rf'"),
    ("[model.rf]\n", "unknown section \\[model\\].*did you mean 'models'"),
    ("[study]\nsplit = 'lopp'\n[models.rf]\n", "did you mean 'lopo'"),
    ("[study]\nseeds = 3\n[models.rf]\n", "seeds = 3: expected list"),
    ("[backend]\nnmae = 'dask'\n[models.rf]\n", "did you mean 'name'"),
    ("[models.rf]\nrandom_state = 1\n", "no parameter 'random_state'"),
    ("[study]\nsplit = \n", "study file"),
])
def test_mistakes_fail_with_a_close_match(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_study(write(tmp_path, text))


def test_bad_study_fails_before_any_job_starts(fake_data_dir, tmp_path, capsys):
    study = write(tmp_path, "[models.rf]\nmin_samples_lef = 2\n")
    out = tmp_path / "runs"
    assert main(["run", "--no-progress", "--study", str(study), "--data-dir", str(fake_data_dir),
                 "--out", str(out)]) == EXIT_ERROR
    assert "did you mean 'min_samples_leaf'" in capsys.readouterr().err
    assert not out.exists()


def test_study_runs_is_saved_and_flags_override_it(fake_data_dir, tmp_path, capsys):
    study = write(tmp_path, GOOD)
    base = ["--no-progress", "--data-dir", str(fake_data_dir), "--cache-dir", str(tmp_path / "cache")]
    assert main(["run", *base, "--study", str(study), "--seeds", "1", "--out", str(tmp_path / "runs")]) == 0
    [run] = list((tmp_path / "runs").iterdir())
    cfg = json.loads((run / "manifest.json").read_text())["config"]
    assert cfg["seeds"] == [1]  # the flag wins over the file's [0, 1]
    assert cfg["models"] == ["mean", "ridge_narrow", "ensemble_mean"]
    assert cfg["variants"]["ridge_narrow"] == {"model": "ridge", "params": {"alphas": [1.0, 10.0]}}
    assert cfg["study"]["report"]["baseline"] == "mean"
    from benchmark.store import JobKey, RunStore

    assert RunStore(run).read_job_params(JobKey("ridge_narrow", 1, 0))["params"]["alphas"] == [1.0, 10.0]
    capsys.readouterr()
    # resuming with the same study (and flag) recomputes nothing; a changed study is refused
    assert main(["run", *base, "--resume", str(run), "--study", str(study), "--seeds", "1"]) == 0
    assert "0 run" in capsys.readouterr().out
    changed = write(tmp_path, GOOD.replace("10.0", "100.0"), "changed.toml")
    assert main(["run", *base, "--resume", str(run), "--study", str(changed), "--seeds", "1"]) == EXIT_ERROR
    assert "differs in: study, variants" in capsys.readouterr().err


def test_report_options_come_from_flags_then_the_study_then_defaults():
    import argparse

    from benchmark.cli_report import REPORT_DEFAULTS, _report_defaults

    args = argparse.Namespace(baseline=None, ceiling=None, format=None, correction="fdr_bh", n_resamples=None,
                              seed=None, rope=None, plots=None, html=None)
    _report_defaults(args, {"baseline": "mean", "correction": "holm", "n_resamples": 200})
    assert args.baseline == "mean" and args.n_resamples == 200  # from the study
    assert args.correction == "fdr_bh"  # the flag wins
    assert args.rope == REPORT_DEFAULTS["rope"] and args.plots is True and args.ceiling is None

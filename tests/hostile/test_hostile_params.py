"""Issue 17, items 1, 4 and 11: model parameter values, names that shadow registered models, study-file edge
cases. Every one fails in one line with exit 2 before the data is read (so before features, the run directory
and any job); a run in which a whole model failed exits non-zero and keeps the other models' results."""

from __future__ import annotations

import pytest
from hostile_util import assert_one_line_error

from benchmark import execute as execute_mod
from benchmark.errors import ConfigError
from benchmark.params import Float, Int, ModelNames
from benchmark.study import load_study


@pytest.fixture()
def base(fake_data_dir, tmp_path):
    return ["--data-dir", fake_data_dir, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs", "--no-progress"]


@pytest.fixture()
def no_data_read(monkeypatch):
    """Fail the test if the data is read before the options were checked (features and jobs come later still)."""

    def too_late(*a, **k):
        raise AssertionError("the data was read before the model parameters were checked")

    monkeypatch.setattr("benchmark.runner.open_dataset", too_late)


def _study(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("table, needle", [
    ('[models.rf_many]\nmodel = "rf"\nn_estimators = "many"\n', "n_estimators = 'many': expected an integer >= 1"),
    ('[models.rf_neg]\nmodel = "rf"\nn_estimators = -5\n', "n_estimators = -5: expected an integer >= 1"),
    ('[models.rf_half]\nmodel = "rf"\nn_estimators = 2.5\n', "n_estimators = 2.5"),
    ('[models.lgbm_lr]\nmodel = "lgbm"\nlearning_rate = 0\n', "learning_rate = 0: expected a number > 0"),
    ('[models.ridge_a]\nmodel = "ridge"\nalphas = [1.0, -2.0]\n', "alphas = [1.0, -2.0]"),
    ('[models.ast_ten]\nmodel = "ast_tiny"\nepochs = "ten"\n', "epochs = 'ten': expected an integer >= 1"),
    ('[models.ast_zero]\nmodel = "ast_tiny"\nepochs = 0\n', "epochs = 0: expected an integer >= 1"),
    ('[models.ast_nan]\nmodel = "ast_tiny"\nlr = nan\n', "lr = nan: expected a number > 0"),
    ('[models.ast_inf]\nmodel = "ast_tiny"\nlr = inf\n', "lr = inf"),
    ('[models.ast_hinge]\nmodel = "ast_tiny"\nloss = "hinge"\n', "loss = 'hinge': expected one of 'mse'"),
    ('[models.ast_size]\nmodel = "ast_tiny"\nsize = "huge"\n', "size = 'huge': expected one of"),
    ('[models.ast_patch]\nmodel = "ast_tiny"\npatch = [500, 16]\n', "patch (500, 16) is larger than the input"),
    ('[models.hyb]\nmodel = "hybrid"\nfusion = "sum"\n', "fusion = 'sum'"),
    ('[models.bag3]\nmodel = "bag"\nn_seeds = 0\n', "n_seeds = 0"),
])
def test_bad_parameter_values_fail_before_the_data_is_read(base, cli, tmp_path, no_data_read, table, needle):
    code, _, err = cli("run", "--study", _study(tmp_path, table), *base)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cuda_on_a_machine_without_a_gpu_is_refused_before_the_run(base, cli, tmp_path, no_data_read):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = cli("run", "--models", "mean,ast_tiny", "--device", "cuda", *base)
    assert_one_line_error(code, err, "model 'ast_tiny'", "device='cuda' but torch sees no GPU")
    code, _, err = cli("run", "--study", _study(tmp_path, '[models.mean]\n[models.ast_gpu]\nmodel = "ast_tiny"\n'
                                                          'device = "cuda"\n'), *base)
    assert_one_line_error(code, err, "model 'ast_gpu' (a variant of 'ast_tiny')", "sees no GPU")


def test_every_registered_model_declares_every_parameter():
    """One place per family says what each parameter may be; its defaults pass their own checks."""
    from models import MODELS

    for spec in MODELS:
        if not spec.factory.__module__.startswith("models."):
            continue  # a test's own stand-in model (tests/benchmark/faulty.py)
        missing = [p for p in spec.parameter_names() if p not in spec.params]
        assert not missing, (spec.name, missing)
        assert spec.check_params({}, where=spec.name) == {}


def test_constraints_by_hand():
    assert Int(1).problem(3) is None and Int(1).problem(True) and Int(1).problem(0) and Int(1).problem(1.0)
    assert Int(1, also=(-1,)).problem(-1) is None and Int(1, also=(-1,)).problem(-2)
    assert Float(0.0, low_open=True).problem(float("nan")) and Float(0.0, low_open=True).problem(0)
    assert Float(0.0, 1.0).problem(1) is None and Float(0.0, 1.0, high_open=True).problem(1.0)
    assert ModelNames().convert("ridge, rf") == ["ridge", "rf"] and ModelNames().problem("") is not None


def test_a_model_that_failed_in_every_job_makes_the_run_exit_non_zero(base, cli, monkeypatch, tmp_path):
    real = execute_mod._fit_predict

    def broken(spec, params, seed, X_train, *a):
        if spec.name == "ridge":
            raise ValueError("boom")
        return real(spec, params, seed, X_train, *a)

    monkeypatch.setattr(execute_mod, "_fit_predict", broken)
    code, out, err = cli("run", "--models", "mean,ridge", *base)
    assert_one_line_error(code, err, "every job of ridge (4 jobs) failed", "ridge__*.error.txt")
    assert "| mean |" in out and "0/4" in out  # the other model's results are reported
    [run] = list((tmp_path / "runs").iterdir())
    assert (run / "metrics.parquet").is_file() and len(list((run / "jobs").glob("ridge__*.error.txt"))) == 4


def test_a_model_that_failed_in_some_folds_only_is_recorded_and_the_run_succeeds(base, cli, monkeypatch):
    real = execute_mod._fit_predict
    seen = []

    def flaky(spec, params, seed, X_train, *a):
        if spec.name == "ridge":
            seen.append(1)
            if len(seen) == 1:
                raise ValueError("boom")
        return real(spec, params, seed, X_train, *a)

    monkeypatch.setattr(execute_mod, "_fit_predict", flaky)
    code, out, err = cli("run", "--models", "mean,ridge", *base)
    assert code == 0, err
    assert "3/4" in out


# --- item 1: a study table named like a registered model -------------------------------------------------
@pytest.mark.parametrize("text, needle", [
    ('[models.rf]\nmodel = "mean"\n', "[models.rf] sets model = 'mean', but 'rf' is a registered model"),
    ('[models.rf]\nn_estimators = 10\n', "sets n_estimators = 10, but 'rf' is a registered model"),
    ('[models.ast_tiny]\nepochs = 40\n', "give the variant its own name, e.g. [models.ast_tiny_custom]"),
])
def test_a_variant_may_not_take_a_registered_models_name(base, cli, tmp_path, no_data_read, text, needle):
    code, _, err = cli("run", "--study", _study(tmp_path, text), *base)
    assert_one_line_error(code, err, needle)


def test_what_the_command_line_sets_on_a_registered_name_a_study_may_set_too(tmp_path):
    study = load_study(_study(tmp_path, '[models.rf]\n[models.ensemble_mean]\nmembers = ["ridge", "rf"]\n'
                                         '[models.rf_deep]\nmodel = "rf"\nmin_samples_leaf = 1\n'))
    assert study["variants"] == {"ensemble_mean": {"model": "ensemble_mean", "params": {"members": ["ridge", "rf"]}},
                                 "rf_deep": {"model": "rf", "params": {"min_samples_leaf": 1}}}


# --- item 11: study-file edge cases ------------------------------------------------------------------------
def test_a_study_file_that_is_not_utf8_is_one_line(base, cli, tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\n[models.rf]\n")
    code, _, err = cli("run", "--study", path, *base)
    assert_one_line_error(code, err, "is not UTF-8 text", "byte 0xe9 at offset 5")


@pytest.mark.parametrize("text", ['[models.ensemble_mean]\nmembers = "ridge,rf"\n',
                                  '[study]\nmembers = "ridge, rf"\n[models.ensemble_mean]\n'])
def test_members_as_one_comma_separated_string_is_a_list(tmp_path, text):
    study = load_study(_study(tmp_path, text))
    members = study["study"].get("members") or study["variants"]["ensemble_mean"]["params"]["members"]
    assert members == ["ridge", "rf"]


def test_a_comma_separated_members_string_runs_those_members(base, cli, tmp_path):
    code, out, err = cli("run", "--study", _study(tmp_path, '[models.ens]\nmodel = "ensemble_mean"\n'
                                                            'members = "mean,ridge"\n'), *base)
    assert code == 0, err
    assert "| ridge |" in out and "| ens |" in out


def test_empty_seeds_in_a_study_are_refused_like_the_cli(base, cli, tmp_path, no_data_read):
    code, _, err = cli("run", "--study", _study(tmp_path, "[study]\nseeds = []\n[models.rf]\n"), *base)
    assert_one_line_error(code, err, "seeds = []", "no seeds given")
    with pytest.raises(ConfigError, match="members = 3"):
        load_study(_study(tmp_path, "[study]\nmembers = 3\n[models.rf]\n"))


def test_unknown_member_in_a_comma_string_names_the_member(tmp_path):
    with pytest.raises(ConfigError, match="unknown model 'rff'"):
        load_study(_study(tmp_path, '[models.ensemble_mean]\nmembers = "ridge,rff"\n'))

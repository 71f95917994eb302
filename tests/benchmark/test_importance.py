"""`benchmark importance` refits a run's jobs as its runner fitted them: study variants, metadata columns, checkpoints.

The refit goes through the run's own input assembly (benchmark.refit.open_run) and each job's stored
parameters (benchmark.refit.stored_job), so its predictions equal the run's stored ones exactly.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.refit import open_run, stored_job
from benchmark.store import JobKey, RunStore

STUDY = """
[study]
split = "lopo"

[models.rf_small]
model = "rf"
n_estimators = 15
min_samples_leaf = 2

[models.dev_small]
model = "lgbm_dev"
n_estimators = 15
"""


def make_fake_percepiano(root):
    # Several conftest.py files are all named "conftest": load the root one by path for its data generator.
    spec = importlib.util.spec_from_file_location("_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_fake_percepiano(root)


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("variant_run")
    data = make_fake_percepiano(root / "percepiano")
    study = root / "study.toml"
    study.write_text(STUDY)
    assert main(["run", "--no-progress", "--study", str(study), "--data-dir", str(data),
                 "--cache-dir", str(root / "cache"), "--out", str(root / "runs")]) == 0
    [run] = list((root / "runs").iterdir())
    return run


@pytest.mark.parametrize("model", ["rf_small", "dev_small"])
def test_importance_of_a_study_variant_equals_the_runners_fit(variant_run, model, capsys):
    """A variant's name resolves to its base model and parameters (was: 'unknown model'); dev_small reads the
    passage id as a metadata column, as the runner gave it; the refit's predictions are the run's, bit for bit."""
    assert main(["importance", str(variant_run), "--model", model, "--n-repeats", "1", "--max-folds", "2"]) == 0
    stored = json.loads((variant_run / "importance" / f"{model}__family.json").read_text())
    assert stored["model"] == model and stored["jobs"] == [[0, 0], [0, 1]]
    assert stored["max_abs_diff_to_run"] == 0.0
    assert f"importance of {model} by family" in capsys.readouterr().out


def test_stored_job_is_the_job_the_runner_ran(variant_run):
    store = RunStore(variant_run)
    job = stored_job(store, JobKey("rf_small", 0, 1))
    assert job.base == "rf" and job.model_seed == 0
    assert job.param_dict["n_estimators"] == 15 and job.param_dict["min_samples_leaf"] == 2
    assembly, _ = open_run(variant_run, ["dev_small", "rf_small"])
    # lgbm_dev's input carries the excerpt id after its features (registry metadata), rf's does not.
    dev, rf = assembly.matrix("dev_small"), assembly.matrix("rf_small")
    meta = assembly.dataset.meta
    n_features = sum(len(assembly.features.sets[fs]) for fs in assembly.sets("dev_small"))
    assert dev.shape[1] == n_features + 1 and rf.shape[1] == len(assembly.features.sets["midi"])
    assert dev[:, -1].tolist() == pd.factorize(meta["excerpt"])[0].astype(float).tolist()
    with pytest.raises(Exception, match="not in run"):
        open_run(variant_run, ["rf"])


@pytest.mark.slow
def test_importance_of_a_hybrid_started_from_a_checkpoint_equals_the_runners_fit(tmp_path, capsys):
    """--init: the stored parameters name the checkpoint, so the refit starts from it as the run did; the
    permuted units are the families of the hybrid's tabular branch."""
    torch = pytest.importorskip("torch")
    from features.cache import Cache
    from models.ast_config import ASTConfig
    from models.ssast import SSAST, encoder_settings, save_checkpoint

    settings = encoder_settings("ast_ultratiny", "mel")
    cfg = ASTConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings["config"].items()})
    torch.manual_seed(3)
    ssast = SSAST(cfg)
    cache = Cache(tmp_path / "cache")
    manifest = {"key": "k", "corpus": {"fingerprint": "f", "transductive": False}, "encoder": settings,
                "pretrain": {"epochs": 1}}
    ckpt = save_checkpoint(cache, "c" * 64, ssast.encoder, [-40.0, 20.0], manifest)
    data = make_fake_percepiano(tmp_path / "percepiano")
    study = tmp_path / "study.toml"
    study.write_text('[study]\nsplit = "kfold"\nn_splits = 2\ndevice = "cpu"\n\n[models.hybrid]\nsize = "ultratiny"\n'
                     'epochs = 2\nbatch_size = 8\n')
    assert main(["run", "--no-progress", "--study", str(study), "--init", str(ckpt), "--data-dir", str(data),
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]) == 0
    [run] = list((tmp_path / "runs").iterdir())
    params = json.loads((run / "jobs" / "hybrid__seed0__fold000.params.json").read_text())
    assert params["params"]["init"] == str(ckpt)
    assert main(["importance", str(run), "--model", "hybrid", "--n-repeats", "1", "--max-folds", "1"]) == 0
    stored = json.loads((run / "importance" / "hybrid__family.json").read_text())
    assert stored["max_abs_diff_to_run"] == 0.0
    table = RunStore(run).read_importance("hybrid")
    assert set(table["unit"]) and not any(u in ("mel", "roll") for u in table["unit"])

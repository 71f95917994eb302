"""Neural models through the runner and the CLI: the headline command, the manifest, resume mid-training."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import EXIT_INTERRUPTED, main
from benchmark.store import RunStore

STUDY = """
[study]
split = "lopo"
device = "cpu"

[models.rf20]
model = "rf"
n_estimators = 20

[models.ast_quick]
model = "ast_tiny"
epochs = 3
crop = 16
time_pool = 4
batch_size = 8

[models.hybrid_quick]
model = "hybrid"
epochs = 3
crop = 16
time_pool = 4
batch_size = 8
fusion = "gate"
"""


def _tables(run_dir):
    rows, preds = RunStore(run_dir).read_jobs()
    rows = rows.drop(columns=["run_id", "fit_seconds"]).sort_values(["model", "seed", "fold", "metric", "target"])
    preds = preds.sort_values(["model", "seed", "fold", "sample_id", "target"])
    return rows.reset_index(drop=True), preds.reset_index(drop=True)


@pytest.fixture()
def study(tmp_path):
    path = tmp_path / "neural.toml"
    path.write_text(STUDY)
    return path


def _args(fake_data_dir, tmp_path, study, out="runs"):
    return ["run", "--no-progress", "--study", str(study), "--models", "rf20,ast_quick,hybrid_quick", "--split", "lopo",
            "--data-dir", str(fake_data_dir), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / out)]


def test_headline_command_runs_rf_ast_tiny_and_hybrid_under_lopo(fake_data_dir, tmp_path, study, capsys):
    assert main(_args(fake_data_dir, tmp_path, study)) == 0
    [run] = list((tmp_path / "runs").iterdir())
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert set(metrics["model"]) == {"rf20", "ast_quick", "hybrid_quick"}
    assert (metrics["status"] == "ok").all() and metrics.groupby("model")["fold"].nunique().eq(4).all()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["runtime"]["torch"].startswith("2.") and manifest["runtime"]["device"] == "cpu"
    assert manifest["config"]["device"] == "cpu"
    params = json.loads(next((run / "jobs").glob("hybrid_quick*.params.json")).read_text())
    assert params["fitted"]["device"] == "cpu" and params["fitted"]["validation"] == "holdout"
    assert params["params"]["fusion"] == "gate" and params["params"]["epochs"] == 3
    out = capsys.readouterr().out
    assert "| ast_quick |" in out and "| hybrid_quick |" in out


@pytest.mark.slow
def test_a_run_killed_mid_training_and_resumed_gives_the_same_predictions(fake_data_dir, tmp_path, study,
                                                                          monkeypatch, capsys):
    from models import training

    assert main(_args(fake_data_dir, tmp_path, study, "full")) == 0
    [full] = list((tmp_path / "full").iterdir())
    real = training.predict
    calls = []

    def interrupted(*args, **kwargs):  # the 2nd epoch's validation of the 3rd neural job: mid-training
        calls.append(1)
        if len(calls) == 2 * 3 + 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "predict", interrupted)
    assert main(_args(fake_data_dir, tmp_path, study, "killed")) == EXIT_INTERRUPTED
    [run] = list((tmp_path / "killed").iterdir())
    done = len(RunStore(run).job_keys())
    assert 0 < done < 12
    monkeypatch.setattr(training, "predict", real)
    capsys.readouterr()
    assert main(["run", "--no-progress", "--resume", str(run)]) == 0
    assert f"{12 - done} run, {done} resumed" in capsys.readouterr().out
    (ra, pa), (rb, pb) = _tables(full), _tables(run)
    pd.testing.assert_frame_equal(ra, rb, check_exact=True)
    pd.testing.assert_frame_equal(pa, pb, check_exact=True)
    assert np.isfinite(pb["y_pred"]).all()


def test_features_flag_keeps_array_stages_and_rejects_them_for_tabular_models():
    from benchmark.errors import ConfigError
    from benchmark.runner import RunConfig

    cfg = RunConfig(models=["rf", "ast_tiny", "hybrid_roll"], features=["midi"])
    assert cfg.feature_sets("rf") == ["midi"]
    assert cfg.feature_sets("ast_tiny") == ["mel"]
    assert cfg.feature_sets("hybrid_roll") == ["roll", "midi"]
    assert RunConfig(models=["ast_tiny"], features=["roll"]).feature_sets("ast_tiny") == ["roll"]
    with pytest.raises(ConfigError, match="reads a table"):
        RunConfig(models=["rf"], features=["mel"]).feature_sets("rf")


@pytest.mark.slow
def test_verbose_run_shows_every_epoch_also_from_worker_processes(fake_data_dir, tmp_path, study):
    """``benchmark -v run --jobs 2``: each neural job's epochs reach the terminal from its loky worker."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    args = _args(fake_data_dir, tmp_path, study)
    args[args.index("rf,ast_tiny,hybrid")] = "ast_tiny"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "-v", *args, "--jobs", "2"], capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    epochs = re.findall(r"INFO models\.training \[pid (\d+)\]: epoch (\d)/3: train loss", out.stderr)
    assert len({pid for pid, _ in epochs}) >= 1 and str(os.getpid()) not in {pid for pid, _ in epochs}
    assert sum(e == "1" for _, e in epochs) == 4  # every fold's first epoch
    assert len(re.findall(r"INFO models\.training \[pid \d+\]: (stopped early|hit the epoch cap)", out.stderr)) == 4

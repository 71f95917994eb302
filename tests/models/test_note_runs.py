"""A note family through the runner and the CLI (the hybrid: notes stage, table, learnt loss weights and
test-time augmentation): the notes stage is built into the run's cache, every fold trains, the manifest
records torch and the options reach the model."""

import json

import pandas as pd

from benchmark.cli import main

STUDY = """
[study]
split = "lopo"
device = "cpu"
features = ["midi"]    # the hybrid's table without rendering audio (the note stage stays: an array stage)

[models.note_hybrid_quick]
model = "note_hybrid"
epochs = 2
crop = 16
hidden = 8
batch_size = 8
loss = "learned"
tta = 1
"""


def test_a_note_model_runs_under_lopo_from_the_cli(fake_data_dir, tmp_path, capsys):
    study = tmp_path / "notes.toml"
    study.write_text(STUDY)
    args = ["run", "--no-progress", "--study", str(study), "--data-dir", str(fake_data_dir),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]
    assert main(args) == 0
    [run] = list((tmp_path / "runs").iterdir())
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert set(metrics["model"]) == {"note_hybrid_quick"}
    assert (metrics["status"] == "ok").all() and metrics.groupby("model")["fold"].nunique().eq(4).all()
    assert any((tmp_path / "cache" / "notes").rglob("*.npz"))  # the stage went through the run's cache
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["runtime"]["torch"].startswith("2.")
    params = json.loads(next((run / "jobs").glob("note_hybrid_quick*.params.json")).read_text())
    assert params["params"]["loss"] == "learned" and params["params"]["tta"] == 1
    assert set(params["fitted"]["loss_weights"]) == {"mse", "pearson", "rank"}
    out = capsys.readouterr().out
    assert "note_hybrid_quick" in out

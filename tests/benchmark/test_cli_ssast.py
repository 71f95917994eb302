"""``benchmark pretrain``, ``--init``, the ssast feature set and ``benchmark explain`` end to end (slow)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from tests.conftest import unrated_score_midis

pytest.importorskip("torch")


def test_pretrain_errors_are_one_line(tmp_path, fake_data_dir, capsys):
    assert main(["pretrain", "--data-dir", str(fake_data_dir), "--cache-dir", str(tmp_path / "c"),
                 "--corpus", "maestro"]) == 2
    assert "--maestro-dir" in capsys.readouterr().err
    assert main(["pretrain", "--data-dir", str(fake_data_dir), "--cache-dir", str(tmp_path / "c"),
                 "--corpus", "scores"]) == 2
    assert "use any of" in capsys.readouterr().err


def test_ssast_model_without_checkpoint_says_to_pretrain(tmp_path, fake_data_dir, capsys):
    code = main(["run", "--models", "ast_tiny_ssast", "--split", "kfold", "--n-splits", "2", "--data-dir",
                 str(fake_data_dir), "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "runs"),
                 "--no-progress", "--error-score", "raise"])
    assert code == 2
    assert "benchmark pretrain --input mel" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrain_finetune_frozen_features_and_explain(tmp_path, fake_data_dir, capsys):
    unrated_score_midis(fake_data_dir)
    # One near-copy of a rated segment among the score MIDIs: left out, and the manifest says why.
    rated = fake_data_dir / "virtuoso/data/all_2rounds/Schubert_D960_mv2_4bars_Score_1.mid"
    shutil.copy(rated, fake_data_dir / "virtuoso/data/score_midi/copy.mid")
    cache = str(tmp_path / "cache")
    common = ["--data-dir", str(fake_data_dir), "--cache-dir", cache]
    assert main(["pretrain", *common, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "default checkpoint for mel input" in out
    assert "9 items (score 2, synthetic 6, unlabelled 1)" in out and "lists each pair): score 1\n" in out
    from models.ssast import read_checkpoint, resolve_checkpoint

    manifest = read_checkpoint(resolve_checkpoint("default", "mel", cache))[2]
    copies = [e for e in manifest["exclusions"] if e["rated"] == "Schubert_D960_mv2_4bars_Score_1"]
    assert {(e["item"], e["measure"], e["shared"], e["direction"]) for e in copies} == {
        ("copy", "notes", 1.0, "equal size"), ("copy", "onsets", 1.0, "equal size")}
    assert manifest["corpus"]["excluded"]["score"] == 1
    assert main(["pretrain", *common, "--no-progress"]) == 0
    assert "found in the cache" in capsys.readouterr().out
    study = tmp_path / "study.toml"
    study.write_text('[models.ast_ssast2]\nmodel = "ast_tiny_ssast"\nepochs = 2\n[models.hybrid_ssast2]\n'
                     'model = "hybrid"\nepochs = 2\ninit = "default"\n[models.ridge_ssast]\n')
    runs = tmp_path / "runs"
    assert main(["run", "--study", str(study), "--split", "kfold", "--n-splits", "2", *common, "--out", str(runs),
                 "--no-progress", "--error-score", "raise"]) == 0
    run_dir = next(runs.iterdir())
    params = json.loads((run_dir / "jobs" / "ast_ssast2__seed0__fold000.params.json").read_text())
    ptr = json.loads((tmp_path / "cache" / "ssast_ckpt" / "default-mel.json").read_text())
    assert params["fitted"]["init_key"] == ptr["key"]
    assert params["fitted"]["corpus"]["transductive"] is False
    # Fine-tuning keeps the input scale the encoder was pre-trained with (the checkpoint's, not the fold's).
    _, ck_norm, _ = read_checkpoint(resolve_checkpoint("default", "mel", cache))
    with np.load(run_dir / "jobs" / "ast_ssast2__seed0__fold000.state.npz") as state:
        assert state["norm_"].tolist() == ck_norm.tolist()[:2]
    assert params["fitted"]["init_norm"] == ck_norm.tolist()[:2]
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    assert set(metrics["model"]) == {"ast_ssast2", "hybrid_ssast2", "ridge_ssast"}
    assert (metrics["status"] == "ok").all()
    segment = "Schubert_D960_mv2_4bars_2_1"
    assert main(["explain", str(run_dir), segment]) == 0
    png = run_dir / "explain" / f"ast_ssast2__{segment}.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    from models import MODELS

    n_f, n_t = MODELS.build("ast_tiny_ssast").ast_config().grid
    assert f"{n_f}x{n_t} patches over mel" in capsys.readouterr().out
    assert main(["explain", str(run_dir), segment, "--model", "hybrid_ssast2", "-o", str(tmp_path / "h.png")]) == 0
    assert (tmp_path / "h.png").is_file()
    # One line per handcrafted feature with its signed attribution.
    assert re.search(r"^  \S+\s+[+-]\d\.\d{4}$", capsys.readouterr().out, re.M)
    assert main(["explain", str(run_dir), segment, "--model", "ridge_ssast"]) == 2
    assert "not a neural model" in capsys.readouterr().err


def test_init_flag_sets_the_checkpoint_of_every_neural_model(tmp_path):
    from benchmark.cli_ssast import with_init
    from benchmark.errors import ConfigError

    ckpt = tmp_path / "c.npz"
    variants = with_init(["ridge", "ast_tiny", "fast"], {"fast": {"model": "hybrid", "params": {"epochs": 2}}},
                         str(ckpt))
    assert "ridge" not in variants
    assert variants["ast_tiny"] == {"model": "ast_tiny", "params": {"init": str(ckpt.resolve())}}
    assert variants["fast"] == {"model": "hybrid", "params": {"epochs": 2, "init": str(ckpt.resolve())}}
    assert with_init(["ast_tiny"], {}, "default")["ast_tiny"]["params"]["init"] == "default"
    with pytest.raises(ConfigError, match="--init applies to neural models"):
        with_init(["ridge", "rf"], {}, "default")

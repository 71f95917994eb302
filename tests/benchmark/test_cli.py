"""End-to-end CLI runs on the synthetic dataset: outputs, resume, bad input, errors."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import benchmark.execute as execute_mod
import benchmark.runner as runner_mod
from benchmark.cli import EXIT_ERROR, EXIT_INTERRUPTED, main


def run_cli(*args):
    return main(["run", "--no-progress", *args])


def only_run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.fixture()
def base_args(fake_data_dir, tmp_path):
    return ["--data-dir", str(fake_data_dir), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]


def test_run_writes_tidy_rows_predictions_and_manifest(base_args, tmp_path, capsys):
    assert run_cli("--models", "mean,ridge,rf", "--split", "lopo", "--seeds", "0,1", *base_args) == 0
    out = capsys.readouterr().out
    assert "run directory:" in out and "| rf |" in out
    run = only_run_dir(tmp_path / "runs")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["n_samples"] == 24 and manifest["include_score"] is True
    assert manifest["config"]["seeds"] == [0, 1] and len(manifest["data_hash"]) == 64
    assert manifest["versions"]["scikit-learn"] != "not installed"
    rows = pd.read_parquet(run / "metrics.parquet")
    # 3 models x 2 seeds x 4 performers x 19 targets x 6 metrics (no rater file: no rater-spread rows), all ok
    assert len(rows) == 3 * 2 * 4 * 19 * 6 and (rows["status"] == "ok").all()
    assert set(rows.columns) >= {"run_id", "model", "split", "seed", "fold", "target", "metric", "value",
                                 "n_train", "n_test", "fit_seconds", "status", "error"}
    preds = pd.read_parquet(run / "predictions.parquet")
    one = preds[(preds.model == "rf") & (preds.seed == 0)]
    # out-of-fold: every sample predicted exactly once per target
    assert one.groupby(["sample_id", "target"]).size().eq(1).all() and one["sample_id"].nunique() == 24
    # a performer's segments are predicted by the fold that held that performer out
    folds = pd.read_parquet(run / "folds.parquet")
    merged = folds.merge(preds.drop_duplicates("sample_id"), on="sample_id")
    # lopo groups by player, the two deadpan renderings (Score, Score2) forming one unit
    unit = merged["performer"].where(~merged["performer"].isin(["Score", "Score2"]), "Score+Score2")
    assert (merged["group"] == unit).all()
    test = folds[(folds.role == "test") & (folds.seed == 0)].merge(
        preds[(preds.model == "rf") & (preds.seed == 0)].drop_duplicates("sample_id"), on=["sample_id", "fold"])
    assert test.groupby("fold")["performer"].nunique().eq(1).all()
    summary = pd.read_csv(run / "summary.csv")
    assert set(summary["model"]) == {"mean", "ridge", "rf"} and summary["complete"].all()
    # the mean baseline has no correlation to speak of; rf learns the synthetic signal
    rf = summary.set_index("model").loc["rf"]
    assert rf["pooled_pearson_lo"] <= rf["pooled_pearson"] <= rf["pooled_pearson_hi"]
    assert rf["pooled_r2"] > summary.set_index("model").loc["mean", "pooled_r2"]


def test_second_run_reads_feature_cache(base_args, tmp_path, capsys):
    assert run_cli("--models", "mean", *base_args) == 0
    assert "0 cached" in capsys.readouterr().out
    assert run_cli("--models", "mean", *base_args) == 0
    assert "24 cached" in capsys.readouterr().out


def test_interrupt_then_resume_recomputes_nothing_finished(base_args, tmp_path, monkeypatch, capsys):
    calls = []
    real = execute_mod._fit_predict
    interrupt_at = [3]

    def flaky(spec, params, seed, *a):
        calls.append((spec.name, seed))
        if len(calls) == interrupt_at[0]:
            raise KeyboardInterrupt
        return real(spec, params, seed, *a)

    monkeypatch.setattr(execute_mod, "_fit_predict", flaky)
    assert run_cli("--models", "mean,ridge", *base_args) == EXIT_INTERRUPTED
    assert "--resume" in capsys.readouterr().err
    run = only_run_dir(tmp_path / "runs")
    assert len(list((run / "jobs").glob("*.rows.parquet"))) == 2
    calls.clear()
    interrupt_at[0] = -1
    assert run_cli("--resume", str(run)) == 0
    assert len(calls) == 8 - 2  # 2 models x 4 folds, 2 were finished
    assert len(pd.read_parquet(run / "metrics.parquet")) == 8 * 19 * 6
    calls.clear()
    assert run_cli("--resume", str(run)) == 0
    assert calls == []


def test_bad_midi_skip_lists_ids_and_error_stops(base_args, fake_data_dir, tmp_path, capsys):
    midi_dir = fake_data_dir / "virtuoso" / "data" / "all_2rounds"
    (midi_dir / "Schubert_D960_mv2_4bars_1_1.mid").write_bytes(b"")
    data = (midi_dir / "Schubert_D960_mv2_4bars_2_1.mid").read_bytes()
    (midi_dir / "Schubert_D960_mv2_4bars_2_1.mid").write_bytes(data[: len(data) // 2])
    (midi_dir / "Schubert_D960_mv2_4bars_3_1.mid").write_text("this is not MIDI")
    assert run_cli("--models", "mean", "--on-bad-input", "error", *base_args) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert "Schubert_D960_mv2_4bars_1_1" in err and "--on-bad-input skip" in err
    assert run_cli("--models", "mean", "--on-bad-input", "skip", *base_args) == 0
    err = capsys.readouterr().err
    for sid in ("Schubert_D960_mv2_4bars_1_1", "Schubert_D960_mv2_4bars_2_1", "Schubert_D960_mv2_4bars_3_1"):
        assert sid in err
    run = [d for d in (tmp_path / "runs").iterdir() if (d / "metrics.parquet").exists()][0]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["n_samples"] == 21 and len(manifest["skipped_inputs"]) == 3


@pytest.mark.parametrize("args, match", [
    (["--models", "rff"], "did you mean 'rf'"),
    (["--models", "rf", "--split", "lopp"], "did you mean 'lopo'"),
    (["--models", "rf", "--split", "excerpt", "--n-splits", "50"], "n_splits=50"),
    (["--models", "rf", "--split", "lopo", "--data-dir", "/nonexistent/x"], "does not exist"),
    (["--resume", "/nonexistent/run"], "not a run directory"),
    ([], "no models given"),
])
def test_errors_are_one_line_and_nonzero(base_args, args, match, capsys):
    argv = [*base_args, *args]
    if "--data-dir" in args:
        # the explicit bad --data-dir must win over the fixture's one
        argv = ["--cache-dir", base_args[3], "--out", base_args[5], *args]
    assert run_cli(*argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and match in err


def test_failing_fold_is_recorded_and_run_continues(base_args, tmp_path, monkeypatch, capsys):
    real = execute_mod._fit_predict

    def broken(spec, params, seed, X_train, *a):
        if spec.name == "ridge":
            raise ValueError("boom")
        return real(spec, params, seed, X_train, *a)

    monkeypatch.setattr(execute_mod, "_fit_predict", broken)
    # Every job of ridge failed: its row says so, mean's results are kept, and the run exits non-zero.
    assert run_cli("--models", "mean,ridge", *base_args) == EXIT_ERROR
    out, err = capsys.readouterr()
    assert "partial: 0 of 4" in out and "| mean |" in out
    assert "every job of ridge (4 jobs) failed" in err and "ridge__*.error.txt" in err
    run = only_run_dir(tmp_path / "runs")
    rows = pd.read_parquet(run / "metrics.parquet")
    assert (rows[rows.model == "ridge"]["status"] == "failed").all()
    assert rows[rows.model == "ridge"]["error"].str.contains("boom").all()
    # the traceback of a failed job is kept through the store
    from benchmark.store import JobKey, RunStore

    assert "ValueError: boom" in RunStore(run).read_traceback(JobKey("ridge", 0, 0))
    assert run_cli("--models", "ridge", "--error-score", "raise", *base_args) == EXIT_ERROR
    assert "boom" in capsys.readouterr().err


def test_list_and_report(base_args, tmp_path, capsys):
    assert main(["list", "models"]) == 0
    assert "lgbm" in capsys.readouterr().out
    assert main(["list", "splits"]) == 0
    assert "percepiano_performer4" in capsys.readouterr().out
    assert run_cli("--models", "mean", *base_args) == 0
    capsys.readouterr()
    run = only_run_dir(tmp_path / "runs")
    assert main(["report", str(run)]) == 0
    assert "| mean |" in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == EXIT_ERROR


def test_performer4_protocol_scores_fixed_test_set(real_dataset, tmp_path):
    cfg = runner_mod.RunConfig(models=["mean"], split="percepiano_performer4",
                               cache_dir=str(tmp_path / "cache"), data_dir=str(real_dataset.root))
    r = runner_mod.Runner(cfg, tmp_path / "run", progress=False)
    r.run()
    preds = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    per_fold = preds.groupby("fold")["sample_id"].nunique()
    assert list(per_fold) == [193, 193, 193, 193]
    # folds.parquet stores the split's own groups: the paper's performer fold ids, never on both sides
    from reports.rundata import check_groups

    folds = pd.read_parquet(tmp_path / "run" / "folds.parquet")
    assert set(folds.loc[folds.role == "test", "group"]) == {"1", "2"}
    assert check_groups(tmp_path / "run").status == "ok"
    from reports.summary import summary_table

    row = summary_table(tmp_path / "run").iloc[0]
    # the mean baseline's R^2 on a held-out set is slightly negative by construction
    assert -0.2 < row["pooled_r2"] <= 0.0
    assert np.isclose(row["pooled_r2"], row["fold_r2_mean"], atol=1e-9)


def test_feature_docs_lists_every_feature(capsys):
    from features import audio, midi, score

    assert main(["features", "docs"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert len(rows) == len(midi.FEATURES) + len(audio.FEATURES) + len(score.FEATURES)
    assert "| `vel_mean` |" in out and "## `score`" in out

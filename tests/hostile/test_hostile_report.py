"""`benchmark report` on damaged or unfinished runs: one clear line, or a report clearly marked partial."""

from __future__ import annotations

import json
import shutil

import pandas as pd
from hostile_util import assert_one_line_error

from benchmark.store import JobKey, RunStore
from reports.rundata import finished_view, load_run_data, stack_predictions
from reports.scoring import pooled_metric


def _copy(run, tmp_path, name="run"):
    return shutil.copytree(run, tmp_path / name)


def _tear(run, key: JobKey, kind: str = "rows") -> None:
    path = run / "jobs" / f"{key.name}.{kind}.parquet"
    path.write_bytes(path.read_bytes()[:40])  # a writer of another tool killed mid-write


def test_report_on_a_torn_rows_file_names_the_job_and_resume_repairs_it(cli, tmp_path, clean_run):
    run = _copy(clean_run, tmp_path)
    _tear(run, JobKey("ridge", 1, 2))
    code, out, err = cli("report", run, "--no-plots", "--no-html", "--format", "md", "--n-resamples", "50")
    assert code == 0, err
    assert "ridge: 1 of 8 folds not finished (seed 1 fold 2)" in out
    assert "unreadable job files (torn or damaged), left out: ridge__seed1__fold002" in out
    assert f"benchmark run --resume {run}" in out
    significance = (run / "report" / "significance.md").read_text()
    assert "Unfinished run" in significance and "partial: 7 of 8 folds (seeds used: 0)" in significance
    # --resume recomputes exactly that job; then the report is whole again.
    code, _, err = cli("run", "--resume", run, "--no-progress")
    assert code == 0, err
    code, out, err = cli("report", run, "--no-plots", "--no-html", "--format", "md", "--n-resamples", "50")
    assert code == 0 and "not finished" not in out and "unreadable" not in out, out


def test_report_of_an_unfinished_run_uses_the_folds_every_model_finished(cli, tmp_path, clean_run):
    """ridge has no complete seed: the report covers the folds of one seed that both models finished, says
    which are missing and how to finish, and its numbers are those of exactly those folds."""
    run = _copy(clean_run, tmp_path)
    for key in (JobKey("ridge", 0, 1), JobKey("ridge", 1, 2)):
        for p in (run / "jobs").glob(f"{key.name}.*"):
            p.unlink()
    code, out, err = cli("report", run, "--no-html", "--format", "md,csv", "--n-resamples", "50")
    assert code == 0, err
    assert "PARTIAL RUN" in out and "seed 0 folds 0, 2, 3" in out
    assert "ridge: 2 of 8 folds not finished (seed 0 fold 1; seed 1 fold 2)" in out
    assert f"finish the run with: benchmark run --resume {run}" in out
    table = pd.read_csv(run / "report" / "significance.csv").set_index("model")
    # The pooled R^2 of seed 0's folds 0, 2 and 3, computed here from the job files.
    rows, preds = RunStore(run).read_jobs()
    mine = preds[(preds["model"] == "ridge") & (preds["seed"] == 0) & preds["fold"].isin([0, 2, 3])]
    targets = list(json.loads((run / "manifest.json").read_text())["target_names"])
    _, y, stack, _ = stack_predictions(mine, targets, True)
    assert table.loc["ridge", "r2"] == pooled_metric(y, stack, "r2")
    assert table.loc["ridge", "jobs_ok"] == 6 and table.loc["ridge", "status"] == "partial: 6 of 8 folds"
    view = finished_view(load_run_data(run))
    assert view.seeds == [0] and view.planned(0) == [0, 2, 3] and set(view.preds["fold"]) == {0, 2, 3}
    # Every rendering says it is partial: the tables, the figures' files were written from the same view.
    assert "PARTIAL RUN" in (run / "report" / "significance.md").read_text()
    assert "PARTIAL RUN" in (run / "summary.md").read_text()
    assert (run / "report" / "plots" / "per_target_r.png").is_file()


def test_report_when_no_fold_is_finished_by_every_model_is_one_line(cli, tmp_path, clean_run):
    run = _copy(clean_run, tmp_path)
    for name in ["ridge__seed0__fold000", "ridge__seed1__fold000", "mean__seed0__fold001", "mean__seed0__fold002",
                 "mean__seed0__fold003", "mean__seed1__fold001", "mean__seed1__fold002", "mean__seed1__fold003",
                 "ridge__seed0__fold001", "ridge__seed1__fold001"]:
        for p in (run / "jobs").glob(f"{name}.*"):
            p.unlink()
    code, _, err = cli("report", run, "--no-plots", "--no-html")
    assert_one_line_error(code, err, "no fold is finished by every model", "benchmark run --resume")


def test_report_on_a_run_without_folds_blames_the_missing_file(cli, tmp_path, clean_run):
    """A split whose groups come from the notes (passages) keeps them in folds.parquet only."""
    run = _copy(clean_run, tmp_path)
    (run / "folds.parquet").unlink()
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["split"]["group_column"] = "passage"
    (run / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = cli("report", run, "--no-plots", "--no-html", "--no-ceiling")
    assert_one_line_error(code, err, "no folds.parquet", "the run directory is damaged")
    assert "segment" not in err

"""Issue 19: every way a predictions file (``--predictions NAME=FILE``) can be wrong is refused before any job
starts: exit 2, one line naming the file (and the row where there is one), and nothing written where the run
would go. A resume whose imported file changed is refused the same way and leaves the run as it was.

The good file is a finished run's ridge, exported by ``benchmark predictions export`` (lopo, seeds 0 and 1, with
its sidecar); each test damages one thing of a copy.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from hostile_util import assert_one_line_error, run_tables

from benchmark.cli import main
from tests.conftest import PIECES


@pytest.fixture(scope="module")
def good(clean_run, tmp_path_factory):
    """(exported ridge predictions, its table, data dir, cache dir) of the clean run."""
    out = tmp_path_factory.mktemp("imports") / "ridge.csv"
    assert main(["predictions", "export", str(clean_run), "--model", "ridge", "-o", str(out)]) == 0
    root = clean_run.parents[1]
    return out, pd.read_csv(out, dtype={"sample_id": str}), root / "percepiano", root / "cache"


def _write(tmp_path, frame: pd.DataFrame, good_file, sidecar=True, edit_sidecar=None):
    path = tmp_path / "preds.csv"
    frame.to_csv(path, index=False)
    if sidecar:
        meta = json.loads((good_file.parent / (good_file.name + ".json")).read_text())
        if edit_sidecar:
            meta.update(edit_sidecar)
        (tmp_path / "preds.csv.json").write_text(json.dumps(meta))
    return path


def _run_import(cli, good, tmp_path, path, name="ridge_ext"):
    _, _, data, cache = good
    out = tmp_path / "runs"
    code, _, err = cli("run", "--no-progress", "--models", "mean", "--seeds", "0,1", "--data-dir", data,
                       "--cache-dir", cache, "--out", out, "--predictions", f"{name}={path}")
    return code, err, out


def _assert_refused(cli, good, tmp_path, frame, *needles, **write):
    path = _write(tmp_path, frame, good[0], **write)
    code, err, out = _run_import(cli, good, tmp_path, path)
    assert_one_line_error(code, err, f"predictions 'ridge_ext' ({path})", *needles)
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_the_good_file_imports(cli, good, tmp_path):
    # The control: without damage, the same command runs and scores ridge_ext.
    path = _write(tmp_path, good[1], good[0])
    code, err, out = _run_import(cli, good, tmp_path, path)
    assert code == 0, err
    [run] = list(out.iterdir())
    rows, _ = run_tables(run)
    assert set(rows["model"]) == {"mean", "ridge_ext"}


def test_an_unknown_id(cli, good, tmp_path):
    frame = good[1].copy()
    frame.loc[4, "sample_id"] = "Nowhere_8bars_1_1"
    _assert_refused(cli, good, tmp_path, frame, "row 5:", "'Nowhere_8bars_1_1' is not a segment of the dataset")


def test_a_near_miss_id_is_named(cli, good, tmp_path):
    frame = good[1].copy()
    sid = frame.loc[0, "sample_id"]
    frame.loc[0, "sample_id"] = sid + "x"
    _assert_refused(cli, good, tmp_path, frame, "row 1:", f"did you mean {sid!r}")


def test_an_unlabelled_id(cli, good, tmp_path):
    frame = good[1].copy()
    frame.loc[2, "sample_id"] = f"{PIECES[0][0]}_4bars_9_1"  # the fake data's one unlabelled segment
    _assert_refused(cli, good, tmp_path, frame, "row 3:", "is not labelled")


def test_a_target_not_among_the_ratings(cli, good, tmp_path):
    frame = good[1].copy()
    t = frame.loc[7, "target"]
    frame.loc[7, "target"] = t.upper()
    _assert_refused(cli, good, tmp_path, frame, "row 8:", f"target {t.upper()!r} is not one of the dataset's ratings",
                    f"did you mean {t!r}")


def test_a_missing_prediction(cli, good, tmp_path):
    frame = good[1]
    s, k, sid, t = frame.loc[10, ["seed", "fold", "sample_id", "target"]]
    _assert_refused(cli, good, tmp_path, frame.drop(index=10),
                    f"no prediction for seed {s}, fold {k}, segment {sid!r}, target {t!r}")


def test_a_repeated_prediction(cli, good, tmp_path):
    frame = good[1]
    doubled = pd.concat([frame, frame.iloc[[3]]], ignore_index=True)
    _assert_refused(cli, good, tmp_path, doubled, f"rows 4 and {len(frame) + 1} both predict")


def test_a_prediction_from_a_fold_that_trained_on_the_segment(cli, good, tmp_path):
    frame = good[1].copy()
    # Row 1's segment, claimed by another fold of the same seed: that fold trained on it.
    k = int(frame.loc[0, "fold"])
    frame.loc[0, "fold"] = (k + 1) % int(frame["fold"].max() + 1)
    _assert_refused(cli, good, tmp_path, frame, "row 1:", "where the harness trains on it", f"its test fold: {k}")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "", "high"])
def test_a_prediction_that_is_not_a_finite_number(cli, good, tmp_path, value):
    frame = good[1].copy()
    frame["y_pred"] = frame["y_pred"].astype(object)
    frame.loc[5, "y_pred"] = value
    _assert_refused(cli, good, tmp_path, frame, "row 6:", "is not a finite number")


def test_a_seed_the_run_does_not_have(cli, good, tmp_path):
    frame = good[1].copy()
    frame.loc[frame["seed"] == 1, "seed"] = 7
    row = int(np.flatnonzero(frame["seed"] == 7)[0]) + 1
    _assert_refused(cli, good, tmp_path, frame, f"row {row}:", "seed 7 is not a seed of this run", sidecar=False)


def test_a_fold_the_split_does_not_have(cli, good, tmp_path):
    frame = good[1].copy()
    frame.loc[0, "fold"] = 99
    _assert_refused(cli, good, tmp_path, frame, "row 1:", "fold 99 does not exist")


def test_a_missing_column(cli, good, tmp_path):
    _assert_refused(cli, good, tmp_path, good[1].drop(columns="y_pred"), "no column 'y_pred'")


def test_seed_without_fold(cli, good, tmp_path):
    _assert_refused(cli, good, tmp_path, good[1].drop(columns="fold"), "a seed column but no fold column")


def test_a_sidecar_with_other_data(cli, good, tmp_path):
    _assert_refused(cli, good, tmp_path, good[1], "sidecar preds.csv.json has data sha256 0123456789ab",
                    edit_sidecar={"data_sha256": "0123456789abcdef" * 4})


def test_a_sidecar_with_other_folds(cli, good, tmp_path):
    _assert_refused(cli, good, tmp_path, good[1], "sidecar preds.csv.json has fold hash feedfacefeed",
                    "made on other folds", edit_sidecar={"fold_hash": "feedface" * 8})


def test_a_sidecar_with_another_split(cli, good, tmp_path):
    _assert_refused(cli, good, tmp_path, good[1], "says split 'kfold_grouped', the run's is 'lopo'",
                    edit_sidecar={"split": {"name": "kfold_grouped"}})


def test_an_unreadable_sidecar(cli, good, tmp_path):
    path = _write(tmp_path, good[1], good[0], sidecar=False)
    (tmp_path / "preds.csv.json").write_text("{not json")
    code, err, out = _run_import(cli, good, tmp_path, path)
    assert_one_line_error(code, err, "preds.csv.json")
    assert not out.exists() or not any(out.iterdir())


def test_a_file_that_does_not_exist(cli, good, tmp_path):
    code, err, out = _run_import(cli, good, tmp_path, tmp_path / "nope.csv")
    assert_one_line_error(code, err, "nope.csv", "is not a file")
    assert not out.exists()


def test_a_damaged_parquet_file(cli, good, tmp_path):
    path = tmp_path / "preds.parquet"
    path.write_bytes(b"PAR1 not really")
    code, err, out = _run_import(cli, good, tmp_path, path)
    assert_one_line_error(code, err, "preds.parquet")
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("name, needle", [("ridge", "is a registered model"), ("a,b", "is not a model name"),
                                          ("mean", "is a registered model")])
def test_a_name_that_is_taken_or_not_a_name(cli, good, tmp_path, name, needle):
    path = _write(tmp_path, good[1], good[0])
    code, err, out = _run_import(cli, good, tmp_path, path, name=name)
    assert_one_line_error(code, err, needle)
    assert not out.exists()


def test_a_resume_with_a_changed_file_is_refused_and_changes_nothing(cli, good, tmp_path):
    path = _write(tmp_path, good[1], good[0])
    code, err, out = _run_import(cli, good, tmp_path, path)
    assert code == 0, err
    [run] = list(out.iterdir())
    # Every file but the driver lock (rewritten by each driver that takes the run) stays byte for byte.
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "run.lock"}
    changed = good[1].copy()
    changed.loc[0, "y_pred"] += 0.25
    changed.to_csv(path, index=False)
    code, _, err = cli("run", "--resume", run, "--no-progress")
    assert_one_line_error(code, err, "the file changed since the run started", "restore it or start a new run")
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "run.lock"}
    assert after == before
    # Restored, the resume goes through and finds every job done.
    good[1].to_csv(path, index=False)
    assert cli("run", "--resume", run, "--no-progress")[0] == 0
    shutil.rmtree(out)


def test_the_fold_exports_sidecar_vouches_for_a_file_made_elsewhere(cli, good, tmp_path):
    # README's recipe: export the folds, predict elsewhere, copy the folds' sidecar next to the predictions.
    _, table, data, _ = good
    folds = tmp_path / "lopo_folds.csv"
    code, _, err = cli("folds", "export", "--split", "lopo", "--seeds", "0,1", "--data-dir", data, "-o", folds)
    assert code == 0, err
    path = tmp_path / "preds.csv"
    table.to_csv(path, index=False)
    (tmp_path / "preds.csv.json").write_bytes((tmp_path / "lopo_folds.csv.json").read_bytes())
    code, err, out = _run_import(cli, good, tmp_path, path)
    assert code == 0, err
    # The same sidecar with one fold moved is refused: the file was made on other folds.
    f = pd.read_csv(folds, dtype={"sample_id": str})
    test = f[(f["seed"] == 0) & (f["role"] == "test")]
    a, b = test.iloc[0], test[test["fold"] != test.iloc[0]["fold"]].iloc[0]
    f.loc[a.name, "fold"], f.loc[b.name, "fold"] = b["fold"], a["fold"]
    from benchmark.store import Folds

    moved = Folds(f[f["role"] != "validation"][["sample_id", "seed", "fold", "role", "group"]])
    meta = json.loads((tmp_path / "preds.csv.json").read_text())
    meta["fold_hash"] = moved.assignment_hash()
    (tmp_path / "preds.csv.json").write_text(json.dumps(meta))
    (tmp_path / "again").mkdir()
    code, err, out = _run_import(cli, good, tmp_path / "again", path)
    assert_one_line_error(code, err, "made on other folds")
    assert not out.exists() or not any(out.iterdir())


def test_an_imported_model_is_an_ensemble_member_and_listed_as_imported(cli, good, tmp_path):
    # Known answer: ridge_ext is this data's ridge to the last bit, so the mean of ridge and ridge_ext is ridge.
    path, table, data, cache = good
    out = tmp_path / "runs"
    code, _, err = cli("run", "--no-progress", "--models", "ridge,ensemble_mean", "--members", "ridge,ridge_ext",
                       "--seeds", "0,1", "--data-dir", data, "--cache-dir", cache, "--out", out,
                       "--predictions", f"ridge_ext={path}")
    assert code == 0, err
    [run] = list(out.iterdir())
    _, preds = run_tables(run)
    by = {m: p.drop(columns="model").reset_index(drop=True) for m, p in preds.groupby("model")}
    assert set(by) == {"ridge", "ridge_ext", "ensemble_mean"}
    pd.testing.assert_frame_equal(by["ensemble_mean"], by["ridge"], check_exact=True)
    # Ensembles that refit or train on inner predictions cannot use a file: one line each, nothing written.
    study = tmp_path / "bag.toml"
    study.write_text('[models.bag_ext]\nmodel = "bag"\nmember = "ridge_ext"\nn_seeds = 2\n')
    for args, needle in ((("--models", "stack", "--members", "ridge,ridge_ext"), "trains on its members' inner"),
                         (("--study", study), "cannot be refitted")):
        code, _, err = cli("run", "--no-progress", *args, "--seeds", "0,1", "--data-dir", data, "--cache-dir", cache,
                           "--out", tmp_path / "bad", "--predictions", f"ridge_ext={path}")
        assert_one_line_error(code, err, "'ridge_ext' is imported", needle)
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    code, listed, _ = cli("list", "models", "--predictions", f"ridge_ext={path}")
    row = next(ln for ln in listed.splitlines() if ln.startswith("ridge_ext "))
    assert code == 0 and f"predictions from {path.resolve()}" in row and row.endswith("[source: imported]")

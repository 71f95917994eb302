"""PercePiano exported to the generic format and read back through --dataset: the same items, ratings, folds,
noise ceiling, predictions, metrics and report tables as the native loader, bit for bit."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.dataset import load_dataset
from benchmark.dataset_export import export_generic
from benchmark.description import load_described, read_description
from benchmark.errors import ConfigError
from benchmark.raters import rating_array, rating_match_report
from reports.ceiling import noise_ceiling
from splits import SPLITS, make_splits, split_groups, split_info, split_problem
from tests.benchmark.described_util import only_run, run_tables, write_fake_raters
from tests.conftest import REAL_DATA_DIR, _on_ci, make_fake_percepiano

META = ["sample_id", "piece", "composer", "player", "segment", "bars", "excerpt", "midi_path", "score_midi_path",
        "audio_path", "reference"]


@pytest.fixture()
def exported(tmp_path):
    """A fake PercePiano folder with a rater file (16 segments, 4 players) and its generic export."""
    root = make_fake_percepiano(tmp_path / "pp", n_segments=2)
    write_fake_raters(root)
    export_generic(tmp_path / "generic", root)
    return root, tmp_path / "generic"


def _same_meta(a: pd.DataFrame, b: pd.DataFrame) -> None:
    for col in META:
        x, y = a[col], b[col]
        if col.endswith("_path"):  # the same file, reached through another folder
            x = x.map(lambda p: os.path.realpath(p) if isinstance(p, str) and p else None)
            y = y.map(lambda p: os.path.realpath(p) if isinstance(p, str) and p else None)
        assert list(x) == list(y), col
        assert x.dtype == y.dtype or col.endswith("_path"), col


def test_export_reads_back_the_same_items_ratings_and_rater_sheets(exported):
    root, generic = exported
    native, described = load_dataset(root), load_described(generic)
    _same_meta(native.meta, described.meta)
    assert native.y.tobytes() == described.y.tobytes()  # every bit of every rating
    assert described.target_names == native.target_names and described.name == "percepiano"
    assert described.group_columns == ("player", "piece", "composer", "excerpt")
    for by_rater in (True, False):
        a, ids_a = rating_array(root, by_rater=by_rater)
        b, ids_b = rating_array(generic, by_rater=by_rater)
        assert ids_a == ids_b and a.shape == b.shape
        np.testing.assert_array_equal(a, b)  # NaN where unanswered, at the same places
    # The ceiling's random rater splits see the raters in the same order: the same numbers.
    pd.testing.assert_frame_equal(noise_ceiling(root, n_splits=20), noise_ceiling(generic, n_splits=20))
    # ratings.csv holds the mean answer / 7 ([raters] scale): the rater table reproduces the fake's own mismatch.
    assert rating_match_report(generic)["max_abs_diff"] == rating_match_report(root)["max_abs_diff"]
    # Without its reference items: the deadpan player goes, as --exclude-score does natively.
    _same_meta(load_dataset(root, include_score=False).meta, load_described(generic, include_reference=False).meta)


def test_export_refers_to_the_midi_files_and_refuses_to_overwrite(exported):
    root, generic = exported
    table = pd.read_csv(generic / "ratings.csv")
    assert not any(p.suffix == ".mid" for p in generic.iterdir())  # nothing copied
    assert all((generic / p).resolve().is_file() for p in table["midi"])
    desc = read_description(generic)
    assert desc.roles == {"performer": "player", "piece": "piece", "composer": "composer"}
    assert desc.reference_performers == ("Score",) and desc.raters.scale == 7.0
    with pytest.raises(ConfigError, match="exists already"):
        export_generic(generic, root)


def _run(tmp_path, data: list[str], out: str, split: str, models: str) -> Path:
    args = ["run", "--no-progress", "--models", models, "--split", split, *data,
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / out)]
    assert main(args) == 0
    return only_run(tmp_path / out)


def _report(run: Path) -> dict[str, bytes]:
    assert main(["report", str(run), "--n-resamples", "200", "--no-plots", "--no-html", "--format", "csv"]) == 0
    return {p.name: p.read_bytes() for p in sorted((run / "report").glob("*.csv"))}


def _compare(tmp_path, root, generic, split, models, report=True):
    a = _run(tmp_path, ["--data-dir", str(root)], f"native_{split}", split, models)
    b = _run(tmp_path, ["--dataset", str(generic)], f"generic_{split}", split, models)
    for x, y in zip(run_tables(a), run_tables(b), strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    assert pd.read_parquet(a / "folds.parquet").equals(pd.read_parquet(b / "folds.parquet"))
    if report:
        ra, rb = _report(a), _report(b)
        assert ra.keys() == rb.keys() and "per_target.csv" in ra
        assert ra == rb  # every report table, the r / ceiling columns included
        assert "r_over_ceiling" in ra["per_target.csv"].decode()
    return a, b


def test_native_and_described_runs_agree_bit_for_bit(exported, tmp_path, capsys):
    root, generic = exported
    a, b = _compare(tmp_path, root, generic, "lopo", "ridge,rf")
    ma, mb = (json.loads((r / "manifest.json").read_text()) for r in (a, b))
    # The dataset's identity is in the manifest and the data hash: a native and a described run differ there.
    assert ma["dataset"]["kind"] == "percepiano" and mb["dataset"]["kind"] == "described"
    assert mb["dataset"]["description_sha256"] == read_description(generic).sha256
    assert mb["dataset"]["ratings_sha256"] and mb["dataset"]["raters_sha256"]
    assert ma["data_hash"] != mb["data_hash"]
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--n-resamples", "50"]) == 2
    assert "different data" in capsys.readouterr().err


def test_every_split_gives_the_same_folds_and_groups(exported):
    root, generic = exported
    native, described = load_dataset(root), load_described(generic)
    names = [s.name for s in SPLITS]
    assert all(split_problem(n, described.meta, described.group_columns) is None for n in names)
    for name in [*names, "group:excerpt", "kfold_grouped:player"]:
        k = 2 if split_info(name)["n_splits"] else None  # the fake's 16 segments hold 2 pieces, 4 players
        for seed in (0, 1):
            fa = make_splits(name, native.meta, seed=seed, n_splits=k)
            fb = make_splits(name, described.meta, seed=seed, n_splits=k)
            assert len(fa) == len(fb) and all(np.array_equal(x, y) for f, g in zip(fa, fb, strict=True)
                                              for x, y in zip(f, g, strict=True)), name
        ga, gb = split_groups(name, native.meta), split_groups(name, described.meta)
        assert (ga is None and gb is None) or list(ga) == list(gb), name


@pytest.mark.slow
def test_native_and_described_runs_agree_with_lgbm_all(exported, tmp_path):
    """The issue's check on the fake subset: ridge, rf and lgbm_all (MIDI, rendered audio, score features) under
    lopo and kfold_grouped; the full-data check is in docs/benchmarks.md."""
    root, generic = exported
    for split in ("lopo", "kfold_grouped"):
        _compare(tmp_path, root, generic, split, "ridge,rf,lgbm_all")


def test_resume_refuses_another_dataset_or_changed_ratings(exported, tmp_path, capsys):
    root, generic = exported
    run = _run(tmp_path, ["--dataset", str(generic)], "runs", "lopo", "ridge")
    other = tmp_path / "other"
    shutil.copytree(generic, other)
    (other / "dataset.toml").write_text((other / "dataset.toml").read_text().replace("percepiano", "percepiano-copy"))
    capsys.readouterr()
    assert main(["run", "--resume", str(run), "--dataset", str(other)]) == 2
    assert "--dataset" in capsys.readouterr().err
    # The same description, its ratings edited in place: the data hash no longer matches the run's.
    table = pd.read_csv(generic / "ratings.csv", dtype={"player": str})
    table.loc[0, "timing_stable_unstable"] = 0.5
    table.to_csv(generic / "ratings.csv", index=False)
    assert main(["run", "--resume", str(run), "--no-progress"]) == 2
    assert "the data changed" in capsys.readouterr().err


def test_real_percepiano_export_reads_back_identically(tmp_path):
    """The shared PercePiano copy, exported without its rater table: the same 1189 items and ratings."""
    data_dir = Path(os.environ.get("PERCEPIANO_DIR") or REAL_DATA_DIR)
    if not data_dir.is_dir():
        if _on_ci():
            pytest.fail(f"CI=true but the PercePiano copy {data_dir} is missing")
        pytest.skip(f"no PercePiano copy at {data_dir}")
    export_generic(tmp_path / "g", data_dir, raters=False)
    native, described = load_dataset(data_dir), load_described(tmp_path / "g")
    assert described.n_samples == native.n_samples == 1189
    _same_meta(native.meta, described.meta)
    assert native.y.tobytes() == described.y.tobytes()


@pytest.mark.slow
def test_real_percepiano_rater_table_round_trip(tmp_path):
    data_dir = Path(os.environ.get("PERCEPIANO_DIR") or REAL_DATA_DIR)
    if not data_dir.is_dir():
        pytest.skip(f"no PercePiano copy at {data_dir}")
    export_generic(tmp_path / "g", data_dir)
    a, ids_a = rating_array(data_dir)
    b, ids_b = rating_array(tmp_path / "g")
    assert ids_a == ids_b and a.shape == b.shape == (1189, 17, 19)
    np.testing.assert_array_equal(a, b)
    assert rating_match_report(tmp_path / "g")["max_abs_diff"] < 1e-12

"""Issue 19: ``--features file:PATH``. Known answer: the midi features written to a file (rows shuffled, an
extra segment added) and read back as ``file:`` give ridge exactly the predictions it makes on ``midi``; the
file combines with built-in sets; the parsed table is cached under the file's sha256; every bad file is one
line, exit 2, with nothing written; a resume with a changed file is refused.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.dataset import load_dataset
from benchmark.store import RunStore
from features.build import build_features
from features.cache import Cache
from features.external import STAGE
from tests.conftest import make_fake_percepiano


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    data = make_fake_percepiano(root / "percepiano")
    meta = load_dataset(data).meta
    X = build_features(meta, ["midi"], Cache(root / "cache"), progress=False).X
    table = X.reset_index().sample(frac=1.0, random_state=0)  # another row order than the dataset's
    extra = table.iloc[[0]].assign(sample_id="Some_other_segment_9")
    table = pd.concat([table, extra], ignore_index=True)
    path = root / "emb.csv"
    table.to_csv(path, index=False)
    return data, root, path, table


def _run(setup, out, *args):
    data, root, _, _ = setup
    return main(["run", "--no-progress", "--data-dir", str(data), "--cache-dir", str(root / "cache"),
                 "--out", str(out), *map(str, args)])


def _preds(run, model):
    _, preds = RunStore(run).read_jobs()
    p = preds[preds["model"] == model].drop(columns="model")
    return p.sort_values(["seed", "fold", "sample_id", "target"]).reset_index(drop=True)


def test_a_file_of_the_midi_features_scores_as_midi(setup, tmp_path):
    _, root, path, table = setup
    assert _run(setup, tmp_path / "a", "--models", "ridge", "--features", "midi") == 0
    assert _run(setup, tmp_path / "b", "--models", "ridge,ridge_probe", "--features", f"file:{path}") == 0
    [a], [b] = list((tmp_path / "a").iterdir()), list((tmp_path / "b").iterdir())
    pd.testing.assert_frame_equal(_preds(a, "ridge"), _preds(b, "ridge"), check_exact=True)
    assert len(_preds(b, "ridge_probe"))
    manifest = json.loads((b / "manifest.json").read_text())
    name = f"file:{path.resolve()}"
    assert manifest["config"]["features"] == [name]
    assert manifest["feature_sets"] == {name: table.shape[1] - 1}
    from benchmark.hashing import file_sha256

    assert manifest["feature_files"] == {name: file_sha256(path)}
    # One cache entry for the file, keyed by its content.
    assert len(list((root / "cache" / STAGE).rglob("*.npz"))) >= 1


def test_a_file_combines_with_built_in_sets(setup, tmp_path):
    _, _, path, table = setup
    assert _run(setup, tmp_path, "--models", "mean", "--features", f"midi,file:{path}") == 0
    [run] = list(tmp_path.iterdir())
    sets = json.loads((run / "manifest.json").read_text())["feature_sets"]
    assert sets == {"midi": table.shape[1] - 1, f"file:{path.resolve()}": table.shape[1] - 1}


def test_the_cache_is_keyed_by_the_files_content(setup, tmp_path):
    from features.external import external_table

    data, root, path, table = setup
    meta = load_dataset(data).meta
    cache = Cache(tmp_path / "cache")
    first = external_table(f"file:{path}", meta, cache)
    again = external_table(f"file:{path}", meta, cache)  # a hit: what the miss stored
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert list(first.index) == list(meta["sample_id"])  # aligned by id, not by row
    expect = table.set_index("sample_id").loc[meta["sample_id"]].to_numpy()
    np.testing.assert_array_equal(first.to_numpy(), expect)
    changed = tmp_path / "emb.csv"
    t2 = table.copy()
    t2.iloc[:, 1] += 1.0
    t2.to_csv(changed, index=False)
    other = external_table(f"file:{changed}", meta, cache)
    np.testing.assert_array_equal(other.iloc[:, 0].to_numpy(), first.iloc[:, 0].to_numpy() + 1.0)
    assert len(list((tmp_path / "cache" / STAGE).rglob("*.npz"))) == 2


def test_an_npz_file(setup, tmp_path):
    from features.external import external_table

    data, _, _, table = setup
    meta = load_dataset(data).meta
    path = tmp_path / "emb.npz"
    cols = [c for c in table.columns if c != "sample_id"]
    np.savez(path, sample_id=table["sample_id"].to_numpy(str), features=table[cols].to_numpy(float),
             feature_names=np.asarray(cols))
    got = external_table(f"file:{path}", meta, Cache(tmp_path / "cache"))
    np.testing.assert_array_equal(got.to_numpy(), table.set_index("sample_id").loc[meta["sample_id"]].to_numpy())
    assert list(got.columns) == [f"emb.npz:{c}" for c in cols]


def _bad(setup, tmp_path, frame: pd.DataFrame | None, *needles, suffix=".csv", raw: bytes | None = None, capsys):
    path = tmp_path / f"bad{suffix}"
    if raw is not None:
        path.write_bytes(raw)
    elif frame is not None:
        frame.to_csv(path, index=False)
    capsys.readouterr()
    code = _run(setup, tmp_path / "runs", "--models", "ridge", "--features", f"file:{path}")
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for n in needles:
        assert n in err[0], (n, err[0])
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_segment_the_file_lacks(setup, tmp_path, capsys):
    table = setup[3]
    sid = table["sample_id"].iloc[3]
    _bad(setup, tmp_path, table.drop(index=3), f"has no row for segment {sid!r}", "every segment of the run",
         capsys=capsys)


def test_a_repeated_id(setup, tmp_path, capsys):
    table = setup[3]
    _bad(setup, tmp_path, pd.concat([table, table.iloc[[2]]], ignore_index=True),
         f"sample_id {table['sample_id'].iloc[2]!r} appears more than once", f"rows 3 and {len(table) + 1}",
         capsys=capsys)


def test_a_column_that_is_not_numeric(setup, tmp_path, capsys):
    table = setup[3].copy()
    col = table.columns[2]
    table[col] = table[col].astype(object)
    table.loc[5, col] = "loud"
    _bad(setup, tmp_path, table, "row 6", f"column {col!r} = 'loud' is not a number", capsys=capsys)


def test_an_infinite_value(setup, tmp_path, capsys):
    table = setup[3].copy()
    table.iloc[4, 1] = np.inf
    _bad(setup, tmp_path, table, "row 5", "is infinite", capsys=capsys)


def test_no_sample_id_column(setup, tmp_path, capsys):
    _bad(setup, tmp_path, setup[3].rename(columns={"sample_id": "id"}), "no sample_id column", capsys=capsys)


def test_no_feature_columns(setup, tmp_path, capsys):
    _bad(setup, tmp_path, setup[3][["sample_id"]], "no feature columns", capsys=capsys)


def test_no_such_file_and_an_unknown_suffix(setup, tmp_path, capsys):
    for name, needle in ((tmp_path / "nope.csv", "is not a file"), (tmp_path / "emb.txt", "unknown table format")):
        capsys.readouterr()
        assert _run(setup, tmp_path / "runs", "--models", "ridge", "--features", f"file:{name}") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_damaged_npz(setup, tmp_path, capsys):
    _bad(setup, tmp_path, None, "cannot read it as NPZ", suffix=".npz", raw=b"PK\x03\x04 not an archive",
         capsys=capsys)


def test_a_resume_with_a_changed_file_is_refused(setup, tmp_path, capsys):
    table = setup[3]
    path = tmp_path / "emb.csv"
    table.to_csv(path, index=False)
    assert _run(setup, tmp_path / "runs", "--models", "mean", "--features", f"file:{path}") == 0
    [run] = list((tmp_path / "runs").iterdir())
    t2 = table.copy()
    t2.iloc[0, 1] += 1.0
    t2.to_csv(path, index=False)
    capsys.readouterr()
    assert main(["run", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the file changed since the run started" in err[0], err
    table.to_csv(path, index=False)
    assert main(["run", "--resume", str(run), "--no-progress"]) == 0

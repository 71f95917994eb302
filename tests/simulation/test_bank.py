"""Learner banks (simulation/bank.py) on the synthetic dataset: the harness's own pipeline, one file per seed."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from benchmark.errors import ConfigError, DataError
from benchmark.metrics import column_pearson
from simulation.bank import Learner, bank_scores, build_bank, load_design, load_predictions


def _fake(root):
    spec = importlib.util.spec_from_file_location("_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_fake_percepiano(root)


def test_bank_holds_one_file_per_seed_and_resumes(tmp_path):
    data = _fake(tmp_path / "percepiano")
    learner = Learner("rf5", "rf", {"n_estimators": 5})
    root = tmp_path / "banks"
    lines = []
    done = build_bank(root, "lopo", learner, [0, 1, 2], cache_dir=tmp_path / "cache", data_dir=data,
                      notify=lines.append)
    assert done["fitted"] == [0, 1, 2] and len(lines) == 3
    d = load_design(root / "lopo")
    # 4 players in the fake data, the Score rendering its own unit: 4 folds that cover every segment once.
    assert d.n_cells == 4 and not d.seeded and d.partition
    assert np.array_equal(np.sort(np.concatenate(d.cell_rows)), np.arange(d.y.shape[0]))
    assert all(len(set(d.units[r])) == 1 for r in d.cell_rows)
    seeds, preds = load_predictions(root, "lopo", "rf5")
    assert list(seeds) == [0, 1, 2] and preds.shape == (3, 4, d.y.shape[0], 19)
    # The model seed is the only difference between files: bagging makes the predictions differ.
    assert not np.allclose(np.nanmean(preds[0], 0), np.nanmean(preds[1], 0))
    # Scores are each cell's mean Pearson r over targets, from the one Pearson.
    _, scores, _ = bank_scores(root, "lopo", "rf5")
    rows = d.cell_rows[1]
    expect = np.nanmean(column_pearson(d.y[rows], preds[2, 1, rows].astype(float)))
    assert scores[2, 1] == pytest.approx(expect, rel=1e-5)
    # Rerunning skips what is on disk; asking for more seeds fits only those.
    again = build_bank(root, "lopo", learner, [1, 2, 3], cache_dir=tmp_path / "cache", data_dir=data,
                       notify=lines.append)
    assert again["skipped"] == [1, 2] and again["fitted"] == [3]
    assert bank_scores(root, "lopo", "rf5")[1].shape == (4, 4)


def test_bank_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown bank design 'lopx'"):
        build_bank(tmp_path, "lopx", Learner("x", "rf"), [0])
    with pytest.raises(DataError, match="no bank design"):
        load_design(tmp_path / "lopo")

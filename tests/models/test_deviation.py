"""Passage-consensus deviation features: known answers and no test-fold information in the consensus."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from benchmark.execute import RunInputs, run_job
from benchmark.jobs import Job
from benchmark.store import JobKey
from models import MODELS
from models.deviation import PassageDeviation

NAN = np.nan

# Passage 0 has three training performances (one with a missing second feature), passage 1 one.
X_TRAIN = np.array([[1.0, 10.0], [3.0, NAN], [5.0, 30.0], [7.0, 40.0]])
IDS_TRAIN = np.array([0.0, 0.0, 0.0, 1.0])


def test_training_deviation_leaves_each_segment_out_of_its_own_consensus():
    dev = PassageDeviation().fit(X_TRAIN, IDS_TRAIN).transform_train(X_TRAIN, IDS_TRAIN)
    expected = np.array([
        [1 - (3 + 5) / 2, 10 - 30],   # others of passage 0: rows 1, 2 (row 1 has no 2nd feature)
        [3 - (1 + 5) / 2, NAN],       # its own 2nd feature is missing
        [5 - (1 + 3) / 2, 30 - 10],
        [NAN, NAN],                   # passage 1 has no other performance
    ])
    np.testing.assert_allclose(dev, expected)


def test_new_segments_deviate_from_the_whole_training_consensus():
    fitted = PassageDeviation().fit(X_TRAIN, IDS_TRAIN)
    dev = fitted.transform(np.array([[2.0, 20.0], [9.0, 9.0], [8.0, NAN]]), np.array([0.0, 5.0, 1.0]))
    expected = np.array([
        [2 - (1 + 3 + 5) / 3, 20 - (10 + 30) / 2],
        [NAN, NAN],                   # passage 5 is not in training
        [8 - 7, NAN],
    ])
    np.testing.assert_allclose(dev, expected)


def test_nan_passage_id_gives_nan_deviation_and_is_left_out_of_consensus():
    ids = np.array([0.0, 0.0, NAN, 1.0])
    fitted = PassageDeviation().fit(X_TRAIN, ids)
    np.testing.assert_allclose(fitted.transform_train(X_TRAIN, ids)[:, 0], [1 - 3, 3 - 1, NAN, NAN])
    np.testing.assert_allclose(fitted.transform(np.array([[4.0, 4.0]]), np.array([NAN])), [[NAN, NAN]])


def test_transform_before_fit_raises():
    with pytest.raises(NotFittedError, match="not fitted"):
        PassageDeviation().transform(X_TRAIN, IDS_TRAIN)
    with pytest.raises(NotFittedError, match="not fitted"):
        MODELS.build("lgbm_dev").predict(np.c_[X_TRAIN, IDS_TRAIN])


def test_model_needs_a_passage_column():
    with pytest.raises(ValueError, match="passage id last"):
        MODELS.build("lgbm_dev").fit(np.ones((5, 1)), np.ones((5, 19)))


def test_registry_asks_the_runner_for_the_excerpt_column():
    assert MODELS.get("lgbm_dev").extra["meta_columns"] == ("excerpt",)


def _problem(seed=0):
    """30 passages x 6 players; the label depends on how a player's feature deviates from the passage mean."""
    rng = np.random.default_rng(seed)
    n_pass, n_play = 30, 6
    passage_level = rng.normal(0, 3, (n_pass, 1, 4))
    player = rng.normal(0, 1, (n_pass, n_play, 4))
    X = (passage_level + player).reshape(-1, 4)
    ids = np.repeat(np.arange(n_pass), n_play).astype(float)
    players = np.tile(np.arange(n_play), n_pass)
    dev = player.reshape(-1, 4) - player.mean(axis=1, keepdims=True).repeat(n_play, axis=1).reshape(-1, 4)
    y = np.tile(dev[:, :1], (1, 19)) + rng.normal(0, 0.05, (len(X), 19))
    return np.c_[X, ids], y, players


def _job_predictions(M, y, players, test_player=0):
    te = np.flatnonzero(players == test_player)
    tr = np.flatnonzero(players != test_player)
    ctx = RunInputs(sample_ids=np.arange(len(M)).astype(str), y=y, groups=players,
                    folds={(0, 0): (tr, te)}, matrices={"lgbm_dev": M})
    out = run_job(Job(JobKey("lgbm_dev", 0, 0), "lgbm_dev", params=(("n_estimators", 40),)), MODELS.get("lgbm_dev"),
                  ctx)
    assert out.ok, out.traceback
    return out.pred, te


def test_poisoned_test_fold_changes_neither_consensus_nor_other_predictions():
    M, y, players = _problem()
    clean, te = _job_predictions(M, y, players)
    poisoned_M, poisoned_y = M.copy(), y.copy()
    poisoned_M[te[1:], :-1] = 1e6   # every test segment but the first: absurd features...
    poisoned_y[te] = -1e6           # ...and every test label
    dirty, _ = _job_predictions(poisoned_M, poisoned_y, players)
    np.testing.assert_array_equal(clean[0], dirty[0])

    # The fitted consensus is the training fold's, whatever the test fold holds.
    tr = players != 0
    a = MODELS.build("lgbm_dev", n_estimators=5, random_state=0).fit(M[tr], y[tr], groups=players[tr])
    b = MODELS.build("lgbm_dev", n_estimators=5, random_state=0).fit(poisoned_M[tr], poisoned_y[tr],
                                                                      groups=players[tr])
    np.testing.assert_array_equal(a.deviation_.sums_, b.deviation_.sums_)
    np.testing.assert_array_equal(a.deviation_.counts_, b.deviation_.counts_)
    np.testing.assert_allclose(a.deviation_.sums_[:, 0], [M[tr & (M[:, -1] == p), 0].sum() for p in range(30)])


def test_deviation_features_learn_what_absolute_features_cannot():
    """A relative signal (player vs passage) that the lgbm on raw features finds hard, lgbm_dev finds."""
    M, y, players = _problem(1)
    tr, te = players != 0, players == 0
    dev = MODELS.build("lgbm_dev", random_state=0).fit(M[tr], y[tr]).predict(M[te])
    raw = MODELS.build("lgbm", random_state=0).fit(M[tr, :-1], y[tr]).predict(M[te, :-1])
    r_dev = np.corrcoef(dev[:, 0], y[te, 0])[0, 1]
    r_raw = np.corrcoef(raw[:, 0], y[te, 0])[0, 1]
    assert r_dev > 0.8 and r_dev > r_raw + 0.2, (r_dev, r_raw)


def test_runner_appends_the_excerpt_codes_to_lgbm_dev_matrix_only(fake_data_dir, tmp_path):
    import pandas as pd

    from benchmark.runner import RunConfig, Runner

    cfg = RunConfig(models=["lgbm", "lgbm_dev"], features=["midi"], split="lopo", data_dir=str(fake_data_dir),
                    cache_dir=str(tmp_path / "cache"))
    runner = Runner(cfg, tmp_path / "run", progress=False)
    runner.prepare()
    plain, with_ids = runner._matrix("lgbm"), runner._matrix("lgbm_dev")
    np.testing.assert_array_equal(with_ids[:, :-1], plain)
    excerpt = runner.dataset.meta["excerpt"].to_numpy()
    np.testing.assert_array_equal(with_ids[:, -1], pd.factorize(excerpt)[0])
    # one code per excerpt: segments share a code exactly when they play the same excerpt
    assert len(np.unique(with_ids[:, -1])) == len(set(excerpt)) < len(excerpt)

"""Tests for the split registry: common properties, the paper's performer folds, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.errors import ConfigError, DataError, UnknownNameError
from splits import (
    SPLITS,
    make_splits,
    make_validation_folds,
    performer_fold_id,
    performer_fold_ids,
    split_groups,
    split_info,
    validation_fold_ids,
)
from splits.performer import BEETHOVEN_PLAYERS

GROUP_COLUMNS = ("player", "piece", "composer", "excerpt", "passage", "performance")
PARTITIONING = [name for name in SPLITS.names() if split_info(name)["partition"]]
SEEDED = [name for name in SPLITS.names() if split_info(name)["seeded"]]
GROUPED = [name for name in SPLITS.names() if split_info(name)["group_column"]]
FIXED_FOLDS = [name for name in SPLITS.names() if split_info(name)["n_splits"] is None]

N_PERFORMANCES = 257
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def labels(draw, n: int, min_groups: int, max_groups: int) -> list[str]:
    """``n`` group labels with exactly ``g`` distinct values and random group sizes."""
    g = draw(st.integers(min_groups, min(n, max_groups)))
    values = list(range(g)) + draw(st.lists(st.integers(0, g - 1), min_size=n - g, max_size=n - g))
    return [f"g{v}" for v in draw(st.permutations(values))]


@st.composite
def metas(draw, min_samples: int = 2, max_samples: int = 40, min_groups: int = 2, max_groups: int = 8):
    """Synthetic metadata with random group columns and a non-default index."""
    n = draw(st.integers(max(min_samples, min_groups), max_samples))
    columns = {c: draw(labels(n, min_groups, max_groups)) for c in GROUP_COLUMNS}
    index = pd.Index(np.arange(n)[::-1] + 1000)
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], **columns}, index=index)


def meta_with(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def assert_valid_folds(folds, n_samples: int, groups=None, partition: bool = True) -> None:
    """The checks every splitter must pass (house style)."""
    assert folds
    for train, test in folds:
        assert train.dtype.kind == "i" and test.dtype.kind == "i"
        assert train.size and test.size
        assert np.intersect1d(train, test).size == 0
        if partition:
            assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n_samples))
        if groups is not None:
            assert not set(groups[train]) & set(groups[test])
    if partition:
        tests = np.sort(np.concatenate([test for _, test in folds]))
        assert np.array_equal(tests, np.arange(n_samples))


def partition_of(folds) -> set[frozenset[int]]:
    return {frozenset(test.tolist()) for _, test in folds}


def test_registry_names():
    assert SPLITS.names() == sorted(
        ["kfold", "kfold_grouped", "lopo", "excerpt", "excerpt_leaky", "piece", "composer", "percepiano_performer4"]
    )


def test_leaky_splits_are_flagged():
    assert [n for n in SPLITS.names() if split_info(n)["leaks"]] == ["excerpt_leaky", "kfold"]


@pytest.mark.parametrize("name", SPLITS.names())
def test_split_info_keys(name):
    info = split_info(name)
    assert {"group_column", "partition", "seeded", "description"} <= set(info)
    assert info["description"]
    assert info["partition"] is (name != "percepiano_performer4")


@pytest.mark.parametrize("name", PARTITIONING)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_partition_properties(name, data):
    meta = data.draw(metas())
    info = split_info(name)
    column = info["group_column"]
    groups = meta[column].to_numpy() if column else None
    n_units = len(set(groups)) if column else len(meta)
    n_splits = data.draw(st.integers(2, min(n_units, 6))) if info["n_splits"] else None
    seed = data.draw(st.integers(0, 2**32 - 1))

    folds = make_splits(name, meta, seed=seed, n_splits=n_splits)

    assert_valid_folds(folds, len(meta), groups)
    assert len(folds) == (n_splits or n_units)
    again = make_splits(name, meta, seed=seed, n_splits=n_splits)
    for (train, test), (train2, test2) in zip(folds, again, strict=True):
        assert np.array_equal(train, train2) and np.array_equal(test, test2)


@pytest.mark.parametrize("name", SEEDED)
@settings(max_examples=20, deadline=None, derandomize=True)
@given(meta=metas(min_samples=20, max_samples=60, min_groups=20, max_groups=30))
def test_seed_changes_folds(name, meta):
    assert partition_of(make_splits(name, meta, seed=0)) != partition_of(make_splits(name, meta, seed=1))


@pytest.mark.parametrize("name", [n for n in FIXED_FOLDS if n != "percepiano_performer4"])
def test_unseeded_splits_ignore_seed(name):
    meta = meta_with(player=list("aabbcc"), piece=list("ppqqrr"), composer=list("xxyyxx"), excerpt=list("eeffgg"),
                     passage=list("eeffgg"), performance=list("aabbcc"))
    assert partition_of(make_splits(name, meta, seed=0)) == partition_of(make_splits(name, meta, seed=7))


@pytest.mark.parametrize(
    ("player", "composer", "expected"),
    [
        ("Score", "Schubert", 0),
        ("Score2", "Beethoven", -1),
        ("1", "Beethoven", 0),
        ("2", "Beethoven", 1),
        ("7", "Beethoven", 4),
        ("26", "Beethoven", 11),
        ("0", "Schubert", 0),
        ("3", "Schubert", 3),
        ("13", "Schubert", 13),
        (4, "Beethoven", 3),
    ],
)
def test_performer_fold_id(player, composer, expected):
    assert performer_fold_id(player, composer) == expected


@pytest.mark.parametrize(
    ("player", "composer", "match"),
    [
        ("5", "Beethoven", "not in the upstream performer list"),
        ("Pianoteq", "Schubert", "neither a number"),
        ("1", "Mozart", "no performer fold rule"),
    ],
)
def test_performer_fold_id_rejects(player, composer, match):
    with pytest.raises(DataError, match=match):
        performer_fold_id(player, composer)


def test_validation_fold_ids():
    assert [validation_fold_ids(k) for k in range(4)] == [(3, 4), (5, 6), (7, 8), (9, 10)]
    with pytest.raises(ConfigError, match="out of range"):
        validation_fold_ids(4)


def test_performer4_hand_case():
    meta = meta_with(
        player=["Score", "1", "2", "3", "7", "5", "8", "10", "26", "Score2"],
        composer=["Schubert", "Schubert", "Beethoven", "Schubert", "Beethoven"]
        + ["Schubert"] * 3
        + ["Beethoven", "Schubert"],
    )
    assert performer_fold_ids(meta).tolist() == [0, 1, 1, 3, 4, 5, 8, 10, 11, -1]
    folds = make_splits("percepiano_performer4", meta)
    validation = make_validation_folds("percepiano_performer4", meta)
    expected_val = [[3, 4], [5], [6], [7]]
    assert [v.tolist() for v in validation] == expected_val
    for (train, test), val in zip(folds, expected_val, strict=True):
        assert test.tolist() == [1, 2]
        assert train.tolist() == sorted(set(range(10)) - {1, 2} - set(val))


@st.composite
def performer_metas(draw):
    schubert = [str(p) for p in range(14)] + ["Score", "Score2"]
    beethoven = [str(p) for p in BEETHOVEN_PLAYERS] + ["Score", "Score2"]
    n = draw(st.integers(0, 40))
    composers = draw(st.lists(st.sampled_from(["Schubert", "Beethoven"]), min_size=n, max_size=n))
    players = [draw(st.sampled_from(schubert if c == "Schubert" else beethoven)) for c in composers]
    # One test row and one always-train row, so that no fold comes out empty.
    return meta_with(player=["1", "Score", *players], composer=["Schubert", "Schubert", *composers])


@settings(max_examples=60, deadline=None)
@given(meta=performer_metas())
def test_performer4_properties(meta):
    ids = performer_fold_ids(meta)
    folds = make_splits("percepiano_performer4", meta)
    validation = make_validation_folds("percepiano_performer4", meta)
    assert len(folds) == len(validation) == 4
    assert_valid_folds(folds, len(meta), ids, partition=False)
    always_train = np.flatnonzero(~np.isin(ids, np.arange(1, 11)))
    for k, ((train, test), val) in enumerate(zip(folds, validation, strict=True)):
        assert test.tolist() == np.flatnonzero(np.isin(ids, [1, 2])).tolist()
        assert val.tolist() == np.flatnonzero(np.isin(ids, [2 * k + 3, 2 * k + 4])).tolist()
        assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(meta)))
        assert np.intersect1d(train, val).size == 0 and np.intersect1d(val, test).size == 0
        assert np.isin(always_train, train).all()


@pytest.mark.parametrize("name", GROUPED)
def test_group_splitter_without_groups_raises(name):
    column = split_info(name)["group_column"]
    with pytest.raises(ConfigError, match=f"split '{name}' .*'{column}'"):
        list(SPLITS.build(name).split(np.zeros((6, 1))))


@pytest.mark.parametrize("name", SPLITS.names())
def test_sklearn_splitter_api(name):
    meta = meta_with(
        player=["1", "2", "3", "4", "7", "1", "2", "3"],
        composer=["Schubert"] * 4 + ["Beethoven"] * 4,
        piece=list("aabbccdd"),
        excerpt=list("abcdabcd"),
        passage=list("abcdabcd"),
        performance=list("abcdefgh"),
    )
    splitter = SPLITS.build(name)
    column = split_info(name)["group_column"]
    groups = None
    if name == "percepiano_performer4":
        groups = performer_fold_ids(meta)
    elif column:
        groups = meta[column].to_numpy()
    X = np.zeros((len(meta), 1))
    pairs = list(splitter.split(X, None, groups))
    assert len(pairs) == splitter.get_n_splits(X, None, groups)
    assert all(train.dtype.kind == "i" and test.dtype.kind == "i" for train, test in pairs)


def test_lopo_holds_both_deadpan_renderings_out_together():
    # Score and Score2 are note-identical in some excerpts: one unit, one fold; pianists one fold each.
    meta = meta_with(excerpt=list("abcabcab"), player=["1", "1", "2", "2", "Score", "Score2", "Score", "Score2"],
                     piece=list("pppppppp"))
    folds = make_splits("lopo", meta)
    assert len(folds) == 3
    tests = sorted(sorted(te.tolist()) for _, te in folds)
    assert tests == [[0, 1], [2, 3], [4, 5, 6, 7]]
    assert list(split_groups("lopo", meta)) == ["1", "1", "2", "2", *["Score+Score2"] * 4]
    assert split_info("lopo")["group_label"] == "performer"


def test_lopo_n_splits_needs_groups():
    with pytest.raises(ConfigError, match="'player'"):
        SPLITS.build("lopo").get_n_splits(np.zeros((3, 1)))


FOUR_EXCERPTS = meta_with(excerpt=list("abcdabcd"), player=list("11223344"), piece=list("pppppppp"))
FOUR_PASSAGES = FOUR_EXCERPTS.assign(passage=list("abcdabcd"))


@pytest.mark.parametrize(
    ("name", "meta", "kwargs", "match"),
    [
        (
            "excerpt_leaky",
            FOUR_EXCERPTS,
            {"n_splits": 10},
            r"split 'excerpt_leaky': n_splits=10 > n_groups=4 \(column 'excerpt'\); use fewer folds",
        ),
        ("excerpt_leaky", FOUR_EXCERPTS.iloc[:3], {}, r"n_splits=4 > n_groups=3 \(column 'excerpt'\)"),
        ("excerpt", FOUR_PASSAGES.iloc[:3], {}, r"n_splits=4 > n_groups=3 \(column 'passage'\)"),
        ("excerpt", FOUR_EXCERPTS, {}, r"split 'excerpt' needs the column 'midi_path'"),
        ("kfold_grouped", FOUR_EXCERPTS, {}, r"split 'kfold_grouped' needs the column 'midi_path'"),
        ("kfold", FOUR_EXCERPTS, {"n_splits": 9}, r"split 'kfold': n_splits=9 > n_samples=8; use fewer folds"),
        ("kfold", FOUR_EXCERPTS, {"n_splits": 1}, r"n_splits=1 must be at least 2"),
        ("excerpt", FOUR_EXCERPTS, {"n_splits": 0}, r"n_splits=0 must be at least 2"),
        ("kfold", FOUR_EXCERPTS, {"n_splits": 2.0}, r"n_splits=2.0 must be an integer"),
        ("kfold", FOUR_EXCERPTS, {"seed": -1}, r"seed=-1 must be between 0 and"),
        ("kfold", FOUR_EXCERPTS, {"seed": True}, r"seed=True must be an integer"),
        ("lopo", FOUR_EXCERPTS, {"n_splits": 3}, r"split 'lopo' does not take n_splits"),
        ("piece", FOUR_EXCERPTS, {"n_splits": 3}, r"split 'piece' does not take n_splits"),
        ("composer", FOUR_EXCERPTS, {"n_splits": 2}, r"split 'composer' does not take n_splits"),
        ("percepiano_performer4", FOUR_EXCERPTS, {"n_splits": 4}, r"does not take n_splits"),
        ("composer", FOUR_EXCERPTS, {}, r"split 'composer' needs the column 'composer'"),
        ("lopo", FOUR_EXCERPTS.drop(columns="player"), {}, r"split 'lopo' needs the column 'player'"),
        ("percepiano_performer4", FOUR_EXCERPTS, {}, r"needs the column 'composer'"),
        ("piece", FOUR_EXCERPTS, {}, r"n_groups=1 \(column 'piece'\); at least 2 groups are needed"),
        ("lopo", FOUR_EXCERPTS.assign(player=[None, *"1223344"]), {}, r"column 'player' has 1 missing values"),
        ("kfold", FOUR_EXCERPTS.iloc[:1], {}, r"meta has 1 rows; at least 2"),
    ],
)
def test_make_splits_errors(name, meta, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_splits(name, meta, **kwargs)


def test_performer4_empty_test_set_raises():
    meta = meta_with(player=["Score", "3", "5"], composer=["Schubert"] * 3)
    with pytest.raises(ConfigError, match="fixed test set would be empty"):
        make_splits("percepiano_performer4", meta)


def test_validation_folds_only_where_defined():
    with pytest.raises(ConfigError, match="split 'kfold' has no validation folds"):
        make_validation_folds("kfold", FOUR_EXCERPTS)


def test_unknown_split_suggests_close_match():
    with pytest.raises(UnknownNameError, match="unknown split 'lopp'; did you mean 'lopo'"):
        make_splits("lopp", FOUR_EXCERPTS)
    with pytest.raises(UnknownNameError, match="did you mean"):
        split_info("kfld")


@pytest.mark.parametrize("name", SPLITS.names())
def test_real_data_common_checks(real_dataset, name):
    meta = real_dataset.meta
    info = split_info(name)
    groups = split_groups(name, meta)
    assert_valid_folds(make_splits(name, meta, seed=3), len(meta), groups, partition=info["partition"])


@pytest.mark.parametrize(
    ("name", "n_folds"), [("lopo", 21), ("piece", 20), ("composer", 2), ("excerpt", 4), ("excerpt_leaky", 4), ("kfold", 5),
                          ("kfold_grouped", 5)]
)
def test_real_data_fold_counts(real_dataset, name, n_folds):
    assert len(make_splits(name, real_dataset.meta)) == n_folds


def test_real_data_groups(real_dataset):
    meta = real_dataset.meta
    assert len(meta) == 1189
    assert meta["excerpt"].nunique() == 99
    assert len(make_splits("excerpt_leaky", meta, n_splits=99)) == 99
    # Overlapping excerpts (16-bar ones and their 8-bar cuts, D960 mv3's repeats) merge into 48 passages.
    assert len(set(split_groups("excerpt", meta))) == 48
    assert len(make_splits("excerpt", meta, n_splits=48)) == 48
    # 261 performances (piece x player), less the Score/Score2 ones that hold note-identical segments.
    assert len(set(split_groups("kfold_grouped", meta))) == N_PERFORMANCES


def test_real_data_lopo_holds_the_deadpan_renderings_out_together(real_dataset):
    meta = real_dataset.meta
    deadpan = np.flatnonzero(meta["player"].isin(["Score", "Score2"]).to_numpy())
    assert len(deadpan) == 116
    folds = make_splits("lopo", meta)
    held = [k for k, (_, te) in enumerate(folds) if np.isin(deadpan, te).any()]
    assert len(held) == 1
    assert sorted(folds[held[0]][1].tolist()) == deadpan.tolist()
    # Every other fold leaves one pianist out.
    players = meta["player"].to_numpy()
    assert all(len(set(players[te])) == 1 for k, (_, te) in enumerate(folds) if k != held[0])


def test_real_data_performer4_sizes(real_dataset):
    meta = real_dataset.meta
    folds = make_splits("percepiano_performer4", meta)
    validation = make_validation_folds("percepiano_performer4", meta)
    test = folds[0][1]
    assert len(test) == 193
    assert all(np.array_equal(t, test) for _, t in folds)
    assert [len(v) for v in validation] == [175, 175, 162, 175]
    assert [len(train) for train, _ in folds] == [1189 - 193 - len(v) for v in validation]
    always_train = set.intersection(*(set(train.tolist()) for train, _ in folds))
    assert len(always_train) == 309

"""D2, D7 (labels): keys unique after normalisation, values JSON numbers in the documented range, the
offending key named; row alignment asserted where features meet labels; fuzzed label files never crash."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hostile_util import assert_one_line_error

from benchmark.dataset import MEAN_LABELS, STD_LABELS, load_dataset
from benchmark.errors import DataError
from features.build import align_rows

KEY = "Schubert_D960_mv2_4bars_1_1"


def edit_labels(root: Path, edit, rel=MEAN_LABELS) -> None:
    path = root / rel
    text = edit(path.read_text())
    path.write_text(text)


def with_entry(key, value):
    def edit(text):
        data = json.loads(text)
        data[key] = value
        return json.dumps(data)

    return edit


def set_value(position, value):
    def edit(text):
        data = json.loads(text)
        data[KEY][position] = value
        return json.dumps(data)

    return edit


CASES = {
    # D2: " X" and "X" are one segment after stripping: refused, both spellings named
    "whitespace_duplicate": (lambda t: t[:-1] + f', " {KEY}": ' + json.dumps([0.5] * 20) + "}", f"' {KEY}'"),
    # D7: an exact duplicate key (json keeps the last one silently)
    "exact_duplicate": (lambda t: t[:-1] + f', "{KEY}": ' + json.dumps([0.5] * 20) + "}", f"'{KEY}'"),
    "string_value": (set_value(3, "0.5"), f"'{KEY}'"),
    "bool_value": (set_value(0, True), f"'{KEY}'"),
    "above_range": (set_value(5, 1.5), "outside the documented range [0, 1]"),
    "negative": (set_value(18, -0.01), f"'{KEY}'"),
    "nan": (lambda t: t.replace(f'"{KEY}": [', f'"{KEY}": [NaN, ', 1), f"'{KEY}'"),
    "infinity": (lambda t: t.replace(f'"{KEY}": [', f'"{KEY}": [Infinity, ', 1), f"'{KEY}'"),
    "null": (set_value(2, None), f"'{KEY}'"),
    "nested_list": (set_value(2, [0.5]), f"'{KEY}'"),
    "too_short": (with_entry(KEY, [0.5] * 5), f"'{KEY}'"),
    "not_a_list": (with_entry(KEY, {"a": 1}), f"'{KEY}'"),
    "not_json": (lambda t: t[: len(t) // 2], "not valid JSON"),
    "not_utf8": (lambda t: "\udcff" + t, "not valid JSON"),
    "top_level_list": (lambda t: "[1, 2]", "non-empty JSON object"),
    "empty_object": (lambda t: "{}", "non-empty JSON object"),
    # Issue 17, item 12: past Python's 4300-digit limit on int conversion, and past float's range
    "huge_integer": (lambda t: t.replace(f'"{KEY}": [', f'"{KEY}": [{"9" * 5001}, ', 1), f"'{KEY}'"),
    "huge_negative_integer": (lambda t: t.replace(f'"{KEY}": [', f'"{KEY}": [-{"7" * 5001}, ', 1), f"'{KEY}'"),
    "integer_beyond_float": (lambda t: t.replace(f'"{KEY}": [', f'"{KEY}": [{"9" * 400}, ', 1),
                             "too large for a float"),
    "long_integer": (lambda t: t.replace(f'"{KEY}": [', f'"{KEY}": [{"1" * 30}, ', 1), "outside the documented range"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_labels_are_one_line_errors_naming_the_problem(fake_data_dir, tmp_path, cli, case):
    edit, needle = CASES[case]
    path = fake_data_dir / MEAN_LABELS
    if case == "not_utf8":
        path.write_bytes(b"\xff" + path.read_bytes())
    else:
        edit_labels(fake_data_dir, edit)
    code, _, err = cli("features", "build", "--features", "midi", "--data-dir", fake_data_dir,
                       "--cache-dir", tmp_path / "c")
    assert_one_line_error(code, err, needle)


def test_a_labels_file_over_the_cap_is_refused_before_it_is_read(fake_data_dir, cli, tmp_path):
    """Issue 17, item 12: a 210 MB labels file (sparse: no disk used) is one line, and is never read whole."""
    import tracemalloc

    from benchmark import dataset

    path = fake_data_dir / MEAN_LABELS
    with open(path, "r+b") as fh:
        fh.truncate(210 * 2**20)
    tracemalloc.start()
    try:
        code, _, err = cli("features", "build", "--data-dir", fake_data_dir, "--cache-dir", tmp_path / "c")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_one_line_error(code, err, str(path), "MAX_LABELS_BYTES=16 MiB", "210.0 MiB")
    assert peak < 8 * 2**20, peak
    assert dataset.MAX_LABELS_BYTES == 16 * 2**20  # the value README's Errors section states


def test_a_labels_file_that_grows_past_the_cap_after_its_stat_is_refused(fake_data_dir, monkeypatch):
    from benchmark import dataset

    monkeypatch.setattr(dataset, "MAX_LABELS_BYTES", 10 * 2**20)
    from benchmark import hashing

    real = hashing.regular_stat  # the one reader of capped regular files (benchmark.hashing.read_regular_bytes)

    def stale(path):  # st_size as it was before the file grew
        st = real(path)
        return os.stat_result((*st[:6], 100, *st[7:10]))

    path = fake_data_dir / MEAN_LABELS
    with open(path, "r+b") as fh:
        fh.truncate(11 * 2**20)
    monkeypatch.setattr(hashing, "regular_stat", stale)
    with pytest.raises(DataError, match="over the limit MAX_LABELS_BYTES=10 MiB"):
        load_dataset(fake_data_dir)


def test_std_labels_are_checked_too(fake_data_dir, cli, tmp_path):
    edit_labels(fake_data_dir, set_value(1, "x"), rel=STD_LABELS)
    code, _, err = cli("features", "build", "--data-dir", fake_data_dir, "--cache-dir", tmp_path / "c")
    assert_one_line_error(code, err, f"'{KEY}'", "non-number")


def test_unreadable_labels_are_one_line_errors(fake_data_dir, cli, tmp_path, monkeypatch):
    from benchmark import hashing

    def denied(path, *args, **kwargs):  # tests run as root: a chmod would not deny anything
        if str(path).endswith(".json"):
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(hashing, "open", denied, raising=False)  # where the labels file is opened
    code, _, err = cli("features", "build", "--data-dir", fake_data_dir, "--cache-dir", tmp_path / "c")
    assert_one_line_error(code, err, "cannot be read", "Permission denied")


def test_a_data_dir_that_is_a_file_is_named_so(tmp_path, cli):
    f = tmp_path / "percepiano.zip"
    f.write_bytes(b"PK")
    code, _, err = cli("features", "build", "--data-dir", f, "--cache-dir", tmp_path / "c")
    assert_one_line_error(code, err, "is a file, not a folder")


def test_valid_labels_still_load(fake_data_dir):
    ds = load_dataset(fake_data_dir)
    assert ds.meta["sample_id"].is_unique and ds.y.shape == (24, 19)
    assert ((ds.y >= 0) & (ds.y <= 1)).all()


def test_align_rows_refuses_repeated_or_missing_ids():
    X = pd.DataFrame(np.arange(6.0).reshape(3, 2), index=["a", "b", "c"], columns=["f", "g"])
    np.testing.assert_array_equal(align_rows(X, ["c", "a"]), [[4, 5], [0, 1]])
    with pytest.raises(DataError, match="labels repeat sample id"):
        align_rows(X, ["a", "a"])
    with pytest.raises(DataError, match="feature table repeat sample id"):
        align_rows(pd.concat([X, X.iloc[:1]]), ["a", "b"])
    with pytest.raises(DataError, match="have no features, e.g. 'z'"):
        align_rows(X, ["a", "z"])


def test_fuzzed_label_files_never_crash(fake_data_dir, tmp_path):
    """Random byte edits of a label file: it loads (and is then valid) or raises DataError, nothing else."""
    path = fake_data_dir / MEAN_LABELS
    clean = path.read_bytes()
    rng = random.Random(1234)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(150):
        raw = bytearray(clean)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(raw))
            op = rng.choice(("flip", "delete", "insert"))
            if op == "flip":
                raw[i] = rng.choice(b' "[],:.-0123456789eE\\\x00\xff tfn')
            elif op == "delete":
                del raw[i]
            else:
                raw.insert(i, rng.choice(b' "[],:.-0123456789'))
        path.write_bytes(bytes(raw))
        try:
            ds = load_dataset(fake_data_dir)
        except DataError:
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        assert ds.meta["sample_id"].is_unique
        assert np.isfinite(ds.y).all() and ((ds.y >= 0) & (ds.y <= 1)).all()
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes

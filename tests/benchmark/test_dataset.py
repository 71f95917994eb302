import json

import numpy as np
import pytest

from benchmark.dataset import MEAN_LABELS, N_TARGETS, TARGET_NAMES, load_dataset, parse_segment_name, resolve_data_dir
from benchmark.errors import DataError


def test_real_data_counts(real_dataset):
    ds = real_dataset
    meta = ds.meta
    assert ds.n_samples == 1189
    assert ds.y.shape == (1189, 19) and ds.y_std.shape == (1189, 19)
    assert len(ds.unlabelled) == 13
    players = set(meta["player"])
    assert len(players) == 22
    assert {"Score", "Score2"} <= players
    assert players - {"Score", "Score2"} == {
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
        "11",
        "12",
        "13",
        "14",
        "18",
        "19",
        "22",
        "24",
        "26",
    }
    pieces = set(meta["piece"])
    assert len(pieces) == 20
    assert {"Schubert_D960_mv2", "Schubert_D960_mv3", "Schubert_D935_no.3"} <= pieces
    assert {p for p in pieces if p.startswith("Beethoven")} == {
        f"Beethoven_WoO80_{v}"
        for v in (
            "thema",
            "var3",
            "var4",
            "var5",
            "var6",
            "var8",
            "var9",
            "var10",
            "var12",
            "var15",
            "var17",
            "var18",
            "var23",
            "var25",
            "var27",
            "var28",
            "var30",
        )
    }
    assert meta["excerpt"].nunique() == 99
    assert (meta["piece"] == "Schubert_D960_mv3").sum() == 559
    # labels are mean rating / 7, in [0, 1]
    assert 0 < ds.y.min() and ds.y.max() <= 1


def test_real_file_with_leading_space_loads(real_dataset):
    row = real_dataset.meta.set_index("sample_id").loc["Schubert_D935_no.3_4bars_2_1"]
    assert row["midi_path"].endswith("/ Schubert_D935_no.3_4bars_2_1.mid")
    assert row["player"] == "2" and row["segment"] == 1


def test_every_real_segment_has_its_score_midi(real_dataset):
    meta = real_dataset.meta
    assert meta["score_midi_path"].notna().all()
    # Schubert D960 files number segments with two digits (..._Score_01.mid)
    row = meta[meta["piece"] == "Schubert_D960_mv2"].iloc[0]
    assert row["score_midi_path"].endswith(f"_Score_{row['segment']:02d}.mid")
    assert meta.set_index("sample_id").loc["Beethoven_WoO80_thema_8bars_11_1", "score_midi_path"].endswith(
        "Beethoven_WoO80_thema_8bars_Score_1.mid")


def test_real_labels_in_order(real_dataset):
    # First entry of the upstream JSON, checked by hand against the file.
    ds = real_dataset
    i = int(np.flatnonzero(ds.meta["sample_id"] == "Schubert_D935_no.3_4bars_1_25")[0])
    assert ds.y[i, 0] == pytest.approx(4 / 7)
    assert ds.y[i, 1] == pytest.approx(5 / 7)
    assert len(TARGET_NAMES) == N_TARGETS == 19


def test_exclude_score_players(fake_data_dir):
    full = load_dataset(fake_data_dir)
    no_score = load_dataset(fake_data_dir, include_score=False)
    assert full.n_samples == 24 and no_score.n_samples == 18
    assert "Score" not in set(no_score.meta["player"])
    assert no_score.y.shape == (18, 19)


def test_parse_segment_name():
    assert parse_segment_name(" Schubert_D935_no.3_4bars_2_1") == {
        "piece": "Schubert_D935_no.3",
        "composer": "Schubert",
        "player": "2",
        "segment": 1,
        "bars": 4,
        "excerpt": "Schubert_D935_no.3_4bars_1",
    }
    assert parse_segment_name("Beethoven_WoO80_var3_8bars_Score2_7")["player"] == "Score2"
    with pytest.raises(DataError, match="does not match"):
        parse_segment_name("not_a_segment")


def test_resolve_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERCEPIANO_DIR", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="PERCEPIANO_DIR"):
        resolve_data_dir()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("PERCEPIANO_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path) == tmp_path  # explicit wins
    monkeypatch.delenv("PERCEPIANO_DIR")
    (tmp_path / "data" / "percepiano").mkdir(parents=True)
    assert resolve_data_dir().as_posix() == "data/percepiano"
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_dir(tmp_path / "missing")


def test_missing_dir_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERCEPIANO_DIR", raising=False)
    with pytest.raises(DataError, match="clone https://github.com/JonghoKimSNU/PercePiano"):
        resolve_data_dir()


def test_missing_labels_file(fake_data_dir):
    (fake_data_dir / MEAN_LABELS).unlink()
    with pytest.raises(DataError, match="labels file .* is missing"):
        load_dataset(fake_data_dir)


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ("[]", "non-empty JSON object"),
        (json.dumps({"Schubert_D960_mv2_4bars_1_1": [0.5] * 5}), "at least 19 numbers"),
        (json.dumps({"Schubert_D960_mv2_4bars_1_1": ["x"] * 20}), "non-number"),
    ],
)
def test_malformed_labels(fake_data_dir, content, match):
    (fake_data_dir / MEAN_LABELS).write_text(content)
    with pytest.raises(DataError, match=match):
        load_dataset(fake_data_dir)


def test_labelled_segment_without_midi(fake_data_dir):
    next((fake_data_dir / "virtuoso/data/all_2rounds").glob("Beethoven*_1_1.mid")).unlink()
    with pytest.raises(DataError, match="no MIDI file"):
        load_dataset(fake_data_dir)

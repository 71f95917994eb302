"""The pre-training corpus: no rated performance unless transductive; MAESTRO v3 loader; fingerprint."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from benchmark.dataset import load_dataset
from benchmark.errors import ConfigError, DataError
from features.cache import Cache
from features.corpus import CorpusSpec, build_corpus, load_maestro, notes_digest
from tests.conftest import write_midi


@pytest.fixture()
def dataset(fake_data_dir):
    # A score MIDI identical to a labelled segment (as the dataset's rated Score players are).
    labelled = fake_data_dir / "virtuoso/data/all_2rounds/Schubert_D960_mv2_4bars_Score_1.mid"
    shutil.copy(labelled, fake_data_dir / "virtuoso/data/score_midi/Schubert_D960_mv2_4bars_Score2_1.mid")
    return load_dataset(fake_data_dir)


def test_default_corpus_holds_no_labelled_segment(dataset, tmp_path):
    corpus = build_corpus(dataset, Cache(tmp_path / "cache"), CorpusSpec(n_synthetic=2))
    rated = {notes_digest(p) for p in dataset.meta["midi_path"]}
    assert not rated & {notes_digest(p) for p in corpus.items["midi_path"]}
    assert corpus.excluded == ["Schubert_D960_mv2_4bars_Score2_1"]
    counts = corpus.summary()["counts"]
    n_scores = len(list((dataset.root / "virtuoso/data/score_midi").glob("*.mid")))
    assert counts == {"score": n_scores - 1, "unlabelled": 1, "synthetic": 2 * n_scores, "maestro": 0,
                      "labelled": 0}
    assert corpus.summary()["transductive"] is False


def test_transductive_adds_every_labelled_input(dataset, tmp_path):
    corpus = build_corpus(dataset, Cache(tmp_path / "cache"), CorpusSpec(n_synthetic=0, transductive=True))
    labelled = corpus.items[corpus.items["source"] == "labelled"]
    assert sorted(labelled["name"]) == sorted(dataset.meta["sample_id"])
    assert corpus.summary()["transductive"] is True


def test_fingerprint_changes_with_the_corpus_and_is_stable(dataset, tmp_path):
    cache = Cache(tmp_path / "cache")
    a = build_corpus(dataset, cache, CorpusSpec(n_synthetic=1))
    b = build_corpus(dataset, cache, CorpusSpec(n_synthetic=1))
    c = build_corpus(dataset, cache, CorpusSpec(n_synthetic=2))
    d = build_corpus(dataset, cache, CorpusSpec(n_synthetic=1, seed=1))
    e = build_corpus(dataset, cache, CorpusSpec(n_synthetic=1, transductive=True))
    assert a.fingerprint == b.fingerprint
    assert len({a.fingerprint, c.fingerprint, d.fingerprint, e.fingerprint}) == 4


def _maestro_layout(root, n=3):
    rows = []
    for i, split in enumerate(["train", "validation", "train"][:n]):
        rel = f"2018/perf_{i}.midi"
        (root / "2018").mkdir(parents=True, exist_ok=True)
        write_midi(root / rel, velocity=50 + 10 * i, ioi=0.25, n_notes=40 + 40 * i)
        rows.append({"canonical_composer": "C", "canonical_title": f"T{i}", "split": split, "year": 2018,
                     "midi_filename": rel, "audio_filename": rel.replace(".midi", ".wav"), "duration": 10.0 * (i + 1)})
    return pd.DataFrame(rows)


def test_maestro_loader_reads_csv_and_json_layouts(tmp_path):
    csv_root, json_root = tmp_path / "csv", tmp_path / "json"
    meta = _maestro_layout(csv_root)
    meta.to_csv(csv_root / "maestro-v3.0.0.csv", index=False)
    _maestro_layout(json_root)
    (json_root / "maestro-v3.0.0.json").write_text(json.dumps(meta.to_dict()))  # column -> {row: value}
    for root in (csv_root, json_root):
        got = load_maestro(root)
        assert list(got["canonical_title"]) == ["T0", "T2"]
        assert all(p.startswith(str(root.resolve())) for p in got["midi_path"])
        assert len(load_maestro(root, ("train", "validation"), limit=2)) == 2


def test_maestro_loader_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_maestro(tmp_path / "nope")
    (tmp_path / "m").mkdir()
    with pytest.raises(DataError, match="maestro-v"):
        load_maestro(tmp_path / "m")
    meta = _maestro_layout(tmp_path / "m")
    meta.to_csv(tmp_path / "m/maestro-v3.0.0.csv", index=False)
    (tmp_path / "m/2018/perf_0.midi").unlink()
    with pytest.raises(DataError, match="missing"):
        load_maestro(tmp_path / "m")


def test_maestro_excerpts_join_the_corpus(dataset, tmp_path):
    root = tmp_path / "maestro"
    _maestro_layout(root).to_csv(root / "maestro-v3.0.0.csv", index=False)
    spec = CorpusSpec(n_synthetic=0, maestro_dir=str(root), excerpt_s=5.0, excerpts_per_piece=2)
    corpus = build_corpus(dataset, Cache(tmp_path / "cache"), spec)
    maestro = corpus.items[corpus.items["source"] == "maestro"]
    # perf_0: 40 notes x 0.25 s = 10 s -> 2 excerpts; perf_2: 120 notes -> 2 (capped); perf_1 is validation.
    assert len(maestro) == 4
    assert corpus.summary()["maestro_dir"] == str(root)


def test_bad_spec_raises():
    with pytest.raises(ConfigError, match="n_synthetic"):
        CorpusSpec(n_synthetic=-1)
    with pytest.raises(ConfigError, match="maestro_splits"):
        CorpusSpec(maestro_splits=("dev",))

"""The pre-training corpus: no near-copy of a rated segment unless transductive; MAESTRO v3 loader; fingerprint."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pretty_midi
import pytest

from benchmark.dataset import load_dataset
from benchmark.errors import ConfigError, DataError
from benchmark.hashing import file_sha256
from features.cache import Cache
from features.corpus import CorpusSpec, build_corpus, load_maestro
from splits.overlap import near_copies
from tests.conftest import unrated_score_midis, write_midi

RATED = "Schubert_D960_mv2_4bars_Score_1"


@pytest.fixture()
def dataset(fake_data_dir):
    unrated_score_midis(fake_data_dir)
    # A score MIDI identical to a labelled segment (as the dataset's rated Score players are).
    labelled = fake_data_dir / f"virtuoso/data/all_2rounds/{RATED}.mid"
    shutil.copy(labelled, fake_data_dir / "virtuoso/data/score_midi/Schubert_D960_mv2_4bars_Score2_1.mid")
    return load_dataset(fake_data_dir)


def _rewrite(src, dst, *, velocity=None, keep=None, extra=0):
    """``src``'s notes in ``dst``: with another velocity, only the first ``keep``, or ``extra`` notes appended."""
    pm = pretty_midi.PrettyMIDI(str(src))
    notes = sorted(pm.instruments[0].notes, key=lambda n: (n.start, n.pitch))[:keep]
    end = max(n.end for n in notes)
    notes += [pretty_midi.Note(velocity=70, pitch=90 + i % 5, start=end + 0.2 * i, end=end + 0.2 * i + 0.1)
              for i in range(extra)]
    out = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(velocity=velocity or n.velocity, pitch=n.pitch, start=n.start, end=n.end)
                  for n in notes]
    out.instruments.append(inst)
    out.write(str(dst))


def test_default_corpus_holds_no_near_copy_of_a_rated_segment(dataset, tmp_path):
    cache = Cache(tmp_path / "cache")
    corpus = build_corpus(dataset, cache, CorpusSpec(n_synthetic=2))
    assert near_copies(list(corpus.items["midi_path"]), list(dataset.meta["midi_path"])).empty
    assert corpus.excluded == ["Schubert_D960_mv2_4bars_Score2_1"]
    # The fake players share one pitch pattern, so the copy also matches two other segments that share its
    # velocities (Score_2) or its timing (2_3) by chance; each row names its measure.
    ex = corpus.exclusions
    assert set(zip(ex["rated"], ex["measure"], strict=True)) == {
        (RATED, "notes"), (RATED, "onsets"), ("Schubert_D960_mv2_4bars_Score_2", "notes"),
        ("Beethoven_WoO80_var3_8bars_2_3", "onsets")}
    assert (ex["shared"] == 1.0).all() and set(ex["direction"]) == {"equal size"}
    counts = corpus.summary()["counts"]
    n_scores = len(list((dataset.root / "virtuoso/data/score_midi").glob("*.mid")))
    # The excluded score MIDI is never perturbed: two synthetic performances of each *kept* one.
    assert counts == {"score": n_scores - 1, "unlabelled": 1, "synthetic": 2 * (n_scores - 1), "maestro": 0,
                      "labelled": 0}
    copied = file_sha256(dataset.root / "virtuoso/data/score_midi/Schubert_D960_mv2_4bars_Score2_1.mid")
    assert not list((cache.root / "corpus_midi").glob(f"synth-{copied[:16]}-*"))
    assert not corpus.items["name"].str.startswith("Schubert_D960_mv2_4bars_Score2_1").any()
    summary = corpus.summary()
    assert summary["transductive"] is False
    assert summary["excluded"] == {"score": 1, "unlabelled": 0, "synthetic": 0, "maestro": 0}
    assert summary["n_excluded"] == 1 and summary["n_rated_matched"] == 3
    assert summary["near_copy"]["threshold"] == 0.8 and summary["near_copy"]["measures"] == ["notes", "onsets"]
    assert corpus.exclusion_records()[1] == {"item": "Schubert_D960_mv2_4bars_Score2_1", "source": "score",
                                             "rated": RATED, "measure": "notes", "shared": 1.0,
                                             "direction": "equal size"}


def test_near_copies_are_left_out_in_either_direction_and_whatever_the_velocities(dataset, tmp_path):
    """A score MIDI holding a rated segment, one held by it, a deadpan twin with other velocities, an unlabelled copy."""
    data = dataset.root / "virtuoso/data"
    rated = data / f"all_2rounds/{RATED}.mid"
    _rewrite(rated, data / "score_midi/whole.mid", extra=6)  # the rated notes, then 6 more
    _rewrite(rated, data / "score_midi/cut.mid", keep=9)  # its first 9 notes
    _rewrite(rated, data / "score_midi/twin.mid", velocity=80)  # same onsets, a flat velocity map
    _rewrite(rated, data / f"all_2rounds/{dataset.unlabelled[0]}.mid", velocity=81)
    corpus = build_corpus(dataset, Cache(tmp_path / "cache"), CorpusSpec(n_synthetic=1))
    ex = corpus.exclusions[corpus.exclusions["rated"] == RATED].set_index(["item", "measure"])
    assert ex.loc[("whole", "notes"), "direction"] == "item contains rated"
    assert ex.loc[("cut", "onsets"), "direction"] == "rated contains item"
    assert ex.loc[("whole", "notes"), "shared"] == 1.0 and ex.loc[("cut", "notes"), "shared"] == 1.0
    # The twins share no note bigram (other velocities) but every onset bigram.
    for twin in ("twin", dataset.unlabelled[0]):
        assert (twin, "notes") not in ex.index and ex.loc[(twin, "onsets"), "shared"] == 1.0
    assert corpus.summary()["excluded"] == {"score": 4, "unlabelled": 1, "synthetic": 0, "maestro": 0}
    kept = set(corpus.items["name"])
    assert not kept & {"whole", "cut", "twin", "whole~0", "cut~0", "twin~0", dataset.unlabelled[0]}
    assert near_copies(list(corpus.items["midi_path"]), list(dataset.meta["midi_path"])).empty


def test_byte_identical_items_are_kept_once(dataset, tmp_path):
    scores = dataset.root / "virtuoso/data/score_midi"
    first = sorted(scores.glob("*_Score_*.mid"))[0]
    shutil.copy(first, scores / "zz_same_bytes.mid")
    corpus = build_corpus(dataset, Cache(tmp_path / "cache"), CorpusSpec(n_synthetic=2))
    assert corpus.items["sha256"].is_unique
    assert not corpus.items["name"].str.startswith("zz_same_bytes").any()
    # The copy and its two synthetic performances (the same bytes as the original's) are dropped.
    assert corpus.summary()["duplicates"] == {"score": 1, "unlabelled": 0, "synthetic": 2, "maestro": 0,
                                              "labelled": 0}


def test_unreadable_candidates_are_listed_not_perturbed(dataset, tmp_path):
    (dataset.root / "virtuoso/data/score_midi/empty.mid").write_bytes(b"MThd not a midi file")
    corpus = build_corpus(dataset, Cache(tmp_path / "cache"), CorpusSpec(n_synthetic=1))
    assert corpus.unreadable == ["empty"] and corpus.summary()["unreadable"] == ["empty"]
    assert not corpus.items["name"].str.startswith("empty").any()


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
        # An IOI no fake player plays (0.15-0.6 s), so no excerpt is a near-copy of a rated segment.
        write_midi(root / rel, velocity=50 + 10 * i, ioi=0.125, n_notes=80 + 80 * i)
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
    # perf_0: 80 notes x 0.125 s = 10 s -> 2 excerpts; perf_2: 240 notes -> 2 (capped); perf_1 is validation.
    assert len(maestro) == 4
    assert corpus.summary()["maestro_dir"] == str(root)


def test_bad_spec_raises():
    with pytest.raises(ConfigError, match="n_synthetic"):
        CorpusSpec(n_synthetic=-1)
    with pytest.raises(ConfigError, match="maestro_splits"):
        CorpusSpec(maestro_splits=("dev",))
    for kwargs, needle in (({"seed": -1}, "seed=-1"), ({"n_synthetic": 1.5}, "n_synthetic=1.5"),
                           ({"maestro_limit": 0}, "maestro_limit=0"), ({"excerpt_s": float("nan")}, "excerpt_s=nan"),
                           ({"excerpts_per_piece": 0}, "excerpts_per_piece=0")):
        with pytest.raises(ConfigError, match=needle):
            CorpusSpec(**kwargs)


def test_a_maestro_excerpt_holding_a_rated_segment_is_left_out(dataset, tmp_path):
    root = tmp_path / "maestro"
    _maestro_layout(root).to_csv(root / "maestro-v3.0.0.csv", index=False)
    _rewrite(dataset.root / f"virtuoso/data/all_2rounds/{RATED}.mid", root / "2018/perf_0.midi", extra=30)
    spec = CorpusSpec(n_synthetic=0, scores=False, unlabelled=False, maestro_dir=str(root), excerpt_s=60.0)
    corpus = build_corpus(dataset, Cache(tmp_path / "cache"), spec)
    assert list(corpus.items["name"]) == ["perf_2#0"]
    ex = corpus.exclusions[corpus.exclusions["rated"] == RATED]
    assert set(ex["item"]) == {"perf_0#0"} and set(ex["source"]) == {"maestro"}
    assert set(ex["direction"]) == {"item contains rated"}


@pytest.mark.parametrize("text", ["42", "{not json", '{"split": ["train"]}', "\udcff"])
def test_maestro_json_that_is_not_metadata_is_one_data_error(tmp_path, text):
    (tmp_path / "maestro-v3.0.0.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(DataError, match="cannot read MAESTRO metadata .*maestro-v3.0.0.json"):
        load_maestro(tmp_path)

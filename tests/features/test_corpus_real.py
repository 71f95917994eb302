"""The SSAST default corpus on the real PercePiano data: the audit's leak (issue 17.2), and none after the fix.

Skipped without the data, failing under CI=true (the ``real_dataset`` fixture).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from benchmark.dataset import MIDI_DIR, SCORE_MIDI_DIR
from benchmark.errors import DataError
from features.cache import Cache
from features.corpus import CorpusSpec, build_corpus
from features.midi_io import read_performance
from splits.overlap import note_bigrams, onset_bigrams, shared_fraction

DEADPAN = ("Score", "Score2")
WHOLE_PIECE = "beethoven_woo80_score2"


def _old_digest(path) -> str | None:
    """The exclusion rule before issue 17: sha256 of onsets and offsets to the ms, pitches and velocities."""
    try:
        p = read_performance(path)
    except DataError:
        return None
    arr = np.stack([np.round(p.onset * 1000), np.round(p.offset * 1000), p.pitch, p.velocity]).astype(np.int64)
    return hashlib.sha256(arr.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def real_corpus(real_dataset, tmp_path_factory):
    """The default corpus without its synthetic items (those are checked by the slow test below)."""
    return build_corpus(real_dataset, Cache(tmp_path_factory.mktemp("cache")), CorpusSpec(n_synthetic=0))


def _inside(items, rated, measure) -> np.ndarray:
    """(n_rated,) bool: the rated file shares >= 80 % of the shorter one's bigrams with some item."""
    fetch = note_bigrams if measure == "notes" else onset_bigrams
    return (shared_fraction([fetch(p) for p in rated], [fetch(p) for p in items]) >= 0.8).any(axis=1)


def test_the_old_exact_digest_let_46_rated_deadpan_segments_into_the_corpus(real_dataset):
    """Reproduces the audit: by the leakage check's note bigrams, 46 of the 116 rated Score/Score2 segments sat
    inside items the exact note digest kept (20 of them inside the whole WoO80 rendering)."""
    meta = real_dataset.meta
    deadpan = meta[meta["player"].isin(DEADPAN)]
    assert len(deadpan) == 116
    root = real_dataset.root
    rated = {_old_digest(p) for p in deadpan["midi_path"]}  # a human performance never equals a rendering
    files = {p.stem.strip(): p for p in (root / MIDI_DIR).glob("*.mid")}
    candidates = [*sorted((root / SCORE_MIDI_DIR).glob("*.mid")), *(files[n] for n in real_dataset.unlabelled)]
    digests = [_old_digest(p) for p in candidates]
    old_kept = [p for p, d in zip(candidates, digests, strict=True) if d is not None and d not in rated]
    assert len(old_kept) == 124 + 13
    inside = _inside(old_kept, list(deadpan["midi_path"]), "notes")
    assert inside.sum() == 46
    whole = [p for p in old_kept if p.stem == WHOLE_PIECE]
    assert _inside(whole, list(deadpan["midi_path"]), "notes").sum() == 20


def test_the_default_corpus_holds_no_near_copy_of_a_rated_segment(real_dataset, real_corpus):
    summary = real_corpus.summary()
    # 161 of the 261 score MIDIs and all 13 unlabelled segments (each the Score twin of a rated Score2; 6 of
    # them only by their onsets, their velocity maps differ) are near-copies; 2 score MIDIs hold no notes.
    assert summary["excluded"] == {"score": 161, "unlabelled": 13, "synthetic": 0, "maestro": 0}
    assert summary["unreadable"] == ["Schubert_D935_no.3_4bars_Score_43", "Schubert_D935_no.3_4bars_Score_44"]
    # 98 score MIDIs are kept; 11 of them are byte-identical to another (Score/Score2 pairs) and dropped.
    assert summary["counts"]["score"] == 87 and summary["counts"]["unlabelled"] == 0
    assert summary["duplicates"]["score"] == 11
    ex = real_corpus.exclusions
    by_measure = ex.drop_duplicates(["source", "item", "measure"]).groupby(["source", "measure"]).size()
    assert by_measure.to_dict() == {("score", "notes"): 152, ("score", "onsets"): 161,
                                    ("unlabelled", "notes"): 7, ("unlabelled", "onsets"): 13}
    # Only rendered (deadpan) segments have copies among the candidates: 113 of the 116.
    player = real_dataset.meta.set_index("sample_id")["player"]
    assert set(player[ex["rated"].unique()]) == set(DEADPAN) and summary["n_rated_matched"] == 113
    whole = ex[(ex["item"] == WHOLE_PIECE) & (ex["measure"] == "notes")]
    assert len(whole) == 20 and set(whole["direction"]) == {"item contains rated"}
    # After the fix: no rated segment (of 1189) shares >= 80 % with a kept item, in either direction, by
    # either measure (the fraction is of the shorter of the two).
    items, rated = list(real_corpus.items["midi_path"]), list(real_dataset.meta["midi_path"])
    for measure in ("notes", "onsets"):
        assert _inside(items, rated, measure).sum() == 0


@pytest.mark.slow
def test_the_default_corpus_with_its_synthetic_performances(real_dataset, tmp_path):
    corpus = build_corpus(real_dataset, Cache(tmp_path / "cache"), CorpusSpec())
    # 3 synthetic performances of each of the 98 kept score MIDIs; the 11 duplicated ones' are duplicates too.
    assert corpus.summary()["counts"] == {"score": 87, "unlabelled": 0, "synthetic": 261, "maestro": 0,
                                          "labelled": 0}
    assert corpus.summary()["excluded"]["synthetic"] == 0 and corpus.summary()["duplicates"]["synthetic"] == 33
    items, rated = list(corpus.items["midi_path"]), list(real_dataset.meta["midi_path"])
    for measure in ("notes", "onsets"):
        assert _inside(items, rated, measure).sum() == 0

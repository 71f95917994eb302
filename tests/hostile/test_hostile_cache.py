"""D1, D5, D8 (cache): features do not depend on the cache's history; a moved entry is not served;
``cache clear`` removes only the cache's own entries."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hostile_util import assert_one_line_error

from benchmark.dataset import load_dataset
from features.build import build_arrays, build_features
from features.cache import Cache, make_key
from features.stages import AudioParams, MelParams, logmel_for, rendered_audio

TABLES = ["midi", "score", "audio"]


def snapshot(meta, cache):
    """Every table and every mel spectrogram of ``meta`` through ``cache``, as raw bytes per sample."""
    fm = build_features(meta, TABLES, cache, progress=False)
    assert not fm.skipped
    mels = {r["sample_id"]: logmel_for(r, cache, AudioParams(), MelParams()) for r in meta.to_dict("records")}
    audio = {r["sample_id"]: rendered_audio(r, cache, AudioParams()) for r in meta.to_dict("records")}
    return fm.X, mels, audio


def assert_bit_equal(a, b, what):
    Xa, ma, aa = a
    Xb, mb, ab = b
    assert list(Xa.columns) == list(Xb.columns) and list(Xa.index) == list(Xb.index), what
    assert Xa.to_numpy().tobytes() == Xb.to_numpy().tobytes(), what
    for sid in ma:
        assert ma[sid][0].dtype == mb[sid][0].dtype and ma[sid][0].tobytes() == mb[sid][0].tobytes(), (what, sid)
        assert ma[sid][1] == mb[sid][1], (what, sid)
        assert aa[sid].dtype == ab[sid].dtype and aa[sid].tobytes() == ab[sid].tobytes(), (what, sid)


def test_features_are_bit_identical_whatever_was_cached(fake_data_dir, tmp_path):
    """Cold build, then each stage cleared alone (and all but one), rebuilt: every number is the same bit for bit."""
    meta = load_dataset(fake_data_dir).meta.iloc[[0, 7, 13]]
    cache = Cache(tmp_path / "c")
    cold = snapshot(meta, cache)
    assert_bit_equal(cold, snapshot(meta, cache), "all hits")
    for stage in ("render", "mel", "audio", "midi", "score"):
        cache.clear([stage])
        assert_bit_equal(cold, snapshot(meta, cache), f"after clearing {stage}")
    # Only the render kept: every derived stage recomputed from a cached render.
    cache.clear(["mel", "audio"])
    assert_bit_equal(cold, snapshot(meta, cache), "from a cached render")
    # Every stage kept but the render: what is served comes from the derived entries.
    cache.clear(["render"])
    assert_bit_equal(cold, snapshot(meta, cache), "without the render")


def test_a_miss_returns_what_a_hit_returns_for_every_dtype(tmp_path):
    cache = Cache(tmp_path)
    key = "ab" * 32
    made = {"a": np.linspace(0, 1, 7, dtype=np.float32).astype(np.float16), "b": np.arange(3.0), "r": np.asarray(0.1)}
    miss = cache.fetch("render", key, lambda: made)
    hit = cache.fetch("render", key, lambda: pytest.fail("a hit must not compute"))
    assert miss.keys() == hit.keys() == made.keys()
    for k in made:
        assert miss[k].dtype == hit[k].dtype and miss[k].tobytes() == hit[k].tobytes()
    # The stored representation, not the computed one: float32 in, float16 stored, float16 out either way.
    wide = cache.fetch("mel", key, lambda: {"x": np.float16(np.linspace(0, 1, 5, dtype=np.float32))})
    assert wide["x"].dtype == np.float16


def test_a_moved_entry_is_not_served(tmp_path):
    """D8: an entry records its own key, so a file copied or swapped under another key's name is rebuilt."""
    cache = Cache(tmp_path)
    ka, kb = "aa" * 32, "bb" * 32
    pa = cache.put("midi", ka, {"values": np.zeros(3)})
    pb = cache.put("midi", kb, {"values": np.ones(3)})
    a, b = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(b)
    pb.write_bytes(a)
    assert cache.get("midi", ka) is None and cache.get("midi", kb) is None
    assert not pa.exists() and not pb.exists()  # discarded, so the next build rewrites them
    again = cache.fetch("midi", ka, lambda: {"values": np.zeros(3)})
    np.testing.assert_array_equal(again["values"], np.zeros(3))


def test_cache_clear_removes_only_its_own_entries(tmp_path, cli):
    """D5: other files under --cache-dir survive, --stage .. and unknown stages are refused."""
    root = tmp_path / "cache"
    cache = Cache(root)
    cache.put("midi", "ab" * 32, {"values": np.zeros(3)})
    cache.put("audio", "cd" * 32, {"values": np.zeros(3)})
    keep = [root / "notes" / "mine.npz", root / "midi" / "ab" / "not-a-key.npz", root / "midi" / "mine.npz",
            root / "midi" / "zz" / ("ef" * 32 + ".npz"), tmp_path / "outside.npz"]
    for p in keep:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"user data")
    for bad, needle in (("..", "unknown cache stage '..'"), ("nope", "unknown cache stage 'nope'"),
                        ("midii", "did you mean 'midi'")):
        code, _, err = cli("cache", "clear", "--stage", bad, "--cache-dir", root)
        assert_one_line_error(code, err, needle)
    code, out, _ = cli("cache", "clear", "--stage", "midi", "--cache-dir", root)
    assert code == 0 and "removed 1 entries" in out
    code, out, _ = cli("cache", "clear", "--cache-dir", root)
    assert code == 0 and "removed 1 entries" in out
    assert all(p.read_bytes() == b"user data" for p in keep)
    assert Cache(root).info() == []


def test_cache_key_ignores_the_stored_key_format(tmp_path):
    """Entries written before keys were recorded are still served (no needless rebuild of a warm cache)."""
    cache = Cache(tmp_path)
    key = make_key("midi", "1", {}, [])
    path = cache.path("midi", key)
    path.parent.mkdir(parents=True)
    from features.cache import _checksum

    values = {"values": np.arange(4.0)}
    np.savez(path.with_suffix(""), **values, __checksum__=np.asarray(_checksum(values)))
    os.replace(str(path.with_suffix("")) + ".npz", path)
    np.testing.assert_array_equal(cache.get("midi", key)["values"], np.arange(4.0))


def test_mel_build_through_the_cache_matches_direct_computation(fake_data_dir, tmp_path):
    meta = load_dataset(fake_data_dir).meta.iloc[:2]
    cache = Cache(tmp_path)
    assert build_arrays(meta, cache, progress=False) == {}
    row = meta.iloc[0].to_dict()
    from features import mel as mel_mod

    spec, rate = mel_mod.logmel(rendered_audio(row, Cache(tmp_path / "other"), AudioParams()), 22050)
    got, got_rate = logmel_for(row, cache, AudioParams(), MelParams())
    assert got.tobytes() == spec.tobytes() and got_rate == rate

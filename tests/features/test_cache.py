import os

import numpy as np
import pytest

from benchmark.errors import CacheError
from features.cache import Cache, file_sha256, make_key


def test_key_depends_on_content_version_params_not_path(tmp_path):
    a = tmp_path / "a.mid"
    b = tmp_path / "b.mid"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    k = make_key("midi", "1", {"sr": 1}, [a])
    assert k == make_key("midi", "1", {"sr": 1}, [b])  # content, not path
    assert k != make_key("midi", "2", {"sr": 1}, [a])
    assert k != make_key("midi", "1", {"sr": 2}, [a])
    assert k != make_key("audio", "1", {"sr": 1}, [a])
    b.write_bytes(b"other bytes!")
    assert k != make_key("midi", "1", {"sr": 1}, [b])
    assert file_sha256(a) == __import__("hashlib").sha256(b"same bytes").hexdigest()


def test_roundtrip_and_atomic_layout(tmp_path):
    cache = Cache(tmp_path / "c")
    arrays = {"values": np.arange(5.0), "mel": np.ones((2, 3), dtype=np.float16)}
    cache.put("midi", "ab" * 32, arrays)
    got = cache.get("midi", "ab" * 32)
    np.testing.assert_array_equal(got["values"], arrays["values"])
    assert got["mel"].dtype == np.float16
    assert cache.get("midi", "cd" * 32) is None
    leftovers = [p for p in (tmp_path / "c").rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []
    assert cache.info() == [{"stage": "midi", "entries": 1, "bytes": cache.path("midi", "ab" * 32).stat().st_size}]
    assert cache.clear("midi") == 1 and cache.get("midi", "ab" * 32) is None


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_entry_is_detected_and_dropped(tmp_path, damage):
    cache = Cache(tmp_path)
    key = "12" * 32
    path = cache.put("midi", key, {"values": np.arange(100.0)})
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file")
    else:
        # Rewrite a valid npz with a stale checksum: the payload no longer matches.
        with np.load(path) as npz:
            stored = npz["__checksum__"]
        np.savez(path.with_suffix(""), values=np.arange(100.0) + 1, __checksum__=stored)
        os.replace(str(path.with_suffix("")) + ".npz", path)
    assert cache.get("midi", key) is None
    assert not path.exists()


def test_unwritable_cache_raises_clear_error_and_leaves_nothing(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    (root / "midi").write_text("a file where a folder should be")  # mkdir fails even as root
    cache = Cache(root)
    with pytest.raises(CacheError, match="cannot write cache entry"):
        cache.put("midi", "ef" * 32, {"values": np.zeros(3)})


def test_disk_full_is_reported(tmp_path, monkeypatch):
    import errno

    cache = Cache(tmp_path)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(CacheError, match="disk is full"):
        cache.put("midi", "ef" * 32, {"values": np.zeros(3)})
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

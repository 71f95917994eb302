"""Issue 17, item 5: a model or feature set that needs a pre-trained SSAST checkpoint stops before the run
starts when there is none (with the 'benchmark pretrain' command), a damaged pointer file is one line naming
it, and pointers are written atomically."""

from __future__ import annotations

import json
import os

import pytest
from hostile_util import assert_one_line_error

from benchmark.errors import ConfigError
from models.checkpoints import default_pointer, resolve_checkpoint, write_pointer


@pytest.fixture()
def base(fake_data_dir, tmp_path):
    return ["--data-dir", fake_data_dir, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs", "--no-progress"]


@pytest.fixture()
def no_data_read(monkeypatch):
    def too_late(*a, **k):
        raise AssertionError("the data was read before the checkpoint was checked")

    monkeypatch.setattr("benchmark.runner.open_dataset", too_late)


@pytest.mark.parametrize("models, extra, needle", [
    ("mean,ast_tiny_ssast", [], "model 'ast_tiny_ssast': no default SSAST checkpoint for 'mel' input"),
    ("mean,ast_tiny_roll_ssast", [], "benchmark pretrain --input roll --cache-dir"),
    ("mean,ast_tiny", ["--init", "default"], "model 'ast_tiny'"),
    ("mean,ridge_ssast", [], "feature set 'ssast' (read by ridge_ssast): no default SSAST checkpoint"),
])
def test_no_default_checkpoint_stops_before_the_run(base, cli, tmp_path, no_data_read, models, extra, needle):
    code, _, err = cli("run", "--models", models, *extra, *base)
    assert_one_line_error(code, err, needle, "benchmark pretrain --input")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("content, needle", [
    ("{not json", "JSONDecodeError"),
    ('{"corpus": "x"}', "KeyError"),
    ('{"key": "abc"}', "names no checkpoint key ('abc')"),
    (b"\xff\xfe", "UnicodeDecodeError"),
])
def test_a_damaged_pointer_is_one_line_with_its_path(base, cli, tmp_path, no_data_read, content, needle):
    ptr = default_pointer(tmp_path / "cache", "mel")
    ptr.parent.mkdir(parents=True)
    ptr.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _, err = cli("run", "--models", "ast_tiny_ssast", *base)
    assert_one_line_error(code, err, str(ptr), needle, "run 'benchmark pretrain' again")


def test_a_pointer_to_a_missing_checkpoint_says_so(tmp_path):
    write_pointer(tmp_path, "mel", "a" * 64, "corpus")
    with pytest.raises(ConfigError, match="default SSAST checkpoint for 'mel' input \\(aaaaaaaaaaaa, named by .*"
                                          "is not in the cache; make it again with: benchmark pretrain --input mel"):
        resolve_checkpoint("default", "mel", tmp_path)


def test_pointers_are_written_atomically(tmp_path, monkeypatch):
    ptr = write_pointer(tmp_path, "mel", "a" * 64, "c1")
    assert json.loads(ptr.read_text()) == {"key": "a" * 64, "corpus": "c1"}

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_pointer(tmp_path, "mel", "b" * 64, "c2")
    # The old pointer is whole, and no temporary file is left beside it.
    assert json.loads(ptr.read_text())["key"] == "a" * 64
    assert [p.name for p in ptr.parent.iterdir()] == [ptr.name]

"""Issue 17, item 7: a malformed scheduler address, an unreachable scheduler and a missing Dask install are
found before the data is read, the features built or a run directory made: one line, exit 2."""

from __future__ import annotations

import socket
import sys

import pytest
from hostile_util import assert_one_line_error

from benchmark.backends import parse_scheduler
from benchmark.errors import ConfigError


@pytest.fixture()
def base(fake_data_dir, tmp_path):
    return ["--data-dir", fake_data_dir, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs", "--no-progress"]


@pytest.fixture()
def no_data_read(monkeypatch, tmp_path):
    def too_late(*a, **k):
        raise AssertionError("the data was read before the backend was checked")

    monkeypatch.setattr("benchmark.runner.open_dataset", too_late)
    yield
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["not a url", "tcp://", "tcp://host", "tcp://host:0", "tcp://host:99999",
                                     "http://host:8786", "tcp://host:8786/path", "host:8786"])
def test_a_malformed_scheduler_address_is_one_line(base, cli, no_data_read, address):
    code, _, err = cli("run", "--models", "ridge", "--backend", "dask", "--scheduler", address, *base)
    assert_one_line_error(code, err, f"--scheduler {address!r} is not a scheduler address")


def test_a_malformed_address_in_a_study_is_one_line(base, cli, no_data_read, tmp_path):
    study = tmp_path / "s.toml"
    study.write_text('[models.ridge]\n[backend]\nname = "dask"\nscheduler = "not a url"\n')
    code, _, err = cli("run", "--study", study, *base)
    assert_one_line_error(code, err, "is not a scheduler address")


def test_an_unreachable_scheduler_is_found_before_the_data_is_read(base, cli, no_data_read):
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"
    code, _, err = cli("run", "--models", "ridge", "--backend", "dask", "--scheduler", address, *base)
    assert_one_line_error(code, err, f"cannot reach the Dask scheduler at {address}", "dask scheduler")


@pytest.mark.parametrize("backend", [["--backend", "dask-local"], ["--backend", "dask", "--scheduler", "tcp://h:1"]])
def test_a_missing_dask_install_is_found_before_the_data_is_read(base, cli, no_data_read, monkeypatch, backend):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError, as when not installed
    code, _, err = cli("run", "--models", "ridge", *backend, *base)
    assert_one_line_error(code, err, "the dask backends need dask and distributed", "pip install '.[dask]'")


def test_parse_scheduler():
    assert parse_scheduler("tcp://10.0.0.5:8786") == ("tcp", "10.0.0.5", 8786)
    assert parse_scheduler(" tls://head.example:443 ") == ("tls", "head.example", 443)
    with pytest.raises(ConfigError, match="SCHEME://HOST:PORT"):
        parse_scheduler("10.0.0.5:8786")

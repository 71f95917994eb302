"""Issue 17, item 14: a FIFO (or a socket, device, directory) where a MIDI, score or labels file should be never
blocks a command: only regular files are opened; a bad segment is skipped by name like bad MIDI."""

from __future__ import annotations

import contextlib
import os
import socket
import threading

import pytest
from hostile_util import assert_one_line_error

from benchmark.dataset import MEAN_LABELS, MIDI_DIR, SCORE_MIDI_DIR, load_dataset
from benchmark.errors import DataError
from benchmark.hashing import NotRegularFileError, file_sha256, regular_stat
from features import midi_io

VICTIM = "Beethoven_WoO80_var3_8bars_2_3"
SCORE = "Beethoven_WoO80_var3_8bars_Score_3"


@contextlib.contextmanager
def never_blocked(*fifos, after: float = 1.0):
    """Fail, instead of hanging, when anything opens one of ``fifos`` for reading.

    A reader blocks in open() until a writer comes; after ``after`` seconds a watchdog plays the writer
    (a non-blocking open succeeds only while a reader waits), so the reader gets EOF, the command goes on,
    and the test fails naming the FIFO.
    """
    stop, opened = threading.Event(), []

    def watch():
        if stop.wait(after):
            return
        while not stop.is_set():
            for f in fifos:
                try:
                    fd = os.open(f, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:  # ENXIO: nobody is reading it
                    continue
                os.close(fd)
                opened.append(str(f))
            stop.wait(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    assert not opened, f"a reader opened the FIFO {opened[0]} and blocked on it"


def to_fifo(path):
    path.unlink()
    os.mkfifo(path)
    return path


@pytest.fixture()
def base(fake_data_dir, tmp_path):
    return ["--data-dir", fake_data_dir, "--cache-dir", tmp_path / "cache", "--no-progress"]


def test_a_fifo_segment_is_skipped_by_name_and_never_opened(fake_data_dir, tmp_path, cli, base):
    fifo = to_fifo(fake_data_dir / MIDI_DIR / f"{VICTIM}.mid")
    with never_blocked(fifo):
        code, out, err = cli("run", "--models", "mean,ridge", *base, "--out", tmp_path / "runs")
        assert code == 0, err
        assert f"skipped 1 segment(s) with unreadable MIDI: {VICTIM}" in err
        code, _, err = cli("features", "build", "--on-bad-input", "error", *base[:4])
        assert_one_line_error(code, err, VICTIM, "FIFO", "--on-bad-input skip")
        code, _, err = cli("render", VICTIM, "-o", tmp_path / "x.wav", *base[:4])
        assert_one_line_error(code, err, VICTIM, "not a regular file")
        code, _, err = cli("splits", "check", "lopo", *base[:4])
        assert_one_line_error(code, err, VICTIM, "FIFO")


def test_a_fifo_score_midi_skips_its_segments_and_is_never_opened(fake_data_dir, tmp_path, cli, base):
    fifo = to_fifo(fake_data_dir / SCORE_MIDI_DIR / f"{SCORE}.mid")
    with never_blocked(fifo):
        code, out, err = cli("features", "build", "--features", "midi,score", *base[:4])
    assert code == 0, err
    assert "skipped" in out
    with pytest.raises(DataError, match="FIFO"):
        midi_io.read_performance(fifo)


def test_a_fifo_labels_file_is_one_line(fake_data_dir, tmp_path, cli, base):
    fifo = to_fifo(fake_data_dir / MEAN_LABELS)
    with never_blocked(fifo):
        code, _, err = cli("features", "build", *base[:4])
        assert_one_line_error(code, err, "labels file", "FIFO", "not a regular file")
        with pytest.raises(DataError, match="FIFO"):
            load_dataset(fake_data_dir)


def test_regular_stat_names_every_kind_of_non_regular_file(tmp_path):
    fifo = tmp_path / "a.mid"
    os.mkfifo(fifo)
    sock_path = tmp_path / "s.mid"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        cases = {tmp_path: "a directory", fifo: "a FIFO", sock_path: "a socket", "/dev/null": "a character device"}
        with never_blocked(fifo):
            for path, kind in cases.items():
                with pytest.raises(NotRegularFileError, match=kind) as info:
                    file_sha256(path)
                assert isinstance(info.value, OSError) and info.value.filename == str(path)
                with pytest.raises(DataError, match=f"{kind}.*, not a regular file"):
                    midi_io.check_file_size(path)
    finally:
        sock.close()
    regular = tmp_path / "r.mid"
    regular.write_bytes(b"MThd")
    assert regular_stat(regular).st_size == 4
    link = tmp_path / "link.mid"
    link.symlink_to(regular)  # a link to a regular file is read as that file
    assert file_sha256(link) == file_sha256(regular)

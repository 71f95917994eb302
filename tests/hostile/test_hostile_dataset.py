"""Bad dataset descriptions: each problem is one clear line and exit 2, through `dataset check` and `run`,
before any job starts; fuzzed ratings tables never crash."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi
import pytest
from hostile_util import assert_one_line_error

from benchmark.description import load_described
from benchmark.errors import BenchmarkError

GOOD = """
[dataset]
name = "hostile"
ratings = "ratings.csv"
id = "clip"

[targets]
columns = ["quality", "warmth"]
range = [1, 7]

[groups]
performer = "pianist"
columns = ["system"]

[media]
midi = "midi"

[raters]
file = "raters.csv"
range = [1, 7]
"""


def _midi(path: Path, pitch: int) -> None:
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    for i in range(6):
        inst.notes.append(pretty_midi.Note(velocity=70, pitch=pitch + i % 5, start=0.3 * i, end=0.3 * i + 0.25))
    pm.instruments.append(inst)
    pm.write(str(path))


@pytest.fixture()
def folder(tmp_path):
    """A valid small dataset: 8 MIDI clips, 2 targets, performer and system columns, a rater table."""
    d = tmp_path / "ds"
    (d / "midi").mkdir(parents=True)
    rows, raters = [], []
    for k in range(8):
        _midi(d / "midi" / f"c{k}.mid", 60 + k)
        rows.append({"clip": f"c{k}", "pianist": f"p{k % 4}", "system": "AB"[k % 2], "midi": f"midi/c{k}.mid",
                     "quality": 1 + k * 0.5, "warmth": 7 - k * 0.5})
        for r in range(3):
            raters += [{"clip": f"c{k}", "rater": f"r{r}", "target": t, "rating": (k + r) % 7 + 1}
                       for t in ("quality", "warmth")]
    pd.DataFrame(rows).to_csv(d / "ratings.csv", index=False)
    pd.DataFrame(raters).to_csv(d / "raters.csv", index=False)
    (d / "dataset.toml").write_text(GOOD)
    return d


def _edit_table(folder: Path, edit, name="ratings.csv") -> None:
    table = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
    edited = edit(table)  # an edit in place returns None
    (table if edited is None else edited).to_csv(folder / name, index=False)


def test_the_valid_dataset_checks(folder, cli):
    code, out, _ = cli("dataset", "check", folder)
    assert code == 0 and "items: 8" in out and "group system: 2 values, 4-4 items each" in out
    assert "raters: 48 answers from 3 raters on 8 of 8 items" in out


BAD_TABLES = {
    "unknown column": (lambda t: t.rename(columns={"system": "systm"}),
                       ["[groups] columns names the column 'system', which ratings.csv lacks", "did you mean 'systm'"]),
    "duplicate id": (lambda t: t.__setitem__("clip", ["c0", "c1", "c2", "c3", "c4", "c5", "c6", " c0"]),
                     ["the id 'c0' appears twice (rows 0 and 7"]),
    "rating out of range": (lambda t: t.__setitem__("warmth", ["7", "6.5", "6", "5.5", "5", "9.5", "4", "3.5"]),
                            ["item 'c5' has warmth = 9.5, outside the declared range [1, 7]"]),
    "rating not a number": (lambda t: t.__setitem__("quality", ["1", "1.5", "good", "2.5", "3", "3.5", "4", "4.5"]),
                            ["item 'c2' has quality = 'good', not a number"]),
    "missing rating": (lambda t: t.__setitem__("quality", ["1", "1.5", "", "2.5", "3", "3.5", "4", "4.5"]),
                       ["item 'c2' has no rating for quality"]),
    "missing media file": (lambda t: t.__setitem__("midi", [*[f"midi/c{k}.mid" for k in range(7)], "midi/gone.mid"]),
                           ["1 midi file(s) of [media] midi = 'midi' do not exist", "item 'c7': 'midi/gone.mid'"]),
    "one-valued group": (lambda t: t.__setitem__("system", ["A"] * 8),
                         ["the group column 'system' has one value ('A') for all 8 items"]),
    "missing group value": (lambda t: t.__setitem__("pianist", ["p0", "p1", "", "p3", "p0", "p1", "p2", "p3"]),
                            ["item 'c2' has no value in the group column 'pianist'"]),
    "no id": (lambda t: t.__setitem__("clip", ["c0", "c1", "c2", "", "c4", "c5", "c6", "c7"]),
              ["row 3 has no id in column 'clip'"]),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_a_bad_ratings_table_is_one_line_and_exit_2(folder, cli, tmp_path, case):
    edit, needles = BAD_TABLES[case]
    _edit_table(folder, edit)
    assert_one_line_error(*cli("dataset", "check", folder)[::2], *needles)
    # The same line from run, before any feature is built.
    code, _, err = cli("run", "--no-progress", "--models", "ridge", "--split", "group:system", "--dataset", folder,
                       "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs")
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "cache").exists()


BAD_DESCRIPTIONS = {
    "unknown key": ('id = "clip"', 'id = "clip"\nidd = "x"', ["unknown key 'idd' in [dataset]", "did you mean 'id'"]),
    "unknown section": ("[media]", "[medias]\n[media]", ["unknown section [medias]", "did you mean 'media'"]),
    "not toml": ("[targets]", "[targets", ["not a valid TOML file"]),
    "wrong type": ('range = [1, 7]\n\n[groups]', 'range = "1-7"\n\n[groups]', ["[targets] range = '1-7'"]),
    "bad range": ("range = [1, 7]\n\n[groups]", "range = [7, 1]\n\n[groups]", ["expected [low, high]"]),
    "column in two roles": ('columns = ["system"]', 'columns = ["pianist"]',
                            ["column 'pianist' is both [groups] performer and a [groups] column"]),
    "no media": ('midi = "midi"', '', ["[media] names neither a midi nor an audio column"]),
    "missing required": ('id = "clip"', '', ["[dataset] lacks id"]),
    "reserved name": ('columns = ["system"]', 'columns = ["player"]', ["'player', the harness's own name"]),
    "unknown reference": ("[raters]", '[reference]\nperformers = ["p9"]\n\n[raters]',
                          ["[reference] performers names 'p9', which is no value of the performer column"]),
    "missing rater file": ('file = "raters.csv"', 'file = "gone.csv"', ["[raters] file", "gone.csv' does not exist"]),
    "missing ratings file": ('ratings = "ratings.csv"', 'ratings = "gone.csv"',
                             ["ratings table", "gone.csv' does not exist"]),
    "unknown table format": ('ratings = "ratings.csv"', 'ratings = "ratings.xlsx"', ["unknown format '.xlsx'"]),
}


@pytest.mark.parametrize("case", list(BAD_DESCRIPTIONS))
def test_a_bad_description_is_one_line_and_exit_2(folder, cli, case):
    old, new, needles = BAD_DESCRIPTIONS[case]
    text = (folder / "dataset.toml").read_text()
    assert old in text
    (folder / "dataset.toml").write_text(text.replace(old, new, 1))
    if case == "unknown table format":
        (folder / "ratings.xlsx").write_bytes(b"PK")
    assert_one_line_error(*cli("dataset", "check", folder)[::2], *needles)


def test_a_bad_rater_table_is_one_line(folder, cli):
    _edit_table(folder, lambda t: t.__setitem__("target", ["quality", "warmht", *t["target"][2:]]), "raters.csv")
    assert_one_line_error(*cli("dataset", "check", folder)[::2], "target 'warmht' is not one of the dataset's targets")
    _edit_table(folder, lambda t: t.__setitem__("target", ["quality", "warmth", *t["target"][2:]]), "raters.csv")
    _edit_table(folder, lambda t: t.__setitem__("rating", ["8", *t["rating"][1:]]), "raters.csv")
    assert_one_line_error(*cli("dataset", "check", folder)[::2], "holds the rating 8.0, outside the declared range")
    _edit_table(folder, lambda t: t.__setitem__("rating", ["3", "eight", *t["rating"][2:]]), "raters.csv")
    assert_one_line_error(*cli("dataset", "check", folder)[::2], "row 1 holds the rating 'eight', not a number")


def test_a_row_longer_than_the_header_is_one_line(folder, cli):
    """pandas would drop the surplus cells with only a warning; the reader refuses the table instead."""
    lines = (folder / "ratings.csv").read_text().splitlines()
    lines[6] += ",surplus"
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    assert_one_line_error(*cli("dataset", "check", folder)[::2], "ratings.csv", "cannot be parsed")


def test_run_refuses_both_dataset_and_data_dir(folder, cli, tmp_path):
    code, _, err = cli("run", "--models", "ridge", "--dataset", folder, "--data-dir", tmp_path, "--out",
                       tmp_path / "runs")
    assert_one_line_error(code, err, "--dataset", "--data-dir", "pass one")


def test_a_missing_description_and_a_folder_without_one(cli, tmp_path):
    assert_one_line_error(*cli("dataset", "check", tmp_path / "nope.toml")[::2], "does not exist")
    assert_one_line_error(*cli("dataset", "check", tmp_path)[::2], "folder without dataset.toml")


def test_a_fifo_ratings_table_is_refused_without_blocking(folder, cli):
    (folder / "ratings.csv").unlink()
    import os

    os.mkfifo(folder / "ratings.csv")
    assert_one_line_error(*cli("dataset", "check", folder)[::2], "is not a regular file")


def test_fuzzed_ratings_tables_never_crash(folder):
    """Random bytes edits of the ratings table: loading succeeds or raises a BenchmarkError, nothing else."""
    raw = (folder / "ratings.csv").read_bytes()
    rng = random.Random(0)
    for _ in range(60):
        b = bytearray(raw)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(b))
            b[i] = rng.choice(b',\n"x9.-\x00\xff ')
        (folder / "ratings.csv").write_bytes(bytes(b))
        try:
            ds = load_described(folder)
        except BenchmarkError:
            continue
        assert np.isfinite(ds.y).all() and ((ds.y >= 1) & (ds.y <= 7)).all()

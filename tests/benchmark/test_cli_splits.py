"""``benchmark list splits`` flags and ``benchmark splits check|passages`` on the synthetic dataset."""

import json
import shutil

import pretty_midi
import pytest

from benchmark.cli import EXIT_ERROR, main


@pytest.fixture()
def dup_data_dir(fake_data_dir):
    """The synthetic dataset with one planted near-duplicate: player 1's excerpt 2 is a copy of its excerpt 1."""
    midi = fake_data_dir / "virtuoso" / "data" / "all_2rounds"
    # The synthetic performances differ only in velocity and may collide: give each its own velocity first.
    for k, path in enumerate(sorted(midi.glob("*.mid"))):
        pm = pretty_midi.PrettyMIDI(str(path))
        for note in pm.instruments[0].notes:
            note.velocity = 20 + k
        pm.write(str(path))
    shutil.copy(midi / "Schubert_D960_mv2_4bars_1_1.mid", midi / "Schubert_D960_mv2_4bars_1_2.mid")
    return fake_data_dir


def test_list_splits_flags_leaky_ones(capsys):
    assert main(["list", "splits"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "LEAKS" in lines["kfold"] and "LEAKS" in lines["excerpt_leaky"]
    for name in ("kfold_grouped", "excerpt", "lopo", "piece", "composer", "percepiano_performer4"):
        assert "no same-player near-duplicates" in lines[name]


def test_splits_check_counts_the_planted_duplicate(dup_data_dir, tmp_path, capsys, monkeypatch):
    from features import bigrams as overlap
    from features.cache import Cache

    monkeypatch.setattr(overlap, "_CODES", {})  # as in a new process
    # Leave-one-out: each copy is tested with the other one in training.
    assert main(["splits", "check", "kfold", "--n-splits", "24", "--data-dir", str(dup_data_dir),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    # The notes read are kept in the given cache (23 distinct MIDI contents: one file is a byte copy).
    assert len(list(Cache(tmp_path / "cache").entries(overlap.BIGRAM_STAGE))) == 23
    out = capsys.readouterr().out
    assert ("seed 0: 2 of 24 test segments have a same-player near-duplicate in training (2 with any player)"
            in out)
    common = ["--data-dir", str(dup_data_dir), "--cache-dir", str(tmp_path / "cache")]
    for name in ("kfold_grouped", "excerpt", "lopo"):
        assert main(["splits", "check", name, "--n-splits", "2", *common]
                    if name != "lopo" else ["splits", "check", name, *common]) == 0
        assert "seed 0: 0 of 24 test segments" in capsys.readouterr().out


def test_splits_passages_lists_the_link(dup_data_dir, tmp_path, capsys):
    assert main(["splits", "passages", "--data-dir", str(dup_data_dir), "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "Schubert_D960_mv2_4bars_1" in out and "6 excerpts form 5 passages" in out


def test_splits_check_errors(dup_data_dir, capsys):
    assert main(["splits", "check", "kfold", "--threshold", "0", "--data-dir", str(dup_data_dir)]) == EXIT_ERROR
    assert "use a shared-note fraction in (0, 1]" in capsys.readouterr().err
    assert main(["splits", "check", "kfld", "--data-dir", str(dup_data_dir)]) == EXIT_ERROR
    assert "did you mean 'kfold'" in capsys.readouterr().err


@pytest.mark.parametrize("split", ["excerpt", "kfold_grouped"])
def test_run_and_report_on_note_derived_groups(dup_data_dir, tmp_path, split, capsys):
    # Passages and performances are not in the segment names: the report takes them from the stored folds.
    args = ["--data-dir", str(dup_data_dir), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]
    assert main(["run", "--no-progress", "--models", "mean,ridge", "--split", split, "--n-splits", "2", *args]) == 0
    run = next((tmp_path / "runs").iterdir())
    assert main(["report", str(run), "--format", "md", "--no-plots", "--no-html", "--n-resamples", "50"]) == 0
    out = capsys.readouterr().out
    assert "| ridge |" in out


def test_run_records_leakage_in_manifest_and_report(dup_data_dir, tmp_path, capsys, monkeypatch):
    from features import bigrams as overlap

    monkeypatch.setattr(overlap, "_CODES", {})  # as in a new process: earlier tests' notes are not memoised
    args = ["--data-dir", str(dup_data_dir), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]
    assert main(["run", "--no-progress", "--models", "mean", "--split", "kfold", "--n-splits", "24", *args]) == 0
    run = next((tmp_path / "runs").iterdir())
    leakage = json.loads((run / "manifest.json").read_text())["leakage"]
    assert leakage["threshold"] == 0.8
    assert {k: leakage["seeds"]["0"][k] for k in ("n_test", "same_player", "any_player")} == {
        "n_test": 24, "same_player": 2, "any_player": 2}
    assert sum(f["same_player"] for f in leakage["seeds"]["0"]["folds"]) == 2
    line = "seed 0: 2 of 24 test segments have a same-player near-duplicate in training (2 with any player)"
    assert line in capsys.readouterr().out
    assert line in (run / "summary.md").read_text()
    assert main(["report", str(run), "--format", "md", "--no-plots", "--no-html", "--n-resamples", "50"]) == 0
    assert line in capsys.readouterr().out
    # The notes the check read are kept in the run's feature cache: one entry per distinct MIDI content
    # (24 segments, one of them a byte copy of another).
    from features.cache import Cache
    from splits.overlap import BIGRAM_STAGE

    assert len(list(Cache(tmp_path / "cache").entries(BIGRAM_STAGE))) == 23

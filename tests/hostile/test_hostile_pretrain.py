"""Issue 17.13: ``benchmark pretrain`` checks every setting and the MAESTRO metadata before any work, one line
and exit 2; the fine-tune hint names the model the checkpoint was made for."""

from __future__ import annotations

import pandas as pd
import pytest
from hostile_util import assert_one_line_error

pytest.importorskip("torch")


@pytest.fixture()
def common(fake_data_dir, tmp_path):
    return ["--data-dir", fake_data_dir, "--cache-dir", tmp_path / "cache", "--no-progress"]


@pytest.fixture()
def no_work(monkeypatch):
    """Fail the test if the data, the corpus or the training is reached before the settings are checked."""

    def too_late(*a, **k):
        raise AssertionError("pretrain started working before its settings were checked")

    monkeypatch.setattr("benchmark.dataset.load_dataset", too_late)
    monkeypatch.setattr("features.corpus.build_corpus", too_late)
    monkeypatch.setattr("models.ssast.pretrain_arrays", too_late)


@pytest.mark.parametrize("extra, needle", [
    (["--lr", "nan"], "lr=nan"),
    (["--lr", "-0.001"], "lr=-0.001"),
    (["--lr", "0"], "lr=0.0"),
    (["--lr", "inf"], "lr=inf"),
    (["--epochs", "0"], "epochs=0"),
    (["--epochs", "-3"], "epochs=-3"),
    (["--batch-size", "1"], "batch_size=1"),
    (["--batch-size", "-8"], "batch_size=-8"),
    (["--mask-ratio", "0"], "mask_ratio=0.0"),
    (["--mask-ratio", "1.5"], "mask_ratio=1.5"),
    (["--mask-ratio", "nan"], "mask_ratio=nan"),
    (["--mask-ratio", "0.999"], "hides all 32 patches"),
    (["--seed", "-1"], "seed=-1"),
    (["--corpus-seed", "-2"], "seed=-2"),
    (["--n-synthetic", "-1"], "n_synthetic=-1"),
    (["--threads", "0"], "--threads 0"),
    (["--jobs", "0"], "--jobs 0"),
    (["--device", "cuda"], "cuda"),
])
def test_bad_settings_fail_before_any_work(common, cli, no_work, extra, needle):
    if extra == ["--device", "cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    code, _, err = cli("pretrain", *common, *extra)
    assert_one_line_error(code, err, needle)


def _maestro(root, csv_text: str | bytes):
    root.mkdir()
    path = root / "maestro-v3.0.0.csv"
    path.write_bytes(csv_text if isinstance(csv_text, bytes) else csv_text.encode())
    return root


@pytest.mark.parametrize("content, needle", [
    ('canonical_title,split,midi_filename\n"unterminated,train,a.midi\n', "cannot read"),
    (b"\xff\xfe\x00\x00binary\x00garbage\xff", "cannot read"),
    ("title,split,file\nA,train,a.midi\n", "lacks column(s) ['midi_filename']"),
    ("split,midi_filename\ntrain,\n", "no midi_filename"),
    ("split,midi_filename\ntrain,2018/absent.midi\n", "missing"),
])
def test_an_unreadable_maestro_csv_fails_before_any_work(common, cli, no_work, tmp_path, content, needle):
    root = _maestro(tmp_path / "maestro", content)
    code, _, err = cli("pretrain", *common, "--maestro-dir", root)
    assert_one_line_error(code, err, needle)
    assert "maestro-v3.0.0.csv" in err


def test_a_missing_maestro_folder_and_a_bad_limit_fail_before_any_work(common, cli, no_work, tmp_path):
    code, _, err = cli("pretrain", *common, "--maestro-dir", tmp_path / "nope")
    assert_one_line_error(code, err, "does not exist")
    root = tmp_path / "m"
    root.mkdir()
    pd.DataFrame({"split": ["train"], "midi_filename": ["a.midi"]}).to_csv(root / "maestro-v3.0.0.csv", index=False)
    code, _, err = cli("pretrain", *common, "--maestro-dir", root, "--maestro-limit", "0")
    assert_one_line_error(code, err, "maestro_limit=0")


def test_the_fine_tune_hint_names_the_model_of_the_input(fake_data_dir, tmp_path, cli):
    from tests.conftest import unrated_score_midis

    unrated_score_midis(fake_data_dir)
    common = ["--data-dir", fake_data_dir, "--cache-dir", tmp_path / "cache", "--no-progress", "--epochs", "1"]
    code, out, _ = cli("pretrain", "--input", "roll", *common)
    assert code == 0
    assert "fine-tune from it with: benchmark run --models ast_tiny_roll --init " in out
    code, out, _ = cli("pretrain", "--input", "mel", "--corpus", "score", *common)  # 2 items to render
    assert code == 0
    assert "fine-tune from it with: benchmark run --models ast_tiny --init " in out

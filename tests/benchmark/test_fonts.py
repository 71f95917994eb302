"""Several SoundFonts in one run: conditions, stacked training sets, the cross-font table."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import EXIT_ERROR, main
from benchmark.errors import ConfigError
from benchmark.execute import _stacked_training
from benchmark.fonts import expand_models, font_conditions
from features import render
from features.soundfonts import font_label, font_labels, split_soundfonts


@pytest.fixture()
def two_fonts(tmp_path):
    """The bundled font, and the same bytes under another name (a second "piano" that sounds the same)."""
    default = render.default_soundfont()
    other = tmp_path / "fonts" / "OtherPiano.sf2"
    other.parent.mkdir()
    shutil.copy(default, other)
    return str(default), str(other)


def test_split_soundfonts(two_fonts, tmp_path):
    default, other = two_fonts
    assert split_soundfonts(None) == []
    assert split_soundfonts(f"default, {other}") == [None, other]
    assert font_label(None) == "TimGM6mb" and font_label(other) == "OtherPiano"
    with pytest.raises(ConfigError, match="names a SoundFont twice"):
        split_soundfonts(f"default,{default}")
    with pytest.raises(ConfigError, match="has an empty entry"):
        split_soundfonts(f"{other},")
    with pytest.raises(ConfigError, match="SoundFont not found"):
        split_soundfonts(f"default,{tmp_path / 'missing.sf2'}")
    twin = tmp_path / "twin" / "OtherPiano.sf2"
    twin.parent.mkdir()
    shutil.copy(other, twin)
    with pytest.raises(ConfigError, match="both called 'OtherPiano'"):
        font_labels([other, str(twin)])


def test_font_conditions_and_expansion():
    names = [c.name for c in font_conditions("rf_audio", ["A", "B"])]
    assert names == ["rf_audio@A", "rf_audio@B", "rf_audio@A_to_B", "rf_audio@B_to_A", "rf_audio@A+B_to_A",
                     "rf_audio@A+B_to_B"]
    kinds = [c.kind for c in font_conditions("m", ["A", "B", "C"])]
    assert kinds.count("same") == 3 and kinds.count("cross") == 6 and kinds.count("augmented") == 3
    sets = {"lgbm": ["midi"], "rf_audio": ["audio"], "ast": ["mel"]}
    models, conds = expand_models(["lgbm", "rf_audio"], ["A", "B"], sets.get)
    assert models[0] == "lgbm" and len(models) == 7 and conds["rf_audio@A_to_B"].train == ("A",)
    with pytest.raises(ConfigError, match="reads mel: several SoundFonts work for the audio feature set only"):
        expand_models(["ast"], ["A", "B"], sets.get)


def test_stacked_training_repeats_rows_labels_and_groups():
    X1, X2 = np.arange(10.0).reshape(5, 2), -np.arange(10.0).reshape(5, 2)
    y = np.arange(5.0)[:, None] * [1, 10]
    tr = np.array([0, 2, 3])
    X, yy, g = _stacked_training([X1, X2], tr, y, None)
    assert X.tolist() == [[0, 1], [4, 5], [6, 7], [0, -1], [-4, -5], [-6, -7]]
    assert yy[:, 0].tolist() == [0, 2, 3, 0, 2, 3]
    assert g.tolist() == [0, 2, 3, 0, 2, 3]  # a segment's renderings share one group
    X, yy, g = _stacked_training([X2], tr, y, None)  # cross-font: other font, same rows, no groups
    assert X.shape == (3, 2) and g is None
    _, _, g = _stacked_training([X1, X2], tr, y, np.array(list("abcde"))[tr])
    assert g.tolist() == ["a", "c", "d", "a", "c", "d"]


def test_run_with_two_soundfonts_has_cross_font_table(fake_data_dir, tmp_path, two_fonts, capsys):
    _, other = two_fonts
    args = ["--data-dir", str(fake_data_dir), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]
    # ridge on the audio features (--features audio): quick fits; the audio is rendered once, as both
    # fonts hold the same bytes and the cache keys by content.
    assert main(["run", "--no-progress", "--models", "mean,ridge", "--features", "audio", "--split", "kfold_grouped",
                 "--n-splits", "2",
                 "--soundfont", f"default,{other}", *args]) == 0
    out = capsys.readouterr().out
    assert "Cross-font table" in out and "| ridge: trained on | tested on TimGM6mb | tested on OtherPiano |" in out
    assert "| TimGM6mb+OtherPiano (augmented) |" in out
    run = next((tmp_path / "runs").iterdir())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["models"][6:] == ["ridge@TimGM6mb", "ridge@OtherPiano", "ridge@TimGM6mb_to_OtherPiano",
                                      "ridge@OtherPiano_to_TimGM6mb", "ridge@TimGM6mb+OtherPiano_to_TimGM6mb",
                                      "ridge@TimGM6mb+OtherPiano_to_OtherPiano"]
    assert manifest["fonts"]["conditions"]["ridge@TimGM6mb+OtherPiano_to_OtherPiano"]["kind"] == "augmented"
    preds = pd.read_parquet(run / "predictions.parquet")

    def pred(model):
        return preds[preds["model"] == model].sort_values(["sample_id", "target"])["y_pred"].to_numpy()

    # The two fonts hold the same bytes: the same features, so training on one and testing on the
    # other predicts exactly what training and testing on one does; stacking both fonts changes the fit.
    same = pred("ridge@TimGM6mb")
    assert same.size == 24 * 19
    np.testing.assert_array_equal(pred("ridge@TimGM6mb_to_OtherPiano"), same)
    np.testing.assert_array_equal(pred("ridge@OtherPiano"), same)
    augmented = pred("ridge@TimGM6mb+OtherPiano_to_OtherPiano")
    assert augmented.size == same.size and not np.array_equal(augmented, same)
    # The report reads the run as it is.
    assert main(["report", str(run), "--format", "md", "--no-plots", "--no-html", "--n-resamples", "50"]) == 0
    assert "Cross-font table" in capsys.readouterr().out


def test_several_soundfonts_errors(fake_data_dir, tmp_path, two_fonts, capsys):
    _, other = two_fonts
    args = ["--data-dir", str(fake_data_dir), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]
    assert main(["run", "--no-progress", "--models", "ridge", "--features", "audio", "--soundfont",
                 f"default,{other},", *args]) == EXIT_ERROR
    assert "has an empty entry" in capsys.readouterr().err
    assert main(["render", "Schubert_D960_mv2_4bars_1_1", "-o", str(tmp_path / "x.wav"), "--data-dir",
                 str(fake_data_dir), "--soundfont", f"default,{other}"]) == EXIT_ERROR
    assert "render takes one --soundfont" in capsys.readouterr().err

"""README "Your own dataset": its dataset.toml example is a complete, valid description that `dataset check` reads."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi
import soundfile

from benchmark.cli import main
from benchmark.description import load_described

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    text = README.read_text()
    m = re.search(r"<!-- example:dataset-toml -->\n```toml\n(.*?)```\n<!-- /example:dataset-toml -->", text, re.S)
    assert m, "README lost its dataset.toml example"
    return m.group(1)


def test_the_readme_example_describes_a_dataset_that_checks(tmp_path, capsys):
    d = tmp_path / "hall"
    (d / "wav").mkdir(parents=True)
    (d / "midi").mkdir()
    (d / "dataset.toml").write_text(_example())
    rng = np.random.default_rng(0)
    rows, answers = [], []
    pianists = ["anna", "ben", "chen", "deadpan"]
    for k in range(24):
        clip, pianist = f"c{k:02d}", pianists[k % 4]
        t = np.arange(8000) / 16000
        soundfile.write(d / "wav" / f"{clip}.wav", (0.3 * np.sin(2 * np.pi * (220 + 10 * k) * t)).astype(np.float32),
                        16000)
        midi = ""
        if pianist != "deadpan":  # the reference items come as recordings only
            pm = pretty_midi.PrettyMIDI()
            inst = pretty_midi.Instrument(program=0)
            inst.notes.append(pretty_midi.Note(velocity=60, pitch=60 + k % 12, start=0.0, end=0.4))
            pm.instruments.append(inst)
            pm.write(str(d / "midi" / f"{clip}.mid"))
            midi = f"midi/{clip}.mid"
        sheet = {"tone": rng.integers(1, 8, 4), "timing": rng.integers(1, 8, 4), "overall": rng.integers(1, 11, 4)}
        for target, values in sheet.items():
            answers += [{"clip": clip, "rater": f"r{r}", "target": target, "rating": int(v)}
                        for r, v in enumerate(values)]
        rows.append({"clip": clip, "pianist": pianist, "piece": ["bach_prelude", "chopin_nocturne"][k // 12],
                     "system": ["steinway", "yamaha"][k % 2 if k % 4 != 3 else (k // 4) % 2], "take": 1 + k // 12,
                     **{t: float(v.mean()) for t, v in sheet.items()}, "wav": f"wav/{clip}.wav", "midi": midi})
    pd.DataFrame(rows).to_csv(d / "ratings.csv", index=False)
    pd.DataFrame(answers).to_csv(d / "raters.csv", index=False)

    ds = load_described(d)
    assert ds.name == "hall-listening-test" and ds.target_names == ("tone", "timing", "overall")
    assert ds.target_ranges == ((1, 7), (1, 7), (1, 10))
    assert int(ds.meta["reference"].sum()) == 6 and ds.meta["midi_path"].isna().sum() == 6
    assert list(ds.meta["take"][:2]) == [1, 1]
    assert main(["dataset", "check", str(d), "--media"]) == 0
    out = capsys.readouterr().out
    assert "items: 24 (6 reference items" in out
    assert "target overall: range [1, 10]" in out
    assert "group pianist (performer): 4 values, 6-6 items each" in out and "group system: 2 values" in out
    assert "raters: 288 answers from 4 raters on 24 of 24 items" in out
    assert "audio headers: 24 readable, 0.5-0.5 s, sample rates 16000 Hz" in out
    assert "media midi: 18 found, 6 item(s) without one" in out
    splits = next(line for line in out.splitlines() if line.startswith("splits: "))
    assert "lopo" in splits and "piece" in splits and "group:COLUMN" in splits
    assert "models unavailable (6 items have no MIDI" in out
    # As README says: with audio-only items the MIDI models are refused in one line, before any job.
    assert main(["run", "--no-progress", "--models", "ridge", "--split", "group:system", "--dataset", str(d),
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model(s) ridge read MIDI" in err[0] and "6 of 24 items" in err[0]
    assert not (tmp_path / "cache").exists()

"""A differently shaped described dataset: other targets and count, a group column `system`, no rater sheets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.description import load_described
from tests.benchmark.described_util import only_run, write_description
from tests.conftest import make_fake_percepiano

TARGETS = ("quality", "expressiveness", "novelty")
SYSTEMS = ("sysA", "sysB", "sysC", "sysD")

DESCRIPTION = """
[dataset]
name = "generated-music"
ratings = "ratings.{ext}"
id = "clip"

[targets]
columns = ["quality", "expressiveness", "novelty"]
range = [1, 5]

[groups]
columns = ["system"]

[media]
midi = "file"
"""


@pytest.fixture()
def shaped(tmp_path):
    """24 MIDI clips rated on 3 targets (1..5) by listeners, made by 4 systems; JSON ratings, no rater table."""
    midi = sorted((make_fake_percepiano(tmp_path / "pp") / "virtuoso" / "data" / "all_2rounds").glob("*.mid"))[:24]
    rng = np.random.default_rng(3)
    records = []
    for k, path in enumerate(midi):
        level = rng.uniform(1.5, 4.5)
        records.append({"clip": f"clip{k:03d}", "system": SYSTEMS[k % 4], "file": str(path),
                        **{t: float(np.clip(level + rng.normal(0, 0.3), 1, 5)) for t in TARGETS}})
    folder = tmp_path / "gen"
    folder.mkdir()
    (folder / "ratings.json").write_text(json.dumps(records))
    write_description(folder, DESCRIPTION.format(ext="json"))
    return folder, records


def test_the_shaped_dataset_loads_with_its_own_targets_and_groups(shaped):
    folder, records = shaped
    ds = load_described(folder)
    assert ds.target_names == TARGETS and ds.y.shape == (24, 3)
    assert ds.target_ranges == ((1.0, 5.0),) * 3 and ds.group_columns == ("system",)
    assert "player" not in ds.meta.columns and not ds.meta["reference"].any()
    by_id = {r["clip"]: r for r in records}
    for sid, row in zip(ds.meta["sample_id"], ds.y, strict=True):  # JSON numbers, exactly
        assert list(row) == [by_id[sid][t] for t in TARGETS]
    # The same table as Parquet and CSV gives the same dataset, bit for bit.
    table = pd.DataFrame.from_records(records)
    for ext, write in (("parquet", table.to_parquet), ("csv", table.to_csv)):
        write(folder / f"ratings.{ext}", index=False)
        (folder / "dataset.toml").write_text(DESCRIPTION.format(ext=ext))
        other = load_described(folder)
        assert other.y.tobytes() == ds.y.tobytes() and other.meta.equals(ds.meta)


def test_runs_ridge_rf_on_group_system_and_the_report_says_the_ceiling_is_unavailable(shaped, tmp_path, capsys):
    folder, _ = shaped
    assert main(["run", "--no-progress", "--models", "ridge,rf", "--split", "group:system", "--dataset", str(folder),
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]) == 0
    run = only_run(tmp_path / "runs")
    preds = pd.read_parquet(run / "predictions.parquet")
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert set(preds["target"]) == set(TARGETS) and (metrics["status"] == "ok").all()
    assert metrics.groupby("model")["fold"].nunique().eq(4).all()  # one fold per system
    folds = pd.read_parquet(run / "folds.parquet")
    assert sorted(folds["group"].unique()) == list(SYSTEMS)
    test = folds[folds["role"] == "test"].groupby("fold")["group"].unique()
    assert all(len(g) == 1 for g in test)  # each fold holds out one system, whole
    assert preds["performer"].isna().all() and preds["piece"].isna().all()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "generated-music" and manifest["dataset"]["raters_sha256"] is None
    assert manifest["split"]["group_column"] == "system"
    capsys.readouterr()
    assert main(["report", str(run), "--n-resamples", "100", "--no-plots", "--no-html", "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "Noise ceiling unavailable" in out and "has no per-rater ratings" in out
    notes = json.loads((run / "report" / "report.json").read_text())["notes"]
    assert any("Noise ceiling unavailable" in n for n in notes)
    assert "r_over_ceiling" not in (run / "report" / "per_target.md").read_text()


@pytest.mark.parametrize("split, expected", [
    ("lopo", "declares no performer column"),
    ("group:sytem", "did you mean group:system"),
    ("kfold_grouped:composer", "not a group column of the dataset"),
    ("piece", "declares no piece column"),
    ("grp:system", "unknown split"),
])
def test_splits_the_dataset_cannot_make_are_one_line_before_any_feature(shaped, tmp_path, capsys, split, expected):
    folder, _ = shaped
    capsys.readouterr()
    assert main(["run", "--no-progress", "--models", "ridge", "--split", split, "--dataset", str(folder),
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "cache").exists()  # refused before any feature was built


def test_dataset_check_prints_what_the_harness_sees(shaped, capsys):
    folder, _ = shaped
    assert main(["dataset", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "dataset 'generated-music'" in out and "items: 24" in out
    assert "media midi: 24 found" in out
    assert "target quality: range [1, 5]" in out
    assert "group system: 4 values, 6-6 items each" in out
    assert "raters: none" in out and "ceiling is unavailable" in out
    splits = next(line for line in out.splitlines() if line.startswith("splits:"))
    assert "kfold" in splits and "lopo" not in splits.split(";")[0]
    assert "group:COLUMN" in splits and "system" in splits

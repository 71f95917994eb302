"""Helpers for the described-dataset tests: a rater file for the fake PercePiano, small descriptions, table readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import MEAN_LABELS, RATER_LABELS


def write_fake_raters(root: Path, seed: int = 0) -> Path:
    """A ``labels/total_2rounds.csv`` for a fake PercePiano folder: 4-6 raters per labelled segment, answers 1..7.

    It holds an unanswered question (0), an empty cell, a sheet with an 8 (dropped whole) and a resubmitted
    sheet, so the export's rater table carries each case.
    """
    rng = np.random.default_rng(seed)
    segments = sorted(json.loads((root / MEAN_LABELS).read_text()))
    questions = [f"Question_{j}_1_1" for j in range(20)]
    rows = []
    for i, seg in enumerate(segments):
        quality = rng.normal(size=19)
        for user in range(4 + i % 3):
            answers = np.clip(np.round(4 + 1.5 * quality + rng.normal(0, 1, 19)), 1, 7)
            rows.append([str(200 + (user * 7 + i) % 11), len(rows), seg + ".wav", *answers, ""])
    rows[0][3 + 4] = 0.0
    rows[1][3 + 5] = np.nan
    rows[2][3 + 6] = 8.0
    rows.append(list(rows[10]))
    rows[-1][1] = len(rows)
    df = pd.DataFrame(rows, columns=["user", "dataID", "filename", *questions])
    path = root / RATER_LABELS
    df.to_csv(path, index=False)
    return path


def ids_and_rows(table: pd.DataFrame) -> pd.DataFrame:
    """A run's predictions sorted into one canonical order (rows are written per job, in finishing order)."""
    return table.sort_values(["model", "seed", "fold", "sample_id", "target"]).reset_index(drop=True)


def run_tables(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``metrics.parquet`` without the run's id and timings, and ``predictions.parquet``, both sorted."""
    metrics = pd.read_parquet(run_dir / "metrics.parquet").drop(columns=["run_id", "fit_seconds"])
    metrics = metrics.sort_values(["model", "seed", "fold", "metric", "target"]).reset_index(drop=True)
    return metrics, ids_and_rows(pd.read_parquet(run_dir / "predictions.parquet"))


def only_run(parent: Path) -> Path:
    [run] = [p for p in parent.iterdir() if p.is_dir()]
    return run


def write_description(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dataset.toml"
    path.write_text(text)
    return path

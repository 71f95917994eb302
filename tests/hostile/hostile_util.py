"""Assertions shared by the hostile suite."""

from __future__ import annotations

import re

import pandas as pd

from benchmark.cli import EXIT_ERROR
from benchmark.store import RunStore


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """Exit 2, exactly one non-empty stderr line starting with 'error:', containing every needle."""
    # Progress bars (tqdm, on stderr) are not messages.
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not re.search(r"\d+%\|", ln)]
    assert code == EXIT_ERROR, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def run_tables(run_dir):
    """(rows, predictions) of a run, sorted, without the run id and timings: equal for equal results."""
    rows, preds = RunStore(run_dir).read_jobs()
    rows = rows.drop(columns=["run_id", "fit_seconds"]).sort_values(["model", "seed", "fold", "metric", "target"])
    preds = preds.sort_values(["model", "seed", "fold", "sample_id", "target"])
    return rows.reset_index(drop=True), preds.reset_index(drop=True)


def assert_same_results(run_a, run_b) -> None:
    (ra, pa), (rb, pb) = run_tables(run_a), run_tables(run_b)
    pd.testing.assert_frame_equal(ra, rb, check_exact=True)
    pd.testing.assert_frame_equal(pa, pb, check_exact=True)

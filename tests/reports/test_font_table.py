"""The cross-font table: each test font over all players and, beside it, over the pianists only."""

from __future__ import annotations

import pandas as pd

from reports.fonts import font_table, format_font_table

MANIFEST = {"fonts": {"soundfonts": {"A": "/a.sf2", "B": "/b.sf2"}, "conditions": {
    "rf@A": {"model": "rf", "train": ["A"], "test": "A", "kind": "same"},
    "rf@A_to_B": {"model": "rf", "train": ["A"], "test": "B", "kind": "cross"},
}}}


def _summary() -> pd.DataFrame:
    rows = []
    for name, (v, vp) in {"rf@A": (0.70, 0.65), "rf@A_to_B": (0.60, 0.52)}.items():
        rows.append({"model": name, "complete": True, "pooled_pearson": v, "pooled_pearson_lo": v - 0.05,
                     "pooled_pearson_hi": v + 0.05, "pooled_pearson_pianists": vp,
                     "pooled_pearson_pianists_lo": vp - 0.04, "pooled_pearson_pianists_hi": vp + 0.04})
    return pd.DataFrame(rows)


def test_pianists_only_columns_beside_the_fonts():
    table = font_table(MANIFEST, _summary())
    assert table[["test", "value", "value_pianists"]].values.tolist() == [["A", 0.70, 0.65], ["B", 0.60, 0.52]]
    md = format_font_table(table, MANIFEST)
    assert ("| rf: trained on | tested on A | tested on B | tested on A, pianists only | tested on B, pianists only |"
            in md)
    assert "| A | 0.700 [0.650, 0.750] | 0.600 [0.550, 0.650] | 0.650 [0.610, 0.690] | 0.520 [0.480, 0.560] |" in md
    assert "pianists only (the deadpan renderings Score, Score2 left out)" in md


def test_a_summary_without_pianists_columns_shows_na():
    """An older summary (before the pianists-only columns) gives n/a in them, not an error."""
    summary = _summary().drop(columns=[c for c in _summary().columns if "pianists" in c])
    md = format_font_table(font_table(MANIFEST, summary), MANIFEST)
    assert "| A | 0.700 [0.650, 0.750] | 0.600 [0.550, 0.650] | n/a | n/a |" in md

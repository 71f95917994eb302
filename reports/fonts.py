"""The cross-font table of a run made with several SoundFonts (``--soundfont A,B``).

For every audio model: one row per training condition (each font alone, all
fonts together), one column per test font, then the same over the pianists only
(the two deadpan renderings left out); each cell is the pooled mean r with
its bootstrap CI from :func:`reports.summary.summary_table`. The diagonal is
"train and test on the same piano", the off-diagonal cells are robustness to
the piano, and the "all fonts" row is augmentation. Nothing is refitted.
"""

from __future__ import annotations

import pandas as pd


def font_table(manifest: dict, summary: pd.DataFrame, metric: str = "pearson") -> pd.DataFrame | None:
    """Long table of the font conditions: model, train, test, kind, value and CI.

    Parameters
    ----------
    manifest : dict
        The run's manifest (its ``fonts`` entry, written by the runner).
    summary : DataFrame
        :func:`reports.summary.summary_table` of the run.
    metric : {'pearson', 'r2'}

    Returns
    -------
    DataFrame or None
        Columns ``model``, ``train``, ``test``, ``kind``, ``value``, ``lo``, ``hi``, the same over the pianists
        only (``value_pianists``, ``lo_pianists``, ``hi_pianists``), ``complete``; None for a run with one SoundFont.
    """
    fonts = manifest.get("fonts")
    if not fonts:
        return None
    by_name = summary.set_index("model")
    rows = []
    for name, cond in fonts["conditions"].items():
        if name not in by_name.index:
            continue
        r = by_name.loc[name]
        rows.append({"model": cond["model"], "train": "+".join(cond["train"]), "test": cond["test"],
                     "kind": cond["kind"], "value": r.get(f"pooled_{metric}"), "lo": r.get(f"pooled_{metric}_lo"),
                     "hi": r.get(f"pooled_{metric}_hi"), "value_pianists": r.get(f"pooled_{metric}_pianists"),
                     "lo_pianists": r.get(f"pooled_{metric}_pianists_lo"),
                     "hi_pianists": r.get(f"pooled_{metric}_pianists_hi"), "complete": bool(r["complete"])})
    return pd.DataFrame(rows, columns=["model", "train", "test", "kind", "value", "lo", "hi", "value_pianists",
                                       "lo_pianists", "hi_pianists", "complete"])


def format_font_table(table: pd.DataFrame | None, manifest: dict, metric_label: str = "mean r") -> str | None:
    """Markdown: per model, rows = training fonts, columns = test font (all players, then pianists only),
    cells ``value [lo, hi]``."""
    if table is None or table.empty:
        return None
    tests = list(manifest["fonts"]["soundfonts"])
    out = [f"Cross-font table ({metric_label}, pooled OOF [95% CI]; rows: trained on, columns: tested on, over "
           "all players and over the pianists only (the deadpan renderings Score, Score2 left out); "
           f"SoundFonts: {', '.join(f'{k} = {v}' for k, v in manifest['fonts']['soundfonts'].items())})", ""]
    columns = [(t, "") for t in tests] + [(t, "_pianists") for t in tests]
    for model, part in table.groupby("model", sort=False):
        out.append(f"| {model}: trained on | " + " | ".join(f"tested on {t}" + (", pianists only" if pop else "")
                                                             for t, pop in columns) + " |")
        out.append("|---" * (len(columns) + 1) + "|")
        for train, cells in part.groupby("train", sort=False):
            row = []
            for t, pop in columns:
                c = cells[cells["test"] == t]
                if c.empty or pd.isna(c[f"value{pop}"].iloc[0]):
                    row.append("n/a")
                else:
                    c = c.iloc[0]
                    mark = "" if c["complete"] else " (partial)"
                    row.append(f"{c[f'value{pop}']:.3f} [{c[f'lo{pop}']:.3f}, {c[f'hi{pop}']:.3f}]{mark}")
            label = train if "+" not in train else f"{train} (augmented)"
            out.append(f"| {label} | " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out).rstrip()

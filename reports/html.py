"""One self-contained HTML report per run: manifest, tables, figures, error analysis.

The file has no external reference (figures are base64 PNG, the style sheet
is inline, there is no script), so it opens offline and can be mailed or
archived with the run. Optional parts (significance tables, noise ceiling,
permutation importance) are left out with a note when they cannot be made.

Everything shown comes from one :class:`reports.report.Report` (computed once)
and the PNGs :func:`reports.plots.save_figures` rendered for the plot files:
this module only formats.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import logging
import shlex
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import BenchmarkError
from reports.ceiling import run_ceiling
from reports.plots import report_figures, save_figures
from reports.report import HARDEST, Report, build_report
from reports.rundata import RunData, load_run_data
from reports.tables import make_displays, to_html

logger = logging.getLogger(__name__)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0 1em 0; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
table.kv td { text-align: left; } code { background: #f5f5f5; padding: 0 3px; }
figure { margin: 1em 0 2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .note { font-size: 0.85em; color: #555; }
nav a { margin-right: 1em; }
"""


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _table(df: pd.DataFrame, *, index: bool = False) -> str:
    return df.to_html(index=index, escape=True, na_rep="n/a", border=0)


def _kv(pairs) -> str:
    rows = "".join(f"<tr><td><b>{_esc(k)}</b></td><td>{v}</td></tr>" for k, v in pairs)
    return f'<table class="kv">{rows}</table>'


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


def _fmt(v, spec: str = ".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) or pd.isna(v) else format(v, spec)


def _ci(row, est: str, lo: str, hi: str, spec: str = ".3f") -> str:
    if est not in row or pd.isna(row[est]):
        return "n/a"
    if lo not in row or pd.isna(row[lo]):
        return _fmt(row[est], spec)
    return f"{_fmt(row[est], spec)} [{_fmt(row[lo], spec)}, {_fmt(row[hi], spec)}]"


# --- sections -----------------------------------------------------------------

def _manifest_section(res: RunData, header: list[str]) -> str:
    m = res.manifest
    split = m.get("split", {})
    cfg = m.get("config", {})
    command = m.get("command") or []
    pairs = [
        ("run id", _esc(res.run_id)),
        ("created", _esc(m.get("created", "?")) + (f" (resumed {_esc(m['resumed'])})" if m.get("resumed") else "")),
        ("command", f"<code>{_esc(shlex.join(map(str, command)))}</code>"),
        ("git commit", f"<code>{_esc(m.get('git_commit') or 'unknown (not a git checkout)')}</code>"),
        ("data", f"{_esc(m.get('data_dir', '?'))}, {_esc(m.get('n_samples', '?'))} segments, "
                 f"score renderings {'included' if m.get('include_score', True) else 'excluded'}"),
        ("data hash (sha256)", f"<code>{_esc(m.get('data_hash', '?'))}</code>"),
        ("split", f"<b>{_esc(split.get('name', cfg.get('split')))}</b>: {_esc(split.get('description', ''))}"),
        ("grouping", _esc(f"group column {split.get('group_column')!r}; test folds "
                          f"{'partition the data' if split.get('partition', True) else 'share one fixed test set'}")),
        ("folds per seed", _esc(", ".join(f"seed {s}: {n}" for s, n in m.get("n_folds", {}).items()))),
        ("models", _esc(", ".join(cfg.get("models", [])))),
        ("feature sets", _esc(", ".join(f"{k} ({v} columns)" for k, v in m.get("feature_sets", {}).items())
                              or "none")),
        ("skipped inputs", _esc(", ".join(sorted(m.get("skipped_inputs", {}))) or "none")),
    ]
    versions = m.get("versions", {})
    vt = pd.DataFrame({"package": list(versions), "version": list(versions.values())})
    return ("<h2 id='manifest'>Run manifest</h2>" + _kv(pairs) + "".join(_note(h) for h in header)
            + "<h3>Versions</h3>" + _table(vt))


def _summary_section(res: RunData, t: pd.DataFrame, n_resamples: int) -> str:
    rows = []
    for _, r in t.iterrows():
        rows.append({
            "model": r["model"],
            "pooled r [95% CI]": _ci(r, "pooled_pearson", "pooled_pearson_lo", "pooled_pearson_hi"),
            "pooled R² [95% CI]": _ci(r, "pooled_r2", "pooled_r2_lo", "pooled_r2_hi"),
            "pooled r, pianists only [95% CI]": _ci(r, "pooled_pearson_pianists", "pooled_pearson_pianists_lo",
                                                    "pooled_pearson_pianists_hi"),
            "pooled R², pianists only [95% CI]": _ci(r, "pooled_r2_pianists", "pooled_r2_pianists_lo",
                                                     "pooled_r2_pianists_hi"),
            "per-fold r (mean ± sd)": f"{_fmt(r.get('fold_pearson_mean'))} ± {_fmt(r.get('fold_pearson_sd'))}",
            "per-fold R² (mean ± sd)": f"{_fmt(r.get('fold_r2_mean'))} ± {_fmt(r.get('fold_r2_sd'))}",
            "jobs": f"{r['jobs_ok']}/{r['jobs_expected']}" + ("" if r.get("complete", True) else " (partial)"),
        })
    pooled = "pooled out-of-fold" if res.partition else "fixed test set, mean over fold models"
    return ("<h2 id='summary'>Summary</h2>" + _table(pd.DataFrame(rows))
            + _note(f"Mean over targets ({pooled}); CIs: percentile bootstrap over segments ({n_resamples} "
                    "resamples). Pianists only: the same without the deadpan score renderings (players Score, "
                    "Score2). Per-fold: mean ± sd over folds of the target-averaged metric (complete seeds; seeds "
                    "averaged within a fold when they do not change the folds)."))


def _statistics_section(report) -> str:
    """Every table of :func:`reports.report.build_report`, rendered by :mod:`reports.tables`."""
    parts = ["<h2 id='significance'>Significance, per-target results and rankings</h2>"]
    for name, table in report.tables.items():
        parts += [to_html(d) for d in make_displays(table, name)]
    parts += [_note(n) for n in report.notes]
    return "".join(parts)


def _ceiling(res: RunData, n_resamples: int = 2000, seed: int = 0) -> tuple[pd.DataFrame | None, str]:
    try:
        return run_ceiling(res, n_resamples=n_resamples, seed=seed), ""
    except (BenchmarkError, OSError) as exc:
        return None, f"noise ceiling not available: {exc}"


def _ceiling_section(report: Report, why: str) -> str:
    head = "<h2 id='ceiling'>Noise ceiling</h2>"
    ceiling = report.ceiling
    if ceiling is None:
        return head + _note(why or "noise ceiling not computed")
    cols = ["target", "mean_raters", "split_half_r", "spearman_brown", "icc1k", "ceiling_r"]
    t = ceiling[cols + [c for c in ("ceiling_lo", "ceiling_hi") if c in ceiling]].copy()
    per_target = report.tables["per_target"].set_index("target")
    # The per-target table's r / ceiling: a model whose r is undefined (constant predictions) has none.
    for m in [m for m in report.run.models if report.run.complete_seeds(m)]:
        t[f"{m} r / ceiling"] = t["target"].map(per_target[f"{m}.r_over_ceiling"])
    t = t.round(3)
    return head + _table(t) + _note(
        "Reliability of each target's mean rating: split-half over raters with the Spearman-Brown step-up, "
        "and ICC(1,k); ceiling r = sqrt(reliability), the expected r of a perfect predictor of the true score "
        f"(see reports.ceiling), on the {ceiling.attrs.get('n_segments', 'scored')} segments the run scored; "
        f"ceiling_lo/hi: 95% percentile bootstrap over {ceiling.attrs.get('resampled', 'segments')}. "
        "Model r is pooled out-of-fold, averaged over complete seeds; n/a where r is undefined (a model "
        "constant within every fold).")


def _figures_section(figs: Mapping[str, tuple[object, str]], pngs: Mapping[str, bytes]) -> str:
    parts = ["<h2 id='figures'>Figures</h2>"]
    for stem, (_, caption) in figs.items():
        data = base64.b64encode(pngs[stem]).decode("ascii")
        parts.append(f'<figure id="fig-{_esc(stem)}"><img alt="{_esc(stem)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{_esc(caption)}</figcaption></figure>")
    return "".join(parts)


def _error_section(report: Report) -> str:
    errors = report.errors
    parts = ["<h2 id='errors'>Error analysis</h2>"]
    if errors is None:
        return "".join(parts + [_note(n) for n in report.notes if n.startswith("No error analysis")])
    n_resamples, top = errors.n_resamples, errors.top
    parts.append(_note(f"Model: {errors.best} (highest pooled mean r). MAE = mean |prediction - rating| over a "
                       "group's segments and all targets, averaged over seeds; 95% percentile bootstrap CIs."))
    notes = {"performer": f"CI: cluster bootstrap over the pieces each performer played ({n_resamples} resamples); "
                          "n/a for a performer with one piece.",
             "piece": f"CI: cluster bootstrap over the performers of each piece ({n_resamples} resamples).",
             "target": f"CI: cluster bootstrap over performers ({n_resamples} resamples); r: pooled Pearson r of "
                       "the target, over all players and over the pianists only (Score, Score2 left out)."}
    for by, resample in HARDEST:
        if by not in errors.hardest:  # a dataset without that grouping
            continue
        t = errors.hardest[by]
        resample = t.attrs.get("resampled", resample)
        shown = t.assign(**{"MAE [95% CI]": [_ci(r, "mae", "mae_lo", "mae_hi") for _, r in t.iterrows()]})
        cols = [by, "MAE [95% CI]", "n_segments", "n_units"] + [c for c in ("pearson", "pearson_pianists") if c in t]
        shown = shown[cols].rename(columns={"n_units": f"{resample} (units)"})
        for c in ("pearson", "pearson_pianists"):
            if c in shown:
                shown[c] = shown[c].map(_fmt)
        shown = shown.rename(columns={"pearson_pianists": "pearson, pianists only"})
        note = notes[by] if resample != "segments" else f"CI: bootstrap over segments ({n_resamples} resamples)."
        parts.append(f"<h3>Hardest {by}s (top {top})</h3>" + _table(shown) + _note(note))
    for model, imp in report.importance.items():
        unit = imp.attrs.get("by", "family")
        shown = pd.DataFrame({
            unit: imp[unit],
            "features": imp["n_features"],
            "drop in r [95% CI]": [_ci(r, "drop_r", "drop_r_lo", "drop_r_hi", "+.4f") for _, r in imp.iterrows()],
            "drop in pooled r": imp["drop_r_pooled"].map(lambda v: _fmt(v, "+.4f")),
            "MSE increase [95% CI]": [_ci(r, "increase_mse", "increase_mse_lo", "increase_mse_hi", "+.5f")
                                      for _, r in imp.iterrows()],
            "folds": imp["n_folds"],
        })
        a = imp.attrs
        parts.append(f"<h3>Permutation importance: {_esc(model)}</h3>" + _table(shown) + _note(
            f"Refitted on each training fold of the run ({len(a.get('jobs', []))} (seed, fold) jobs, seeds as in "
            f"the run); each {unit}'s columns permuted jointly in the test fold, {a.get('n_repeats')} times. "
            f"Baseline per-fold mean r {_fmt(a.get('base_r'))}, pooled {_fmt(a.get('base_r_pooled'))}; CIs: "
            "percentile bootstrap over folds. Correlated families share credit: a low value does not mean "
            "the information is useless."))
    return "".join(parts)


def write_html(report: Report, out: str | Path, figures: Mapping[str, tuple[object, str]],
               pngs: Mapping[str, bytes], *, ceiling_note: str = "") -> Path:
    """Write the self-contained HTML of a built report.

    Parameters
    ----------
    report : Report
    out : path
        The HTML file.
    figures : mapping of stem -> (figure, caption)
        :func:`reports.plots.report_figures` (only the captions are read).
    pngs : mapping of stem -> bytes
        The figures' PNGs (:func:`reports.plots.save_figures`), embedded as they are.
    ceiling_note : str
        Why there is no noise ceiling, when ``report.ceiling`` is None.

    Returns
    -------
    Path
    """
    res = report.run
    out = Path(out)
    body = [
        f"<h1>PercePiano benchmark run {_esc(res.run_id)}</h1>",
        "<nav><a href='#manifest'>manifest</a><a href='#summary'>summary</a>"
        "<a href='#significance'>significance</a><a href='#ceiling'>noise ceiling</a>"
        "<a href='#figures'>figures</a><a href='#errors'>error analysis</a></nav>",
        _manifest_section(res, report.header()),
        _summary_section(res, report.summary, report.n_resamples),
        _statistics_section(report),
        _ceiling_section(report, ceiling_note),
        _figures_section(figures, pngs),
        _error_section(report),
        f"<hr>{_note('Generated ' + _dt.datetime.now(_dt.UTC).isoformat(timespec='seconds') + ' by percepiano-bench reports.html.')}",
    ]
    doc = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
           f"<title>Run {_esc(res.run_id)}</title><style>{STYLE}</style></head><body>"
           + "\n".join(body) + "</body></html>\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(out)
    return out


def write_html_report(
    run_dir: str | Path | RunData,
    out: str | Path | None = None,
    *,
    importance: Mapping[str, pd.DataFrame] | None = None,
    ceiling: bool = True,
    n_resamples: int = 2000,
    seed: int = 0,
    top: int = 10,
) -> Path:
    """Build a run's report (:func:`reports.report.build_report`) and write it as one self-contained HTML file.

    Parameters
    ----------
    run_dir : path or RunData
    out : path, optional
        The HTML file, or an existing folder to write ``report.html`` into;
        default ``<run_dir>/report.html``.
    importance : mapping, optional
        Model -> :func:`reports.analysis.importance_table` table
        (computing it refits every fold, so it is passed in, not made here).
    ceiling : bool
        Compute the noise ceiling from the run's data folder when its rater
        file is there.
    n_resamples : int
        Bootstrap resamples (and permutations) of every table.
    seed : int
    top : int
        Rows of the "hardest" tables.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ConfigError
        Not a run directory.
    """
    res = load_run_data(run_dir)
    out = Path(out) if out is not None else res.run_dir / "report.html"
    if out.is_dir():
        out = out / "report.html"
    ceil, why = _ceiling(res, n_resamples, seed) if ceiling else (None, "noise ceiling not requested")
    report = build_report(res, n_resamples=n_resamples, seed=seed, ceiling=ceil, importance=importance, top=top)
    figures = report_figures(report)
    _, pngs = save_figures(figures)
    return write_html(report, out, figures, pngs, ceiling_note=why)

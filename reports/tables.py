"""Render report tables as Markdown, LaTeX (booktabs), CSV and HTML fragments.

A raw table (numbers, as :mod:`reports.significance` returns it) goes to CSV
unchanged; for the other formats a *display* is built first: cell text,
which cells are bold (the best value of a column), a caption and notes
(legend of the markers, the methods, the grouping check). The three text
renderers only escape and lay out a display, so Markdown, LaTeX and HTML
always show the same cells.

Markers: † the learner claim's primary test (learner t) p_adj < 0.05; ‡ the
predictor claim's primary test (cluster-bootstrap t) p_adj < 0.05; each
beside an interval printed at the level that agrees with that adjusted
decision, so mark, interval and p cannot disagree; § a model with unfinished
jobs, computed on its complete seeds.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError
from benchmark.metrics import REGISTRY

FORMATS = ("md", "tex", "csv", "html")
ALPHA = 0.05
LEARNER_MARK, PRED_MARK, PARTIAL_MARK = "†", "‡", "§"
METRIC_LABELS = {"pearson": "r", "r2": "R²"}


@dataclass
class Display:
    """A table ready to render: text cells, bold flags, caption and notes."""

    name: str
    header: list[str]
    rows: list[list[str]]
    bold: list[list[bool]]
    align: list[str]
    caption: str = ""
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ numbers


def _finite(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x)) and np.isfinite(float(x))


def fmt(x, digits: int = 3, signed: bool = False) -> str:
    """A number with ``digits`` decimals, ``n/a`` for NaN."""
    if not _finite(x):
        return "n/a"
    return f"{float(x):+.{digits}f}" if signed else f"{float(x):.{digits}f}"


def fmt_ci(lo, hi, digits: int = 3, signed: bool = False) -> str:
    return "n/a" if not (_finite(lo) and _finite(hi)) else f"[{fmt(lo, digits, signed)}, {fmt(hi, digits, signed)}]"


def fmt_p(p, floor: float | None = None, raw: float | None = None) -> str:
    """A p-value: three decimals, four below 0.01, ``<0.001`` below 0.001.

    A permutation p at its floor (``raw`` equal to ``floor`` = 1 / (permutations + 1))
    is a bound, not a value: ``< 0.0005`` for 2000 permutations, or ``<= x`` for
    its multiplicity-adjusted form ``p``.
    """
    if not _finite(p):
        return "n/a"
    p = float(p)
    if floor is not None and raw is not None and _finite(raw) and float(raw) <= floor * (1 + 1e-9):
        return f"< {floor:.1g}" if np.isclose(p, float(raw)) else f"≤ {p:.2g}"
    return "<0.001" if p < 0.001 else (f"{p:.4f}" if p < 0.01 else f"{p:.3f}")


def _best(values: Iterable, higher: bool = True) -> list[bool]:
    v = np.array([float(x) if _finite(x) else np.nan for x in values])
    if np.isnan(v).all():
        return [False] * len(v)
    target = np.nanmax(v) if higher else np.nanmin(v)
    return [bool(np.isfinite(x) and np.isclose(x, target, rtol=0, atol=1e-12)) for x in v]


def _markers(row: Mapping, prefix: str) -> str:
    """† where the learner claim's adjusted p is below alpha, ‡ where the predictor claim's is."""
    mark = ""
    if _finite(row.get(f"{prefix}learner_p_adj")) and row[f"{prefix}learner_p_adj"] < ALPHA:
        mark += LEARNER_MARK
    if _finite(row.get(f"{prefix}pred_p_adj")) and row[f"{prefix}pred_p_adj"] < ALPHA:
        mark += PRED_MARK
    return mark


def claim_cell(row: Mapping, prefix: str, claim: str) -> str:
    """One claim's cell: its interval (level named when it is not 95%), adjusted p and mark; or why there is
    no number; beside a non-significant difference, the effect that test detects with 80% power."""
    note = row.get(f"{prefix}{claim}_note")
    if isinstance(note, str) and note:
        return note
    lo, hi, p_adj = row.get(f"{prefix}{claim}_lo"), row.get(f"{prefix}{claim}_hi"), row.get(f"{prefix}{claim}_p_adj")
    if not (_finite(lo) and _finite(hi) and _finite(p_adj)):
        return "n/a"
    level = row.get(f"{prefix}{claim}_level")
    tag = "" if not _finite(level) or abs(float(level) - 0.95) < 5e-4 else f" ({100 * float(level):.1f}% CI)"
    sig = float(p_adj) < ALPHA
    text = f"{fmt_ci(lo, hi, signed=True)}{tag} p {fmt_p(p_adj)}"
    if sig:
        return text + (LEARNER_MARK if claim == "learner" else PRED_MARK)
    mde = row.get(f"{prefix}{claim}_mde")
    return text + (f"; not significant, detects ±{fmt(mde)} or more with 80% power" if _finite(mde) else "")


def _correction_name(attrs: Mapping) -> str:
    return {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg"}.get(attrs.get("correction"), str(attrs.get("correction")))


# ----------------------------------------------------------------- displays


def display_significance(table: pd.DataFrame, name: str = "significance") -> list[Display]:
    """Displays of :func:`reports.significance.significance_table`, one per metric; best of a column in bold."""
    return [_significance_metric(table, name, m) for m in table.attrs.get("metrics", ["pearson", "r2"])]


def _within_ci(r: dict, m: str, few: bool, many: str) -> str:
    """The within-performer CI cell: over performers, so below the group floor it says so (not 'n/a')."""
    lo, hi = r[f"{m}_within_lo"], r[f"{m}_within_hi"]
    return many if few and not (_finite(lo) and _finite(hi)) else fmt_ci(lo, hi)


def _significance_metric(table: pd.DataFrame, name: str, m: str) -> Display:
    a = table.attrs
    base, cluster = a.get("baseline"), a.get("cluster")
    corr = _correction_name(a)
    lab = METRIC_LABELS.get(m, m)
    recs = table.to_dict("records")
    none = [False] * len(recs)

    def partial(r, text):
        return text if text == "n/a" or r["status"] == "complete" else text + PARTIAL_MARK

    def values(r, text):
        # A model without one complete seed has no numbers: its cells say why.
        return text if r["status"] == "complete" or r["seeds_used"] else r["status"]

    few = bool(a.get("few")) and bool(cluster)
    many = a.get("too_few") or "too few groups"
    floor = a.get("perm_floor")
    cols = [(f"mean {lab} (pooled)", "r", [values(r, partial(r, fmt(r[m]) if _finite(r[m]) else
                                                       ("undefined" if "undefined" in str(r.get("note")) else
                                                        "n/a"))) for r in recs], none),
            ("95% CI (segments)", "r", [values(r, fmt_ci(r[f"{m}_seg_lo"], r[f"{m}_seg_hi"])) for r in recs], none)]
    if cluster:
        cols.append((f"95% CI ({cluster})", "r",
                     [values(r, many if few else fmt_ci(r[f"{m}_cluster_lo"], r[f"{m}_cluster_hi"]))
                      for r in recs], none))
    if f"{m}_pianists" in table:
        cols.append((f"{lab}, pianists only [95% CI, segments]", "r",
                     [values(r, "undefined" if not _finite(r[f"{m}_pianists"]) else
                             f"{fmt(r[f'{m}_pianists'])} {fmt_ci(r[f'{m}_pianists_seg_lo'], r[f'{m}_pianists_seg_hi'])}")
                      for r in recs], _best([r[f"{m}_pianists"] for r in recs])))
    if f"{m}_within" in table:
        cols.append((f"within-performer {lab} [95% CI, performers]", "r",
                     [values(r, "undefined" if not _finite(r[f"{m}_within"]) else
                             f"{fmt(r[f'{m}_within'])} {_within_ci(r, m, few and cluster == 'performers', many)}")
                      for r in recs], none))
    if len(a.get("seeds", [])) > 1:
        cols.append(("seed sd (instability)", "r", [values(r, fmt(r[f"{m}_seeds_sd"])) for r in recs], none))
    fold = [values(r, "n/a" if not _finite(r[f"{m}_fold_mean"])
                   else partial(r, f"{fmt(r[f'{m}_fold_mean'])} ± {fmt(r[f'{m}_fold_sd'])}")) for r in recs]
    cols.append((f"fold-level {lab} (mean ± sd)", "r", fold, _best([r[f"{m}_fold_mean"] for r in recs])))
    diff, learner, pred = [], [], []
    for r in recs:
        if r["model"] == base:
            diff.append("baseline")
            learner.append("")
            pred.append("")
        elif not _finite(r[f"{m}_diff"]):
            diff.append(values(r, "not tested"))
            learner.append("")
            pred.append("")
        else:
            diff.append(partial(r, fmt(r[f"{m}_diff"], signed=True)))
            learner.append(claim_cell(r, f"{m}_", "learner"))
            pred.append(claim_cell(r, f"{m}_", "pred"))
    tested = [r["model"] != base for r in recs]

    def perm_cell(r, t):
        if not t or not _finite(r[f"{m}_diff"]):
            return ""
        if few:
            return many
        if not _finite(r.get(f"{m}_perm_p")):
            return r.get(f"{m}_pred_note") or "n/a"
        return fmt_p(r[f"{m}_perm_p_adj"], floor, r[f"{m}_perm_p"])

    effect = [fmt(r.get(f"{m}_effect"), signed=True) if t and _finite(r.get(f"{m}_diff")) else ""
              for r, t in zip(recs, tested, strict=True)]
    unit = cluster or "segments"
    cols += [(f"Δ fold-level {lab} vs {base}", "r", diff, none),
             (f"learners differ? learner t [CI] p_adj ({corr})", "r", learner, none),
             (f"fitted predictors differ? cluster-bootstrap t over {unit} [CI] p_adj ({corr})", "r", pred, none),
             ("Cohen's q" if m == "pearson" else "error reduction", "r", effect, none),
             (f"p perm, {unit} swapped (secondary, {corr})", "r",
              [perm_cell(r, t) for r, t in zip(recs, tested, strict=True)], none)]
    if m == "pearson" and "ceiling_fraction" in table:
        cols.append(("r / ceiling", "r", [values(r, partial(r, fmt(r["ceiling_fraction"]))) for r in recs],
                     none))
    cols.append(("jobs", "l", [r["status"] if r["status"] == "complete"
                               else f"{r['status']} (seeds used: {r['seeds_used'] or 'none'})" for r in recs], none))
    models = [r["model"] + (" (baseline)" if r["model"] == base else "") for r in recs]
    header = ["model"] + [c[0] for c in cols]
    rows = [[models[i]] + [c[2][i] for c in cols] for i in range(len(recs))]
    bold = [[False] + [c[3][i] for c in cols] for i in range(len(recs))]
    legend = (f"{LEARNER_MARK}: the learning algorithms differ (learner t, p_adj < {ALPHA}); {PRED_MARK}: these "
              f"fitted predictors differ on these {unit} (cluster-bootstrap t, p_adj < {ALPHA}); p-values adjusted "
              f"with {corr} over one family per claim: {a.get('family', f'{sum(tested)} model pairs')}; each "
              "interval at the level that agrees with its p_adj. The permutation p is secondary and marks nothing. "
              "Bold: the best fold-level mean, the quantity the tests compare.")
    notes = [legend]
    if any(r["status"] != "complete" for r in recs):
        notes.append(f"{PARTIAL_MARK}: the model has unfinished jobs; values use its complete seeds only, "
                     "never an incomplete set of folds" + (" (in a partial run: the folds every model finished, "
                                                           "see the PARTIAL RUN note)." if a.get("partial") else "."))
    notes += [f"{r['model']}: {r['note']}." for r in recs if r.get("note")]
    notes += list(a.get("notes", []))
    if a.get("check"):
        notes.append(f"Group check: {a['check']}")
    caption = f"Mean {lab} over targets, split {a.get('split')} (run {a.get('run_id')}); baseline {base}."
    return Display(f"{name}-{m}", header, rows, bold, ["l"] + [c[1] for c in cols], caption, notes)


def display_per_target(table: pd.DataFrame, name: str = "per_target") -> list[Display]:
    """Displays of :func:`reports.significance.per_target_table`: Pearson r with its CI and tests, then one
    display per other pooled metric (MSE, CCC, rater spread); every metric also over the pianists only; the
    best model of each target in bold."""
    out = [_per_target_r(table, name)]
    for metric in table.attrs.get("metrics", []):
        if metric != "pearson" and any(f"{m}.{metric}" in table for m in table.attrs.get("models", [])):
            out.append(_per_target_metric(table, name, metric))
    return out


def _per_target_metric(table: pd.DataFrame, name: str, metric: str) -> Display:
    """One pooled metric per target and model, all players and pianists only."""
    a = table.attrs
    models, status = a.get("models", []), a.get("status", {})
    spec = REGISTRY.get(metric)
    label = spec.label if spec else metric
    higher = spec.higher_is_better if spec else True
    header = ["target"]
    for m in models:
        header += [f"{m} {label}", f"{m} {label}, pianists"]
    rows, bold = [], []
    for rec in table.to_dict("records"):
        cells, flags = [rec["target"]], [False]
        best = _best([rec.get(f"{m}.{metric}") for m in models], higher=higher)
        best_p = _best([rec.get(f"{m}.{metric}_pianists") for m in models], higher=higher)
        for m, b_all, b_p in zip(models, best, best_p, strict=True):
            st = status.get(m, "complete")
            for col, flag in ((f"{m}.{metric}", b_all), (f"{m}.{metric}_pianists", b_p)):
                v = rec.get(col)
                cells.append(st if not _finite(v) and st != "complete" else
                             (fmt(v) + (PARTIAL_MARK if st != "complete" else "") if _finite(v) else "undefined"))
                flags.append(flag)
        rows.append(cells)
        bold.append(flags)
    direction = "higher" if higher else "lower"
    notes = [f"{label}: {spec.description if spec else metric} ({direction} is better); pooled over the run's "
             "out-of-fold predictions per target, averaged over complete seeds. Pianists: the deadpan score "
             f"renderings (Score, Score2) left out. Bold: best model of a target."]
    caption = f"{label} per target, split {a.get('split')} (run {a.get('run_id')})."
    return Display(f"{name}-{metric}", header, rows, bold, ["l"] + ["r"] * (len(header) - 1), caption, notes)


def _per_target_r(table: pd.DataFrame, name: str) -> Display:
    a = table.attrs
    models, base, status = a.get("models", []), a.get("baseline"), a.get("status", {})
    has_ceiling = "ceiling_r" in table
    pianists = any(f"{m}.r_pianists" in table for m in models)
    header = ["target"] + ([("ceiling r [95% CI]" if "ceiling_lo" in table else "ceiling r")] if has_ceiling else [])
    for m in models:
        header.append(f"{m} r [95% CI] (fold-level r)" + (" (baseline)" if m == base else ""))
        if pianists:
            header.append(f"{m} r, pianists")
        if has_ceiling:
            header.append(f"{m} r / ceiling")
    rows, bold = [], []
    for rec in table.to_dict("records"):
        cells, flags = [rec["target"]], [False]
        if has_ceiling:
            cells.append(fmt(rec["ceiling_r"]) + (f" {fmt_ci(rec['ceiling_lo'], rec['ceiling_hi'])}"
                                                  if "ceiling_lo" in rec else ""))
            flags.append(False)
        # Bold compares the tested quantity: each target's fold-level mean r.
        best = _best([rec.get(f"{m}.fold_r", np.nan) for m in models])
        for m, is_best in zip(models, best, strict=True):
            st = status.get(m, "complete")
            if not _finite(rec[f"{m}.r"]) and st != "complete":
                text = st
            else:
                ci = (a.get("too_few") or "too few groups") if a.get("few") and a.get("cluster") and \
                    a.get("resampled") != "segments" else fmt_ci(rec[f'{m}.r_lo'], rec[f'{m}.r_hi'])
                text = f"{fmt(rec[f'{m}.r'])} {ci}" if _finite(rec[f"{m}.r"]) else "undefined"
                if _finite(rec.get(f"{m}.fold_r")):
                    text += f" ({fmt(rec[f'{m}.fold_r'])})"
                text += "" if m == base else _markers(rec, f"{m}.")
                text += PARTIAL_MARK if st != "complete" and _finite(rec[f"{m}.r"]) else ""
            cells.append(text)
            flags.append(is_best)
            if pianists:
                cells.append(fmt(rec.get(f"{m}.r_pianists")))
                flags.append(False)
            if has_ceiling:
                cells.append(fmt(rec.get(f"{m}.r_over_ceiling")))
                flags.append(False)
        rows.append(cells)
        bold.append(flags)
    corr = _correction_name(a)
    notes = [f"{LEARNER_MARK}: learner t p_adj < {ALPHA} (the learning algorithms differ on this target); "
             f"{PRED_MARK}: cluster-bootstrap t p_adj < {ALPHA} (these fitted predictors differ on it); vs baseline "
             f"{base}, adjusted with {corr} over one family per claim: {a.get('family', 'targets')}. In brackets "
             "after each CI: the fold-level mean r, the quantity the tests compare; bold: the best of it per target.",
             *a.get("notes", [])]
    if any(s != "complete" for s in status.values()):
        notes.append(f"{PARTIAL_MARK}: model with unfinished jobs, computed on its complete seeds only"
                     + (" (in a partial run: the folds every model finished)." if a.get("partial") else "."))
    if a.get("check"):
        notes.append(f"Group check: {a['check']}")
    if pianists:
        notes.append("r, pianists: the pooled r without the deadpan score renderings (players Score, Score2).")
    caption = (f"Pearson r per target, split {a.get('split')} (run {a.get('run_id')}); CI over "
               f"{a.get('resampled')}.")
    return Display(name, header, rows, bold, ["l"] + ["r"] * (len(header) - 1), caption, notes)


def display_metrics(table: pd.DataFrame, name: str = "metrics") -> Display:
    """Display of :func:`reports.pooled.metrics_table`: every pooled metric with its segment CI, all players and
    pianists only, and its fold-level mean ± sd; the best value of a column in bold (lowest for MSE)."""
    a = table.attrs
    recs = table.to_dict("records")
    header, cols = ["model"], []
    for metric in a.get("metrics", []):
        spec = REGISTRY.get(metric)
        label, higher = (spec.label, spec.higher_is_better) if spec else (metric, True)
        for sfx, what in (("", "[95% CI]"), ("_pianists", "pianists only [95% CI]")):
            col = f"{metric}{sfx}"
            header.append(f"{label} {what}")
            cols.append(([f"{fmt(r[col])} {fmt_ci(r[f'{col}_seg_lo'], r[f'{col}_seg_hi'])}" if _finite(r[col])
                          else ("undefined" if r["seeds_used"] else r["status"]) for r in recs],
                         _best([r[col] for r in recs], higher=higher)))
        header.append(f"{label} fold-level (mean ± sd)")
        cols.append(([f"{fmt(r[f'{metric}_fold_mean'])} ± {fmt(r[f'{metric}_fold_sd'])}"
                      if _finite(r[f"{metric}_fold_mean"]) else "n/a" for r in recs], [False] * len(recs)))
    rows = [[r["model"] + ("" if r["status"] == "complete" else PARTIAL_MARK)] + [c[0][i] for c in cols]
            for i, r in enumerate(recs)]
    bold = [[False] + [c[1][i] for c in cols] for i in range(len(recs))]
    notes = list(a.get("notes", []))
    if any(r["status"] != "complete" for r in recs):
        notes.append(f"{PARTIAL_MARK}: the model has unfinished jobs; values use its complete seeds only.")
    if a.get("check"):
        notes.append(f"Group check: {a['check']}")
    return Display(name, header, rows, bold, ["l"] + ["r"] * (len(header) - 1), str(a.get("caption", name)), notes)


def display_ranking(table: pd.DataFrame, name: str = "ranking") -> Display:
    """Display of :meth:`reports.report.Ranking.table`; the best (lowest) rank in bold."""
    a = table.attrs
    best = _best(table["avg_rank"], higher=False)
    rows = [[str(m), fmt(v, 2)] for m, v in zip(table["model"], table["avg_rank"], strict=True)]
    caption = f"Average ranks over {a.get('blocks')} ({a.get('label')})."
    return Display(name, ["model", "average rank"], rows, [[False, b] for b in best], ["l", "r"], caption,
                   list(a.get("notes", [])))


def display_generic(table: pd.DataFrame, name: str) -> Display:
    """Any frame: numbers with 3 decimals (p-value tables included), nothing bold."""
    rows = [[fmt(v) if isinstance(v, float | np.floating) else str(v) for v in rec] for rec in table.itertuples(False)]
    align = ["r" if pd.api.types.is_numeric_dtype(table[c]) else "l" for c in table.columns]
    return Display(name, [str(c) for c in table.columns], rows, [[False] * len(table.columns) for _ in rows], align,
                   str(table.attrs.get("caption", name.replace("_", " "))), list(table.attrs.get("notes", [])))


DISPLAYS: dict[str, Callable[[pd.DataFrame, str], Display | list[Display]]] = {
    "significance": display_significance,
    "per_target": display_per_target,
    "metrics": display_metrics,
    "ranking": display_ranking,
}


def make_displays(table: pd.DataFrame, name: str) -> list[Display]:
    """The displays of a raw table (one, or one per metric), chosen by ``table.attrs["kind"]``."""
    out = DISPLAYS.get(table.attrs.get("kind"), display_generic)(table, name)
    return out if isinstance(out, list) else [out]


# ---------------------------------------------------------------- renderers


def to_markdown(d: Display) -> str:
    """GitHub Markdown: bold with ``**``, notes as lines under the table."""

    def cell(text: str, b: bool) -> str:
        text = text.replace("|", "\\|")
        return f"**{text}**" if b and text else text

    sep = ["---:" if al == "r" else ":---" for al in d.align]
    lines = [f"**{d.caption}**", "", "| " + " | ".join(cell(h, False) for h in d.header) + " |",
             "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(cell(c, b) for c, b in zip(row, bo, strict=True)) + " |"
              for row, bo in zip(d.rows, d.bold, strict=True)]
    if d.notes:
        lines.append("")
        lines += [f"- {n}" for n in d.notes]
    return "\n".join(lines) + "\n"


_TEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}", "†": r"\textsuperscript{\dag}", "‡": r"\textsuperscript{\ddag}", "§": r"\S{}",
    "±": r"$\pm$", "Δ": r"$\Delta$", "²": r"\textsuperscript{2}", "×": r"$\times$", "−": "-", "≥": r"$\geq$",
    "≤": r"$\leq$", "–": "--",
}


def tex_escape(text: str) -> str:
    """Escape LaTeX specials and map the few non-ASCII symbols used here to macros."""
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def _label(name: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in ":-") else "-" for ch in name)


def to_latex(d: Display) -> str:
    r"""A ``table`` float with a booktabs ``tabular`` (needs ``\usepackage{booktabs}``)."""

    def cell(text: str, b: bool) -> str:
        t = tex_escape(text)
        return f"\\textbf{{{t}}}" if b and text else t

    lines = [
        "% requires \\usepackage{booktabs}",
        "\\begin{table}[htbp]",
        "\\centering",
        "\\small",
        f"\\caption{{{tex_escape(d.caption)}}}",
        f"\\label{{tab:{_label(d.name)}}}",
        f"\\begin{{tabular}}{{{''.join(d.align)}}}",
        "\\toprule",
        " & ".join(cell(h, False) for h in d.header) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(cell(c, b) for c, b in zip(row, bo, strict=True)) + " \\\\"
              for row, bo in zip(d.rows, d.bold, strict=True)]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if d.notes:
        lines += ["", "\\smallskip", "\\begin{minipage}{\\linewidth}\\footnotesize"]
        lines += [tex_escape(n) + "\\par" for n in d.notes]
        lines.append("\\end{minipage}")
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def to_html(d: Display) -> str:
    """An HTML ``<table>`` fragment: caption, header, body, notes in ``<tfoot>``."""
    esc = html.escape

    def cell(tagname: str, text: str, b: bool, al: str) -> str:
        t = esc(text)
        style = ' style="text-align:right"' if al == "r" else ""
        return f"<{tagname}{style}>{'<strong>' + t + '</strong>' if b and text else t}</{tagname}>"

    lines = [f'<table class="percepiano-table" id="{esc(d.name)}">', f"<caption>{esc(d.caption)}</caption>",
             "<thead>", "<tr>" + "".join(cell("th", h, False, al) for h, al in zip(d.header, d.align, strict=True))
             + "</tr>", "</thead>", "<tbody>"]
    lines += ["<tr>" + "".join(cell("td", c, b, al) for c, b, al in zip(row, bo, d.align, strict=True)) + "</tr>"
              for row, bo in zip(d.rows, d.bold, strict=True)]
    lines.append("</tbody>")
    if d.notes:
        notes = "<br>".join(esc(n) for n in d.notes)
        lines += ["<tfoot>", f'<tr><td colspan="{len(d.header)}">{notes}</td></tr>', "</tfoot>"]
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def _notes_last(displays: list[Display]) -> list[Display]:
    """The displays of one file with their notes merged (in order, once each) under the last one."""
    if len(displays) < 2:
        return displays
    merged = list(dict.fromkeys(n for d in displays for n in d.notes))
    return [replace(d, notes=merged if i == len(displays) - 1 else []) for i, d in enumerate(displays)]


def render_markdown(displays: list[Display]) -> str:
    """Markdown of the displays of one table, the notes once at the end."""
    return "\n".join(to_markdown(d) for d in _notes_last(displays))


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: str | Path,
                 formats: Iterable[str] = FORMATS) -> dict[str, list[Path]]:
    """Write each table as ``<out_dir>/<name>.<format>``.

    CSV holds the raw numbers (no formatted strings) and a ``<name>.meta.json``
    sidecar its ``attrs`` (baseline, correction, what was resampled, notes);
    Markdown, LaTeX and HTML show the formatted display.

    Parameters
    ----------
    tables : mapping of name -> DataFrame
        Raw tables; ``attrs["kind"]`` picks the display (significance,
        per_target, ranking; anything else is rendered generically).
    out_dir : path
        Created if absent.
    formats : iterable of {"md", "tex", "csv", "html"}

    Returns
    -------
    dict of name -> list of written paths

    Raises
    ------
    ConfigError
        An unknown format.
    """
    formats = list(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ConfigError(f"unknown table format {bad[0]!r}; use any of {','.join(FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    for name, table in tables.items():
        paths = []
        displays = make_displays(table, name) if set(formats) - {"csv"} else []
        for f in formats:
            path = out_dir / f"{name}.{f}"
            if f == "csv":
                table.to_csv(path, index=False)
                meta = out_dir / f"{name}.meta.json"
                meta.write_text(json.dumps(dict(table.attrs), indent=2, default=str) + "\n")
                paths.append(meta)
            elif f == "md":
                path.write_text(render_markdown(displays))
            elif f == "tex":
                # Each LaTeX float stands alone, so each keeps its notes.
                path.write_text("\n".join(to_latex(d) for d in displays))
            else:
                path.write_text("\n".join(to_html(d) for d in _notes_last(displays)))
            paths.append(path)
        written[name] = paths
    return written

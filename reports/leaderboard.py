"""A leaderboard per protocol: result files and published numbers, each labelled with its aggregation.

A number means something only with its protocol (the folds and test set it
was measured on) and its aggregation (pooled over folds, per fold, or each
fold model on a fixed test set): a pooled R^2 and a per-fold R^2 of the same
predictions can differ by 0.2 under leave-one-performer-out. So the
leaderboard groups rows by protocol (one table per split of ours) and gives
every aggregation its own, labelled column: a row fills only the columns of
the aggregations it has, and no two aggregations ever share a column.

Rows come from result files (:mod:`reports.resultfile`; each model of each
file) and from the shipped file of published numbers
(``docs/published.toml``, read by :func:`load_published`): a published entry
enters the table of each split it is ``same`` as or ``close`` to (its row
says which), and is named, with the reason, under the table of a split it is
``not comparable`` to.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError, DataError
from benchmark.metrics import REGISTRY
from reports.resultfile import score
from reports.tables import Display, fmt, fmt_ci
from splits import SPLITS

#: The shipped file of published numbers.
PUBLISHED_PATH = Path(__file__).resolve().parents[1] / "docs" / "published.toml"
#: Aggregations a leaderboard column can hold, in column order.
AGGREGATIONS = ("fixed_test_set", "pooled", "per_fold", "within_performer")
#: How a column header names each aggregation.
AGGREGATION_LABELS = {
    "fixed_test_set": "fixed test set, mean over fold models",
    "pooled": "pooled out-of-fold",
    "per_fold": "per fold, mean ± sd over folds",
    "within_performer": "within performers, pooled",
}
#: Populations a column can hold: all players, or the pianists only (the two deadpan renderings left out).
POPULATIONS = ("all", "pianists")
#: Aggregations that have a pianists-only column beside them (the pooled ones, as in every pooled table).
POOLED = ("fixed_test_set", "pooled")
LEVELS = ("same", "close", "not comparable")
_ENTRY_KEYS = {"id", "source", "model", "metric", "aggregation", "value", "protocol", "comparable"}
_OPTIONAL_KEYS = {"ci", "transcription", "population"}


@dataclass(frozen=True)
class Published:
    """One published number (an entry of ``docs/published.toml``)."""

    id: str
    source: str
    model: str
    metric: str
    aggregation: str
    value: float
    protocol: str
    comparable: dict[str, tuple[str, str]]
    ci: tuple[float, float] | None = None
    transcription: str = ""
    population: str = "all"


def load_published(path: str | Path | None = None) -> list[Published]:
    """Read and check the file of published numbers (default: the shipped ``docs/published.toml``).

    Raises
    ------
    DataError
        Unreadable TOML, or an entry without a required key, with an unknown metric, aggregation, split
        or comparability level (one line naming the entry and the key).
    """
    path = Path(path) if path is not None else PUBLISHED_PATH
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise DataError(f"cannot read published numbers {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path} is not valid TOML: {exc}") from None
    out, seen = [], set()
    for i, e in enumerate(data.get("entry", [])):
        where = f"{path.name}: entry {e.get('id', i + 1)!r}"
        missing = sorted(_ENTRY_KEYS - set(e))
        if missing:
            raise DataError(f"{where} lacks {', '.join(missing)}")
        unknown = sorted(set(e) - _ENTRY_KEYS - _OPTIONAL_KEYS)
        if unknown:
            raise DataError(f"{where}: unknown key {unknown[0]!r}; an entry has "
                            f"{', '.join(sorted(_ENTRY_KEYS))} and optionally {', '.join(sorted(_OPTIONAL_KEYS))}")
        if e["id"] in seen:
            raise DataError(f"{where}: the id is used twice")
        seen.add(e["id"])
        if e["metric"] not in REGISTRY:
            raise DataError(f"{where}: unknown metric {e['metric']!r}; use one of {tuple(REGISTRY)}")
        if e["aggregation"] not in AGGREGATIONS:
            raise DataError(f"{where}: unknown aggregation {e['aggregation']!r}; use one of {AGGREGATIONS}")
        if not isinstance(e["value"], int | float) or isinstance(e["value"], bool) or not np.isfinite(e["value"]):
            raise DataError(f"{where}: value {e['value']!r} is not a number")
        comparable = {}
        for c in e["comparable"]:
            if c.get("split") not in SPLITS.names():
                raise DataError(f"{where}: comparable split {c.get('split')!r} is not a registered split")
            if c.get("level") not in LEVELS:
                raise DataError(f"{where}: comparability {c.get('level')!r}; use one of {LEVELS}")
            if not c.get("why"):
                raise DataError(f"{where}: comparability with {c['split']!r} gives no reason ('why')")
            comparable[c["split"]] = (c["level"], c["why"])
        ci = e.get("ci")
        if ci is not None and (not isinstance(ci, list) or len(ci) != 2):
            raise DataError(f"{where}: ci must be [low, high]")
        if e.get("population", "all") not in POPULATIONS:
            raise DataError(f"{where}: population {e['population']!r}; use one of {POPULATIONS}")
        if e.get("population", "all") != "all" and e["aggregation"] not in POOLED:
            raise DataError(f"{where}: a {e['population']} number has a column only for the pooled aggregations "
                            f"{POOLED}, not {e['aggregation']!r}")
        out.append(Published(e["id"], e["source"], e["model"], e["metric"], e["aggregation"], float(e["value"]),
                             e["protocol"], comparable, None if ci is None else (float(ci[0]), float(ci[1])),
                             e.get("transcription", ""), e.get("population", "all")))
    return out


def column(aggregation: str, population: str = "all") -> str:
    """A column's key: the aggregation, with ``_pianists`` for the pianists-only population."""
    return aggregation if population == "all" else f"{aggregation}_{population}"


def column_label(key: str) -> str:
    """How a header names a column (its aggregation, and its population unless all players)."""
    base = key.removesuffix("_pianists")
    return AGGREGATION_LABELS[base] + (", pianists only" if key.endswith("_pianists") else "")


#: Every column, in order: each pooled aggregation with its pianists-only column beside it.
COLUMNS = tuple(c for a in AGGREGATIONS for c in ((a, column(a, "pianists")) if a in POOLED else (a,)))


@dataclass
class Board:
    """One protocol's table: the rows, the columns they fill, and the entries left out.

    ``columns`` are keys of :data:`COLUMNS` (an aggregation, with ``_pianists`` for its pianists-only
    population); each row's ``values`` maps a column to ``(value, ci or None, sd or None)``.
    """

    protocol: str
    metric: str
    columns: list[str]
    rows: list[dict]
    not_comparable: list[tuple[Published, str]] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """Tidy rows: protocol, metric, model, origin, comparability (and why, published_id for a published row),
        then per column value, sd, ci_low, ci_high."""
        recs = []
        for r in self.rows:
            p = r.get("published")
            rec = {"protocol": self.protocol, "metric": self.metric, "model": r["model"], "origin": r["origin"],
                   "comparability": r["comparability"], "why": r.get("why", ""),
                   "published_id": "" if p is None else p.id}
            for col in self.columns:
                v, ci, sd = r["values"].get(col, (None, None, None))
                rec[col] = v
                rec[f"{col}_sd"] = sd
                rec[f"{col}_ci_low"] = None if ci is None else ci[0]
                rec[f"{col}_ci_high"] = None if ci is None else ci[1]
            recs.append(rec)
        return pd.DataFrame(recs)

    def best(self, origin: str) -> dict | None:
        """The first row (the best by the first column) whose comparability is ``origin`` (``ours``, ``same``...)."""
        return next((r for r in self.rows if r["comparability"] == origin), None)


def _protocol_of(result: dict) -> str:
    return str(result["split"]["name"])


def _our_values(result: dict, model: str, metric: str, populations: tuple[str, ...]) -> dict:
    """One model's numbers of a result file, keyed by column; a number's own aggregation decides its column."""
    values = {}
    for pop in populations:
        for agg in AGGREGATIONS:
            s = score(result, model, metric, agg, pop)
            if s is None or s.get("value") is None or s.get("aggregation") != agg:
                continue
            ci = s.get("ci_units") or s.get("ci_segments")
            values[column(agg, pop)] = (float(s["value"]), None if ci is None else tuple(ci),
                                        None if s.get("sd") is None else float(s["sd"]))
    return values


def leaderboard(results: list[dict], published: list[Published] | None = None, *, metric: str = "r2",
                aggregations: tuple[str, ...] | None = None, protocols: tuple[str, ...] | None = None,
                population: str = "all") -> list[Board]:
    """One :class:`Board` per protocol, from result files and published numbers.

    Parameters
    ----------
    results : list of dict
        Result files (:func:`reports.resultfile.read_result`).
    published : list of Published, optional
        Default: the shipped file (:func:`load_published`); ``[]`` leaves them out.
    metric : str
        A metric of the registry.
    aggregations : tuple of str, optional
        The aggregations shown (default: every one some row has, in :data:`AGGREGATIONS` order); each pooled
        one brings its pianists-only column when a row fills it.
    protocols : tuple of str, optional
        Only these splits (default: every split of the results; without results, every split a published
        entry is same as or close to).
    population : {"all", "pianists"}
        ``all``: every column, all players and, beside each pooled one, the pianists only; ``pianists``:
        the pianists-only columns alone (a published number over all players then has no column).

    Raises
    ------
    ConfigError
        An unknown metric, aggregation or population, or a protocol no row has.
    """
    if metric not in REGISTRY:
        raise ConfigError(f"unknown metric {metric!r}; use one of {tuple(REGISTRY)}")
    bad = [a for a in (aggregations or ()) if a not in AGGREGATIONS]
    if bad:
        raise ConfigError(f"unknown aggregation {bad[0]!r}; use one of {AGGREGATIONS}")
    if population not in POPULATIONS:
        raise ConfigError(f"unknown population {population!r}; use one of {POPULATIONS}")
    populations = POPULATIONS if population == "all" else (population,)
    published = load_published() if published is None else published
    wanted = list(dict.fromkeys(_protocol_of(r) for r in results))
    if not results:
        wanted = list(dict.fromkeys(s for p in published if p.metric == metric
                                    for s, (lvl, _) in p.comparable.items() if lvl != "not comparable"))
    if protocols:
        missing = [p for p in protocols if p not in wanted and not any(p in e.comparable for e in published)]
        if missing:
            raise ConfigError(f"protocol {missing[0]!r} is in none of the result files or published entries "
                              f"(have: {', '.join(wanted) or 'none'})")
        wanted = list(protocols)
    higher = REGISTRY[metric].higher_is_better
    boards = []
    for proto in wanted:
        rows, runs = [], []
        for res in results:
            if _protocol_of(res) != proto:
                continue
            runs.append({"run_id": res["run"]["run_id"], "fold_assignment_hash": res["split"]["fold_assignment_hash"],
                         "data_sha256": res["data"]["sha256"], "harness": res["harness"].get("run_git_commit")})
            for m in res["models"]:
                values = _our_values(res, m["name"], metric, populations)
                if values:
                    rows.append({"model": m["name"], "origin": f"run {res['run']['run_id']}",
                                 "comparability": "ours", "values": values})
        not_comparable = []
        for p in published:
            if p.metric != metric or proto not in p.comparable:
                continue
            level, why = p.comparable[proto]
            if level == "not comparable":
                not_comparable.append((p, why))
                continue
            rows.append({"model": p.model, "origin": p.source, "comparability": level, "why": why,
                         "values": {column(p.aggregation, p.population): (p.value, p.ci, None)}, "published": p})
        present = [c for c in COLUMNS if any(c in r["values"] for r in rows)]
        if aggregations:
            # Asked-for aggregations always show; a pianists-only column only where a row fills it.
            cols = [c for c in COLUMNS if c.removesuffix("_pianists") in aggregations
                    and (c in present or (c in AGGREGATIONS and population == "all"))]
        else:
            cols = present
        cols = [c for c in cols if population == "all" or c.endswith("_pianists")]
        rows = [r for r in rows if any(c in r["values"] for c in cols)]

        def key(r, cols=cols):
            for i, c in enumerate(cols):
                if c in r["values"]:
                    v = r["values"][c][0]
                    return (i, -v if higher else v)
            return (len(cols), 0.0)

        boards.append(Board(proto, metric, cols, sorted(rows, key=key), not_comparable, runs))
    return boards


def cell(value: tuple | None) -> str:
    """One cell: the value, ``± sd`` for a per-fold mean, its CI when there is one; ``–`` for none."""
    if value is None:
        return "–"
    v, ci, sd = value
    text = fmt(v) + ("" if sd is None else f" ± {fmt(sd)}")
    return text + ("" if ci is None else f" {fmt_ci(*ci)}")


def _published_notes(board: Board) -> list[str]:
    """One note per source and comparability: which of its rows, why, and the source's own protocol."""
    groups: dict[tuple, list[Published]] = {}
    for r in board.rows:
        p = r.get("published")
        if p is not None:
            groups.setdefault((p.source, r["comparability"], r["why"], p.protocol, p.transcription), []).append(p)
    notes = []
    for (source, level, why, protocol, transcription), entries in groups.items():
        models = "; ".join(p.model for p in entries)
        notes.append(f"{source} ({models}): {level} protocol, {why}. Its protocol: {protocol}"
                     + (f"; read {transcription}." if transcription else "."))
    return notes


def _grouped(entries: list[tuple[Published, str]], with_aggregation: bool = False) -> list[str]:
    """Left-out entries, one text per source and reason: ``source: model value, ... (aggregation): why``."""
    groups: dict[tuple, list[Published]] = {}
    for p, why in entries:
        groups.setdefault((p.source, why, p.metric, p.aggregation), []).append(p)
    out = []
    for (source, why, metric, aggregation), ps in groups.items():
        values = ", ".join(f"{p.model} {REGISTRY[metric].label} {p.value:.3f}" for p in ps)
        agg = f" ({AGGREGATION_LABELS[aggregation]})" if with_aggregation else ""
        out.append(f"{source}: {values}{agg}: {why}")
    return out


def _commit(commit: str | None) -> str:
    return commit[:10] if commit else "not recorded"


def board_display(board: Board) -> Display:
    """A :class:`reports.tables.Display` of one board (Markdown, LaTeX and HTML follow from it)."""
    spec = REGISTRY[board.metric]
    header = ["#", "model", "source"]
    header += [f"{spec.label} ({column_label(c)}) [95% CI]" for c in board.columns]
    header.append("comparability")
    rows, bold = [], []
    for i, r in enumerate(board.rows, 1):
        cells = [str(i), r["model"], r["origin"]] + [cell(r["values"].get(c)) for c in board.columns]
        cells.append(r["comparability"])
        rows.append(cells)
        bold.append([False] * len(cells))
    notes = [
        f"Protocol {board.protocol!r}; {spec.label}: {spec.description}, mean over the targets. Each column is one "
        "aggregation and population (" + "; ".join(column_label(c) for c in board.columns) + "): a row fills "
        "only the columns of the numbers it reports, so numbers of different aggregations never share a "
        "column. Rows are ordered by the first column they fill.",
        "CIs of our rows: percentile bootstrap over the split's units where there are 10 or more, else over "
        "segments; per fold: mean ± sd over folds; published CIs as printed. Pianists only: the two deadpan "
        "renderings (Score, Score2) left out; published numbers are over all players.",
    ]
    for run in board.runs:
        notes.append(f"Ours: run {run['run_id']}: fold assignment sha256 {str(run['fold_assignment_hash'])[:12]}, "
                     f"data sha256 {str(run['data_sha256'])[:12]}, harness commit "
                     f"{_commit(run['harness'])}.")
    notes += _published_notes(board)
    for text in _grouped(board.not_comparable, with_aggregation=True):
        notes.append(f"Not comparable, left out: {text}.")
    caption = f"Leaderboard, protocol {board.protocol}: {spec.label}."
    return Display(f"leaderboard-{board.protocol}", header, rows, bold,
                   ["r", "l", "l"] + ["r"] * len(board.columns) + ["l"], caption, notes)


def comparison(boards: list[Board], published: list[Published] | None = None) -> list[str]:
    """Sentences that set our best beside the best published number of the same protocol and aggregation.

    What the README's comparison with published numbers says (``scripts/readme_references.py`` writes it):
    per board with rows of ours and published rows of the ``same`` or a ``close`` protocol, for each published
    aggregation, our best and the best published number in that one column (never across columns: a
    published number without a number of ours of its aggregation says so); per board of ours without any
    comparable published number, the entries it left out and why; then every published entry not set beside
    any run of ours.
    """
    lines, placed = [], set()
    for b in boards:
        spec = REGISTRY[b.metric]
        higher = spec.higher_is_better
        ours = [r for r in b.rows if r["comparability"] == "ours"]
        pubs = [r for r in b.rows if "published" in r]
        groups: dict[tuple, list[dict]] = {}
        for r in pubs:
            col = next(iter(r["values"]))
            groups.setdefault((r["comparability"], r["published"].source, col), []).append(r)
        for (level, source, col), rows in groups.items():
            if not ours:
                continue
            best_pub = (max if higher else min)(rows, key=lambda r, c=col: r["values"][c][0])
            placed.update(r["published"].id for r in rows)
            mine = [r for r in ours if col in r["values"]]
            head = f"Under `{b.protocol}` ({level} protocol as {source}"
            head += "), " if level == "same" else f"; {best_pub['why']}), "
            pub_text = f"the best published, {best_pub['model']}, {cell(best_pub['values'][col])}"
            if not mine:
                have = sorted({column_label(c) for r in ours for c in r["values"]})
                lines.append(head + f"{spec.label} ({column_label(col)}): {pub_text}; no number of ours has that "
                             "aggregation (ours: " + "; ".join(have) + "), so none is set beside it.")
                continue
            best = (max if higher else min)(mine, key=lambda r, c=col: r["values"][c][0])
            diff = best["values"][col][0] - best_pub["values"][col][0]
            lines.append(head + f"{spec.label} ({column_label(col)}): our best, `{best['model']}` "
                         f"({best['origin']}), {cell(best['values'][col])}; {pub_text}; difference {diff:+.3f}. "
                         "Different models on the same split, not re-runs of the published ones.")
        if ours and not pubs and b.not_comparable:
            lines.append(f"Under `{b.protocol}` no published number is comparable: "
                         + "; ".join(_grouped(b.not_comparable)) + ".")
    rest: dict[tuple, list[Published]] = {}
    for p in published or []:
        if p.id not in placed:
            rest.setdefault((p.metric, p.aggregation, tuple(p.comparable.items())), []).append(p)
    for (metric, aggregation, comparable), entries in rest.items():
        where = [f"{lvl} to `{s}`" + (f" ({why})" if lvl == "not comparable" else "") for s, (lvl, why) in comparable]
        sources = " / ".join(dict.fromkeys(p.source for p in entries))
        values = ", ".join(f"{p.model} {p.value:.3f}" for p in entries)
        lines.append(f"Not set beside a run of ours: {sources}: {values} ({REGISTRY[metric].label}, "
                     f"{AGGREGATION_LABELS[aggregation]}); " + "; ".join(where) + ".")
    return lines

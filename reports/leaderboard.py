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
    "per_fold": "per fold, mean over folds",
    "within_performer": "within performers, pooled",
}
LEVELS = ("same", "close", "not comparable")
_ENTRY_KEYS = {"id", "source", "model", "metric", "aggregation", "value", "protocol", "comparable"}


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
        out.append(Published(e["id"], e["source"], e["model"], e["metric"], e["aggregation"], float(e["value"]),
                             e["protocol"], comparable, None if ci is None else (float(ci[0]), float(ci[1])),
                             e.get("transcription", ""), e.get("population", "all")))
    return out


@dataclass
class Board:
    """One protocol's table: the rows, the aggregation columns they fill, and the entries left out."""

    protocol: str
    metric: str
    aggregations: list[str]
    rows: list[dict]
    not_comparable: list[tuple[Published, str]] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """Tidy rows: protocol, model, origin, comparability, then per aggregation value, ci_low, ci_high."""
        recs = []
        for r in self.rows:
            rec = {"protocol": self.protocol, "metric": self.metric, "model": r["model"], "origin": r["origin"],
                   "comparability": r["comparability"]}
            for agg in self.aggregations:
                v = r["values"].get(agg)
                rec[f"{agg}"] = None if v is None else v[0]
                rec[f"{agg}_ci_low"] = None if v is None or v[1] is None else v[1][0]
                rec[f"{agg}_ci_high"] = None if v is None or v[1] is None else v[1][1]
            recs.append(rec)
        return pd.DataFrame(recs)


def _protocol_of(result: dict) -> str:
    return str(result["split"]["name"])


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
        The columns (default: every aggregation some row has, in :data:`AGGREGATIONS` order).
    protocols : tuple of str, optional
        Only these splits (default: every split of the results; without results, every split a published
        entry is same as or close to).
    population : {"all", "pianists"}
        Our rows' population (published numbers are over all players).

    Raises
    ------
    ConfigError
        An unknown metric or aggregation, or a protocol no row has.
    """
    if metric not in REGISTRY:
        raise ConfigError(f"unknown metric {metric!r}; use one of {tuple(REGISTRY)}")
    bad = [a for a in (aggregations or ()) if a not in AGGREGATIONS]
    if bad:
        raise ConfigError(f"unknown aggregation {bad[0]!r}; use one of {AGGREGATIONS}")
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
                values = {}
                for agg in AGGREGATIONS:
                    s = score(res, m["name"], metric, agg, population)
                    if s is None or s.get("value") is None or s.get("aggregation") != agg:
                        continue
                    ci = s.get("ci_units") or s.get("ci_segments")
                    values[agg] = (float(s["value"]), None if ci is None else tuple(ci))
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
                         "values": {p.aggregation: (p.value, p.ci)}, "published": p})
        present = [a for a in AGGREGATIONS if any(a in r["values"] for r in rows)]
        cols = list(aggregations) if aggregations else present
        rows = [r for r in rows if any(a in r["values"] for a in cols)]

        def key(r, cols=cols):
            for i, a in enumerate(cols):
                if a in r["values"]:
                    v = r["values"][a][0]
                    return (i, -v if higher else v)
            return (len(cols), 0.0)

        boards.append(Board(proto, metric, cols, sorted(rows, key=key), not_comparable, runs))
    return boards


def board_display(board: Board) -> Display:
    """A :class:`reports.tables.Display` of one board (Markdown, LaTeX and HTML follow from it)."""
    spec = REGISTRY[board.metric]
    header = ["#", "model", "source"]
    header += [f"{spec.label} ({AGGREGATION_LABELS[a]}) [95% CI]" for a in board.aggregations]
    header.append("comparability")
    rows, bold = [], []
    for i, r in enumerate(board.rows, 1):
        cells = [str(i), r["model"], r["origin"]]
        for a in board.aggregations:
            v = r["values"].get(a)
            cells.append("–" if v is None else fmt(v[0]) + ("" if v[1] is None else f" {fmt_ci(*v[1])}"))
        cells.append(r["comparability"])
        rows.append(cells)
        bold.append([False] * len(cells))
    notes = [
        f"Protocol {board.protocol!r}; {spec.label}: {spec.description}, mean over the targets. Each column is one "
        "aggregation (" + "; ".join(f"{AGGREGATION_LABELS[a]}" for a in board.aggregations) + "): a row fills "
        "only the columns of the aggregations it reports, so numbers of different aggregations never share a "
        "column. Rows are ordered by the first column they fill.",
        "CIs of our rows: percentile bootstrap over the split's units where there are 10 or more, else over "
        "segments; published CIs as printed.",
    ]
    for run in board.runs:
        notes.append(f"Ours: run {run['run_id']}: fold assignment sha256 {str(run['fold_assignment_hash'])[:12]}, "
                     f"data sha256 {str(run['data_sha256'])[:12]}, harness commit "
                     f"{(run['harness'] or 'not recorded')[:10]}.")
    for r in board.rows:
        p = r.get("published")
        if p is not None:
            notes.append(f"{p.model} ({p.source}), {r['comparability']} protocol: {r['why']}. Its protocol: "
                         f"{p.protocol}" + (f"; read {p.transcription}." if p.transcription else "."))
    for p, why in board.not_comparable:
        notes.append(f"Not comparable, left out: {p.model} {spec.label} {p.value:.3f} "
                     f"({AGGREGATION_LABELS[p.aggregation]}; {p.source}): {why}.")
    caption = f"Leaderboard, protocol {board.protocol}: {spec.label}."
    return Display(f"leaderboard-{board.protocol}", header, rows, bold,
                   ["r", "l", "l"] + ["r"] * len(board.aggregations) + ["l"], caption, notes)

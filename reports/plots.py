"""Figures of a run: per-target r with CIs, critical-difference diagram, scatter, error heatmaps.

Every ``plot_*`` function returns a matplotlib ``Figure`` (Agg backend, no
display needed) and computes nothing: :func:`report_figures` draws the
figures of a :class:`reports.report.Report` from the data the report computed
once (the per-target table's r and CIs, the rankings, the error analysis), so
a figure never disagrees with a table; :func:`save_figures` renders each
figure once per format (PNG, PDF), and the HTML report embeds the same PNG.

The critical-difference diagram follows Demsar (2006, JMLR 7, Fig. 1-2):
models on an average-rank axis, the CD as a bar, and thick lines joining
models that are *not* significantly different. The lines are the maximal
cliques of the "not significantly different" graph (:func:`cd_cliques`), built
from the same p-value matrix (or CD) that the text reports.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mpl_toolkits.axes_grid1 import make_axes_locatable  # noqa: E402

from benchmark.errors import ConfigError  # noqa: E402
from benchmark.metrics import column_pearson  # noqa: E402
from features.roll import pitch_name  # noqa: E402
from reports.report import ErrorAnalysis, Report, build_report  # noqa: E402
from reports.results import ModelStack, run_id, scored_models  # noqa: E402
from reports.rundata import RunData, load_run_data  # noqa: E402
from reports.significance import per_target_table  # noqa: E402

logger = logging.getLogger(__name__)

FORMATS = ("png", "pdf")
DPI = 150


# --- data -------------------------------------------------------------------

def per_target_long(table: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """The per-target table's pooled r and CIs of ``models``, one row per (model, target): the figure's data.

    Parameters
    ----------
    table : DataFrame
        :func:`reports.significance.per_target_table` (``{model}.r``, ``.r_lo``, ``.r_hi``).
    models : sequence of str

    Returns
    -------
    DataFrame
        Columns ``model``, ``target``, ``pearson``, ``lo``, ``hi``; NaN where r is undefined (a constant
        prediction, e.g. the mean baseline). ``attrs``: ``resampled``, ``confidence``, ``n_resamples``,
        ``few``, ``too_few``.
    """
    rows = [{"model": m, "target": t, "pearson": r[f"{m}.r"], "lo": r[f"{m}.r_lo"], "hi": r[f"{m}.r_hi"]}
            for m in models for t, (_, r) in zip(table["target"], table.iterrows(), strict=True)]
    out = pd.DataFrame(rows, columns=["model", "target", "pearson", "lo", "hi"])
    a = table.attrs
    out.attrs.update(resampled=a["resampled"], confidence=a["confidence"], n_resamples=a["n_resamples"],
                     few=a["few"], too_few=a["too_few"])
    return out


def per_target_pearson_ci(
    run: str | Path | RunData,
    *,
    models: Sequence[str] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Pooled Pearson r per (model, target) with the per-target table's CIs (:func:`per_target_long`).

    The intervals are those of :func:`reports.significance.per_target_table`:
    whole units of the split resampled, segments for an ungrouped split, none
    (NaN) below 10 units. Models default to those with a complete seed.

    Raises
    ------
    ConfigError
        No model has a complete seed.
    """
    run = load_run_data(run)
    models = list(models) if models is not None else scored_models(run)
    if not models:
        raise ConfigError(f"run {run_id(run)} has no model with a complete seed of predictions")
    table = per_target_table(run, n_resamples=n_resamples, confidence=confidence, seed=seed, with_tests=False)
    return per_target_long(table, models)


def cd_cliques(
    avg_ranks: pd.Series,
    *,
    cd: float | None = None,
    pvalues: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> list[tuple[str, ...]]:
    """Groups of models not significantly different from each other (the CD lines).

    Two models are joined when ``pvalues`` holds ``p >= alpha`` for the pair or,
    without a p-matrix, when their average ranks differ by at most ``cd``
    (Demsar 2006: different when the difference exceeds the CD). The groups
    are the maximal cliques (Bron & Kerbosch 1973) of that graph with at least
    two members; with the Nemenyi test they are runs of adjacent ranks. Pass
    the same matrix (or CD) the text reports, so the drawing agrees with it.

    Parameters
    ----------
    avg_ranks : Series
        Model -> average rank (1 = best).
    cd : float, optional
    pvalues : DataFrame, optional
        Symmetric model x model p-values; takes precedence over ``cd``.
    alpha : float

    Returns
    -------
    list of tuple of str
        Each clique's models in rank order, cliques sorted by their best rank.

    Raises
    ------
    ConfigError
        Neither ``cd`` nor ``pvalues`` given, or a p-matrix missing a model.
    """
    ranks = avg_ranks.sort_values(kind="stable")
    names = list(ranks.index)
    if pvalues is None and cd is None:
        raise ConfigError("cd_cliques needs a critical difference (cd=) or a p-value matrix (pvalues=)")
    if pvalues is not None:
        missing = [m for m in names if m not in pvalues.index or m not in pvalues.columns]
        if missing:
            raise ConfigError(f"p-value matrix lacks model(s) {missing}")

        def same(a: str, b: str) -> bool:
            return bool(pvalues.loc[a, b] >= alpha)
    else:
        def same(a: str, b: str) -> bool:
            return bool(abs(ranks[a] - ranks[b]) <= cd + 1e-12)

    adj = {a: {b for b in names if b != a and same(a, b)} for a in names}
    cliques: list[set[str]] = []

    def expand(r: set[str], p: set[str], x: set[str]) -> None:
        if not p and not x:
            cliques.append(r)
            return
        pivot = max(p | x, key=lambda v: len(adj[v] & p))
        for v in list(p - adj[pivot]):
            expand(r | {v}, p & adj[v], x & adj[v])
            p = p - {v}
            x = x | {v}

    expand(set(), set(names), set())
    order = {m: i for i, m in enumerate(names)}
    out = [tuple(sorted(c, key=order.__getitem__)) for c in cliques if len(c) >= 2]
    return sorted(out, key=lambda c: [order[m] for m in c])


# --- figures ----------------------------------------------------------------

def _short(target: str) -> str:
    return target.replace("_", " ")


def plot_per_target(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Grouped bars of pooled r per target for each model, with CI whiskers.

    Parameters
    ----------
    table : DataFrame
        :func:`per_target_pearson_ci` output. Models whose r is NaN for every
        target (the mean baseline) are left out and named in the caption.
    """
    models = [m for m in table["model"].unique() if table.loc[table["model"] == m, "pearson"].notna().any()]
    dropped = [m for m in table["model"].unique() if m not in models]
    targets = list(dict.fromkeys(table["target"]))
    fig, ax = plt.subplots(figsize=(min(14.0, max(7.0, 2.0 + 0.3 * len(targets) * max(1, len(models)) ** 0.5)), 5.0))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(targets))
    for i, m in enumerate(models):
        d = table[table["model"] == m].set_index("target").loc[targets]
        # No CI (too few units): no whisker rather than a made-up one.
        err = np.nan_to_num(np.vstack([d["pearson"] - d["lo"], d["hi"] - d["pearson"]]), nan=0.0).clip(min=0)
        ax.bar(x + (i - (len(models) - 1) / 2) * width, d["pearson"], width, yerr=err, capsize=1.5,
               label=m, error_kw={"elinewidth": 0.7})
    ax.set_xticks(x, [_short(t) for t in targets], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("pooled Pearson r")
    ax.axhline(0, color="black", lw=0.6)
    conf = int(round(100 * table.attrs.get("confidence", 0.95)))
    if table.attrs.get("few"):
        note = f"no whiskers: {table.attrs.get('too_few') or 'too few groups'}"
    else:
        note = f"whiskers: {conf}% CI, bootstrap over {table.attrs.get('resampled', 'segments')}"
    if dropped:
        note += f"; r undefined (constant predictions): {', '.join(dropped)}"
    ax.set_title(f"{title or 'Pearson r per target'}\n{note}", fontsize=9)
    if models:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_cd_diagram(
    avg_ranks: pd.Series,
    cd: float,
    *,
    pvalues: pd.DataFrame | None = None,
    alpha: float = 0.05,
    title: str | None = None,
) -> Figure:
    """Critical-difference diagram (Demsar 2006).

    The rank axis runs from 1 (best, left) to k; each model hangs from its
    average rank; the CD bar sits above the axis; thick lines under the axis
    join the cliques of :func:`cd_cliques` (from ``pvalues`` when given, else
    from ``cd``), with a dot on every member.

    Parameters
    ----------
    avg_ranks : Series
        Model -> average rank.
    cd : float
        The critical difference drawn as a bar.
    pvalues : DataFrame, optional
        Pairwise p-values deciding the cliques (e.g. Nemenyi's).
    alpha : float
    title : str, optional
    """
    ranks = avg_ranks.sort_values(kind="stable")
    names = list(ranks.index)
    k = len(names)
    cliques = cd_cliques(ranks, cd=cd, pvalues=pvalues, alpha=alpha)
    lo_axis, hi_axis = 1, max(k, int(np.ceil(ranks.max())))
    n_left = (k + 1) // 2
    step = 0.32
    clique_top = -0.25
    label_top = clique_top - step * (len(cliques) + 0.5)
    height = -label_top + step * max(n_left, k - n_left) + 1.0
    fig, ax = plt.subplots(figsize=(7.0, 0.55 * height + 0.4))
    ax.set_xlim(lo_axis - 1.6, hi_axis + 1.6)
    ax.set_ylim(label_top - step * max(n_left, k - n_left) - 0.2, 1.0)
    ax.axis("off")
    ax.plot([lo_axis, hi_axis], [0, 0], color="black", lw=1)
    for t in range(lo_axis, hi_axis + 1):
        ax.plot([t, t], [0, 0.1], color="black", lw=1)
        ax.text(t, 0.15, str(t), ha="center", va="bottom", fontsize=9)
    for t in np.arange(lo_axis + 0.5, hi_axis, 1.0):
        ax.plot([t, t], [0, 0.05], color="black", lw=0.6)
    ax.plot([lo_axis, lo_axis + cd], [0.6, 0.6], color="black", lw=1.5)
    for end in (lo_axis, lo_axis + cd):
        ax.plot([end, end], [0.55, 0.65], color="black", lw=1.5)
    ax.text(lo_axis + cd / 2, 0.68, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
    for i, m in enumerate(names):
        left = i < n_left
        row = i if left else k - 1 - i
        y = label_top - step * row
        x_end = lo_axis - 0.3 if left else hi_axis + 0.3
        ax.plot([ranks[m], ranks[m], x_end], [0, y, y], color="0.3", lw=0.8)
        ax.text(x_end + (-0.05 if left else 0.05), y, f"{m} ({ranks[m]:.2f})", ha="right" if left else "left",
                va="center", fontsize=9)
    for j, clique in enumerate(cliques):
        y = clique_top - step * j
        xs = [ranks[m] for m in clique]
        ax.plot([min(xs) - 0.03, max(xs) + 0.03], [y, y], color="black", lw=4, solid_capstyle="round")
        ax.plot(xs, [y] * len(xs), "o", color="white", ms=3, mec="black", mew=0.6)
    rule = f"Nemenyi p >= {alpha:.2f}" if pvalues is not None else f"rank difference <= CD ({cd:.2f})"
    ax.set_title(title or f"Critical difference diagram (joined: {rule})", fontsize=9)
    fig.tight_layout()
    return fig


def plot_scatter_grid(stack: ModelStack, targets: Sequence[str], *, replicate: int = 0,
                      title: str | None = None, r: np.ndarray | None = None) -> Figure:
    """Predicted against true ratings, one panel per target (4 x 5 grid for 19 targets).

    Shows one replicate (a seed, or one fold model on a fixed test set); each
    panel's title gives that replicate's pooled r (``r``, as
    :attr:`reports.report.ErrorAnalysis.scatter_r`; computed when not given).
    """
    n_t = len(targets)
    ncols = 5
    nrows = int(np.ceil(n_t / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 2.2 * nrows), squeeze=False)
    pred = stack.stack[replicate]
    r = column_pearson(stack.y_true, pred) if r is None else r
    for t, ax in enumerate(axes.flat):
        if t >= n_t:
            ax.axis("off")
            continue
        yt, yp = stack.y_true[:, t], pred[:, t]
        ax.scatter(yt, yp, s=3, alpha=0.35, lw=0)
        lo, hi = float(min(yt.min(), yp.min())), float(max(yt.max(), yp.max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.6, ls="--")
        ax.set_title(f"{_short(targets[t])}\nr = {r[t]:.2f}", fontsize=6.5)
        ax.tick_params(labelsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("true", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted", fontsize=7)
    fig.suptitle(title or f"{stack.model}: predicted vs true (out-of-fold)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_heatmap(table: pd.DataFrame, *, title: str, fmt: str = "{:.3f}", cmap: str = "viridis_r",
                 label: str = "") -> Figure:
    """Annotated heatmap of a groups x columns table (e.g. :func:`error_matrix`)."""
    values = table.to_numpy(dtype=float)
    nr, nc = values.shape
    fig, ax = plt.subplots(figsize=(min(2.0 + 0.62 * nc, 16.0), min(1.5 + 0.3 * nr, 14.0)))
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = ax.imshow(values, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(nc), [_short(str(c)) for c in table.columns], rotation=60 if nc > 6 else 0,
                  ha="right" if nc > 6 else "center", fontsize=7)
    ax.set_yticks(range(nr), [str(i) for i in table.index], fontsize=7)
    ax.set_ylabel(table.index.name or "")
    mid = (vmin + vmax) / 2
    # viridis is dark at its low end; the reversed map at its high end.
    dark_high = cmap.endswith("_r")
    for i, j in itertools.product(range(nr), range(nc)):
        v = values[i, j]
        if not np.isfinite(v):
            continue
        dark = (v > mid) if dark_high else (v < mid)
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=5.5 if nc > 8 else 7,
                color="white" if dark else "black")
    fig.colorbar(im, ax=ax, label=label, fraction=0.04)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_error_grid(table: pd.DataFrame, *, title: str, label: str = "MAE") -> Figure:
    """A groups x targets error table (e.g. performers x 19 ratings) that stays readable at 22 x 19.

    The ratings differ in how hard they are, so raw errors mostly repeat each
    rating's difficulty. Each cell shows the error relative to its rating's
    mean over the groups (1 = as hard as usual for that rating; a diverging
    colour scale centred on 1, on a log scale so 0.5x and 2x are as far from
    1), and only cells at least 25% away from 1 are annotated. Groups are
    sorted by their mean error, hardest first; the margins give each group's
    and each rating's mean error in absolute terms.

    Parameters
    ----------
    table : DataFrame, shape (n_groups, n_targets)
        :func:`reports.analysis.error_matrix` with ``columns="target"``.
    title : str
    label : str
        What the values are (for the margins).
    """
    from matplotlib.colors import LogNorm

    col_mean = table.mean(axis=0)
    row_mean = table.mean(axis=1)
    order = row_mean.sort_values(ascending=False, kind="stable").index
    rel = (table / col_mean).loc[order]
    values = rel.to_numpy(dtype=float)
    nr, nc = values.shape
    finite = values[np.isfinite(values) & (values > 0)]
    span = float(np.max(np.abs(np.log(finite)))) if finite.size else np.log(2.0)
    span = max(span, np.log(1.25))
    fig = plt.figure(figsize=(min(4.0 + 0.55 * nc, 16.0), min(3.0 + 0.32 * nr, 14.0)))
    grid = fig.add_gridspec(2, 3, width_ratios=[nc, 1.6, 0.5], height_ratios=[nr, 1.4], wspace=0.04, hspace=0.04)
    ax = fig.add_subplot(grid[0, 0])
    im = ax.imshow(values, aspect="auto", cmap="RdBu_r", norm=LogNorm(np.exp(-span), np.exp(span)))
    for i, j in itertools.product(range(nr), range(nc)):
        v = values[i, j]
        if np.isfinite(v) and abs(np.log(v)) >= np.log(1.25):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(np.log(v)) > 0.6 * span else "black")
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    ax.set_yticks(range(nr), [str(g) for g in rel.index], fontsize=8)
    ax.set_ylabel(f"{table.index.name or 'group'} (hardest first)")
    ax.set_title(title + f"\n{label} relative to each rating's mean over {table.index.name or 'group'}s "
                 "(1 = usual for that rating; cells >= 1.25x or <= 0.8x annotated)", fontsize=9)
    right = fig.add_subplot(grid[0, 1], sharey=ax)
    right.imshow(row_mean.loc[order].to_numpy()[:, None], aspect="auto", cmap="Greys", alpha=0.35)
    for i, v in enumerate(row_mean.loc[order]):
        right.text(0, i, f"{v:.3f}", ha="center", va="center", fontsize=7)
    right.xaxis.tick_top()
    right.set_xticks([0], [f"mean {label}"], fontsize=7)
    right.tick_params(axis="y", left=False, labelleft=False)
    bottom = fig.add_subplot(grid[1, 0])
    bottom.set_xlim(ax.get_xlim())
    bottom.imshow(col_mean.to_numpy()[None, :], aspect="auto", cmap="Greys", alpha=0.35)
    for j, v in enumerate(col_mean):
        bottom.text(j, 0, f"{v:.3f}", ha="center", va="center", fontsize=6.5, rotation=90)
    bottom.set_yticks([0], [f"mean {label}"], fontsize=7)
    bottom.set_xticks(range(nc), [_short(str(c)) for c in table.columns], rotation=55, ha="right", fontsize=7.5)
    bar = fig.colorbar(im, cax=fig.add_subplot(grid[0, 2]), label=f"{label} / rating's mean")
    steps = [v for v in (0.25, 0.33, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0) if abs(np.log(v)) <= span + 1e-9]
    bar.set_ticks(steps, labels=[f"{v:g}x" for v in steps])
    bar.minorticks_off()
    return fig


def plot_importance(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Horizontal bars of the drop in mean r per family with CI whiskers
    (:func:`reports.analysis.importance_table` output)."""
    unit = table.attrs.get("by", "family")
    d = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.0, 0.9 + 0.28 * len(d)))
    err = np.vstack([d["drop_r"] - d["drop_r_lo"], d["drop_r_hi"] - d["drop_r"]])
    err = np.where(np.isfinite(err), err, 0).clip(min=0)
    ax.barh(np.arange(len(d)), d["drop_r"], xerr=err, capsize=2, color="tab:blue")
    ax.set_yticks(np.arange(len(d)), d[unit].astype(str), fontsize=7)
    ax.axvline(0, color="black", lw=0.6)
    conf = int(round(100 * table.attrs.get("confidence", 0.95)))
    ax.set_xlabel(f"drop in mean Pearson r when permuted (held-out folds; {conf}% CI over folds)", fontsize=8)
    model = table.attrs.get("model", "")
    ax.set_title(title or f"Permutation importance by {unit}: {model}", fontsize=9)
    fig.tight_layout()
    return fig


def _frequency_ticks(bands: np.ndarray) -> tuple[list[float], list[str]]:
    """Band positions and labels of round frequencies within the bands' range, at least 4% of the axis apart
    (the mel scale crowds the low ones)."""
    ticks, labels = [], []
    gap = 0.04 * len(bands)
    for hz in (8000, 4000, 2000, 1000, 500, 200, 100, 50):  # high first: they are the widest apart
        if bands[0] <= hz <= bands[-1]:
            pos = float(np.interp(hz, bands, np.arange(len(bands))))
            if all(abs(pos - t) >= gap for t in ticks):
                ticks.append(pos)
                labels.append(f"{hz // 1000}k" if hz >= 1000 else str(hz))
    return ticks[::-1], labels[::-1]


def plot_explanation(result: Mapping, *, title: str, top: int = 15) -> Figure:
    """The ``benchmark explain`` figure: attention rollout over the input, prediction vs rating, attributions.

    Parameters
    ----------
    result : mapping
        ``input`` (C, F, T) pooled array, ``map`` (F, T) rollout, ``kind`` ("mel" or "roll"),
        ``frame_rate`` (pooled frames per second), ``bands`` (F,) centre frequencies in Hz (mel) or
        MIDI pitches (roll), ``targets`` (names), ``prediction`` and ``rating`` (n_targets,) or None,
        ``target`` (the chosen rating's name or None), and for the hybrid ``features``
        [(name, attribution)] sorted by magnitude with ``attribution_of`` (what they explain).
    title : str
    top : int
        Features shown.
    """
    a = np.asarray(result["input"])
    roll = result.get("kind") == "roll"
    img = a[1] if roll else a[0]  # the roll's sounding-notes channel, or the log-mel
    feats = result.get("features") or []
    targets = list(result.get("targets") or [])
    pred, rating = result.get("prediction"), result.get("rating")
    rows = 2 + bool(feats)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 4.2 + 3.2 * (rows - 1)), squeeze=False,
                             gridspec_kw={"height_ratios": [1.3] + [1.0] * (rows - 1)})
    ax = axes[0, 0]
    seconds = img.shape[1] / float(result.get("frame_rate") or 1.0)
    extent = (0.0, seconds, -0.5, img.shape[0] - 0.5)
    base = ax.imshow(img, origin="lower", aspect="auto", cmap="gray_r" if roll else "magma", extent=extent)
    m = np.asarray(result["map"], dtype=float)
    over = ax.imshow(m / (m.max() or 1.0), origin="lower", aspect="auto", cmap="viridis", alpha=0.45,
                     extent=(0.0, m.shape[1] / float(result.get("frame_rate") or 1.0), -0.5, m.shape[0] - 0.5),
                     vmin=0.0, vmax=1.0)
    side = make_axes_locatable(ax)
    fig.colorbar(over, cax=side.append_axes("right", size="1.5%", pad=0.08),
                 label="attention rollout (share of the maximum)")
    fig.colorbar(base, cax=side.append_axes("right", size="1.5%", pad=0.75),
                 label="sounding notes (share of the frame)" if roll else "log-mel (dB)")
    ax.set_xlabel("time (s)")
    bands = np.asarray(result.get("bands", np.arange(img.shape[0])))
    if roll:
        cs = [i for i, p in enumerate(bands) if int(p) % 12 == 0]
        ax.set_yticks(cs, [pitch_name(int(bands[i])) for i in cs])
        ax.set_ylabel("pitch")
    else:
        ticks, labels = _frequency_ticks(bands)
        ax.set_yticks(ticks, labels)
        ax.set_ylabel("frequency (Hz, mel scale)")
    ax.set_title(title, fontsize=9)
    bx = axes[1, 0]
    if pred is not None and targets:
        pos = np.arange(len(targets))
        chosen = result.get("target")
        if rating is not None:
            bx.scatter(pos, rating, marker="o", facecolors="none", edgecolors="black", label="rating (mean of raters)")
        bx.scatter(pos, pred, marker="x", color="tab:red", label="prediction (held-out fold's model)")
        if chosen in targets:
            bx.axvspan(targets.index(chosen) - 0.5, targets.index(chosen) + 0.5, color="gold", alpha=0.3)
        bx.set_xticks(pos, [_short(t) for t in targets], rotation=60, ha="right", fontsize=7)
        bx.set_ylabel("rating (0-1)")
        bx.legend(fontsize=7, loc="best")
        if rating is not None:
            err = float(np.mean(np.abs(np.asarray(pred) - np.asarray(rating))))
            head = f"prediction vs rating; mean |error| over the {len(targets)} ratings {err:.3f}"
            if chosen in targets:
                j = targets.index(chosen)
                head += f"; {_short(chosen)}: predicted {pred[j]:.3f}, rated {rating[j]:.3f}"
            bx.set_title(head, fontsize=9)
    if feats:
        names, vals = zip(*feats[:top], strict=True)
        cx = axes[2, 0]
        cx.barh(range(len(vals))[::-1], vals, color=["tab:red" if v < 0 else "tab:blue" for v in vals])
        cx.set_yticks(range(len(vals))[::-1], names, fontsize=7)
        cx.axvline(0, color="black", lw=0.6)
        cx.set_xlabel(f"gradient x input ({result.get('attribution_of') or 'mean over the ratings'})")
    fig.tight_layout()
    return fig


# --- a run's figures ----------------------------------------------------------

def cd_diagrams(rankings: Mapping) -> dict[str, tuple[Figure, str]]:
    """One critical-difference diagram per Friedman/Nemenyi ranking (:attr:`reports.report.Report.rankings`).

    Returns
    -------
    dict
        ``cd_diagram_<blocks>`` -> (figure, caption).
    """
    out = {}
    for blocks, rk in rankings.items():
        fr = rk.result
        fig = plot_cd_diagram(fr.avg_ranks, fr.cd, pvalues=fr.pairwise_p, alpha=fr.alpha,
                              title=f"Critical difference diagram, {rk.metric} over {blocks} ({rk.label})")
        caption = " ".join(rk.table().attrs.get("notes", [])) + (
            " Thick lines join models whose Nemenyi p >= alpha (not significantly different).")
        out[f"cd_diagram_{blocks}"] = (fig, caption)
    return out


def report_figures(report: Report) -> dict[str, tuple[Figure, str]]:
    """Draw every figure of a report from the data it holds (nothing is computed here).

    Returns
    -------
    dict
        File stem -> (figure, caption), in display order: ``per_target_r``,
        ``cd_diagram_<blocks>``, ``scatter_<best>``, ``heatmap_performer_mae``,
        ``heatmap_piece_mae``, ``heatmap_performer_target_mae``, ``importance_<model>``.
        Without an error analysis (no complete model) only the first two kinds.
    """
    run = report.run
    figs: dict[str, tuple[Figure, str]] = {}
    table = report.tables["per_target"]
    data = per_target_long(table, scored_models(run))
    if len(data):
        conf = int(round(100 * table.attrs["confidence"]))
        figs["per_target_r"] = (plot_per_target(data, title=f"Pooled Pearson r per target ({run.split})"),
                                f"Pooled out-of-fold Pearson r per target, {conf}% percentile CIs by bootstrap "
                                f"over {table.attrs['resampled']} ({table.attrs['n_resamples']} resamples, the "
                                "same draws for every model): the per-target table's intervals.")
    figs.update(cd_diagrams(report.rankings))
    errors: ErrorAnalysis | None = report.errors
    if errors is not None:
        best, s = errors.best, errors.stack
        rep = "seed " + str(s.seeds[0]) if run.partition else "the first fold model"
        figs[f"scatter_{best}"] = (plot_scatter_grid(s, run.targets, title=f"{best}: predicted vs true ({rep})",
                                                     r=errors.scatter_r),
                                   f"Out-of-fold predictions of the best model ({best}) against the mean ratings, "
                                   f"{rep}; dashed: identity.")
        for by in [b for b in ("performer", "piece") if f"{b}_mae" in errors.matrices]:
            figs[f"heatmap_{by}_mae"] = (
                plot_heatmap(errors.matrices[f"{by}_mae"], title=f"Mean absolute error per {by} and model",
                             label="MAE"),
                f"MAE over each {by}'s segments and all targets, averaged over seeds.")
        if "performer_target_mae" in errors.matrices:
            figs["heatmap_performer_target_mae"] = (
                plot_error_grid(errors.matrices["performer_target_mae"],
                                title=f"{best}: MAE per performer and target"),
                f"MAE of {best} per performer and target, relative to each target's mean over performers (1 = usual "
                "for that target); margins: each performer's and each target's mean MAE.")
    for model, imp in report.importance.items():
        figs[f"importance_{model}"] = (plot_importance(imp), _importance_caption(imp))
    return figs


def _importance_caption(imp: pd.DataFrame) -> str:
    a = imp.attrs
    return (f"Permutation importance of {a.get('model', '?')} by {a.get('by', 'family')}: refitted on each "
            f"training fold of the run ({len(a.get('jobs', []))} folds, {a.get('n_repeats', '?')} permutations "
            f"each), columns permuted jointly in the test fold; CI by bootstrap over folds.")


def save_figures(figs: Mapping[str, tuple[Figure, str]], out_dir: str | Path | None = None,
                 formats: Sequence[str] = FORMATS) -> tuple[list[Path], dict[str, bytes]]:
    """Render each figure once per format into ``out_dir`` and close it.

    Parameters
    ----------
    figs : mapping of stem -> (figure, caption)
    out_dir : path, optional
        Created if absent; None writes no file (the PNGs are rendered in memory only).
    formats : sequence of {"png", "pdf"}

    Returns
    -------
    paths : list of Path
        The files written.
    pngs : dict of stem -> bytes
        Each figure's PNG (the file's bytes when one was written), for the HTML report.
    """
    paths: list[Path] = []
    pngs: dict[str, bytes] = {}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    for stem, (fig, _) in figs.items():
        for fmt in formats if out_dir is not None else ():
            path = Path(out_dir) / f"{stem}.{fmt}"
            fig.savefig(path, dpi=DPI, bbox_inches="tight")
            paths.append(path)
            if fmt == "png":
                pngs[stem] = path.read_bytes()
        if stem not in pngs:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
            pngs[stem] = buf.getvalue()
        plt.close(fig)
    return paths, pngs


def write_plots(run_dir: str | Path | RunData, out_dir: str | Path | None = None, *,
                importance: dict[str, pd.DataFrame] | None = None, formats: Sequence[str] = FORMATS,
                n_resamples: int = 2000, seed: int = 0) -> list[Path]:
    """Write every figure of a run as PNG and PDF (its report built with :func:`reports.report.build_report`).

    Parameters
    ----------
    run_dir : path or RunData
    out_dir : path, optional
        Created if absent; default ``<run_dir>/plots``.
    importance : dict, optional
        Model -> :func:`reports.analysis.importance_table` table, drawn when given.
    formats : sequence of str
    n_resamples, seed
        Of the report's bootstraps (the per-target CIs).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ConfigError
        Not a run directory.
    """
    run = load_run_data(run_dir)
    report = build_report(run, n_resamples=n_resamples, seed=seed, importance=importance)
    out = Path(out_dir) if out_dir is not None else run.run_dir / "plots"
    return save_figures(report_figures(report), out, formats)[0]

"""Figures of a run: per-target r with CIs, critical-difference diagram, scatter, error heatmaps.

Every ``plot_*`` function returns a matplotlib ``Figure`` (Agg backend, no
display needed); :func:`write_plots` saves all figures of a run as PNG and
PDF. The data behind each figure comes from :mod:`reports.results` and
:mod:`reports.analysis`, so a figure never disagrees with a table.

The critical-difference diagram follows Demsar (2006, JMLR 7, Fig. 1-2):
models on an average-rank axis, the CD as a bar, and thick lines joining
models that are *not* significantly different. The lines are the maximal
cliques of the "not significantly different" graph (:func:`cd_cliques`), built
from the same p-value matrix (or CD) that the text reports.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from benchmark.errors import ConfigError  # noqa: E402
from benchmark.metrics import column_pearson  # noqa: E402
from reports.analysis import error_matrix  # noqa: E402
from reports.results import ModelStack, best_model, model_stack, run_id, scored_models  # noqa: E402
from reports.rundata import RunData, load_run_data  # noqa: E402

logger = logging.getLogger(__name__)

FORMATS = ("png", "pdf")
DPI = 150


# --- data -------------------------------------------------------------------

def per_target_pearson_ci(
    run: str | Path | RunData,
    *,
    models: Sequence[str] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Pooled Pearson r per (model, target) with the per-target table's CIs.

    The intervals are those of :func:`reports.significance.per_target_table`
    (one bootstrap per quantity: the figure and the table show the same CI):
    whole units of the split resampled, segments for an ungrouped split, none
    (NaN) below 10 units.

    Returns
    -------
    DataFrame
        Columns ``model``, ``target``, ``pearson``, ``lo``, ``hi``; NaN where r
        is undefined (a constant prediction, e.g. the mean baseline).
        ``attrs["resampled"]`` names what was resampled.
    """
    from reports.significance import per_target_table

    run = load_run_data(run)
    models = list(models) if models is not None else scored_models(run)
    if not models:
        raise ConfigError(f"run {run_id(run)} has no model with a complete seed of predictions")
    table = per_target_table(run, n_resamples=n_resamples, confidence=confidence, seed=seed, with_tests=False)
    rows = [{"model": m, "target": t, "pearson": r[f"{m}.r"], "lo": r[f"{m}.r_lo"], "hi": r[f"{m}.r_hi"]}
            for m in models for t, (_, r) in zip(run.targets, table.iterrows(), strict=True)]
    out = pd.DataFrame(rows)
    out.attrs.update(resampled=table.attrs["resampled"], confidence=confidence, n_resamples=n_resamples,
                     few=table.attrs["few"], too_few=table.attrs["too_few"])
    return out


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
                      title: str | None = None) -> Figure:
    """Predicted against true ratings, one panel per target (4 x 5 grid for 19 targets).

    Shows one replicate (a seed, or one fold model on a fixed test set); each
    panel's title gives that replicate's pooled r.
    """
    n_t = len(targets)
    ncols = 5
    nrows = int(np.ceil(n_t / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 2.2 * nrows), squeeze=False)
    pred = stack.stack[replicate]
    r = column_pearson(stack.y_true, pred)
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


# --- a run's figures ----------------------------------------------------------

def cd_diagrams(run: str | Path | RunData, rankings: dict | None = None) -> dict[str, tuple[Figure, str]]:
    """One critical-difference diagram per Friedman/Nemenyi ranking of the run.

    Parameters
    ----------
    run : run directory or RunData
    rankings : dict, optional
        Blocks -> :class:`reports.report.Ranking` (e.g. ``Report.rankings``),
        so the figures and the ranking tables share one computation; by
        default :func:`reports.report.rank_models` over targets and over
        (seed, fold) units, skipping those that cannot be computed (fewer
        than 3 models with scores).

    Returns
    -------
    dict
        ``cd_diagram_<blocks>`` -> (figure, caption).
    """
    from reports.report import RANK_BLOCKS, rank_models

    if rankings is None:
        rankings = {}
        for blocks in RANK_BLOCKS:
            try:
                rankings[blocks] = rank_models(run, blocks=blocks)
            except ConfigError as exc:
                logger.info("no CD diagram over %s: %s", blocks, exc)
    out = {}
    for blocks, rk in rankings.items():
        fr = rk.result
        fig = plot_cd_diagram(fr.avg_ranks, fr.cd, pvalues=fr.pairwise_p, alpha=fr.alpha,
                              title=f"Critical difference diagram, {rk.metric} over {blocks} ({rk.label})")
        caption = " ".join(rk.table().attrs.get("notes", [])) + (
            " Thick lines join models whose Nemenyi p >= alpha (not significantly different).")
        out[f"cd_diagram_{blocks}"] = (fig, caption)
    return out


def run_figures(run: str | Path | RunData, *, importance: dict[str, pd.DataFrame] | None = None,
                rankings: dict | None = None, n_resamples: int = 1000, seed: int = 0) -> dict[str, tuple[Figure, str]]:
    """Build every figure of a run.

    Parameters
    ----------
    run : run directory or RunData
    importance : dict, optional
        Model -> :func:`reports.analysis.importance_table` table,
        drawn when given (it is too costly to compute here).
    rankings : dict, optional
        See :func:`cd_diagrams`.
    n_resamples, seed
        For the per-target CIs.

    Returns
    -------
    dict
        File stem -> (figure, caption), in display order.
    """
    run = load_run_data(run)
    figs: dict[str, tuple[Figure, str]] = {}
    table = per_target_pearson_ci(run, n_resamples=n_resamples, seed=seed)
    figs["per_target_r"] = (plot_per_target(table, title=f"Pooled Pearson r per target ({run.split})"),
                            "Pooled out-of-fold Pearson r per target, 95% percentile CIs by bootstrap over "
                            "segments (same draws for every model).")
    figs.update(cd_diagrams(run, rankings))
    best = best_model(run)
    s = model_stack(run, best)
    rep = "seed " + str(s.seeds[0]) if run.partition else "the first fold model"
    figs[f"scatter_{best}"] = (plot_scatter_grid(s, run.targets, title=f"{best}: predicted vs true ({rep})"),
                               f"Out-of-fold predictions of the best model ({best}) against the mean ratings, "
                               f"{rep}; dashed: identity.")
    for by in ("performer", "piece"):
        m = error_matrix(run, by, columns="model", value="mae")
        figs[f"heatmap_{by}_mae"] = (
            plot_heatmap(m, title=f"Mean absolute error per {by} and model", label="MAE"),
            f"MAE over each {by}'s segments and all targets, averaged over seeds.")
    m = error_matrix(run, "performer", columns="target", value="mae", model=best)
    figs["heatmap_performer_target_mae"] = (
        plot_heatmap(m, title=f"{best}: MAE per performer and target", fmt="{:.2f}", label="MAE"),
        f"MAE of {best} per performer and target.")
    for model, imp in (importance or {}).items():
        figs[f"importance_{model}"] = (plot_importance(imp), _importance_caption(imp))
    return figs


def _importance_caption(imp: pd.DataFrame) -> str:
    a = imp.attrs
    return (f"Permutation importance of {a.get('model', '?')} by {a.get('by', 'family')}: refitted on each "
            f"training fold of the run ({len(a.get('jobs', []))} folds, {a.get('n_repeats', '?')} permutations "
            f"each), columns permuted jointly in the test fold; CI by bootstrap over folds.")


def save_figure(fig: Figure, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each format and close it."""
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def write_plots(run_dir: str | Path, out_dir: str | Path | None = None, *,
                importance: dict[str, pd.DataFrame] | None = None,
                formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write every figure of a run as PNG and PDF.

    Parameters
    ----------
    run_dir : path
    out_dir : path, optional
        Created if absent; default ``<run_dir>/plots``.
    importance : dict, optional
        See :func:`run_figures`.
    formats : sequence of str

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ConfigError
        Not a run directory or no complete model.
    """
    run = load_run_data(run_dir)
    out = Path(out_dir) if out_dir is not None else run.run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for stem, (fig, _) in run_figures(run, importance=importance).items():
        paths.extend(save_figure(fig, out / stem, formats))
    return paths

"""Figures: valid PNG/PDF files, and CD-diagram cliques that agree with the CD and p-values."""

import itertools

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import ConfigError
from reports.plots import cd_cliques, per_target_pearson_ci, plot_cd_diagram, write_plots
from reports.ranking import friedman_nemenyi
from reports.results import model_stack
from reports.rundata import load_run_data

PNG = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF-"


def test_cd_cliques_hand_example():
    # |A-B| = 0.5, |B-C| = 1.1 <= CD; |A-C| = 1.6, |C-D| = 1.3 > CD: D joins nobody.
    ranks = pd.Series({"D": 3.9, "B": 1.5, "A": 1.0, "C": 2.6})
    assert cd_cliques(ranks, cd=1.2) == [("A", "B"), ("B", "C")]
    # A difference equal to the CD is not significant (Demsar: "differ by at least the CD" is strict here).
    assert cd_cliques(pd.Series({"A": 1.0, "B": 2.0}), cd=1.0) == [("A", "B")]
    assert cd_cliques(ranks, cd=3.0) == [("A", "B", "C", "D")]
    assert cd_cliques(ranks, cd=0.1) == []


def test_cd_cliques_follow_the_pvalue_matrix_over_the_cd():
    ranks = pd.Series({"A": 1.0, "B": 2.0, "C": 3.0})
    p = pd.DataFrame(1.0, index=list("ABC"), columns=list("ABC"))
    p.loc["B", "C"] = p.loc["C", "B"] = 0.01  # B and C differ, A differs from neither (non-adjacent clique)
    assert cd_cliques(ranks, cd=0.5, pvalues=p) == [("A", "B"), ("A", "C")]
    with pytest.raises(ConfigError, match="critical difference"):
        cd_cliques(ranks)
    with pytest.raises(ConfigError, match="lacks model"):
        cd_cliques(ranks, pvalues=p.drop(index="C", columns="C"))


@pytest.mark.parametrize("seed", range(5))
def test_cd_cliques_agree_with_friedman_nemenyi(seed):
    rng = np.random.default_rng(seed)
    scores = pd.DataFrame(rng.normal(size=(12, 6)) + np.linspace(0, 1.5, 6), columns=list("abcdef"))
    fr = friedman_nemenyi(scores)
    by_cd = cd_cliques(fr.avg_ranks, cd=fr.cd)
    by_p = cd_cliques(fr.avg_ranks, pvalues=fr.pairwise_p, alpha=fr.alpha)
    assert by_cd == by_p
    joined = {frozenset(pair) for c in by_cd for pair in itertools.combinations(c, 2)}
    for a, b in itertools.combinations(fr.avg_ranks.index, 2):
        not_significant = fr.pairwise_p.loc[a, b] >= fr.alpha
        assert (frozenset((a, b)) in joined) == not_significant


def test_cd_diagram_draws_one_thick_line_per_clique():
    ranks = pd.Series({"A": 1.0, "B": 1.5, "C": 2.6, "D": 3.9})
    fig = plot_cd_diagram(ranks, 1.2)
    thick = [ln for ln in fig.axes[0].lines if ln.get_linewidth() >= 4]
    spans = sorted((round(min(ln.get_xdata()), 2), round(max(ln.get_xdata()), 2)) for ln in thick)
    assert spans == [(0.97, 1.53), (1.47, 2.63)]  # A-B and B-C, padded by 0.03


def test_per_target_ci_brackets_the_pooled_r(small_run):
    run = load_run_data(small_run)
    table = per_target_pearson_ci(run, n_resamples=200)
    assert set(table["model"]) == {"mean", "ridge", "rf"} and len(table) == 3 * 19
    rf = table[table["model"] == "rf"]
    np.testing.assert_allclose(rf["pearson"], model_stack(run, "rf").pearson())
    ok = table.dropna()
    assert (ok["lo"] <= ok["pearson"] + 1e-12).all() and (ok["pearson"] <= ok["hi"] + 1e-12).all()
    # The per-target table's CIs, not a bootstrap of their own: 4 performers are too few for any.
    assert table.attrs["resampled"] == "performers" and table.attrs["few"] and table[["lo", "hi"]].isna().all().all()
    from reports.significance import per_target_table

    ref = per_target_table(run, n_resamples=200, with_tests=False)
    np.testing.assert_allclose(table.loc[table["model"] == "ridge", "hi"], ref["ridge.r_hi"])


def test_write_plots_writes_valid_png_and_pdf(small_run, tmp_path):
    paths = write_plots(small_run, tmp_path / "plots")
    stems = {p.stem for p in paths}
    assert {"per_target_r", "cd_diagram_targets", "heatmap_performer_mae", "heatmap_piece_mae",
            "heatmap_performer_target_mae"} <= stems
    assert any(s.startswith("scatter_") for s in stems)
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG if p.suffix == ".png" else PDF), p
        assert len(data) > 5000, p
    assert {p.suffix for p in paths} == {".png", ".pdf"} and len(paths) == 2 * len(stems)


def test_per_target_figure_draws_the_tables_intervals(tmp_path):
    """The figure's whiskers are the per-target table's CIs, whatever --n-resamples and --seed are (the
    figure files once used 1000 resamples of their own while the table used 2000)."""
    from test_significance import make_run, noisy

    from reports.plots import report_figures
    from reports.report import build_report

    run_dir = make_run(tmp_path / "run", {"rf": noisy(0.6, 1), "good": noisy(0.3, 2)})
    report = build_report(run_dir, n_resamples=157, seed=3, errors=False)
    table = report.tables["per_target"]
    assert table.attrs["resampled"] == "performers" and not table.attrs["few"]
    fig, caption = report_figures(report)["per_target_r"]
    assert "157 resamples" in caption and "over performers" in caption
    bars = [c for c in fig.axes[0].containers if hasattr(c, "errorbar") and c.errorbar is not None]
    assert [b.get_label() for b in bars] == ["rf", "good"]
    for container, model in zip(bars, ["rf", "good"], strict=True):
        segments = container.errorbar.lines[2][0].get_segments()
        lows = np.array([seg[:, 1].min() for seg in segments])
        highs = np.array([seg[:, 1].max() for seg in segments])
        np.testing.assert_allclose(lows, table[f"{model}.r_lo"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(highs, table[f"{model}.r_hi"], rtol=0, atol=1e-12)
        heights = np.array([rect.get_height() for rect in container])
        np.testing.assert_allclose(heights, table[f"{model}.r"], rtol=0, atol=0)
    # A bootstrap of the figure's own (another draw count) would not match the table.
    other = build_report(run_dir, n_resamples=1000, seed=3, errors=False).tables["per_target"]
    assert not np.allclose(other["rf.r_lo"], table["rf.r_lo"], rtol=0, atol=1e-12)


def test_performer_target_error_grid_is_relative_sorted_and_sparsely_annotated():
    """22 x 19 stays readable: each cell is the error over its rating's mean, performers hardest first, only
    cells >= 1.25x or <= 0.8x carry a number, and the margins give the absolute means."""
    from reports.plots import plot_error_grid

    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.uniform(0.03, 0.15, (22, 19)), index=pd.Index([f"p{i}" for i in range(22)],
                                                                          name="performer"),
                         columns=[f"rating_{j}" for j in range(19)])
    fig = plot_error_grid(table, title="t")
    ax = fig.axes[0]
    order = table.mean(axis=1).sort_values(ascending=False).index
    assert [t.get_text() for t in ax.get_yticklabels()] == list(order)
    rel = (table / table.mean(axis=0)).loc[order].to_numpy()
    np.testing.assert_allclose(ax.images[0].get_array(), rel)
    annotated = [t for t in ax.texts]
    assert len(annotated) == int(np.sum(np.abs(np.log(rel)) >= np.log(1.25)))
    assert {t.get_text() for t in annotated} <= {f"{v:.1f}" for v in rel.ravel()}
    right = fig.axes[1]
    assert [t.get_text() for t in right.texts] == [f"{v:.3f}" for v in table.mean(axis=1).loc[order]]
    bottom = fig.axes[2]
    assert [t.get_text() for t in bottom.texts] == [f"{v:.3f}" for v in table.mean(axis=0)]
    assert [t.get_text() for t in bottom.get_xticklabels()] == [f"rating {j}" for j in range(19)]

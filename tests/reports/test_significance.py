"""Significance tables, per-target table, ranks, grouping check and table rendering.

Most tests write a run directory by hand (manifest, folds, per-job rows and
predictions) with known numbers and compare the tables with the reference
functions of reports.stats and statsmodels on the same vectors.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from benchmark.cli import EXIT_ERROR, main
from benchmark.errors import ConfigError
from benchmark.metrics import per_target
from reports.report import build_report, rank_models
from reports.rundata import check_groups, load_run_data
from reports.scoring import PooledScorer, pooled_metric
from reports.significance import per_target_table, significance_table
from reports.stats import (
    corrected_resampled_ttest,
    friedman_nemenyi,
)
from reports.tables import make_displays, tex_escape, to_latex, to_markdown, write_tables

TARGETS = ["t_a", "t_b", "t_c", "t_d"]
PLAYERS = [str(i) for i in range(1, 13)]
PIECES = ["Schubert_D960_mv2", "Beethoven_WoO80_var3"]
N_SEG = 5
FAST = {"n_resamples": 99}


def _samples():
    rows = [(f"{piece}_8bars_{player}_{seg}", player, piece) for piece in PIECES for player in PLAYERS
            for seg in range(1, N_SEG + 1)]
    return pd.DataFrame(rows, columns=["sample_id", "performer", "piece"])


def make_run(root: Path, models: dict, *, seeds=(0,), split="lopo", failed=(), data_seed=0) -> Path:
    """Write a run directory; ``models`` maps name -> f(y, performer_index, (seed, fold)) -> predictions."""
    meta = _samples()
    n = len(meta)
    rng = np.random.default_rng(data_seed)
    perf = meta["performer"].map({p: i for i, p in enumerate(PLAYERS)}).to_numpy()
    y = rng.normal(size=(n, len(TARGETS))) + 0.5 * rng.normal(size=(len(PLAYERS), len(TARGETS)))[perf]
    (root / "jobs").mkdir(parents=True)
    folds_rows, n_folds = [], {}
    for s in seeds:
        if split == "lopo":
            test_sets = [np.flatnonzero(perf == k) for k in range(len(PLAYERS))]
        elif split == "fixed":  # a fixed test set (performers 1-3) scored by 4 fold models
            test_sets = [np.flatnonzero(perf < 3)] * 4
        else:
            order = np.random.default_rng(100 + s).permutation(n)
            test_sets = [np.sort(order[k::3]) for k in range(3)]
        n_folds[str(s)] = len(test_sets)
        for k, te in enumerate(test_sets):
            tr = np.setdiff1d(np.arange(n), te)
            if split == "fixed":
                tr = np.flatnonzero((perf >= 3) & (perf % 4 != k))
            folds_rows += [{"sample_id": meta["sample_id"][i], "seed": s, "fold": k, "role": "train"} for i in tr]
            folds_rows += [{"sample_id": meta["sample_id"][i], "seed": s, "fold": k, "role": "test"} for i in te]
            for name, fn in models.items():
                pred = fn(y, perf, (s, k))[te]
                jid = f"{name}__seed{s}__fold{k:03d}"
                base = {"run_id": root.name, "model": name, "split": split, "seed": s, "fold": k,
                        "n_train": len(tr), "n_test": len(te), "fit_seconds": 0.0}
                if (name, s, k) in failed:
                    rows = pd.DataFrame([{**base, "target": None, "metric": None, "value": np.nan,
                                          "status": "failed", "error": "ValueError: boom"}])
                else:
                    scores = per_target(y[te], pred)
                    rows = pd.DataFrame([{**base, "target": t, "metric": m, "value": scores[m][j], "status": "ok",
                                          "error": None} for m in scores for j, t in enumerate(TARGETS)])
                    sub = meta.iloc[te]
                    pd.DataFrame({
                        "sample_id": np.repeat(sub["sample_id"].to_numpy(), len(TARGETS)),
                        "performer": np.repeat(sub["performer"].to_numpy(), len(TARGETS)),
                        "piece": np.repeat(sub["piece"].to_numpy(), len(TARGETS)),
                        "model": name, "seed": s, "fold": k, "target": np.tile(TARGETS, len(te)),
                        "y_true": y[te].ravel(), "y_pred": pred.ravel(),
                    }).to_parquet(root / "jobs" / f"{jid}.preds.parquet", index=False)
                rows.to_parquet(root / "jobs" / f"{jid}.rows.parquet", index=False)
    pd.DataFrame(folds_rows).to_parquet(root / "folds.parquet", index=False)
    manifest = {
        "run_id": root.name,
        "config": {"models": list(models), "split": split, "seeds": list(seeds)},
        "split": {"name": split, "description": f"synthetic {split}",
                  "group_column": "player" if split in ("lopo", "fixed") else None, "partition": split != "fixed",
                  "seeded": split == "kfold"},
        "n_folds": n_folds,
        "target_names": TARGETS,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def noisy(scale, key):
    """Predictions y + noise; the noise depends on (seed, fold, key) only."""

    def fn(y, perf, seed_fold):
        return y + np.random.default_rng([*seed_fold, key]).normal(0, scale, y.shape)

    return fn


def clustered(scale):
    """Errors shared by all segments of a performer (and a little segment noise)."""

    def fn(y, perf, seed_fold):
        shift = np.random.default_rng(7).normal(0, scale, (len(PLAYERS), y.shape[1]))
        return y + shift[perf] + np.random.default_rng(8).normal(0, 0.3, y.shape)

    return fn


def constant(y, perf, seed_fold):
    return np.zeros_like(y)


MODELS = {"rf": noisy(0.6, 1), "good": noisy(0.3, 2), "bad": noisy(1.2, 3), "twin": noisy(0.6, 1)}


@pytest.fixture()
def run(tmp_path):
    # "twin" draws the same noise as "rf": identical predictions.
    return make_run(tmp_path / "run", MODELS)


def fold_vector(run_dir, model, metric="pearson", target=None):
    rows = pd.read_parquet(list((Path(run_dir) / "jobs").glob(f"{model}__*.rows.parquet")))
    rows = rows[rows["metric"] == metric]
    if target is not None:
        rows = rows[rows["target"] == target]
    g = rows.groupby(["seed", "fold"])
    return g["value"].mean().to_numpy(), g["n_train"].first().to_numpy(), g["n_test"].first().to_numpy()


# ---------------------------------------------------------------- known answers


def deterministic(scale, key):
    """Predictions y + noise that depends on the fold and ``key`` only: every seed gives the same model."""

    def fn(y, perf, seed_fold):
        return y + np.random.default_rng([seed_fold[1], key]).normal(0, scale, y.shape)

    return fn


def test_corrected_t_and_holm_match_reference(run):
    """The learner claim's test: with one seed and a calibration that asks for one (the permissive test store,
    factor 1), the learner t is Nadeau-Bengio's corrected t; Holm and BH over one family per claim."""
    table = significance_table(run, **FAST).set_index("model")
    assert table.attrs["baseline"] == "rf" and table.loc["rf", "role"] == "baseline"
    assert table.attrs["primary"] == {"learner": "learner t", "predictor": "cluster bootstrap t"}
    raw = {}
    for m in ("pearson", "r2"):
        base, _, _ = fold_vector(run, "rf", m)
        for model in ("good", "bad", "twin"):
            a, n_train, n_test = fold_vector(run, model, m)
            ref = corrected_resampled_ttest(a, base, n_train, n_test, ratio_scale=1.0)
            assert table.loc[model, f"{m}_learner_p"] == pytest.approx(ref.pvalue, rel=1e-12)
            assert table.loc[model, f"{m}_learner_df"] == ref.df
            # One estimand per row: the difference is the mean of the fold differences the t-test used.
            assert table.loc[model, f"{m}_diff"] == pytest.approx(np.mean(a - base), abs=1e-12)
            raw[(model, m)] = ref.pvalue
    # One family per claim: every model pair x metric.
    keys = list(raw)
    holm = dict(zip(keys, multipletests([raw[k] for k in keys], method="holm")[1], strict=True))
    for (model, m), v in holm.items():
        assert table.loc[model, f"{m}_learner_p_adj"] == pytest.approx(v, rel=1e-12)
    bh = significance_table(run, correction="fdr_bh", **FAST).set_index("model")
    ref_bh = dict(zip(keys, multipletests([raw[k] for k in keys], method="fdr_bh")[1], strict=True))
    for (model, m), v in ref_bh.items():
        assert bh.loc[model, f"{m}_learner_p_adj"] == pytest.approx(v, rel=1e-12)
    assert "Benjamini-Hochberg" in " ".join(bh.attrs["notes"]) and "Holm" in " ".join(table.attrs["notes"])
    assert table.loc["good", "pearson_diff"] > 0 > table.loc["bad", "pearson_diff"]


def test_performer_swap_and_cluster_bootstrap_match_reference(run):
    """On LOPO a fold is one performer: swapping a performer flips its fold difference, and the cluster
    bootstrap resamples the fold differences (expanded BCa, jackknife over performers); both reproduced
    from the same random draws."""
    from scipy import stats

    from reports.bootstrap import bca_bounds
    from reports.rundata import load_run_data
    from reports.units import UnitScorer, compare_units, pair_cells

    n = 200
    table = significance_table(run, n_resamples=n, seed=3).set_index("model")
    for m in ("pearson", "r2"):
        a, _, _ = fold_vector(run, "good", m)
        b, _, _ = fold_vector(run, "rf", m)
        d = a - b  # folds 0..11 test performers "1".."12"; units are sorted by label
        order = np.argsort([str(i) for i in range(1, 13)])
        d = d[order]
        rng = np.random.default_rng(3)
        draws = rng.integers(0, 12, size=(n, 12))
        swap = rng.random((n, 12)) < 0.5
        boot = d[draws].mean(axis=1)
        null = (np.where(swap, -d, d)).mean(axis=1)
        # The predictor claim: the bootstrap-t interval at the level that agrees with its adjusted p, and that
        # interval's own p-value.
        se = np.sqrt(12 / 11) * boot.std(ddof=1)
        level = table.loc["good", f"{m}_pred_level"]
        half = stats.t.ppf(0.5 + level / 2, 11) * se
        assert table.loc["good", f"{m}_pred_lo"] == pytest.approx(d.mean() - half, abs=1e-12)
        assert table.loc["good", f"{m}_pred_hi"] == pytest.approx(d.mean() + half, abs=1e-12)
        assert table.loc["good", f"{m}_pred_p"] == pytest.approx(2 * stats.t.sf(abs(d.mean()) / se, 11), rel=1e-9)
        # The calibration's alternatives from the same draws: percentile, and BCa with the performer jackknife.
        scorer = UnitScorer(pair_cells(load_run_data(run), "good", "rf", [0]), m)
        res, _ = compare_units(scorer, seeded=False, n_resamples=n, seed=3, alternatives=True)
        jack = np.array([np.delete(d, i).mean() for i in range(12)])
        for name, n_units in (("BCa", None), ("expanded BCa", 12)):
            np.testing.assert_allclose(res.ci_alternatives[name], bca_bounds(boot, d.mean(), jack, n_units=n_units),
                                       atol=1e-12)
        np.testing.assert_allclose(res.ci_alternatives["percentile"], np.quantile(boot, [0.025, 0.975]), atol=1e-12)
        p = (1 + np.sum(np.abs(null) >= abs(d.mean()) - 1e-12)) / (n + 1)
        assert table.loc["good", f"{m}_perm_p"] == pytest.approx(p)
    # The same test as scipy's paired permutation test over performers (exact: 2^12 sign flips).
    from scipy.stats import permutation_test

    a, _, _ = fold_vector(run, "twin")
    b, _, _ = fold_vector(run, "good")
    ref = permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=np.inf)
    big = significance_table(run, n_resamples=4000, seed=1, metrics=("pearson",)).set_index("model")
    assert big.loc["twin", "pearson_perm_p"] == 1.0
    assert ref.pvalue == pytest.approx(2 / 4096) and big.loc["good", "pearson_perm_p"] <= 3 / 4001


def test_identical_model_has_zero_difference_and_p_one(run):
    table = significance_table(run, **FAST).set_index("model")
    twin = table.loc["twin"]
    for m in ("pearson", "r2"):
        assert twin[f"{m}_diff"] == 0.0 and twin[f"{m}_pred_lo"] == 0.0 and twin[f"{m}_pred_hi"] == 0.0
        assert twin[f"{m}_learner_p"] == 1.0 and twin[f"{m}_pred_p"] == 1.0 and twin[f"{m}_perm_p"] == 1.0
        assert twin[f"{m}_learner_p_adj"] == 1.0 and twin[f"{m}_learner_lo"] == 0.0


def test_seeds_that_do_not_change_folds_are_averaged_within_fold(tmp_path):
    models = {"rf": deterministic(0.6, 10), "good": deterministic(0.45, 11)}
    one = significance_table(make_run(tmp_path / "one", models, seeds=(0,)), **FAST).set_index("model")
    three = significance_table(make_run(tmp_path / "three", models, seeds=(0, 1, 2)), **FAST).set_index("model")
    for col in ("pearson_learner_p", "pearson_perm_p", "pearson_diff", "pearson_pred_lo", "r2_learner_p",
                "pearson_n_units"):
        assert three.loc["good", col] == pytest.approx(one.loc["good", col], rel=1e-9), col
    assert three.loc["good", "pearson_n_units"] == 12
    assert three.loc["good", "pearson_seeds_sd"] == pytest.approx(0.0, abs=1e-12)
    # Seeds that do change the folds (kfold) are CV repeats: J = folds x seeds.
    k = significance_table(make_run(tmp_path / "k", models, seeds=(0, 1), split="kfold"), **FAST).set_index("model")
    assert k.loc["good", "pearson_n_units"] == 6 and k.attrs["seeded"]


def test_fixed_test_set_prints_no_group_level_number(tmp_path):
    """performer4's shape: 3 test performers, so no cluster CI or p-value appears as a number."""
    run_dir = make_run(tmp_path / "f", {"rf": noisy(0.6, 30), "good": noisy(0.3, 31)}, seeds=(0, 1), split="fixed")
    table = significance_table(run_dir, **FAST).set_index("model")
    assert table.attrs["few"] and table.attrs["n_units"] == 3 and table.attrs["unit"] == "performers"
    for col in ("pred_lo", "pred_hi", "learner_p", "pred_p", "perm_p", "cluster_lo", "cluster_hi"):
        assert np.isnan(table.loc["good", f"pearson_{col}"]), col
    assert table.loc["good", "pearson_learner_note"] == table.loc["good", "pearson_pred_note"] == "too few groups (3)"
    # The difference is on the fold-averaged predictions of each seed, averaged over seeds.
    data = load_run_data(run_dir)
    _, y, sg, rep = data.stack("good", [0, 1])
    _, _, sr, _ = data.stack("rf", [0, 1])
    expect = np.mean([pooled_metric(y, sg[rep == s].mean(axis=0)[None], "pearson")
                      - pooled_metric(y, sr[rep == s].mean(axis=0)[None], "pearson") for s in (0, 1)])
    assert table.loc["good", "pearson_diff"] == pytest.approx(expect, abs=1e-12)
    md = "\n".join(to_markdown(d) for d in make_displays(table.reset_index(), "significance"))
    row = next(line for line in md.splitlines() if line.startswith("| good |"))
    head = next(line for line in md.splitlines() if line.startswith("| model |")).split("|")
    for i, h in enumerate(head):
        if "differ?" in h:
            assert row.split("|")[i].strip() == "too few groups (3)"
    assert "too few groups (3)" in row
    # The within-performer CI is over the same 3 performers: it says so rather than "n/a".
    header = next(line for line in md.splitlines() if line.startswith("| model |")).split("|")
    col = next(i for i, h in enumerate(header) if "within-performer" in h)
    assert row.split("|")[col].strip("* ").endswith("too few groups (3)")
    per = "\n".join(to_markdown(d) for d in make_displays(per_target_table(run_dir, **FAST), "per_target"))
    assert "too few groups (3)" in per


def test_seed_sd_and_fold_stats(tmp_path):
    run_dir = make_run(tmp_path / "r", {"rf": noisy(0.6, 10), "good": noisy(0.3, 11)}, seeds=(0, 1, 2))
    table = significance_table(run_dir, **FAST).set_index("model")
    data = load_run_data(run_dir)
    _, y, st, rep_seed = data.stack("good", [0, 1, 2])
    per_seed = np.array([pooled_metric(y, st[rep_seed == s], "pearson") for s in (0, 1, 2)])
    assert table.loc["good", "pearson"] == pytest.approx(per_seed.mean())
    assert table.loc["good", "pearson_seeds_sd"] == pytest.approx(per_seed.std(ddof=1))
    a, _, _ = fold_vector(run_dir, "good")
    per_fold = a.reshape(3, 12).mean(axis=0)
    assert table.loc["good", "pearson_fold_mean"] == pytest.approx(per_fold.mean())
    assert table.loc["good", "pearson_fold_sd"] == pytest.approx(per_fold.std(ddof=1))
    assert table.loc["good", "pearson_n_units"] == 12


@pytest.mark.parametrize("metric", ["pearson", "r2"])
@pytest.mark.parametrize("case", ["plain", "constant_column", "outlier"])
def test_pooled_scorer_equals_pooled_metric(metric, case):
    rng = np.random.default_rng(1)
    y = rng.random((80, 3))
    a = y + rng.normal(0, 0.3, (2, 80, 3))
    b = y + rng.normal(0, 0.5, (2, 80, 3))
    if case == "constant_column":
        a[1, :, 2] = 0.4
    if case == "outlier":  # a diverging model: moment sums would cancel, so the scorer goes direct
        a[0, 5, 1] = 1e11
    scorer = PooledScorer(y, a, metric, other=b)
    assert scorer.direct == (case == "outlier")
    for _ in range(20):
        idx = rng.integers(0, 80, 80)
        w = np.bincount(idx, minlength=80).astype(float)
        ref_a, ref_b = pooled_metric(y[idx], a[:, idx], metric), pooled_metric(y[idx], b[:, idx], metric)
        assert scorer.score(w) == pytest.approx(ref_a, rel=1e-9, abs=1e-12)
        assert scorer.diff(w) == pytest.approx(ref_a - ref_b, rel=1e-9, abs=1e-12)
        pick = rng.random(80) < 0.5
        mixed = pooled_metric(y, np.where(pick[None, :, None], b, a), metric)
        assert scorer.mixed(pick) == pytest.approx(mixed, rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------------- guards


def test_partial_model_is_marked_not_averaged(tmp_path):
    models = {"rf": noisy(0.6, 12), "good": noisy(0.3, 13), "broken": noisy(0.5, 14)}
    run_dir = make_run(tmp_path / "r", models, seeds=(0, 1), failed=[("broken", 1, 2), ("good", 1, 0),
                                                                      ("good", 0, 3)])
    table = significance_table(run_dir, **FAST).set_index("model")
    broken, good = table.loc["broken"], table.loc["good"]
    assert broken["status"] == "partial: 23 of 24 folds" and broken["seeds_used"] == "0"
    # Seed 1 is incomplete: the value is seed 0's alone, never a mean over 5 of 6 folds.
    data = load_run_data(run_dir)
    _, y, st, _ = data.stack("broken", [0])
    assert broken["pearson"] == pytest.approx(pooled_metric(y, st, "pearson"))
    assert broken["pearson_fold_n"] == 12 and broken["pearson_n_units"] == 12
    assert "only complete seeds 0" in broken["note"]
    # No complete seed at all: no numbers, no tests, and the cells say why.
    assert good["status"] == "partial: 22 of 24 folds" and np.isnan(good["pearson"])
    assert np.isnan(good["pearson_learner_p"]) and np.isnan(good["pearson_perm_p"]) and "excluded" in good["note"]
    md = "\n".join(to_markdown(d) for d in make_displays(table.reset_index(), "significance"))
    assert "| good | partial: 22 of 24 folds |" in md
    assert "§" in md and "partial: 23 of 24 folds (seeds used: 0)" in md
    per = per_target_table(run_dir, **FAST)
    assert per["good.r"].isna().all() and per["broken.r"].notna().all()
    assert any("good: partial: 22 of 24 folds" in n for n in per.attrs["notes"])


def test_group_on_both_sides_is_a_violation(run, tmp_path):
    assert check_groups(run).status == "ok"
    folds = pd.read_parquet(run / "folds.parquet")
    # Fold 2 tests performer 3; put one of performer 3's segments into its training set.
    leak = (folds["fold"] == 2) & (folds["sample_id"] == "Schubert_D960_mv2_8bars_3_1")
    folds.loc[leak, "role"] = "train"
    folds.to_parquet(run / "folds.parquet", index=False)
    check = check_groups(run)
    assert check.status == "violation" and "VIOLATION" in check.message
    assert check.violations[["seed", "fold", "group"]].values.tolist() == [[0, 2, "3"]]
    report = build_report(run, **FAST, rank_blocks=())
    assert "group_violations" in report.tables and "VIOLATION" in report.header()[1]
    kfold = make_run(tmp_path / "k", {"rf": noisy(0.6, 15), "good": noisy(0.3, 16)}, split="kfold")
    assert check_groups(kfold).status == "not applicable"


def test_cluster_ci_wider_than_segment_ci_when_errors_are_clustered(tmp_path):
    run_dir = make_run(tmp_path / "r", {"rf": clustered(1.0), "good": noisy(0.3, 17)})
    table = significance_table(run_dir, **FAST).set_index("model")
    assert table.attrs["cluster"] == "performers"
    for m in ("pearson", "r2"):
        seg = table.loc["rf", f"{m}_seg_hi"] - table.loc["rf", f"{m}_seg_lo"]
        clu = table.loc["rf", f"{m}_cluster_hi"] - table.loc["rf", f"{m}_cluster_lo"]
        assert clu > 1.25 * seg
    kfold = significance_table(make_run(tmp_path / "k", {"rf": noisy(0.6, 18)}, split="kfold"), **FAST)
    assert kfold.attrs["cluster"] is None and kfold["pearson_cluster_lo"].isna().all()


def test_bad_options_raise():
    with pytest.raises(ConfigError, match="not a run directory"):
        significance_table("/nonexistent/run")


def test_bad_baseline_and_correction(run):
    with pytest.raises(ConfigError, match="baseline 'nope'"):
        significance_table(run, baseline="nope")
    with pytest.raises(ConfigError, match="correction='bonf'"):
        significance_table(run, correction="bonf")


# ------------------------------------------------------------ per target, ranks


def test_per_target_table_and_ceiling(run):
    ceiling = pd.DataFrame({"target": TARGETS, "ceiling_r": [0.9, 0.8, 0.85, 0.7]})
    table = per_target_table(run, ceiling=ceiling, **FAST)
    assert list(table["target"]) == TARGETS and table.attrs["resampled"] == "performers"
    raw = {}
    for model in ("good", "bad", "twin"):
        for t in TARGETS:
            a, n_train, n_test = fold_vector(run, model, target=t)
            b, _, _ = fold_vector(run, "rf", target=t)
            raw[(model, t)] = corrected_resampled_ttest(a, b, n_train, n_test, ratio_scale=1.0).pvalue
    np.testing.assert_allclose(table["good.learner_p"], [raw[("good", t)] for t in TARGETS], rtol=1e-12)
    # One family per claim: every model pair x target of the table.
    adj = dict(zip(raw, multipletests(list(raw.values()), method="holm")[1], strict=True))
    np.testing.assert_allclose(table["good.learner_p_adj"], [adj[("good", t)] for t in TARGETS], rtol=1e-12)
    # Each target's fold-level mean r, the quantity bold marks.
    np.testing.assert_allclose(table["good.fold_r"], [fold_vector(run, "good", target=t)[0].mean() for t in TARGETS],
                               rtol=1e-9)
    np.testing.assert_allclose(table["good.r_over_ceiling"], table["good.r"] / ceiling["ceiling_r"])
    assert (table["good.r_lo"] <= table["good.r"]).all() and (table["good.r"] <= table["good.r_hi"]).all()
    sig = significance_table(run, ceiling=ceiling, metrics=("pearson",), **FAST).set_index("model")
    assert sig.loc["good", "ceiling_fraction"] == pytest.approx(table["good.r_over_ceiling"].mean())
    with pytest.raises(ConfigError, match="lacks 1 target"):
        per_target_table(run, ceiling=ceiling.iloc[:3])


def test_rank_models_targets_and_folds(tmp_path):
    run_dir = make_run(tmp_path / "r", {"rf": noisy(0.6, 19), "good": noisy(0.3, 20), "bad": noisy(1.2, 21), "mean": constant})
    by_target = rank_models(run_dir, blocks="targets")
    assert "targets share segments" in by_target.label and "mean" in by_target.excluded
    ref = friedman_nemenyi(by_target.scores)
    assert by_target.result.cd == pytest.approx(ref.cd) and list(by_target.result.avg_ranks.index)[0] == "good"
    pd.testing.assert_frame_equal(by_target.result.pairwise_p, ref.pairwise_p)
    by_fold = rank_models(run_dir, blocks="folds", metric="r2")
    assert by_fold.scores.shape == (12, 4) and by_fold.table()["model"].iloc[0] == "good"
    assert by_fold.pvalue_table().shape == (4, 5)
    with pytest.raises(ConfigError, match="at least 3 models"):
        rank_models(make_run(tmp_path / "two", {"rf": noisy(0.6, 22), "good": noisy(0.3, 23)}))


# ------------------------------------------------------------------- rendering


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("rendered")
    models = {"rf": noisy(0.6, 24), "my_model": noisy(0.3, 25), "bad": noisy(1.2, 26)}
    report = build_report(make_run(root / "r", models), **FAST)
    written = write_tables(report.tables, root / "out")
    return report, written, root / "out"


def test_markdown_bolds_best_and_has_legend(rendered):
    report, _, out = rendered
    md = (out / "significance.md").read_text()
    table = report.tables["significance"].set_index("model")
    best = table["pearson_fold_mean"].idxmax()
    assert best == "my_model"
    # Bold marks the tested quantity (the fold-level mean), never the pooled value beside it.
    assert f"| {best} | {table.loc[best, 'pearson']:.3f} |" in md
    assert f"**{table.loc[best, 'pearson_fold_mean']:.3f} ± {table.loc[best, 'pearson_fold_sd']:.3f}**" in md
    assert "†" in md and "‡" in md and "p_adj < 0.05" in md and "Holm" in md
    assert "95% CI (performers)" in md and "Group check: ok" in md


def _check_latex(tex: str) -> None:
    body = re.sub(r"\\[{}%&_#$]", "", tex)
    body = "\n".join(line.split("%", 1)[0] for line in body.splitlines())
    depth = 0
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    envs = re.findall(r"\\(begin|end)\{(\w+)\}", body)
    stack = []
    for kind, env in envs:
        if kind == "begin":
            stack.append(env)
        else:
            assert stack.pop() == env
    assert not stack
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) == tex.count("\\begin{tabular}")
    assert re.search(r"(?<!\\)_", body) is None, "unescaped underscore"
    text = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert re.search(r"(?<!\\)%", text) is None, "unescaped percent"


def test_latex_syntax(rendered):
    _, _, out = rendered
    for path in out.glob("*.tex"):
        tex = path.read_text()
        _check_latex(tex)
    sig = (out / "significance.tex").read_text()
    assert "my\\_model" in sig and "95\\% CI" in sig and "\\textbf{" in sig
    assert tex_escape("a_b & 50% {x} †") == r"a\_b \& 50\% \{x\} \textsuperscript{\dag}"


def test_csv_round_trips_numbers(rendered):
    report, written, out = rendered
    for name, table in report.tables.items():
        back = pd.read_csv(out / f"{name}.csv")
        assert list(back.columns) == list(table.columns)
        for col in table.columns:
            if pd.api.types.is_numeric_dtype(table[col]):
                np.testing.assert_allclose(back[col].to_numpy(float), table[col].to_numpy(float), rtol=1e-15,
                                           equal_nan=True)
    meta = json.loads((out / "significance.meta.json").read_text())
    assert meta["baseline"] == "rf" and meta["correction"] == "holm" and meta["cluster"] == "performers"
    html = (out / "significance.html").read_text()
    assert html.startswith('<table class="percepiano-table"') and "<strong>" in html and "</table>" in html
    with pytest.raises(ConfigError, match="unknown table format 'pdf'"):
        write_tables(report.tables, out, formats=("pdf",))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(rendered, tmp_path):
    _, _, out = rendered
    doc = tmp_path / "doc.tex"
    inputs = "\n".join(f"\\input{{{p.name}}}" for p in sorted(out.glob("*.tex")))
    doc.write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
                   f"\\begin{{document}}\n{inputs}\n\\end{{document}}\n")
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", str(doc)], cwd=out,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:]


def test_display_of_latex_single_table():
    table = pd.DataFrame({"model": ["a_b"], "avg_rank": [1.0]})
    table.attrs.update({"kind": "ranking", "blocks": "targets", "label": "exploratory", "notes": ["50% sure"]})
    (d,) = make_displays(table, "rank_x")
    tex = to_latex(d)
    _check_latex(tex)
    assert "\\label{tab:rank-x}" in tex and "\\textbf{1.00}" in tex


# ------------------------------------------------------------------------- CLI


def test_cli_report_writes_tables(small_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(small_run, run_dir)
    assert main(["report", str(run_dir), "--no-ceiling", "--n-resamples", "99", "--format", "md,csv"]) == 0
    out = capsys.readouterr().out
    assert "| rf |" in out  # the summary table comes first
    assert "baseline rf" in out and "Group check: ok" in out and "95% CI (performers)" in out
    files = {p.name for p in (run_dir / "report").iterdir()}
    assert {"significance.md", "significance.csv", "per_target.csv", "report.json"} <= files
    assert "significance.tex" not in files


@pytest.mark.parametrize("args, match", [
    (["--format", "md,pdf"], "--format 'md,pdf'"),
    (["--baseline", "nope", "--no-ceiling"], "baseline 'nope' is not a model"),
    (["--ceiling", "--data-dir", "/nonexistent/x"], "does not exist"),
])
def test_cli_report_errors_are_one_line(small_run, tmp_path, args, match, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(small_run, run_dir)
    assert main(["report", str(run_dir), "--n-resamples", "9", *args]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and match in err


def test_cli_ceiling(fake_data_dir, capsys):
    # The synthetic dataset has no rater file: a one-line error.
    assert main(["ceiling", "--data-dir", str(fake_data_dir)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "rater file" in err


@pytest.mark.real_calibration
def test_claims_the_calibration_does_not_back_are_not_printed(run, monkeypatch):
    """Keyed by design: a design the store does not hold, or one whose key differs, prints the reason."""
    from reports.tables import display_significance

    monkeypatch.setattr("reports.calibrated.STORE", {"designs": {"lopo": {
        "key": {"split": "lopo", "n_folds": 21, "n_seeds": 1, "n_units": 21}, "ratio_scale": 0.2,
        "predictor": {"calibrated": True}, "learner": {"calibrated": True, "min_seeds": {"tabular": 2}}}}})
    table = significance_table(run, metrics=("pearson",), **FAST)
    good = table.set_index("model").loc["good"]
    assert np.isfinite(good["pearson_diff"]) and np.isnan(good["pearson_learner_p"]) and np.isnan(good["pearson_pred_p"])
    assert good["pearson_pred_note"].startswith("not calibrated for this design (lopo, 12 folds, 1 model seed, 12 units")
    assert "benchmark power --split lopo" in good["pearson_pred_note"]
    row = display_significance(table)[0]
    cells = row.rows[[r[0] for r in row.rows].index("good")]
    assert sum("not calibrated for this design" in c for c in cells) == 3  # both claims and the secondary p
    # The same design key as the run: the predictor claim is printed; the learner claim of an unknown
    # family with one seed needs the tabular family's two.
    monkeypatch.setattr("reports.calibrated.STORE", {"designs": {"lopo": {
        "key": {"split": "lopo", "n_folds": 12, "n_seeds": 1, "n_units": 12}, "ratio_scale": 0.2,
        "predictor": {"calibrated": True}, "learner": {"calibrated": True, "min_seeds": {"tabular": 2}}}}})
    run_data = load_run_data(run)
    good = significance_table(run_data, metrics=("pearson",), **FAST).set_index("model").loc["good"]
    assert np.isfinite(good["pearson_pred_p"]) and good["pearson_learner_note"] == "needs >= 2 model seeds"
    # Registry metadata saying both are deterministic: one seed is enough.
    fams = {m: "deterministic" for m in ("rf", "good", "bad", "twin")}
    good = significance_table(load_run_data(run), metrics=("pearson",), families=fams, **FAST).set_index("model")
    assert np.isfinite(good.loc["good", "pearson_learner_p"])


def test_effect_size_is_cohens_q_of_the_fold_level_means(run):
    table = significance_table(run, **FAST).set_index("model")
    for m in ("pearson", "r2"):
        a = table.loc["good", f"{m}_fold_mean"]
        b = table.loc["rf", f"{m}_fold_mean"]
        want = np.arctanh(a) - np.arctanh(b) if m == "pearson" else (a - b) / (1 - b)
        assert table.loc["good", f"{m}_effect"] == pytest.approx(want, rel=1e-9)
    assert np.isnan(table.loc["rf", "pearson_effect"])  # the baseline

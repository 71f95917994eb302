"""`benchmark stats`: the report's paired tests on per-fold scores from any source.

The central check: from a run's per-fold scores alone (its result file, or a CSV of them), `stats`
reproduces every difference and both claims (interval, p, Holm-adjusted p, level, or the note saying why
there is no number) and the permutation p that the report's significance table printed for that run,
because it feeds the report's own functions (reports.units.compare_units, reports.claims.pair_claims,
the report's family adjustment).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.cli import main
from benchmark.errors import ConfigError, DataError
from benchmark.export import export_result
from reports.claims import bootstrap_t_pvalue, learner_claim
from reports.scoretable import ScoreCells, ScoreScorer, rank_table, read_scores, stats_table
from reports.significance import CLAIM_COLUMNS, significance_table
from reports.stats import corrected_resampled_ttest
from reports.units import compare_units
from tests.reports.test_significance import MODELS, deterministic, make_run, noisy

N = 199


@pytest.fixture()
def lopo_run(tmp_path):
    """12 performers (so every test is printed), four models, one seed."""
    return make_run(tmp_path / "run", MODELS)


def _csv_of(result_path, path):
    res = json.loads(result_path.read_text())
    rows = [{"model": m["name"], "metric": k, "seed": f["seed"], "fold": f["fold"], "unit": f["unit"], "value": v,
             "n_train": f["n_train"], "n_test": f["n_test"]}
            for m in res["models"] for f in m["fold_scores"] for k, v in f["values"].items()]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


#: The report's columns (per metric) that `stats` reproduces, and their names in the stats table.
SAME = {"diff": "diff", "effect": "effect", "perm_p": "perm_p", "perm_p_adj": "perm_p_adj",
        **{c: c for c in CLAIM_COLUMNS}}


def _compare(report: pd.DataFrame, stats: pd.DataFrame, models=("good", "bad", "twin")):
    """Every claim column equal to the report's: numbers to 1e-12, notes as text."""
    for metric in ("pearson", "r2"):
        for model in models:
            r = report.set_index("model").loc[model]
            s = stats[(stats["model"] == model) & (stats["metric"] == metric)].iloc[0]
            for ours, theirs in SAME.items():
                if ours.endswith("note"):
                    assert (s[ours] if isinstance(s[ours], str) else "") == r[f"{metric}_{theirs}"], (model, metric)
                else:
                    assert s[ours] == pytest.approx(r[f"{metric}_{theirs}"], abs=1e-12, nan_ok=True), \
                        (model, metric, ours)


def test_stats_reproduces_the_reports_claims_from_a_result_file(lopo_run):
    report = significance_table(lopo_run, baseline="rf", n_resamples=N)
    path = export_result(lopo_run, n_resamples=N)
    scores = read_scores(path)
    assert scores.split == "lopo" and not scores.seeded and scores.partition
    stats = stats_table(scores, baseline="rf", n_resamples=N)
    assert (stats["n_units"] == 12).all() and (stats["missing"] == "").all()
    assert (stats["design"] == "lopo, 12 folds, 1 model seed, 12 units").all()
    _compare(report, stats)
    # Not trivially equal: both claims are printed (the calibration backs the design here), the pairs differ,
    # the twin (identical predictions) gives p = 1, and p_adj and the interval levels come from the family.
    good = stats[(stats["model"] == "good") & (stats["metric"] == "pearson")].iloc[0]
    twin = stats[(stats["model"] == "twin") & (stats["metric"] == "pearson")].iloc[0]
    assert good["pred_p"] < 0.05 and good["learner_p"] < 0.05 and good["perm_p"] < 0.05
    assert good["pred_lo"] > 0 and good["learner_lo"] > 0 and good["learner_level"] > 0.95
    assert twin["perm_p"] == 1.0 and twin["diff"] == 0.0 and twin["pred_p"] == 1.0
    assert np.isfinite(stats["learner_p_adj"]).all() and np.isfinite(stats["pred_p_adj"]).all()


@pytest.mark.real_calibration
def test_stats_withholds_the_claims_as_the_report_does(lopo_run, monkeypatch):
    """Keyed by design: an uncalibrated design prints the same reasons; an unknown family needs the tabular
    seeds; the same scores with families given by a column print the learner claim, as the report with
    registry families does."""
    store = {"designs": {"lopo": {
        "key": {"split": "lopo", "n_folds": 12, "n_seeds": 1, "n_units": 12}, "ratio_scale": 0.2,
        "predictor": {"calibrated": True}, "learner": {"calibrated": True, "min_seeds": {"tabular": 2}}}}}
    path = export_result(lopo_run, n_resamples=N)
    for designs in ({"designs": {}}, store):
        monkeypatch.setattr("reports.calibrated.STORE", designs)
        report = significance_table(lopo_run, baseline="rf", n_resamples=N)
        stats = stats_table(read_scores(path), baseline="rf", n_resamples=N)
        _compare(report, stats)
    good = stats[(stats["model"] == "good") & (stats["metric"] == "pearson")].iloc[0]
    assert good["learner_note"] == "needs >= 2 model seeds" and np.isfinite(good["pred_p"])
    assert any("factor 0.200" in n for n in stats.attrs["notes"])
    fams = {m: "deterministic" for m in MODELS}
    report = significance_table(lopo_run, baseline="rf", n_resamples=N, families=fams)
    stats = stats_table(read_scores(path), baseline="rf", n_resamples=N, families=fams)
    _compare(report, stats)
    assert np.isfinite(stats["learner_p"]).all()
    monkeypatch.setattr("reports.calibrated.STORE", {"designs": {}})
    stats = stats_table(read_scores(path), baseline="rf", n_resamples=N)
    assert stats["pred_note"].str.startswith("not calibrated for this design (lopo was not simulated").all()


def test_stats_from_a_csv_of_fold_scores_via_the_cli(lopo_run, tmp_path, capsys):
    report = significance_table(lopo_run, baseline="rf", n_resamples=N)
    csv = _csv_of(export_result(lopo_run, n_resamples=N), tmp_path / "scores.csv")
    code = main(["stats", str(csv), "--split", "lopo", "--baseline", "rf", "--n-resamples", str(N), "--format", "csv"])
    assert code == 0
    from io import StringIO

    stats = pd.read_csv(StringIO(capsys.readouterr().out), keep_default_na=False, na_values=[""])
    for c in [c for c in stats if c.endswith("note") or c in ("missing", "design")]:
        stats[c] = stats[c].astype(object).where(stats[c].notna(), "")
    _compare(report, stats)
    assert main(["stats", str(csv), "--split", "lopo", "--n-resamples", str(N)]) == 0
    out = capsys.readouterr().out
    assert "Paired tests against rf" in out and "Friedman over 12 cells (pearson" in out
    assert "learners differ? learner t" in out and "cluster-bootstrap t" in out
    # Without a split the design is unknown: no claim is a number, and the table says why.
    assert main(["stats", str(csv), "--n-resamples", str(N)]) == 0
    out = capsys.readouterr().out
    assert "no split given (--split)" in out and "p perm" in out


def test_seeds_that_change_the_folds_are_cv_repeats(tmp_path):
    """A 3-fold run with 4 seeds: the result file says seeded, and the repeated-CV corrected t matches."""
    run = make_run(tmp_path / "run", {"rf": noisy(0.6, 1), "good": noisy(0.3, 2)}, seeds=(0, 1, 2, 3),
                   split="kfold")
    report = significance_table(run, baseline="rf", n_resamples=N)
    scores = read_scores(export_result(run, n_resamples=N))
    assert scores.seeded
    stats = stats_table(scores, baseline="rf", n_resamples=N)
    s = stats[stats["metric"] == "r2"].iloc[0]
    r = report.set_index("model").loc["good"]
    # Segments are this split's unit: fold scores give its learner t (the repeated-CV corrected t over the 12
    # cells), but their bootstrap and swap resample whole folds, not the report's segments.
    assert s["learner_p"] == pytest.approx(r["r2_learner_p"], abs=1e-12) and s["n_cells"] == s["n_units"] == 12
    assert s["learner_df"] == r["r2_learner_df"] == 11


def test_unseeded_seeds_are_averaged_within_fold(tmp_path):
    """lopo with 2 seeds of a deterministic model: the corrected t runs over the 12 folds, as in the report."""
    models = {"rf": deterministic(0.6, 1), "good": deterministic(0.3, 2)}
    run = make_run(tmp_path / "run", models, seeds=(0, 1))
    report = significance_table(run, baseline="rf", n_resamples=N)
    stats = stats_table(read_scores(export_result(run, n_resamples=N)), baseline="rf", n_resamples=N)
    s = stats[stats["metric"] == "pearson"].iloc[0]
    r = report.set_index("model").loc["good"]
    assert s["n_cells"] == 24 and s["n_units"] == 12
    # Identical scores across seeds: deterministic, as the report finds from identical predictions.
    assert s["family"] == s["family_baseline"] == "deterministic"
    for a in ("learner_p", "learner_lo", "learner_df", "perm_p", "pred_lo", "pred_p"):
        assert s[a] == pytest.approx(r[f"pearson_{a}"], abs=1e-12)


def test_missing_cells_are_reported_and_left_out_of_that_pair_only(tmp_path):
    rng = np.random.default_rng(0)
    units = [f"p{k:02d}" for k in range(12)]
    frame = pd.DataFrame([{"model": m, "unit": u, "value": v + (0.05 if m == "good" else 0.0) + rng.normal(0, 0.02),
                           "n_train": 100, "n_test": 10}
                          for m in ("rf", "good", "other") for u, v in zip(units, rng.uniform(0.5, 0.7, 12),
                                                                            strict=True)])
    frame = frame.drop(frame[(frame["model"] == "good") & (frame["unit"] == "p03")].index)
    frame.loc[(frame["model"] == "other") & (frame["unit"] == "p05"), "value"] = np.nan
    path = tmp_path / "scores.csv"
    frame.to_csv(path, index=False)
    stats = stats_table(read_scores(path), baseline="rf", n_resamples=N).set_index("model")
    assert stats.loc["good", "n_cells"] == 11 and "good has no score for seed 0 fold 3" in stats.loc["good", "missing"]
    assert stats.loc["other", "n_cells"] == 11 and "undefined (NaN) in 1 of 12 cells" in stats.loc["other", "missing"]
    # The difference is the mean over the 11 common cells, by hand.
    f = frame.pivot(index="unit", columns="model", values="value").dropna(subset=["good"])
    assert stats.loc["good", "diff"] == pytest.approx((f["good"] - f["rf"]).mean(), abs=1e-12)
    ranks, info = rank_table(read_scores(path), "score")
    assert info["n_blocks"] == 10 and info["dropped"] == "seed 0 folds 3, 5" and list(ranks["model"])[0] == "good"


def test_score_scorer_by_hand():
    """Weighted means over cells by unit weight, swaps of whole units, and the corrected t on the cells."""
    a = np.array([0.5, 0.6, 0.7, np.nan])
    b = np.array([0.4, 0.6, 0.5, 0.3])
    cells = ScoreCells(np.zeros(4, int), np.arange(4), np.full(4, 90.0), np.full(4, 10.0))
    sc = ScoreScorer(a, b, np.array(["u1", "u2", "u3", "u4"]), cells)
    assert sc.per_target()[0, 0] == pytest.approx(0.6 - 0.45)  # NaN cell left out of A's mean only
    w = np.array([[2.0, 0.0, 1.0, 1.0]])
    assert sc.per_target(weights=w)[0, 0] == pytest.approx((2 * 0.5 + 0.7) / 3 - (2 * 0.4 + 0.5 + 0.3) / 4)
    swap = np.array([[1.0, 0.0, 0.0, 0.0]])
    assert sc.per_target(swap=swap)[0, 0] == pytest.approx((0.4 + 0.6 + 0.7) / 3 - (0.5 + 0.6 + 0.5 + 0.3) / 4)
    # Twelve units: the corrected t equals the reference on the cells, the unit swap scipy's exact paired
    # permutation test (2^12 sign flips) within Monte-Carlo error.
    rng = np.random.default_rng(1)
    a12, b12 = rng.normal(0.6, 0.05, 12), rng.normal(0.57, 0.05, 12)
    full = ScoreScorer(a12, b12, np.array([f"u{k:02d}" for k in range(12)]),
                       ScoreCells(np.zeros(12, int), np.arange(12), np.full(12, 90.0), np.full(12, 10.0)))
    res, _ = compare_units(full, seeded=False, n_resamples=4000)
    ref = corrected_resampled_ttest(a12, b12, np.full(12, 90.0), np.full(12, 10.0))
    learner = learner_claim(full, seeded=False, ratio_scale=1.0, deterministic=(True, True))
    assert learner.pvalue == pytest.approx(ref.pvalue, abs=1e-12) and res.diff == pytest.approx(np.mean(a12 - b12))
    # The predictor claim's p is that of the printed interval diff -+ sqrt(G/(G-1)) t_11 se_boot.
    half = res.ci_high - res.diff
    se = np.sqrt(12 / 11) * res.se_boot
    assert half == pytest.approx(stats.t.ppf(0.975, 11) * se, rel=1e-12)
    assert bootstrap_t_pvalue(res.diff, res.se_boot, 12) == pytest.approx(
        2 * stats.t.sf(abs(res.diff) / se, 11), rel=1e-12)
    exact = stats.permutation_test((a12 - b12,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
    assert abs(res.perm_p - exact) < 0.02


def test_a_fixed_test_sets_scores_are_refused(tmp_path):
    run = make_run(tmp_path / "run", {"rf": noisy(0.6, 1), "good": noisy(0.3, 2)}, split="fixed")
    scores = read_scores(export_result(run, n_resamples=N))
    with pytest.raises(ConfigError, match="fixed test set"):
        stats_table(scores)


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"model": ["a"], "value": [0.1]}), "no column unit"),
    (pd.DataFrame({"model": ["a", "a"], "unit": ["u", "u"], "value": [0.1, 0.2]}), "2 scores of 'score'"),
    (pd.DataFrame({"model": ["a"], "unit": ["u"], "value": ["high"]}), "non-numeric"),
    (pd.DataFrame({"model": ["a", "b"], "unit": ["u", "v"], "fold": [0, 0], "value": [0.1, 0.2]}),
     "tests different units"),
    (pd.DataFrame({"model": ["a", "b"], "unit": ["u", "u"], "value": [0.1, 0.2], "family": ["forest", ""]}),
     "family 'forest' of model 'a'"),
    (pd.DataFrame({"model": ["a", "a"], "unit": ["u", "v"], "value": [0.1, 0.2], "family": ["neural", "tabular"]}),
     "model 'a' has several families"),
])
def test_bad_scores_tables_are_one_line(tmp_path, frame, match):
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=match):
        read_scores(path)


def test_bad_stats_options(tmp_path, capsys):
    path = tmp_path / "s.csv"
    pd.DataFrame({"model": ["a", "b"], "unit": ["u", "u"], "value": [0.1, 0.2]}).to_csv(path, index=False)
    scores = read_scores(path)
    with pytest.raises(ConfigError, match="baseline 'c'"):
        stats_table(scores, baseline="c")
    with pytest.raises(ConfigError, match="no scores of metric 'r2'"):
        stats_table(scores, metrics=("r2",))
    assert main(["stats", str(path), "--family", "a"]) == 2
    assert "--family 'a': give MODEL=FAMILY" in capsys.readouterr().err
    assert main(["stats", str(tmp_path / "absent.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "x.json").write_text("{}")
    assert main(["stats", str(tmp_path / "x.json")]) == 2
    assert "not a result file" in capsys.readouterr().err


def test_families_from_a_column_and_scores_without_sizes(lopo_run, tmp_path):
    """A ``family`` column gives what ``families=`` gives; without n_train/n_test the learner t says why."""
    csv = _csv_of(export_result(lopo_run, n_resamples=N), tmp_path / "scores.csv")
    frame = pd.read_csv(csv)
    frame["family"] = np.where(frame["model"] == "rf", "deterministic", "")
    frame.to_csv(csv, index=False)
    scores = read_scores(csv, split="lopo")
    assert scores.families == {"rf": "deterministic"}
    by_column = stats_table(scores, baseline="rf", n_resamples=N)
    by_arg = stats_table(read_scores(_csv_of(export_result(lopo_run, n_resamples=N), tmp_path / "plain.csv"),
                                     split="lopo"), baseline="rf", n_resamples=N, families={"rf": "deterministic"})
    pd.testing.assert_frame_equal(by_column, by_arg)
    assert (by_column["family_baseline"] == "deterministic").all() and (by_column["family"] == "unknown").all()
    frame.drop(columns=["n_train", "n_test"]).to_csv(tmp_path / "nosizes.csv", index=False)
    table = stats_table(read_scores(tmp_path / "nosizes.csv", split="lopo"), baseline="rf", n_resamples=N)
    assert table["learner_note"].str.startswith("no n_train and n_test").all() and table["learner_p"].isna().all()
    # The predictor claim does not need the sizes: the same numbers as with them.
    assert np.allclose(table["pred_p"], by_column["pred_p"], atol=1e-12)
    with pytest.raises(ConfigError, match="family 'forest' of model 'rf'"):
        stats_table(scores, families={"rf": "forest"})


@pytest.mark.real_calibration
def test_a_runs_own_result_file_gets_the_registry_families(lopo_run, monkeypatch, capsys):
    """``benchmark stats RUN/result.json`` takes the families ``benchmark report RUN`` takes from the registry
    (rf: tabular, which needs 2 model seeds here); the models the registry does not know stay unknown."""
    from io import StringIO

    from benchmark.config import learner_families

    monkeypatch.setattr("reports.calibrated.STORE", {"designs": {"lopo": {
        "key": {"split": "lopo", "n_folds": 12, "n_seeds": 1, "n_units": 12}, "ratio_scale": 0.2,
        "predictor": {"calibrated": True},
        "learner": {"calibrated": True, "min_seeds": {"deterministic": 1, "tabular": 2, "neural": None}}}}})
    fams = learner_families(lopo_run)
    assert fams == {"rf": "tabular"}
    report = significance_table(lopo_run, baseline="rf", n_resamples=N, families=fams)
    path = export_result(lopo_run, n_resamples=N)
    assert main(["stats", str(path), "--n-resamples", str(N), "--format", "csv"]) == 0
    stats = pd.read_csv(StringIO(capsys.readouterr().out), keep_default_na=False, na_values=[""])
    for c in [c for c in stats if c.endswith("note") or c in ("missing", "design")]:
        stats[c] = stats[c].astype(object).where(stats[c].notna(), "")
    _compare(report, stats)
    assert set(stats["family_baseline"]) == {"tabular"} and set(stats["family"]) == {"unknown"}
    # Unknown is the strictest: no neural null simulated, so the learner claim is not calibrated.
    assert stats["learner_note"].str.startswith("not calibrated for this design (no stochastic").all() or \
        stats["learner_note"].str.contains("neural").all()

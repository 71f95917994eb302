"""Noise ceiling: ICC, Spearman-Brown, split-half, and the PercePiano rater file."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.dataset import TARGET_NAMES
from benchmark.errors import ConfigError, DataError
from benchmark.raters import rater_spread, rating_array, rating_match_report, read_raters, segment_key
from reports.ceiling import (
    icc_oneway,
    noise_ceiling,
    spearman_brown,
    split_half_r,
)

REAL_DATA = Path(__file__).resolve().parents[3] / "shared" / "percepiano"
COLUMNS = ["target", "n_segments", "mean_raters", "split_half_r", "spearman_brown", "icc1k", "ceiling_r"]

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [
        [9, 2, 5, 8],
        [6, 1, 3, 2],
        [8, 4, 6, 8],
        [7, 1, 2, 6],
        [10, 5, 6, 9],
        [6, 2, 4, 7],
    ],
    dtype=float,
)


def _anova_by_hand(rows):
    """One-way ANOVA mean squares with plain loops (reference for icc_oneway)."""
    values = [x for row in rows for x in row]
    grand = sum(values) / len(values)
    ssb = sum(len(row) * (sum(row) / len(row) - grand) ** 2 for row in rows)
    ssw = sum((x - sum(row) / len(row)) ** 2 for row in rows for x in row)
    return ssb / (len(rows) - 1), ssw / (len(values) - len(rows))


def test_icc_shrout_fleiss_table():
    msb, msw = _anova_by_hand(SHROUT_FLEISS.tolist())
    # Shrout & Fleiss, Table 3: BMS = 11.24, WMS = 6.26 (printed to 2 decimals).
    assert msb == pytest.approx(11.24, abs=0.005) and msw == pytest.approx(6.26, abs=0.005)
    icc1, icc1k, k0 = icc_oneway(SHROUT_FLEISS)
    assert k0 == pytest.approx(4.0, abs=1e-12)
    assert icc1 == pytest.approx((msb - msw) / (msb + 3 * msw), abs=1e-10)
    assert icc1k == pytest.approx((msb - msw) / msb, abs=1e-10)
    # Published (Table 4): ICC(1,1) = .17, ICC(1,4) = .44.
    assert round(icc1, 2) == 0.17 and round(icc1k, 2) == 0.44


def test_icc_unbalanced_worked_example():
    # Segment A: 1, 3 (mean 2); B: 4, 5, 6 (mean 5); C: 2, 2, 5, 7 (mean 4).
    # N = 9, grand mean = 35/9.
    # SSB = 2 (2 - 35/9)^2 + 3 (5 - 35/9)^2 + 4 (4 - 35/9)^2 = (578 + 300 + 4) / 81 = 98/9
    # SSW = (1 + 1) + (1 + 0 + 1) + (4 + 4 + 1 + 9) = 22
    # MSB = (98/9) / 2 = 49/9;  MSW = 22 / (9 - 3) = 11/3 = 33/9
    # k0 = (N - sum n_i^2 / N) / (s - 1) = (9 - 29/9) / 2 = 26/9
    # ICC(1,1) = (49/9 - 33/9) / (49/9 + (26/9 - 1) 33/9) = (144/81) / (1002/81) = 144/1002
    # ICC(1,k) = (MSB - MSW) / MSB = 16/49
    x = np.full((3, 4), np.nan)
    x[0, :2] = [1, 3]
    x[1, :3] = [4, 5, 6]
    x[2, :] = [2, 2, 5, 7]
    icc1, icc1k, k0 = icc_oneway(x)
    assert k0 == pytest.approx(26 / 9, abs=1e-12)
    assert icc1 == pytest.approx(144 / 1002, abs=1e-12)
    assert icc1k == pytest.approx(16 / 49, abs=1e-12)
    assert _anova_by_hand([[1, 3], [4, 5, 6], [2, 2, 5, 7]]) == pytest.approx((49 / 9, 11 / 3), abs=1e-12)
    # ICC(1,k) is the Spearman-Brown step-up of ICC(1,1) by k0.
    assert spearman_brown(icc1, k0) == pytest.approx(icc1k, abs=1e-12)


def test_icc_ignores_single_ratings_and_degenerate():
    x = np.array([[1.0, np.nan], [2.0, 3.0], [5.0, 4.0]])
    assert icc_oneway(x) == pytest.approx(icc_oneway(x[1:]))
    assert np.isnan(icc_oneway(np.ones((4, 3)))[1])
    assert np.isnan(icc_oneway(np.array([[1.0, 2.0]]))[0])
    with pytest.raises(ConfigError, match="2-D"):
        icc_oneway(np.zeros(3))


def test_spearman_brown_formula():
    assert spearman_brown(0.5) == pytest.approx(2 * 0.5 / 1.5, abs=1e-15)
    assert spearman_brown(0.6, 3) == pytest.approx(1.8 / 2.2, abs=1e-15)
    np.testing.assert_allclose(spearman_brown(np.array([0.0, 1.0])), [0.0, 1.0])


def test_split_half_recovers_known_reliability():
    # x_ij = t_i + e_ij with var(t) = 1, var(e) = 4, k = 10 raters:
    # reliability of the 10-rater mean = 1 / (1 + 4/10) = 0.714; of a 5-rater half = 1 / (1 + 4/5) = 0.556.
    rng = np.random.default_rng(0)
    n_seg, k = 2000, 10
    x = rng.normal(size=(n_seg, 1, 2)) + rng.normal(0, 2.0, (n_seg, k, 2))
    r = split_half_r(x, n_splits=20, seed=1)
    assert r == pytest.approx([1 / 1.8, 1 / 1.8], abs=0.03)
    assert spearman_brown(r) == pytest.approx([1 / 1.4, 1 / 1.4], abs=0.03)
    assert icc_oneway(x[:, :, 0])[1] == pytest.approx(1 / 1.4, abs=0.03)
    np.testing.assert_array_equal(r, split_half_r(x, n_splits=20, seed=1))
    with pytest.raises(ConfigError, match="3-D"):
        split_half_r(x[:, :, 0])


def test_segment_key_mapping():
    assert segment_key("Schubert_D935_no.3_4bars_1_25.wav") == "Schubert_D935_no.3_4bars_1_25"
    assert segment_key(" Schubert_D935_no.3_4bars_2_1.wav ") == "Schubert_D935_no.3_4bars_2_1"
    assert segment_key("Beethoven_WoO80_var15_8bars_Score_10.wav") == "Beethoven_WoO80_var15_8bars_Score2_10"
    assert segment_key("Beethoven_WoO80_var6_8bars_score_5.wav") == "Beethoven_WoO80_var6_8bars_Score2_5"
    assert segment_key("Beethoven_WoO80_var3_8bars_Score_2.wav") == "Beethoven_WoO80_var3_8bars_Score_2"
    assert segment_key("Beethoven_WoO80_var4_8bars_Score2_3.wav") == "Beethoven_WoO80_var4_8bars_Score2_3"
    assert segment_key("Schubert_D935_no.3_4bars_Score_1.wav") == "Schubert_D935_no.3_4bars_Score2_1"
    assert segment_key("Schubert_D935_no.3_4bars_Score_13.wav") == "Schubert_D935_no.3_4bars_Score_13"
    assert segment_key("Schubert_D960_mv3_8bars_Score_1.wav") == "Schubert_D960_mv3_8bars_Score_1"


def _write_layout(root: Path, seed: int = 0) -> dict:
    """A tiny PercePiano label layout: 30 segments, per-sheet 1..7 answers."""
    rng = np.random.default_rng(seed)
    segments = [f"Beethoven_WoO80_var{v}_8bars_{p}_{v}" for v in range(5, 15) for p in ("1", "2", "Score2")]
    quality = rng.normal(size=(len(segments), 19))
    questions = [f"Question_{j}_1_1" for j in range(20)]
    rows = []
    for i, seg in enumerate(segments):
        # Score2 renderings were played back under the Score name for these segments.
        fname = seg.replace("_Score2_", "_Score_") + ".wav"
        for user in range(6):
            answers = np.clip(np.round(4 + 1.5 * quality[i] + rng.normal(0, 1, 19)), 1, 7)
            rows.append([str(100 + user), len(rows), fname, *answers, "", ""])
    rows[0][3 + 4] = 0.0  # unanswered
    rows[1][3 + 5] = np.nan  # unanswered
    rows[2][3 + 6] = 8.0  # invalid sheet: dropped whole
    rows.append(list(rows[10]))  # a resubmitted sheet (segment 1, user 104)
    rows[-1][1] = len(rows)
    df = pd.DataFrame(rows, columns=["user", "dataID", "filename", *questions, "message"])
    (root / "labels").mkdir(parents=True)
    df.to_csv(root / "labels" / "total_2rounds.csv", index=False)
    valid = df[~(df[questions[:19]] > 7).any(axis=1)]
    means = {}
    for fname, grp in valid.groupby("filename"):
        key = segment_key(fname)
        vals = grp[questions[:19]].replace(0.0, np.nan)
        means[key] = [float(v) for v in vals.mean() / 7] + [0]
    (root / "labels" / "label_2round_mean_reg_19_with0_rm_highstd0.json").write_text(json.dumps(means))
    return means


def test_synthetic_layout_matches_and_ceiling(tmp_path):
    _write_layout(tmp_path)
    report = rating_match_report(tmp_path)
    assert report["n_label_segments"] == report["n_label_segments_rated"] == 30
    assert report["n_sheets"] == 181 and report["n_sheets_dropped_over_7"] == 1
    assert report["n_renamed"] == 10 and report["n_duplicate_pairs"] == 1
    assert report["max_abs_diff"] < 1e-12
    by_rater, _ = rating_array(tmp_path)
    by_sheet, segs = rating_array(tmp_path, by_rater=False)
    assert by_rater.shape == (30, 6, 19) and by_sheet.shape == (30, 7, 19)
    assert segs == sorted(segs)
    table = noise_ceiling(tmp_path, n_splits=10)
    assert list(table.columns) == COLUMNS
    assert list(table["target"]) == list(TARGET_NAMES)
    assert (table["n_segments"] == 30).all()
    np.testing.assert_allclose(table["ceiling_r"], np.sqrt(table["spearman_brown"].clip(lower=0)))
    np.testing.assert_allclose(table["spearman_brown"], spearman_brown(table["split_half_r"]))
    assert table["icc1k"].between(0.5, 1).all()
    assert table.attrs["match"]["max_abs_diff"] < 1e-12


def test_missing_or_malformed_rater_file(tmp_path):
    with pytest.raises(DataError, match="rater file"):
        noise_ceiling(tmp_path)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "total_2rounds.csv").write_text("user,filename,Question_1\n1,a.wav,3\n")
    with pytest.raises(DataError, match="19 Question_"):
        rating_array(tmp_path)


def test_real_percepiano_ceiling():
    data_dir = Path(os.environ.get("PERCEPIANO_DIR") or REAL_DATA)
    if not data_dir.is_dir():
        if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
            pytest.fail(f"CI=true but the PercePiano copy {data_dir} is missing")
        pytest.skip(f"no PercePiano copy at {data_dir} (set $PERCEPIANO_DIR)")
    table = noise_ceiling(data_dir, n_splits=20, seed=0)
    match = table.attrs["match"]
    assert match["n_label_segments"] == match["n_label_segments_rated"] == 1189
    assert match["n_renamed"] == 13 and match["n_rated_unlabelled"] == 0
    assert match["max_abs_diff"] < 1e-12
    assert len(table) == 19 and list(table.columns) == COLUMNS
    assert (table["n_segments"] == 1189).all()
    assert table["mean_raters"].between(9, 10).all()
    assert table["ceiling_r"].between(0.75, 0.97).all()
    # Two estimators of the same reliability agree to within a few hundredths.
    assert (table["icc1k"] - table["spearman_brown"]).abs().max() < 0.05


def _write_agreeing_layout(root: Path, seed: int = 0) -> list[str]:
    """12 segments, 4 raters each: on the first 6 every rater gives the same answers (reliability 1)."""
    rng = np.random.default_rng(seed)
    segments = [f"Chopin_op10_8bars_{p}_{k}" for k in range(1, 7) for p in ("1", "2")]
    questions = [f"Question_{j}_1_1" for j in range(20)]
    rows = []
    for i, seg in enumerate(segments):
        base = rng.integers(1, 8, 19).astype(float)
        for user in range(4):
            answers = base if i < 6 else rng.integers(1, 8, 19).astype(float)
            rows.append([str(100 + user), len(rows), seg + ".wav", *answers, ""])
    df = pd.DataFrame(rows, columns=["user", "dataID", "filename", *questions])
    (root / "labels").mkdir(parents=True)
    df.to_csv(root / "labels" / "total_2rounds.csv", index=False)
    means = {s: [float(v) for v in g[questions[:19]].mean() / 7] + [0] for s, g in
             df.assign(s=df["filename"].str[:-4]).groupby("s")}
    (root / "labels" / "label_2round_mean_reg_19_with0_rm_highstd0.json").write_text(json.dumps(means))
    return segments


def test_ceiling_of_the_scored_segments_only(tmp_path):
    segments = _write_agreeing_layout(tmp_path)
    agree = segments[:6]
    sub = noise_ceiling(tmp_path, n_splits=10, segments=agree, n_resamples=50)
    # Raters who agree exactly: reliability 1, ceiling 1, and every resample says so.
    np.testing.assert_allclose(sub["ceiling_r"], 1.0)
    np.testing.assert_allclose(sub[["ceiling_lo", "ceiling_hi"]].to_numpy(), 1.0)
    assert (sub["n_segments"] == 6).all() and sub.attrs["n_segments"] == 6
    full = noise_ceiling(tmp_path, n_splits=10)
    assert (full["ceiling_r"] < 1.0).all() and "ceiling_lo" not in full
    with pytest.raises(DataError, match="no ratings"):
        noise_ceiling(tmp_path, segments=["Chopin_op10_8bars_9_9"])
    with pytest.raises(ConfigError, match="groups needs segments"):
        noise_ceiling(tmp_path, groups=["a"])


def test_ceiling_interval_matches_a_direct_bootstrap():
    """The moment-sum interval equals resampling the rows and recomputing split-half r directly."""
    from reports.ceiling import _halves, _pearson_columns, ceiling_interval

    rng = np.random.default_rng(4)
    truth = rng.normal(size=(40, 1, 3))
    x = truth + rng.normal(size=(40, 6, 3))
    x[rng.random(x.shape) < 0.1] = np.nan
    groups = np.repeat(np.arange(20), 2)
    lo, hi = ceiling_interval(x, groups, n_splits=3, n_resamples=150, seed=7)
    ref_rng = np.random.default_rng(7)
    halves = [_halves(x, ref_rng) for _ in range(3)]
    ceilings = []
    for _ in range(2):  # chunks of 100 draws
        p = 100 if not ceilings else 50
        draws = ref_rng.integers(0, 20, size=(p, 20))
        for d in draws:
            rows = np.concatenate([np.flatnonzero(groups == g) for g in d])
            r = np.mean([_pearson_columns(a[rows], b[rows]) for a, b in halves], axis=0)
            ceilings.append(np.sqrt(np.clip(spearman_brown(r), 0, None)))
    c = np.array(ceilings)
    np.testing.assert_allclose(lo, np.quantile(c, 0.025, axis=0), atol=1e-10)
    np.testing.assert_allclose(hi, np.quantile(c, 0.975, axis=0), atol=1e-10)
    with pytest.raises(ConfigError, match="at least 2"):
        ceiling_interval(x, np.zeros(40), n_resamples=5)


def test_real_performer4_test_set_has_its_own_ceiling(real_dataset):
    """The paper's fixed test set (193 segments) has a lower ceiling than all 1,189 segments."""
    from splits import make_splits

    folds = make_splits("percepiano_performer4", real_dataset.meta)
    test = real_dataset.meta["sample_id"].to_numpy()[folds[0][1]]
    own = noise_ceiling(real_dataset.root, n_splits=20, seed=0, segments=test, n_resamples=200)
    assert len(test) == 193 and own.attrs["n_segments"] == 193
    assert own["ceiling_r"].mean() == pytest.approx(0.810, abs=0.01)
    assert (own["ceiling_lo"] <= own["ceiling_r"]).all() and (own["ceiling_r"] <= own["ceiling_hi"]).all()


# ------------------------------------------------------------ the raters' spread


def test_rater_spread_hand_computed(tmp_path):
    """The layout's first segment: sheet 0 leaves question 4 unanswered (0), sheet 1 question 5 (empty);
    sheet 2 (an answer of 8) is dropped whole. The spread is the population sd of the answers given, / 7;
    upstream counts an unanswered question as a 0."""
    _write_layout(tmp_path)
    csv = pd.read_csv(tmp_path / "labels" / "total_2rounds.csv")
    questions = [c for c in csv.columns if c.startswith("Question_")][:19]
    first = csv[csv["filename"] == csv.loc[0, "filename"]]
    valid = first[~(first[questions] > 7).any(axis=1)]
    spread = rater_spread(tmp_path)
    upstream = rater_spread(tmp_path, upstream=True)
    key = segment_key(csv.loc[0, "filename"])
    assert spread.shape == (30, 19) and list(spread.columns) == list(TARGET_NAMES)
    for j in (0, 4, 5):
        answers = valid[questions[j]].replace(0.0, np.nan).dropna().to_numpy() / 7
        with_zeros = valid[questions[j]].fillna(0.0).to_numpy() / 7
        assert spread.loc[key].iloc[j] == pytest.approx(np.sqrt(np.mean((answers - answers.mean()) ** 2)), abs=1e-15)
        assert upstream.loc[key].iloc[j] == pytest.approx(np.std(with_zeros), abs=1e-15)
    assert spread.loc[key].iloc[4] < upstream.loc[key].iloc[4]  # the 0 widens upstream's spread


def test_real_rater_spread_reproduces_upstreams_std_file():
    """upstream=True reproduces labels/label_2round_std_reg_19_with0_rm_highstd0.json from the answer sheets
    (so the sheets are read as upstream reads them); the harness's own spread differs only where a question was
    left unanswered."""
    data_dir = Path(os.environ.get("PERCEPIANO_DIR") or REAL_DATA)
    if not data_dir.is_dir():
        if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
            pytest.fail(f"CI=true but the PercePiano copy {data_dir} is missing")
        pytest.skip(f"no PercePiano copy at {data_dir} (set $PERCEPIANO_DIR)")
    raters = read_raters(data_dir)
    std = json.loads((data_dir / "labels" / "label_2round_std_reg_19_with0_rm_highstd0.json").read_text())
    upstream = rater_spread(raters, upstream=True)
    ours = rater_spread(raters)
    reference = np.array([std[k][:19] for k in upstream.index])
    assert upstream.shape == (1189, 19)
    np.testing.assert_allclose(upstream.to_numpy(), reference, rtol=0, atol=1e-12)
    diff = ours.to_numpy() - reference
    # Counting a blank as 0 widens 1722 spreads (by up to 0.34) and narrows one (by 0.003).
    assert (diff < -1e-12).sum() == 1722 and (diff > 1e-12).sum() == 1
    assert diff.min() == pytest.approx(-0.342857, abs=1e-6) and diff.max() < 0.004

"""Both claims of the report on per-unit scores from any source (``benchmark stats SCORES_FILE``).

For people whose predictions cannot be shared but whose per-fold scores can:
a table with one score per (model, seed, fold) and the unit that fold tests
(the performer of a leave-one-performer-out fold, the piece of a
leave-one-piece-out fold), read from CSV, Parquet or a result file's
``fold_scores`` (:func:`read_scores`). Every number is the report's own
(:func:`reports.units.compare_units`, :func:`reports.claims.pair_claims` and the
report's adjustment over one family per claim), fed by :class:`ScoreScorer`,
which presents the given scores as the report's :class:`reports.scoring.UnitScorer`
presents predictions: resampling or swapping whole units moves whole fold
scores. Each model pair gets

* the **learner claim** (are the learning algorithms different?): the learner t,
  withheld with its reason unless docs/calibration.md backs the design and
  the learner families (``not calibrated for this design ...``, ``needs >= k
  model seeds``);
* the **predictor claim** (are these fitted predictors different?): the
  cluster-bootstrap t over units, withheld likewise;
* the secondary unit-swap permutation p.

The design key (:func:`design_key`) comes from the scores: the split (a result
file says it; a table is told with ``--split``; without one no claim is a
number), the folds of the first seed, the seeds, the units of the table, and
whether seeds change the folds. Learner families come from ``--family``, a
``family`` column, the model registry for a run's own ``result.json`` (the
CLI, as ``benchmark report`` does), or, as in the report, a model whose scores
are identical across seeds is deterministic; otherwise unknown, which gets the
strictest family's requirement. When every fold tests one unit (lopo, piece) this is
exactly the report's computation, so a run's per-fold scores give the numbers
and notes ``benchmark report`` printed for it (with the families it was given);
with several units per fold (kfold, excerpt) the unit is the fold, and the
design key counts folds as units.

Missing cells (a fold a model failed, a NaN score) are never dropped
silently: a pair is tested on the cells both models have and the table says
which cells each pair lacks; rankings use the cells every ranked model has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError, DataError
from benchmark.metrics import REGISTRY
from reports.calibrated import RunKey
from reports.claims import CLAIMS, pair_claims
from reports.comparisons import FAMILIES, key_calibration_note
from reports.paired import standardized_difference
from reports.ranking import friedman_nemenyi
from reports.resultfile import KIND, read_result
from reports.rundata import FEW_GROUPS, too_few
from reports.significance import CLAIM_COLUMNS, CORRECTIONS, _claims_into
from reports.units import compare_units

#: Columns of a scores table: required, then optional (with their default).
REQUIRED = ("model", "unit", "value")
OPTIONAL = {"seed": 0, "fold": None, "metric": "score", "n_train": np.nan, "n_test": np.nan}


@dataclass(frozen=True)
class Scores:
    """A checked scores table and what is known of its design.

    Attributes
    ----------
    frame : DataFrame
        ``model, metric, seed, fold, unit, value, n_train, n_test``; one row per (model, metric, seed, fold).
    split : str or None
        The split the scores come from (a result file says; a table may be told with ``--split``).
    seeded : bool
        Whether the seeds change the folds (then (seed, fold) cells are CV repeats).
    source : str
    partition : bool
        False for a fixed test set (every fold model scored on the same units).
    families : dict
        Model -> learner family from the table's optional ``family`` column (``deterministic``, ``tabular``,
        ``neural``; a blank cell or no column: unknown).
    """

    frame: pd.DataFrame
    split: str | None
    seeded: bool
    source: str
    partition: bool = True
    families: dict = field(default_factory=dict)


def _from_result(result: dict) -> pd.DataFrame:
    rows = []
    for m in result["models"]:
        for f in m["fold_scores"]:
            for metric, v in f["values"].items():
                rows.append({"model": m["name"], "metric": metric, "seed": f["seed"], "fold": f["fold"],
                             "unit": f["unit"] if f["unit"] is not None else f"seed{f['seed']}/fold{f['fold']}",
                             "value": np.nan if v is None else v, "n_train": f["n_train"], "n_test": f["n_test"]})
    return pd.DataFrame(rows, columns=["model", "metric", "seed", "fold", "unit", "value", "n_train", "n_test"])


def read_scores(path: str | Path, *, split: str | None = None) -> Scores:
    """Read a scores table: CSV, Parquet, or a result file (``result.json``, its per-fold scores).

    Columns: ``model``, ``unit`` and ``value`` (required); ``seed`` (default 0), ``fold`` (default: one fold per
    unit), ``metric`` (default ``score``), ``n_train`` and ``n_test`` (the learner t needs them), ``family``
    (each model's learner family for the calibration: ``deterministic``, ``tabular``, ``neural``; blank =
    unknown). A result file gives no families (a model whose scores are identical across seeds still counts
    as deterministic, as in the report).

    Raises
    ------
    DataError
        Unreadable, a missing column, a non-numeric value, a repeated (model, metric, seed, fold), a fold that
        tests different units for different models, an unknown or ambiguous family.
    """
    path = Path(path)
    seeded = None
    partition = True
    source = str(path)
    if path.suffix == ".json":
        try:
            head = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read scores from {path}: {exc}") from None
        if not (isinstance(head, dict) and head.get("kind") == KIND):
            raise DataError(f"{path} is JSON but not a result file; give a result.json, a CSV or a Parquet table")
        result = read_result(path)
        frame = _from_result(result)
        split = split or result["split"]["name"]
        seeded, partition = bool(result["split"]["seeded"]), bool(result["split"]["partition"])
        source = f"{path} (run {result['run']['run_id']})"
    else:
        try:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except FileNotFoundError:
            raise DataError(f"scores file {path} does not exist") from None
        except Exception as exc:  # pandas and pyarrow raise their own types for unreadable files
            raise DataError(f"cannot read scores from {path} ({type(exc).__name__}: {exc})") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}; a scores table has columns model, unit, value "
                        "and optionally seed, fold, metric, n_train, n_test")
    frame = frame.copy()
    for col, default in OPTIONAL.items():
        if col not in frame.columns:
            frame[col] = default
    if frame["fold"].isna().all():
        frame["fold"] = pd.factorize(frame["unit"].astype(str), sort=True)[0]
    try:
        frame["value"] = pd.to_numeric(frame["value"], errors="raise").astype(float)
        for col in ("seed", "fold"):
            frame[col] = pd.to_numeric(frame[col], errors="raise").astype(int)
        for col in ("n_train", "n_test"):
            frame[col] = pd.to_numeric(frame[col], errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: a non-numeric value, seed, fold, n_train or n_test ({exc})") from None
    frame["model"] = frame["model"].astype(str)
    frame["metric"] = frame["metric"].astype(str)
    frame["unit"] = frame["unit"].astype(str)
    key = ["model", "metric", "seed", "fold"]
    dup = frame[frame.duplicated(key, keep=False)]
    if len(dup):
        r = dup.iloc[0]
        raise DataError(f"{path}: model {r['model']!r} has {int((dup[key] == r[key]).all(axis=1).sum())} scores of "
                        f"{r['metric']!r} for seed {r['seed']} fold {r['fold']}; give one score per (model, metric, "
                        "seed, fold), the fold's score over its test segments")
    units = frame.groupby(["seed", "fold"])["unit"].nunique()
    if (units > 1).any():
        s, k = units[units > 1].index[0]
        raise DataError(f"{path}: seed {s} fold {k} tests different units for different models "
                        f"({', '.join(sorted(frame.loc[(frame['seed'] == s) & (frame['fold'] == k), 'unit'].unique()))})")
    families = {}
    if "family" in frame.columns:
        fam = frame[["model", "family"]].dropna()
        fam = fam[fam["family"].astype(str).str.strip() != ""].astype(str).drop_duplicates()
        many = fam["model"][fam["model"].duplicated()]
        if len(many):
            raise DataError(f"{path}: model {many.iloc[0]!r} has several families "
                            f"({', '.join(sorted(fam.loc[fam['model'] == many.iloc[0], 'family']))}); give one")
        bad = fam[~fam["family"].isin(FAMILIES)]
        if len(bad):
            raise DataError(f"{path}: family {bad['family'].iloc[0]!r} of model {bad['model'].iloc[0]!r}; use one of "
                            f"{', '.join(FAMILIES)} or leave it blank (unknown)")
        families = dict(zip(fam["model"], fam["family"], strict=True))
    if seeded is None:
        # Seeds change the folds when some fold tests another unit under another seed.
        per_seed = frame.drop_duplicates(["seed", "fold"]).groupby("fold")["unit"].nunique()
        seeded = bool((per_seed > 1).any())
    return Scores(frame[["model", "metric", "seed", "fold", "unit", "value", "n_train", "n_test"]], split, seeded,
                  source, partition, families)


@dataclass(frozen=True)
class ScoreCells:
    """The cells a :class:`ScoreScorer` compares: one (seed, fold) each, what ``compare_units`` reads."""

    seed: np.ndarray
    fold: np.ndarray
    n_train: np.ndarray
    n_test: np.ndarray


class ScoreScorer:
    """Two models' fold scores under resampling or swapping of whole units: :class:`reports.scoring.UnitScorer`'s
    interface, for :func:`reports.units.compare_units`.

    The statistic is the mean over cells of the fold score, each cell weighted by the weight of the unit it tests
    (a unit drawn twice counts twice): when every fold tests one unit, the report's fold-level mean metric under
    the same draw. A swap exchanges the two models' scores of whole units.

    Parameters
    ----------
    a, b : ndarray, shape (n_cells,)
        The two models' scores of each cell (NaN: undefined, left out of the mean as the report does).
    unit : ndarray, shape (n_cells,)
        The unit each cell tests.
    cells : ScoreCells
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, unit: np.ndarray, cells: ScoreCells) -> None:
        self.units, self._code = np.unique(np.asarray(unit, dtype=str), return_inverse=True)
        self._a, self._b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        self.cells = cells

    @property
    def n_units(self) -> int:
        return len(self.units)

    def _mean(self, values: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Weighted mean over cells of ``values`` (P, C) with cell weights ``w`` (P, C), finite cells only."""
        ok = np.isfinite(values) & (w > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, values * w, 0.0).sum(axis=1) / np.where(ok, w, 0.0).sum(axis=1)

    def statistic(self, weights: np.ndarray) -> np.ndarray:
        """Model A's statistic, shape (P, 1), for unit ``weights`` (P, G)."""
        w = np.atleast_2d(np.asarray(weights, dtype=float))[:, self._code]
        return self._mean(np.broadcast_to(self._a, w.shape), w)[:, None]

    def per_target(self, weights: np.ndarray | None = None, swap: np.ndarray | None = None) -> np.ndarray:
        """A - B, shape (P, 1), for unit ``weights`` or ``swap`` masks (P, G) (the one "target": the score)."""
        if swap is not None:
            s = np.atleast_2d(np.asarray(swap, dtype=float))[:, self._code] > 0
            # np.where, not a + s (b - a): a NaN score must move with its cell, never spread to the other model.
            a, b = np.where(s, self._b, self._a), np.where(s, self._a, self._b)
            w = np.ones(s.shape)
        else:
            w = (np.ones((1, self.n_units)) if weights is None
                 else np.atleast_2d(np.asarray(weights, dtype=float)))[:, self._code]
            a, b = np.broadcast_to(self._a, w.shape), np.broadcast_to(self._b, w.shape)
        return (self._mean(a, w) - self._mean(b, w))[:, None]

    def scores(self, model: str = "a") -> np.ndarray:
        """Each cell's score of one model, shape (n_cells, 1)."""
        return (self._a if model == "a" else self._b)[:, None]


def cells_text(cells) -> str:
    """``seed 0 folds 1, 4; seed 1 fold 2`` for a list of (seed, fold) cells."""
    by_seed: dict[int, list[int]] = {}
    for s, k in sorted(cells):
        by_seed.setdefault(int(s), []).append(int(k))
    return "; ".join(f"seed {s} fold{'s' if len(ks) > 1 else ''} {', '.join(map(str, ks))}"
                     for s, ks in by_seed.items())


def _pair(scores: Scores, metric: str, model: str, base: str) -> tuple[ScoreScorer | None, list[str]]:
    """The scorer of ``model - base`` on the cells both have, and what each model lacks (absent or NaN cells)."""
    f = scores.frame[scores.frame["metric"] == metric]
    a = f[f["model"] == model].set_index(["seed", "fold"])
    b = f[f["model"] == base].set_index(["seed", "fold"])
    cells = sorted(set(a.index) | set(b.index))
    gone = []
    for m, t in ((model, a), (base, b)):
        absent = [c for c in cells if c not in t.index]
        nan = [c for c in cells if c in t.index and not np.isfinite(t.loc[c, "value"])]
        if absent:
            gone.append(f"{m} has no score for {cells_text(absent)}")
        if nan:
            gone.append(f"{m}'s score is undefined (NaN) in {len(nan)} of {len(cells)} cells ({cells_text(nan)})")
    both = [c for c in cells if c in a.index and c in b.index and np.isfinite(a.loc[c, "value"])
            and np.isfinite(b.loc[c, "value"])]
    if len(both) < 2:
        return None, gone
    idx = pd.MultiIndex.from_tuples(both, names=["seed", "fold"])
    a, b = a.loc[idx], b.loc[idx]
    n_train = a["n_train"].where(a["n_train"].notna(), b["n_train"]).to_numpy(dtype=float)
    n_test = a["n_test"].where(a["n_test"].notna(), b["n_test"]).to_numpy(dtype=float)
    cells_ = ScoreCells(idx.get_level_values("seed").to_numpy(), idx.get_level_values("fold").to_numpy(),
                        n_train, n_test)
    return ScoreScorer(a["value"].to_numpy(), b["value"].to_numpy(), a["unit"].to_numpy(), cells_), gone


def _family_of(scores: Scores, model: str, given: dict) -> str | None:
    """``model``'s learner family as :func:`reports.comparisons.model_family` reads it from a run: deterministic
    when its fold scores are identical across two or more seeds that share the folds (the report looks at the
    predictions; identical predictions give identical scores), or when ``given`` says so; else what ``given``
    says (``tabular``, ``neural``), or None (unknown: the strictest simulated family applies)."""
    fam = given.get(model)
    if fam == "deterministic":
        return fam
    f = scores.frame[scores.frame["model"] == model]
    if not scores.seeded and f["seed"].nunique() >= 2:
        wide = f.pivot(index=["metric", "fold"], columns="seed", values="value").to_numpy(dtype=float)
        ok = np.isfinite(wide).all(axis=1)
        if ok.any() and np.allclose(wide[ok], wide[ok][:, :1], rtol=0.0,
                                    atol=1e-12 * max(1.0, float(np.abs(wide[ok]).max()))):
            return "deterministic"
    return fam if fam in FAMILIES else None


def design_key(scores: Scores, seeds) -> RunKey | None:
    """The calibration's key of the design the pair's ``seeds`` were scored on: the split, the folds of the
    first seed, the number of seeds, the units of the whole table, seeded; None without a split."""
    if not scores.split:
        return None
    seeds = sorted(int(s) for s in seeds)
    f = scores.frame
    n_folds = int(f.loc[f["seed"] == seeds[0], "fold"].nunique()) if seeds else 0
    return RunKey(scores.split, n_folds, len(seeds), int(f["unit"].nunique()), bool(scores.seeded))


NO_SPLIT = "no split given (--split): the claims' calibration is keyed by design"
NO_SIZES = "no n_train and n_test in the scores: the learner t needs the fold sizes"


def stats_table(scores: Scores, *, baseline: str | None = None, metrics: tuple[str, ...] | None = None,
                correction: str = "holm", n_resamples: int = 2000, seed: int = 0,
                confidence: float = 0.95, families: dict | None = None) -> pd.DataFrame:
    """Every model against ``baseline``, per metric: the difference and both claims, as the report's table.

    Each pair is :func:`reports.units.compare_units` and :func:`reports.claims.pair_claims` on
    :class:`ScoreScorer` (the report's own functions): the learner claim (learner t: corrected resampled t with
    the design's calibrated factor, plus the between-seed variance where seeds do not change the folds) and the
    predictor claim (cluster-bootstrap t over units), each withheld with its reason where docs/calibration.md
    does not back the design (:func:`design_key`) and learner families; the unit-swap permutation p is
    secondary. p-values are adjusted over one family per claim, every model pair x metric, with the interval
    levels that agree with the adjusted decision (:func:`reports.significance._claims_into`, the report's).

    Parameters
    ----------
    scores : Scores
    baseline : str, optional
        Default ``rf`` if present, else the first model.
    metrics : tuple of str, optional
    correction : {"holm", "fdr_bh"}
    n_resamples, seed : int
    confidence : float
        Of the bootstrap inside :func:`compare_units` (the claims' intervals take the family-compatible level).
    families : dict, optional
        Model -> learner family (``deterministic``, ``tabular``, ``neural``); overrides the table's ``family``
        column. A model neither names, and whose scores differ across seeds, is unknown (the strictest family).

    Returns
    -------
    DataFrame
        One row per (model, metric): ``diff``, ``effect``, ``learner_{lo,hi,p,p_adj,df,level,mde,note}``, the same
        with ``pred_``, ``perm_p``, ``perm_p_adj``, ``n_units``, ``n_cells``, ``design`` (the key's label),
        ``family``, ``family_baseline``, ``missing`` (the cells left out and why) and ``note``.

    Raises
    ------
    ConfigError
        Unknown baseline, metric or family, bad correction, a fixed test set's scores.
    """
    if correction not in CORRECTIONS:
        raise ConfigError(f"correction={correction!r}; use one of {CORRECTIONS}")
    if not scores.partition:
        raise ConfigError(f"{scores.source}: the folds of a fixed test set score the same units, so fold scores "
                          "cannot be resampled by unit; test it with `benchmark report` (over the test set's units)")
    given = {**scores.families, **(families or {})}
    bad = {m: f for m, f in given.items() if f not in FAMILIES}
    if bad:
        m, f = next(iter(bad.items()))
        raise ConfigError(f"family {f!r} of model {m!r}; use one of {', '.join(FAMILIES)}")
    frame = scores.frame
    models = list(dict.fromkeys(frame["model"]))
    have = list(dict.fromkeys(frame["metric"]))
    metrics = tuple(metrics or [m for m in ("pearson", "r2") if m in have] or have)
    bad_m = [m for m in metrics if m not in have]
    if bad_m:
        raise ConfigError(f"no scores of metric {bad_m[0]!r} in {scores.source} (it has: {', '.join(have)})")
    if baseline is None:
        baseline = "rf" if "rf" in models else models[0]
    if baseline not in models:
        raise ConfigError(f"baseline {baseline!r} is not a model of {scores.source}; use one of {models}")
    fam = {m: _family_of(scores, m, given) for m in models}
    recs, claims, keys = [], {}, {}
    for model in models:
        if model == baseline:
            continue
        rec = {"model": model}
        for metric in metrics:
            rec.update({f"{metric}_diff": np.nan, f"{metric}_effect": np.nan, f"{metric}_n_units": 0,
                        f"{metric}_n_cells": 0, f"{metric}_design": "", f"{metric}_note": ""})
            scorer, gone = _pair(scores, metric, model, baseline)
            rec[f"{metric}_missing"] = "; ".join(gone)
            if scorer is None:
                rec[f"{metric}_note"] = "fewer than two cells scored by both models: not tested"
                continue
            res, _ = compare_units(scorer, seeded=scores.seeded, n_resamples=n_resamples, confidence=confidence,
                                   seed=seed)
            key = design_key(scores, np.unique(scorer.cells.seed))
            few = too_few(res.n_units)
            fams = (fam[model], fam[baseline])
            sizes = bool(np.isfinite(scorer.cells.n_train).any() and np.isfinite(scorer.cells.n_test).any())
            if key is None:
                c = pair_claims(scorer, res, RunKey("", 0, 0, 0, scores.seeded), partition=False, families=fams,
                                few_text=few)
                if not res.few:
                    c = replace(c, learner=None, learner_note=NO_SPLIT, pred_p=np.nan, pred_note=NO_SPLIT,
                                perm_p=np.nan)
            else:
                keys[key] = None
                c = pair_claims(scorer, res, key, partition=sizes, families=fams, few_text=few)
                if not sizes and not res.few:
                    c = replace(c, learner=None, learner_note=NO_SIZES)
            claims[(len(recs), metric)] = c
            levels = [float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for v in (res.fold_a, res.fold_b)]
            rec.update({f"{metric}_diff": res.diff, f"{metric}_n_units": res.n_units,
                        f"{metric}_n_cells": int(len(scorer.cells.seed)),
                        f"{metric}_design": key.label() if key else "",
                        f"{metric}_effect": standardized_difference(*levels, metric)
                        if metric in ("pearson", "r2") else np.nan})
        recs.append(rec)
    # The report's own adjustment: one family per claim over every model pair x metric, compatible levels.
    _claims_into(recs, claims, metrics, correction)
    cols = ["diff", "effect", *CLAIM_COLUMNS, "perm_p", "perm_p_adj", "n_units", "n_cells", "design", "missing",
            "note"]
    rows = []
    for r in recs:
        for metric in metrics:
            row = {"model": r["model"], "baseline": baseline, "metric": metric}
            for c in cols:
                v = r.get(f"{metric}_{c}", np.nan)
                row[c] = ("" if not isinstance(v, str) else v) if c.endswith("note") or c in ("design", "missing") \
                    else v
            row["family"], row["family_baseline"] = fam[r["model"]] or "unknown", fam[baseline] or "unknown"
            rows.append(row)
    table = pd.DataFrame(rows, columns=["model", "baseline", "metric", *cols, "family", "family_baseline"])
    n_pairs = len(models) - 1
    family = f"{n_pairs} model pairs x {len(metrics)} metrics"
    table.attrs.update({
        "kind": "stats", "source": scores.source, "split": scores.split, "seeded": scores.seeded,
        "baseline": baseline, "metrics": list(metrics), "correction": correction, "n_resamples": int(n_resamples),
        "seed": int(seed), "confidence": float(confidence), "perm_floor": 1.0 / (int(n_resamples) + 1),
        "family": family, "families": {m: f for m, f in fam.items() if f},
        "claims": dict(CLAIMS), "primary": {"learner": "learner t", "predictor": "cluster bootstrap t"},
        "secondary": ["unit-swap permutation"],
        "notes": [
            f"Scores from {scores.source}; each (seed, fold) is one cell, scored on the unit it tests; seeds "
            + ("change the folds: cells are CV repeats." if scores.seeded
               else "do not change the folds: model seeds, replicates of each learner's own randomness."),
            f"Differences (model - {baseline!r}) of the mean cell score. Two claims, one primary test each, as in "
            f"`benchmark report`. {CLAIMS['learner'].capitalize()}? The learner t: corrected resampled t over the "
            "fold units (Nadeau & Bengio 2003) with the design's calibrated factor"
            + ("" if scores.seeded else ", plus each model's between-seed variance") + ". "
            f"{CLAIMS['predictor'].capitalize()} on these units? The cluster-bootstrap t over units "
            f"({n_resamples} resamples) and the p-value of that interval. Secondary: p perm swaps whole units "
            f"between the two models ({n_resamples} permutations). Below {FEW_GROUPS} units no group-level number.",
            f"p-values adjusted with {correction} over one family per claim: {family}; each interval at the level "
            "that agrees with its adjusted decision (so it excludes 0 exactly when p_adj < 0.05).",
            "Learner families: " + (", ".join(f"{m} {f}" for m, f in fam.items() if f) or "none known")
            + " (from --family, a `family` column, or scores identical across seeds = deterministic); a model "
            "of unknown family gets the strictest family's seed requirement.",
            *([key_calibration_note(k, {m: f for m, f in fam.items() if f}) for k in keys] if keys else
              [f"{NO_SPLIT.capitalize()}: no claim is printed as a number; give the split the scores come from."]),
        ],
    })
    return table


def rank_table(scores: Scores, metric: str, *, alpha: float = 0.05) -> tuple[pd.DataFrame, dict]:
    """Friedman test and Nemenyi average ranks over the cells every model scored (:mod:`reports.ranking`).

    Cells form the blocks (folds share training data: exploratory, as the report's ranking over folds says);
    a metric where lower is better (MSE) ranks the lowest first.

    Returns
    -------
    ranks : DataFrame
        ``model``, ``avg_rank``, best first.
    info : dict
        ``statistic``, ``pvalue``, ``cd``, ``n_blocks``, ``dropped`` (cells left out: a model lacks them),
        ``excluded`` (models whose score is undefined in every cell).

    Raises
    ------
    ConfigError
        Fewer than 3 models or 2 complete cells (from :func:`reports.ranking.friedman_nemenyi`).
    """
    f = scores.frame[scores.frame["metric"] == metric]
    wide = f.pivot(index=["seed", "fold"], columns="model", values="value")
    undefined = [m for m in wide.columns if wide[m].isna().all()]
    wide = wide.drop(columns=undefined)
    complete = wide.dropna()
    dropped = list(wide.index.difference(complete.index))
    higher = REGISTRY[metric].higher_is_better if metric in REGISTRY else True
    res = friedman_nemenyi(complete, alpha=alpha, higher_is_better=higher)
    ranks = res.avg_ranks.rename("avg_rank").rename_axis("model").reset_index()
    return ranks, {"statistic": res.statistic, "pvalue": res.pvalue, "cd": res.cd, "n_blocks": res.n_blocks,
                   "dropped": cells_text(dropped) if dropped else "", "excluded": undefined}

"""Banks of out-of-fold predictions of a randomized learner, one file per model seed, on a real design.

The data are fixed (the real features and ratings); the only randomness
between two files of one bank is the model's own seed (bagging, feature
subsampling, initialisation, data order). A learner null is then formed
from the bank by pairing seeds (:mod:`simulation.engine`): "the same
learning algorithm run twice", which every learner-level test must not
call different more often than alpha.

The predictions come from the harness's own pipeline: the run's input
assembly (:class:`benchmark.runner.Runner`: features from the shared
cache, the registered split's folds and groups, validation folds where the
split has them) and :func:`benchmark.execute.run_job` with a job whose
model seed is set apart from the split seed. As in a run, one model seed
is shared by every fold of a split seed.

Layout under the bank's root::

    <root>/<design>/design.npz                  sample ids, ratings, units, fold cells
    <root>/<design>/<learner>/seed_<m>.npz      one model seed's predictions (test rows only)
    <root>/<design>/<learner>/spec.json         the learner: base model, parameters, timing

Each seed file is written to a temporary name and renamed, so an
interrupted bank resumes where it stopped (:func:`build_bank`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: The designs of docs/calibration.md: registered split and its split seeds (CV repeats).
BANK_DESIGNS: dict[str, tuple[str, tuple[int, ...]]] = {
    "lopo": ("lopo", (0,)),
    "kfold": ("kfold", (0, 1, 2)),
    "kfold_grouped": ("kfold_grouped", (0, 1, 2)),
    "excerpt": ("excerpt", (0, 1, 2)),
    "piece": ("piece", (0,)),
    "percepiano_performer4": ("percepiano_performer4", (0,)),
}


@dataclass(frozen=True)
class Learner:
    """A bank's learner: a registered model and the parameters it is run with.

    Attributes
    ----------
    label : str
        Directory name of the bank (e.g. ``rf50``).
    base : str
        Registered model name.
    params : dict
        Factory parameters besides ``random_state``.
    family : str
        What the calibration calls its kind: ``tabular`` or ``neural``.
    """

    label: str
    base: str
    params: dict = field(default_factory=dict)
    family: str = "tabular"


#: The learners docs/calibration.md banks: a small random forest (bootstrap rows, a third of the
#: features per split) and the smallest AST on a reduced budget (3 epochs).
LEARNERS = {
    "rf50": Learner("rf50", "rf", {"n_estimators": 50}, "tabular"),
    "ast_ultratiny_e3": Learner("ast_ultratiny_e3", "ast_ultratiny", {"epochs": 3, "device": "cpu"}, "neural"),
}


@dataclass(frozen=True)
class BankDesign:
    """The fixed part of a bank: what every seed file of a design is read against.

    Attributes
    ----------
    name, split : str
    y : ndarray (n, T)
        Ratings of the segments, in the run's row order.
    units : ndarray (n,)
        The unit of generalisation of every segment (what the report resamples).
    cell_seed, cell_fold : ndarray (C,)
        Split seed and fold of every (split seed, fold) cell.
    cell_rows : list of ndarray
        Test rows of every cell.
    n_train, n_test : ndarray (C,)
    partition : bool
        Whether each split seed's test folds cover every segment once (False: a fixed test set).
    seeded : bool
        Whether the split seed changes the folds.
    """

    name: str
    split: str
    y: np.ndarray
    units: np.ndarray
    cell_seed: np.ndarray
    cell_fold: np.ndarray
    cell_rows: list
    n_train: np.ndarray
    n_test: np.ndarray
    partition: bool
    seeded: bool

    @property
    def n_cells(self) -> int:
        return len(self.cell_rows)


def _atomic_save(path: Path, **arrays) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _write_design(path: Path, runner, design: str) -> BankDesign:
    from splits.registry import split_info

    info = split_info(runner.config.split)
    meta = runner.dataset.meta
    if info["partition"] and runner.groups is not None:
        units = np.asarray(runner.groups).astype(str)
    elif info["group_column"] is not None:
        units = meta[info["group_column"]].astype(str).to_numpy()
    else:
        units = meta["sample_id"].astype(str).to_numpy()
    cells = [(s, k, tr, te) for s, folds in sorted(runner.folds.items()) for k, (tr, te) in enumerate(folds)]
    rows = np.concatenate([te for *_, te in cells])
    bounds = np.cumsum([0] + [te.size for *_, te in cells])
    _atomic_save(path, sample_id=meta["sample_id"].astype(str).to_numpy().astype("U"), y=np.asarray(runner.dataset.y, float),
                 units=units.astype("U"), cell_seed=np.array([c[0] for c in cells]), cell_fold=np.array([c[1] for c in cells]),
                 rows=rows, bounds=bounds, n_train=np.array([c[2].size for c in cells], float),
                 n_test=np.array([c[3].size for c in cells], float),
                 flags=np.array([info["partition"], info["seeded"]]), split=np.array(runner.config.split))
    return load_design(path.parent)


def load_design(design_dir: str | os.PathLike) -> BankDesign:
    """The :class:`BankDesign` stored in ``design_dir``.

    Raises
    ------
    DataError
        No ``design.npz`` there (the bank was never started).
    """
    path = Path(design_dir) / "design.npz"
    if not path.is_file():
        raise DataError(f"no bank design at {path}; build it with scripts/learner_bank.py")
    z = np.load(path, allow_pickle=False)
    b = z["bounds"]
    rows = [z["rows"][b[i]:b[i + 1]] for i in range(len(b) - 1)]
    partition, seeded = (bool(v) for v in z["flags"])
    return BankDesign(Path(design_dir).name, str(z["split"]), z["y"], z["units"], z["cell_seed"], z["cell_fold"],
                      rows, z["n_train"], z["n_test"], partition, seeded)


def seed_path(root: Path, design: str, learner: str, model_seed: int) -> Path:
    return Path(root) / design / learner / f"seed_{int(model_seed):04d}.npz"


def load_predictions(root: str | os.PathLike, design: str, learner: str) -> tuple[np.ndarray, np.ndarray]:
    """Every stored seed of a bank: (model seeds (S,), predictions (S, C, n, T) with NaN off each cell's test rows).

    Raises
    ------
    DataError
        The bank holds no seed, or a seed file does not match the design.
    """
    d = load_design(Path(root) / design)
    files = sorted((Path(root) / design / learner).glob("seed_*.npz"))
    if not files:
        raise DataError(f"bank {design}/{learner} under {root} holds no seed; build it with scripts/learner_bank.py")
    n, T = d.y.shape
    out = np.full((len(files), d.n_cells, n, T), np.nan, dtype=np.float32)
    seeds = np.empty(len(files), dtype=int)
    for i, f in enumerate(files):
        z = np.load(f, allow_pickle=False)
        pred = z["pred"]
        if pred.shape != (sum(r.size for r in d.cell_rows), T):
            raise DataError(f"{f}: predictions of shape {pred.shape} do not match the bank's design; rebuild it")
        start = 0
        for c, rows in enumerate(d.cell_rows):
            out[i, c, rows] = pred[start:start + rows.size]
            start += rows.size
        seeds[i] = int(z["model_seed"])
    return seeds, out


def build_bank(root: str | os.PathLike, design: str, learner: Learner, model_seeds, *, cache_dir=None,
               data_dir=None, notify=print) -> dict:
    """Fit ``learner`` with every model seed on ``design``'s folds; keep the out-of-fold predictions.

    Seeds whose file exists are skipped (the bank resumes). Every fit runs on one
    thread (a classical model's ``n_jobs=1``; torch limited to one thread).

    Parameters
    ----------
    root : path
        The banks' root directory (e.g. ``/work/runs/stats/banks``).
    design : str
        A key of :data:`BANK_DESIGNS`.
    learner : Learner
    model_seeds : iterable of int
    cache_dir, data_dir : path, optional
        As ``benchmark run``'s (default: ``$PERCEPIANO_CACHE``, the default data location).
    notify : callable
        Receives one progress line per seed.

    Returns
    -------
    dict
        ``fitted`` seeds, ``skipped`` seeds and ``seconds`` of CPU time spent fitting.

    Raises
    ------
    ConfigError
        An unknown design or a failing fit (its error, which no later seed would escape).
    """
    from benchmark.config import RunConfig
    from benchmark.execute import run_job
    from benchmark.jobs import Job
    from benchmark.runner import Runner
    from benchmark.store import JobKey
    from models.registry import MODELS

    if design not in BANK_DESIGNS:
        raise ConfigError(f"unknown bank design {design!r}; use one of {', '.join(BANK_DESIGNS)}")
    split, split_seeds = BANK_DESIGNS[design]
    root = Path(root)
    todo = [int(m) for m in model_seeds if not seed_path(root, design, learner.label, m).is_file()]
    done = {"fitted": [], "skipped": [int(m) for m in model_seeds if int(m) not in todo], "seconds": 0.0}
    if not todo:
        return done
    (root / design / learner.label).mkdir(parents=True, exist_ok=True)
    cfg = RunConfig(models=[learner.base], split=split, seeds=list(split_seeds), jobs=1, cache_dir=cache_dir,
                    data_dir=data_dir, variants={})
    cfg.validate()
    # The run's input assembly writes a manifest; a scratch directory per call keeps reruns independent.
    with tempfile.TemporaryDirectory(dir=root / design / learner.label, prefix="_run") as scratch:
        runner = Runner(cfg, Path(scratch) / "run", progress=False, notify=lambda _msg: None)
        try:
            runner.prepare()
            ctx = runner.inputs(runner.plan(), threads=1)
        finally:
            runner.close()
    path = root / design / "design.npz"
    bank = load_design(root / design) if path.is_file() else _write_design(path, runner, design)
    if not np.array_equal(bank.y, np.asarray(runner.dataset.y, float)):
        raise DataError(f"{path} was built on other ratings; move the old bank away and rebuild")
    spec = MODELS.get(learner.base)
    params = tuple(sorted(learner.params.items()))
    spec_file = root / design / learner.label / "spec.json"
    seconds = json.loads(spec_file.read_text()).get("seconds", {}) if spec_file.is_file() else {}
    for m in todo:
        t0 = time.process_time()
        preds = []
        for s, k in zip(bank.cell_seed, bank.cell_fold, strict=True):
            job = Job(JobKey(learner.base, int(s), int(k), m), learner.base, params)
            out = run_job(job, spec, ctx)
            if not out.ok:
                raise ConfigError(f"{learner.label} seed {m} fold ({s}, {k}) failed: {out.error}")
            preds.append(np.asarray(out.pred, dtype=np.float32))
        cpu = time.process_time() - t0
        _atomic_save(seed_path(root, design, learner.label, m), pred=np.concatenate(preds), model_seed=np.array(m))
        seconds[str(m)] = cpu
        spec_file.write_text(json.dumps({"base": learner.base, "params": learner.params, "family": learner.family,
                                         "split": split, "split_seeds": list(split_seeds), "seconds": seconds},
                                        indent=1, sort_keys=True))
        done["fitted"].append(m)
        done["seconds"] += cpu
        notify(f"{design} {learner.label} seed {m}: {len(preds)} fits, {cpu:.1f} s CPU")
    return done


def bank_scores(root: str | os.PathLike, design: str, learner: str, metric: str = "pearson"):
    """Each stored seed's fold-unit metric (targets averaged): (model seeds (S,), scores (S, C), BankDesign).

    Computed once per bank and kept beside it (``scores_<metric>.npz``), refreshed when seeds are added.
    """
    from benchmark.metrics import column_pearson

    d = load_design(Path(root) / design)
    path = Path(root) / design / learner / f"scores_{metric}.npz"
    files = sorted((Path(root) / design / learner).glob("seed_*.npz"))
    if path.is_file():
        z = np.load(path)
        if z["seeds"].size == len(files):
            return z["seeds"], z["scores"], d
    seeds, preds = load_predictions(root, design, learner)
    if metric != "pearson":
        raise ConfigError(f"bank scores are computed for metric 'pearson', got {metric!r}")
    fn = column_pearson
    scores = np.empty((seeds.size, d.n_cells))
    for c, rows in enumerate(d.cell_rows):
        vals = fn(d.y[rows][None], preds[:, c, rows].astype(float))  # (S, T)
        ok = np.isfinite(vals)
        scores[:, c] = np.where(ok, vals, 0.0).sum(axis=1) / ok.sum(axis=1)
    _atomic_save(path, seeds=seeds, scores=scores)
    return seeds, scores, d

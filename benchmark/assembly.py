"""Input assembly: what the jobs of a run read, built one way for the runner and for anything that refits.

A job reads its model's input matrix (the model's feature sets, the metadata
columns its registry entry asks for, the font condition's rendering), the
ratings, the split's groups (they group the inner CV), its fold and the
split's validation fold. :class:`Assembly` builds these from the run's
pieces, and every user gets them from it:

* the runner (:class:`benchmark.runner.Runner`) from the data, features and
  folds it has just prepared;
* :func:`benchmark.refit.open_run` from a finished run directory, so that
  ``benchmark importance`` refits exactly what the runner fitted and
  ``benchmark explain`` reads the same input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.dataset import Dataset
from benchmark.errors import ConfigError
from benchmark.execute import RunInputs
from benchmark.fonts import FONT_SETS, FontCondition, expand_models
from benchmark.jobs import Job, is_ensemble, is_imported, resolve_model
from features.build import FeatureMatrix, align_rows
from features.sets import is_array_stage
from models import MODELS


@dataclass
class Assembly:
    """The inputs of a run's jobs.

    Attributes
    ----------
    dataset : Dataset
        The run's segments, in the order every position refers to.
    features : FeatureMatrix
    folds : dict of int -> list of (train, test)
        Integer positions per split seed.
    groups : ndarray or None
        The split's group label of every segment.
    validation : dict of int -> list of ndarray, or None
        The split's own validation positions of each fold, when it has them.
    cache_root : str
    feature_sets : callable
        ``feature_sets(model) -> list of str`` (:meth:`benchmark.runner.RunConfig.feature_sets`).
    variants : dict
        Model name -> base model and parameters (study variants, font conditions).
    font_tables : dict of str -> DataFrame
        Per font label, the features rendered with that font (several SoundFonts only).
    font_conditions : dict of str -> FontCondition
    device : str
    imported : dict of str -> benchmark.imported.ImportedFile
        The checked predictions file of each imported model.
    """

    dataset: Dataset
    features: FeatureMatrix
    folds: dict[int, list[tuple[np.ndarray, np.ndarray]]]
    groups: np.ndarray | None
    validation: dict[int, list[np.ndarray]] | None
    cache_root: str
    feature_sets: Callable[[str], list[str]]
    variants: dict = field(default_factory=dict)
    font_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    font_conditions: dict[str, FontCondition] = field(default_factory=dict)
    device: str = "auto"
    imported: dict = field(default_factory=dict)

    def sets(self, model: str) -> list[str]:
        """The feature sets ``model`` reads (a font condition reads its base model's)."""
        cond = self.font_conditions.get(model)
        return self.feature_sets(cond.model if cond else model)

    def matrix(self, model: str, font: str | None = None):
        """The model's input: a matrix for tabular models, a lazy :class:`features.inputs.SegmentInputs`
        (tabular block + cache keys of its array stages) when its inputs include an array stage."""
        cond = self.font_conditions.get(model)
        sets = self.sets(model)
        ids = self.dataset.meta["sample_id"].to_numpy()
        if any(is_array_stage(fs) for fs in sets):
            return self.features.inputs(ids, sets, self.cache_root)
        cols = [c for fs in sets for c in self.features.sets[fs]]
        X = self.features.X
        font = font or (cond.test if cond else None)
        if font is not None:
            # The font-dependent columns rendered with this font; the others are the same for every font.
            fcols = [c for fs in sets if fs in FONT_SETS for c in self.features.sets[fs]]
            X = X.copy()
            X[fcols] = self.font_tables[font][fcols].reindex(X.index)
        M = align_rows(X, self.dataset.meta["sample_id"], cols)
        # Metadata columns a model's registry entry asks for (e.g. the passage id of passage-consensus
        # features), as integer codes appended last; they identify segments, they carry no label.
        meta_cols = MODELS.get(resolve_model(cond.model if cond else model, self.variants).base).extra.get(
            "meta_columns", ())
        for col in meta_cols:
            if col not in self.dataset.meta.columns:
                raise ConfigError(f"model {model!r} needs the metadata column {col!r}, which the dataset lacks")
            codes = pd.factorize(self.dataset.meta[col])[0].astype(float)
            M = np.column_stack([M, np.where(codes < 0, np.nan, codes)])
        return M

    def train_matrices(self, model: str) -> list | None:
        """A font condition's training matrices (one per training font), unless it trains on its test font."""
        cond = self.font_conditions.get(model)
        if cond is None or cond.kind == "same":
            return None
        return [self.matrix(model, font) for font in cond.train]

    def inputs(self, jobs: list[Job], threads: int = 1) -> RunInputs:
        """What the workers need for ``jobs``: targets, groups, folds, validation folds and each model's input."""
        fitted = {j.model for j in jobs if not is_ensemble(MODELS.get(j.base)) and not is_imported(MODELS.get(j.base))}
        models = sorted(fitted)
        imported = {j.model: self.imported[j.model].blocks for j in jobs if is_imported(MODELS.get(j.base))}
        folds = {(s, k): (np.asarray(tr), np.asarray(te)) for s, f in self.folds.items() for k, (tr, te) in enumerate(f)}
        validation = {}
        if self.validation is not None:
            validation = {(s, k): np.asarray(v) for s, f in self.validation.items() for k, v in enumerate(f)}
        return RunInputs(sample_ids=self.dataset.meta["sample_id"].to_numpy(), y=self.dataset.y, groups=self.groups,
                         folds=folds, matrices={m: self.matrix(m) for m in models}, threads=threads,
                         train_matrices={m: t for m in models if (t := self.train_matrices(m)) is not None},
                         validation=validation, device=self.device, imported=imported)


def font_setup(config, fonts: dict[str, str | None]) -> tuple[list[str], dict, dict[str, FontCondition]]:
    """The run's model names, variants and font conditions for the SoundFont labels ``fonts``.

    With several fonts every model that reads a font-dependent table runs once
    per condition (:func:`benchmark.fonts.expand_models`); each condition
    name becomes a variant of its base model.
    """
    models, variants, conditions = list(config.run_models), dict(config.variants), {}
    if len(fonts) > 1:
        models, conditions = expand_models(config.run_models, list(fonts), config.feature_sets)
        for name, cond in conditions.items():
            ref = resolve_model(cond.model, config.variants)
            variants[name] = {"model": ref.base, "params": ref.params}
    return models, variants, conditions

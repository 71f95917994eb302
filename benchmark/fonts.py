"""Several SoundFonts in one run: per-font, cross-font and augmented conditions.

``--soundfont A,B`` renders the audio features once per SoundFont and runs
every model that reads them under each condition:

* ``model@A``: trained and tested on renderings with A (a better piano);
* ``model@A_to_B``: trained on A, tested on B (robustness to the piano);
* ``model@A+B_to_B``: trained on every segment rendered with each font (the
  training set holds each segment once per font, same label), tested on B
  (augmentation).

A condition is an ordinary model name of the run, so the results, the
significance tests and the report treat it like any model; the manifest
records what each name means (:func:`conditions_record`). Models that read no
SoundFont-dependent table (e.g. ``lgbm`` on MIDI features) run once. Parsing
``--soundfont`` and naming the fonts is :mod:`features.soundfonts`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from benchmark.errors import ConfigError
from features.soundfonts import soundfont_path

#: Table feature sets whose values depend on the SoundFont.
FONT_SETS: tuple[str, ...] = ("audio",)
#: Array inputs rendered from audio: one SoundFont per run only.
FONT_ARRAYS: tuple[str, ...] = ("mel",)


@dataclass(frozen=True)
class FontCondition:
    """What a font-condition model name means: base model, training fonts, test font."""

    name: str
    model: str
    train: tuple[str, ...]
    test: str

    @property
    def kind(self) -> str:
        if len(self.train) > 1:
            return "augmented"
        return "same" if self.train == (self.test,) else "cross"


def font_conditions(model: str, labels: list[str]) -> list[FontCondition]:
    """Every condition of ``model`` over the fonts ``labels``: per font, each ordered pair, all-but-test augmented.

    With k fonts: k same-font, k (k - 1) cross-font and k augmented conditions (trained on all k fonts).
    """
    out = [FontCondition(f"{model}@{f}", model, (f,), f) for f in labels]
    out += [FontCondition(f"{model}@{a}_to_{b}", model, (a,), b) for a in labels for b in labels if a != b]
    both = "+".join(labels)
    out += [FontCondition(f"{model}@{both}_to_{b}", model, tuple(labels), b) for b in labels]
    return out


def expand_models(models: list[str], labels: list[str], feature_sets) -> tuple[list[str], dict[str, FontCondition]]:
    """The run's model names with every font-dependent model replaced by its conditions.

    Parameters
    ----------
    models : list of str
    labels : list of str
        Font labels (at least two).
    feature_sets : callable
        ``feature_sets(model) -> list of str``, the model's inputs.

    Returns
    -------
    names : list of str
    conditions : dict name -> FontCondition

    Raises
    ------
    ConfigError
        A model reads an array input rendered from audio (``mel``).
    """
    names: list[str] = []
    conditions: dict[str, FontCondition] = {}
    for m in models:
        sets = feature_sets(m)
        arrays = [fs for fs in sets if fs in FONT_ARRAYS]
        if arrays:
            raise ConfigError(f"model {m!r} reads {', '.join(arrays)}: several SoundFonts work for the "
                              f"{', '.join(FONT_SETS)} feature set only; run it with one --soundfont")
        if not any(fs in FONT_SETS for fs in sets):
            names.append(m)
            continue
        for cond in font_conditions(m, labels):
            names.append(cond.name)
            conditions[cond.name] = cond
    return names, conditions


def conditions_record(labels: dict[str, str | None], conditions: dict[str, FontCondition]) -> dict:
    """The manifest's ``fonts`` entry: each label's SoundFont and each condition's meaning."""
    return {
        "soundfonts": {label: str(soundfont_path(f)) for label, f in labels.items()},
        "conditions": {name: {**asdict(c), "train": list(c.train), "kind": c.kind} for name, c in conditions.items()},
    }

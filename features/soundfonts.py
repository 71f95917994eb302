"""The SoundFonts of a run: ``--soundfont`` parsed and checked once, each font's label.

``--soundfont`` takes one SoundFont or several separated by commas
(``default`` is the General MIDI font bundled with pretty_midi).
:func:`split_soundfonts` parses the list (every file's header is checked
once, :func:`features.render.check_soundfont`), :func:`font_label` names a
font by its file stem for model names and tables. What a run does with
several fonts (per-font, cross-font and augmented conditions) is
:mod:`benchmark.fonts`.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmark.errors import ConfigError
from features.render import check_soundfont, default_soundfont

#: Spelling of the General MIDI SoundFont bundled with pretty_midi in a ``--soundfont`` list.
DEFAULT_TOKEN = "default"


def split_soundfonts(text: str | None) -> list[str | None]:
    """The SoundFonts of a ``--soundfont`` value: comma-separated paths; ``default`` is pretty_midi's font.

    Returns
    -------
    list of str or None
        One entry per font in the given order (None for the default font); empty when ``text`` is None.

    Raises
    ------
    ConfigError
        An empty entry, a repeated font, or a path that is not a SoundFont.
    """
    if text is None:
        return []
    parts = [p.strip() for p in str(text).split(",")]
    if any(not p for p in parts):
        raise ConfigError(f"--soundfont {text!r} has an empty entry; pass comma-separated .sf2 paths")
    fonts: list[str | None] = []
    for p in parts:
        if p == DEFAULT_TOKEN:
            fonts.append(None)
        else:
            check_soundfont(p)
            fonts.append(p)
    resolved = [str(soundfont_path(f).resolve()) for f in fonts]
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"--soundfont {text!r} names a SoundFont twice; list each once")
    return fonts


def soundfont_path(font: str | None) -> Path:
    """The file of a font of :func:`split_soundfonts` (None: the bundled default)."""
    return default_soundfont() if font is None else Path(font)


def font_label(font: str | None) -> str:
    """Short name of a SoundFont for model names and tables: its file stem, e.g. ``FluidR3_GM``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", soundfont_path(font).stem).strip("-") or "font"


def font_labels(fonts: list[str | None]) -> dict[str, str | None]:
    """Label -> font (None for the default), in order.

    Raises
    ------
    ConfigError
        Two fonts with the same file stem.
    """
    labels: dict[str, str | None] = {}
    for f in fonts:
        label = font_label(f)
        if label in labels:
            raise ConfigError(f"two SoundFonts are both called {label!r} ({soundfont_path(labels[label])}, "
                              f"{soundfont_path(f)}); copy one under another file name")
        labels[label] = f
    return labels

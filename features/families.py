"""Feature families: every feature name starts with its family prefix and an underscore.

Reports aggregate importance and errors by family, so the rule lives in one place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from benchmark.errors import UnknownNameError


def family_of(name: str, families: Mapping[str, str], features: Iterable[str] = ()) -> str:
    """Return the family prefix of ``name``: the longest key of ``families`` it starts with.

    Raises
    ------
    UnknownNameError
        No family prefix (followed by an underscore and more) starts ``name``;
        the message suggests close feature names from ``features``.
    """
    for prefix in sorted(families, key=len, reverse=True):
        if name.startswith(prefix + "_") and len(name) > len(prefix) + 1:
            return prefix
    close = difflib.get_close_matches(name, list(features), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(f"feature {name!r} has no known family prefix ({', '.join(families)}){hint}")

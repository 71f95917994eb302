"""Features of a segment and the content-keyed cache that holds them.

Tabular extractors (``midi``, ``audio``, ``score``), array stages (``mel``, ``roll``), audio rendering
(``render``, ``soundfonts``), the cache (``cache``), the feature-set registry (``sets``; a new feature set
registers there) and the lazy per-segment input view array models read (``inputs``). Features import
only ``benchmark``'s core: never ``models`` or ``reports``.
"""

"""The layering contract: imports point one way, and no module imports itself through others.

The contracts live in ``.importlinter`` (import-linter, run here as a library): the engine and the
commands of ``benchmark/`` on top (the calibration's ``simulation/`` package beside the refitting commands,
since it runs models and reads the report's tests), then ``reports/`` and ``models/`` (independent), ``splits/``,
``features/`` and ``benchmark/``'s core; ``features/`` imports neither ``models/`` nor ``reports/``;
``reports/`` never imports ``models/`` or torch (not even through another package); ``models/`` never
reads run directories; no cycles between the modules of a package. A last check finds cycles between any
two modules of the project, across packages too, from the same import graph (grimp). Lazy imports inside
functions count as imports: they are where a hidden cycle would sit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "features", "models", "reports", "simulation", "splits")
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='.importlinter', no_cache=True, no_logo=True))")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports in a fresh interpreter whose path starts at ``root`` (the packages imported from there)."""
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return out


def test_the_layering_contracts_hold():
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "BROKEN" not in res.stdout and res.stdout.count("KEPT") == 5


def test_no_import_cycle_between_any_two_modules():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"), ("p.d", "p.e")):
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


@pytest.fixture(scope="module")
def copy_with_a_cycle(tmp_path_factory):
    """The packages copied, with one lazy import that closes a cycle: features.roll -> reports.plots (which
    imports features.roll for its pitch names)."""
    root = tmp_path_factory.mktemp("layers")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", root / ".importlinter")
    roll = root / "features" / "roll.py"
    roll.write_text(roll.read_text() + "\n\ndef _figure():\n    import reports.plots  # noqa: F401\n")
    return root


def test_the_contracts_fail_on_a_deliberately_added_cycle(copy_with_a_cycle):
    res = _lint(copy_with_a_cycle)
    assert res.returncode != 0
    assert "features/ imports neither models/ nor reports/ BROKEN" in res.stdout
    assert "features.roll -> reports.plots" in res.stdout
    script = (f"import sys, json; sys.path.insert(0, {str(ROOT / 'tests')!r}); import grimp; "
              "from test_layers import PACKAGES, _cycles; "
              "print(json.dumps(_cycles(grimp.build_graph(*PACKAGES, cache_dir=None))))")
    found = subprocess.run([sys.executable, "-c", script], cwd=copy_with_a_cycle, capture_output=True, text=True,
                           timeout=300, env={"PYTHONPATH": str(copy_with_a_cycle), "PATH": "/usr/bin:/bin"})
    assert found.returncode == 0, found.stderr[-2000:]
    assert any({"features.roll", "reports.plots"} <= set(c) for c in json.loads(found.stdout)), found.stdout

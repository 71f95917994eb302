"""The CLI's shape: cli.py holds the parser and the error boundary, each command group its own module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmark.cli import COMMANDS, DEFAULT_CORPUS, build_parser, handler

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_of_the_parser_has_a_handler_in_its_group_module():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)
    for command, target in COMMANDS.items():
        module = target.split(":")[0]
        assert module in {"benchmark.cli_run", "benchmark.cli_report", "benchmark.cli_data", "benchmark.cli_ssast",
                          "benchmark.cli_exchange", "benchmark.cli_results", "benchmark.cli_dataset"}
        assert callable(handler(command)) and handler(command).__module__ == module


def test_the_parser_and_help_import_no_command_group_model_or_report():
    """``benchmark --help`` stays fast: the groups (and the models, reports and torch behind them) load only
    when their command runs."""
    code = ("import sys, benchmark.cli as c; c.build_parser().format_help(); "
            "print(sorted(m for m in sys.modules if m.startswith(('benchmark.cli_', 'models', 'reports', "
            "'torch', 'pandas'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_corpus_sources_of_the_help_are_the_ones_pretrain_accepts():
    from benchmark.cli_ssast import CORPUS_SOURCES

    pre = next(a for a in build_parser()._actions if a.dest == "command").choices["pretrain"]
    corpus = next(a for a in pre._actions if a.dest == "corpus")
    assert corpus.default == DEFAULT_CORPUS and set(DEFAULT_CORPUS.split(",")) <= set(CORPUS_SOURCES)
    assert ",".join(CORPUS_SOURCES) in corpus.help

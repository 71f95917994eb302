"""Helpers of the hostile suite: run the CLI in-process and check the one-line error contract."""

from __future__ import annotations

import pytest

from benchmark.cli import main


@pytest.fixture()
def cli(capsys):
    """``cli(*args) -> (exit code, stdout, stderr)`` of ``benchmark`` run in this process."""

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run

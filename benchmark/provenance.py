"""Provenance of a run: versions, git commit, and the manifest's contents."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("numpy", "scipy", "pandas", "scikit-learn", "xgboost", "lightgbm", "torch", "dask", "distributed",
            "percepiano-bench")


def versions() -> dict[str, str]:
    """Installed versions of the packages that shape results (read from metadata, nothing imported)."""
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return res.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def runtime(specs, device: str) -> dict:
    """Runtime facts the run's models report through their registry hook ``provenance(device)``.

    A neural family registers a hook that imports torch lazily and returns its
    version and the device it resolves ``device`` to; a run of tabular models
    calls no hook and imports nothing.
    """
    out: dict = {}
    for spec in specs:
        hook = spec.extra.get("provenance")
        if hook is not None:
            out.update(hook(device))
    return out

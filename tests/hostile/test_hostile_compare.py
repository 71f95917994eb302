"""Issue 17, item 1 (compare): a model name that means different models in the two runs (base model,
parameters, feature sets, members, checkpoint) is named, per row, with what differs; the same model in both
runs says nothing."""

from __future__ import annotations

import json
import shutil

import pytest

from benchmark.config import model_definitions
from reports.compare import compare_runs, definition_differences, format_comparison


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two runs of lopo on the same data: ridge alike, ensemble_mean over other members."""
    from benchmark.cli import main
    from tests.hostile.conftest import _make_fake_percepiano

    root = tmp_path_factory.mktemp("compare_runs")
    data = _make_fake_percepiano()(root / "percepiano")
    common = ["run", "--no-progress", "--models", "ridge,ensemble_mean", "--data-dir", str(data),
              "--cache-dir", str(root / "cache")]
    assert main([*common, "--members", "mean,ridge", "--out", str(root / "a")]) == 0
    assert main([*common, "--members", "ridge", "--out", str(root / "b")]) == 0
    [a], [b] = list((root / "a").iterdir()), list((root / "b").iterdir())
    return a, b


def test_a_run_compared_with_itself_differs_in_nothing(two_runs):
    a, _ = two_runs
    table = compare_runs(a, a, n_resamples=20, definitions=model_definitions)
    assert (table["differs"] == "").all()
    assert "what differs" not in format_comparison(table)


def test_each_row_says_what_differs(two_runs):
    a, b = two_runs
    table = compare_runs(a, b, n_resamples=20, definitions=model_definitions).set_index("model")
    assert table.loc["ridge", "differs"] == ""
    assert table.loc["ensemble_mean", "differs"] == "members mean,ridge vs ridge"
    md = format_comparison(table.reset_index())
    row = next(line for line in md.splitlines() if line.startswith("| ensemble_mean |"))
    assert row.endswith("| members mean,ridge vs ridge |")
    assert "| ridge |" in md and md.split("| ridge |")[1].splitlines()[0].endswith("| same model |")
    assert "two different models under one name" in md


def test_an_old_run_whose_name_shadowed_another_model_is_named(two_runs, tmp_path):
    """A run from before variants were refused a registered name: its 'ridge' was the mean baseline."""
    a, _ = two_runs
    b = shutil.copytree(a, tmp_path / "old")
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["config"]["variants"]["ridge"] = {"model": "mean", "params": {}}
    (b / "manifest.json").write_text(json.dumps(manifest))
    for p in (b / "jobs").glob("ridge__*.params.json"):
        job = json.loads(p.read_text())
        job.update(base="mean", params={"random_state": job["params"]["random_state"]})
        p.write_text(json.dumps(job))
    defs = model_definitions(b)
    assert defs["ridge"]["base"] == "mean" and defs["ridge"]["params"] == {} and defs["ridge"]["source"] == "jobs"
    diff = compare_runs(a, b, n_resamples=20, definitions=model_definitions).set_index("model").loc["ridge", "differs"]
    assert diff.startswith("base model ridge vs mean; alphas ")
    assert "inner_splits 5 vs unset" in diff


def test_definition_differences_by_hand():
    base = {"base": "ast_tiny", "params": {"epochs": 24, "init": "default"}, "features": ["mel"],
            "checkpoint": "a" * 64}
    assert definition_differences(base, dict(base)) == []
    other = {**base, "params": {"epochs": 40, "init": "default"}, "features": ["roll"], "checkpoint": "b" * 64}
    assert definition_differences(base, other) == ["epochs 24 vs 40", "features mel vs roll",
                                                   "checkpoint aaaaaaaaaaaa vs bbbbbbbbbbbb"]
    assert definition_differences(base, {**base, "checkpoint": None}) == ["checkpoint aaaaaaaaaaaa vs none"]
    assert definition_differences(base, None) == ["definition unknown in B"]

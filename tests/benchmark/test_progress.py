"""Issue 17, item 17: the plan comes first, every phase says what it does, the ETA is per model from finished
work, and the estimate comes from the measured costs that docs/benchmarks.md shows."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.jobs import plan
from benchmark.progress import COSTS_PATH, FamilyETA, estimate_seconds, format_duration, job_cost, job_costs
from models import MODELS

ROOT = Path(__file__).resolve().parents[2]


def test_eta_is_per_model_mean_times_remaining_over_workers():
    eta = FamilyETA({"rf": 10, "ast": 4}, workers=2, prior={"ast": 60.0})
    assert eta.seconds() is None  # rf has neither a finished job nor a measured cost: no ETA yet
    eta = FamilyETA({"rf": 10, "ast": 4}, workers=2, prior={"ast": 60.0, "rf": 1.0})
    assert eta.seconds() == pytest.approx((10 * 1.0 + 4 * 60.0) / 2)
    eta.finished("rf", 2.0)
    eta.finished("rf", 4.0)  # rf: mean 3 s, 8 left -> 24 s; ast: prior 60 s x 4 -> 240 s
    assert eta.seconds() == pytest.approx((24 + 240) / 2)
    eta.finished("ast", 100.0)  # ast's own jobs replace the prior: 100 s x 3
    assert eta.seconds() == pytest.approx((24 + 300) / 2)
    for _ in range(8):
        eta.finished("rf", 3.0)
    assert eta.seconds() == pytest.approx(300 / 2)


def test_a_burst_of_fast_jobs_does_not_make_a_slow_family_look_quick():
    """tqdm's global rate after 20 one-second jobs would say 2 s for 2 jobs left; they are 2 networks."""
    eta = FamilyETA({"mean": 20, "ast_tiny": 2}, workers=1, prior={"ast_tiny": 75.0, "mean": 1.0})
    for _ in range(20):
        eta.finished("mean", 1.0)
    assert eta.seconds() == pytest.approx(150.0)


def test_estimate_from_costs_by_hand():
    costs = {"jobs": {"rf": {"seconds": 10.0, "n_train": 1000}}, "tags": {"neural": {"seconds": 70.0, "n_train": 1000}},
             "features": {}}
    jobs = plan(["rf", "ast_tiny", "ensemble_mean", "mean"], [0], {0: 2}, members=["rf", "mean"])
    specs = {j.base: MODELS.get(j.base) for j in jobs}
    n_train = {(0, 0): 500, (0, 1): 1500}
    seconds, unknown = estimate_seconds(jobs, specs, n_train, workers=2, costs=costs)
    # rf 10 s x (0.5 + 1.5) + ast_tiny (by its tag) 70 s x (0.5 + 1.5); ensembles cost nothing; mean unmeasured
    assert seconds == pytest.approx((20 + 140) / 2)
    assert unknown == ["mean"]
    assert job_cost("rf", (), 2000, costs) == pytest.approx(20.0)
    assert [format_duration(s) for s in (0.2, 42, 420, 9000)] == ["0 s", "42 s", "7 min", "2.5 h"]


def test_plan_and_phases_come_before_the_features_and_the_jobs(fake_data_dir, tmp_path, capsys):
    assert main(["run", "--models", "mean,ridge", "--data-dir", str(fake_data_dir), "--cache-dir",
                 str(tmp_path / "c"), "--out", str(tmp_path / "runs"), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    first = {key: next(i for i, line in enumerate(out) if line.startswith(key))
             for key in ("data:", "plan:", "run directory:", "estimate:", "features midi:", "leakage check:", "jobs:")}
    assert list(first) == sorted(first, key=first.get)  # in that order
    assert out[first["plan:"]] == ("plan: 2 model(s) (mean, ridge) x 1 seed(s) (0) x 4 folds of lopo = 8 jobs "
                                   "on 1 worker(s) (joblib)")
    # the counts, then an estimate from the measured per-segment cost
    assert re.fullmatch(r"features midi: 24 segments, 0 cached, 24 to compute \(about \d+ s on 1 worker\(s\)\)",
                        out[first["features midi:"]])
    assert out[first["estimate:"]].startswith("estimate: jobs about ")
    [run] = list((tmp_path / "runs").iterdir())
    assert out[first["run directory:"]] == f"run directory: {run} (written once the features are built)"


def test_costs_file_is_what_docs_show():
    """docs/benchmarks.md's cost table is rendered from benchmark/costs.json by scripts/job_costs.py."""
    spec = importlib.util.spec_from_file_location("job_costs", ROOT / "scripts" / "job_costs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    costs = json.loads(COSTS_PATH.read_text())
    assert module.render(costs) in (ROOT / "docs" / "benchmarks.md").read_text()
    assert job_costs()["jobs"] == costs["jobs"] and costs["jobs"]
    for name, entry in costs["jobs"].items():
        assert name in MODELS and entry["seconds"] >= 0 and entry["n_train"] > 0


def test_make_bench_runs_models_the_readme_tables_show_and_says_why_its_jobs_differ():
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    models = re.search(r"^MODELS \?= (.+)$", makefile, re.M).group(1).split(",")
    block = re.search(r"<!-- results:lopo -->(.*?)<!-- /results:lopo -->", readme, re.S).group(1)
    rows = set(re.findall(r"^\| (\w+) \|", block, re.M))
    assert set(models) <= rows, set(models) - rows
    assert f"make bench   # create .venv, install, run {','.join(models)} " in readme
    jobs = re.search(r"^JOBS \?= (.+)$", makefile, re.M).group(1)
    assert jobs == "-1" and "make bench` uses every core (`JOBS=-1`)" in readme
    # pip never runs silently: every recipe that installs says first what it does, and pip is not --quiet
    recipes = re.findall(r"^\S[^\n]*:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.M)
    installs = [r for r in recipes if "$(PIP) -e" in r]
    assert len(installs) == 2
    for recipe in installs:
        assert recipe.lstrip().startswith("@echo \"make: installing"), recipe
    assert "--quiet" not in re.search(r"^PIP := (.+)$", makefile, re.M).group(1)

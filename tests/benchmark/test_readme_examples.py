"""Issue 19: README's "Bring your own model" examples run as printed: the Python block (benchmark.evaluate with
an SVR and a grouped GridSearchCV) and the study file with a class_path, on the synthetic data."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from benchmark.cli import main
from benchmark.store import RunStore
from tests.conftest import make_fake_percepiano

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text()
    start = text.index("### Bring your own model")
    return text[start:text.index("\n### ", start + 10)]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", _section(), flags=re.S)


def test_the_python_example_runs_as_printed(tmp_path, monkeypatch, capsys):
    data = make_fake_percepiano(tmp_path / "percepiano")
    monkeypatch.setenv("PERCEPIANO_DIR", str(data))
    monkeypatch.setenv("PERCEPIANO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR read again: the run goes under tmp_path
    [code] = _blocks("python")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    result, report = scope["result"], scope["report"]
    assert result.counts["failed"] == 0 and result.models == ["ridge", "SVR", "svr_tuned"]
    assert Path(result.run_dir).is_relative_to(tmp_path / "tmp")
    sig = report.tables["significance"]
    assert set(sig["model"]) == {"ridge", "SVR", "svr_tuned"}
    assert sig.set_index("model").loc["ridge", "pearson_diff"] != sig.set_index("model").loc["SVR", "pearson_diff"]
    assert (Path(result.run_dir) / "report" / "significance.md").is_file()
    out = capsys.readouterr().out
    assert str(result.run_dir) in out and "pearson_pred_lo" in out
    # The search's parameters are in the manifest: the run can be resumed and compared.
    manifest = RunStore(result.run_dir).read_manifest()
    tuned = manifest["config"]["variants"]["svr_tuned"]
    assert tuned["model"] == "sklearn.model_selection._search:GridSearchCV"
    assert tuned["params"]["estimator"]["__class_path__"] == "sklearn.svm._classes:SVR"


def test_the_study_example_runs_as_printed(tmp_path):
    data = make_fake_percepiano(tmp_path / "percepiano")
    study = next(b for b in _blocks("toml") if "class_path" in b)
    (tmp_path / "study.toml").write_text(study)
    assert main(["run", "--no-progress", "--study", str(tmp_path / "study.toml"), "--data-dir", str(data),
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]) == 0
    [run] = list((tmp_path / "runs").iterdir())
    rows, preds = RunStore(run).read_jobs()
    assert set(rows["model"]) == {"rf", "svr_rbf"} and (rows["status"] == "ok").all()
    assert isinstance(preds, pd.DataFrame) and len(preds[preds["model"] == "svr_rbf"])

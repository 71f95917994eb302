"""The HTML report: one self-contained file with the manifest, tables and embedded figures."""

import base64
import json
import re
import shutil

import pandas as pd
import pytest

from reports.html import write_html_report

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_html_report_is_self_contained_and_complete(small_run, tmp_path):
    run = shutil.copytree(small_run, tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["git_commit"] = COMMIT
    (run / "manifest.json").write_text(json.dumps(manifest))
    importance = pd.DataFrame({"family": ["vel", "pitch"], "n_features": [22, 9], "drop_r": [0.3, 0.0],
                               "drop_r_lo": [0.2, -0.01], "drop_r_hi": [0.4, 0.01], "increase_mse": [0.002, 0.0],
                               "increase_mse_lo": [0.001, 0.0], "increase_mse_hi": [0.003, 0.0],
                               "drop_r_pooled": [0.25, 0.0], "n_folds": [4, 4]})
    importance.attrs.update(model="rf", by="family", jobs=[(0, k) for k in range(4)], n_repeats=3, confidence=0.95)

    # an existing folder as target gets report.html
    path = write_html_report(run, tmp_path, n_resamples=50, importance={"rf": importance})
    assert path == tmp_path / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # self-contained: no network, file or script references
    for bad in ("http://", "https://", 'src="file', "src='file", "<script", "<link", "@import"):
        assert bad not in text, bad
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) >= 6  # per-target, CD, scatter, 3 heatmaps, importance
    assert all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)
    assert not re.findall(r'src="(?!data:)', text)
    # manifest, summary table, significance and error analysis
    assert COMMIT in text and manifest["data_hash"] in text and "lopo" in text
    assert "pooled r [95% CI]" in text and "<td>rf</td>" in text
    assert "pooled r, pianists only [95% CI]" in text and "pooled R², pianists only [95% CI]" in text
    assert "<th>pearson, pianists only</th>" in text  # the hardest targets (the run has a Score player)
    assert "Significance" in text and "Hardest performers" in text and "Permutation importance: rf" in text



def test_html_ceiling_table_gives_no_r_over_ceiling_to_a_constant_model(small_run, tmp_path):
    """The mean baseline's r is undefined (constant within every fold): no r / ceiling either (it used to get
    one, from a pooled r of a leave-one-out artefact)."""
    from reports.html import write_html
    from reports.plots import report_figures, save_figures
    from reports.report import build_report
    from reports.rundata import load_run_data

    run = load_run_data(small_run)
    ceiling = pd.DataFrame({"target": run.targets, "mean_raters": 9.0, "split_half_r": 0.8, "spearman_brown": 0.89,
                            "icc1k": 0.88, "ceiling_r": 0.9})
    report = build_report(run, n_resamples=30, ceiling=ceiling)
    per_target = report.tables["per_target"]
    assert per_target["mean.r_over_ceiling"].isna().all() and per_target["rf.r_over_ceiling"].notna().all()
    figures = report_figures(report)
    path = write_html(report, tmp_path / "r.html", figures, save_figures(figures)[1])
    section = path.read_text(encoding="utf-8").split("id='ceiling'")[1].split("<h2")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", section, flags=re.S)
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in rows]
    header = re.findall(r"<th>(.*?)</th>", section)
    col = header.index("mean r / ceiling")
    assert all(c[col] == "n/a" for c in cells) and len(cells) == len(run.targets)
    rf = header.index("rf r / ceiling")
    assert [float(c[rf]) for c in cells] == pytest.approx(list(per_target["rf.r_over_ceiling"].round(3)))

"""Hostile inputs of the commands whose results leave the run: export, leaderboard, stats.

Every bad input is one line ``error: ...`` with exit code 2, naming the file and what to do; none needs a run.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmark.errors import DataError
from reports.leaderboard import load_published
from reports.resultfile import KIND


@pytest.mark.parametrize("text, match", [
    ('[[entry]]\nid = "a"\n', "lacks"),
    ('[[entry]]\nid = "a"\nsource = "s"\nmodel = "m"\nmetric = "auc"\naggregation = "pooled"\nvalue = 1\n'
     'protocol = "p"\ncomparable = []\n', "unknown metric 'auc'"),
    ('[[entry]]\nid = "a"\nsource = "s"\nmodel = "m"\nmetric = "r2"\naggregation = "median"\nvalue = 1\n'
     'protocol = "p"\ncomparable = []\n', "unknown aggregation 'median'"),
    ('[[entry]]\nid = "a"\nsource = "s"\nmodel = "m"\nmetric = "r2"\naggregation = "pooled"\nvalue = "high"\n'
     'protocol = "p"\ncomparable = []\n', "is not a number"),
    ('[[entry]]\nid = "a"\nsource = "s"\nmodel = "m"\nmetric = "r2"\naggregation = "pooled"\nvalue = 1\n'
     'protocol = "p"\n[[entry.comparable]]\nsplit = "nosuch"\nlevel = "same"\nwhy = "w"\n', "not a registered split"),
    ('[[entry]]\nid = "a"\nsource = "s"\nmodel = "m"\nmetric = "r2"\naggregation = "pooled"\nvalue = 1\n'
     'protocol = "p"\n[[entry.comparable]]\nsplit = "lopo"\nlevel = "similar"\nwhy = "w"\n', "comparability"),
    ('[[entry]]\nid = "a"\nsource = "s"\nmodel = "m"\nmetric = "r2"\naggregation = "pooled"\nvalue = 1\n'
     'protocol = "p"\n[[entry.comparable]]\nsplit = "lopo"\nlevel = "same"\n', "gives no reason"),
    ("entry = [", "not valid TOML"),
    ('[[entry]]\nid = "a"\nsource = "s"\nmodel = "m"\nmetric = "r2"\naggregation = "pooled"\nvalue = 1\n'
     'protocol = "p"\ncomparable = []\naggregaton = "per_fold"\n', "unknown key 'aggregaton'"),
    ('[[entry]]\nid = "a"\nsource = "s"\nmodel = "m"\nmetric = "r2"\naggregation = "pooled"\nvalue = 1\n'
     'protocol = "p"\ncomparable = []\npopulation = "humans"\n', "population 'humans'"),
    ('[[entry]]\nid = "a"\nsource = "s"\nmodel = "m"\nmetric = "r2"\naggregation = "per_fold"\nvalue = 1\n'
     'protocol = "p"\ncomparable = []\npopulation = "pianists"\n', "only for the pooled aggregations"),
])
def test_bad_published_files_are_one_line(tmp_path, cli, text, match):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        load_published(path)
    code, _, err = cli("leaderboard", "--published", path)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")


@pytest.mark.parametrize("content, match", [
    ({"kind": KIND, "schema_version": "0.9"}, "no longer reads; re-export it from its run directory"),
    ({"kind": KIND, "schema_version": "2.0"}, "newer than this harness reads"),
    ({"kind": KIND}, "no readable schema_version"),
    ({"kind": KIND, "schema_version": "1.0"}, "is not a valid result file at (top level)"),
    ({"schema_version": "1.0"}, "not a percepiano-bench result file"),
    ("not json", "is not a JSON result file"),
])
def test_bad_result_files_are_one_line(tmp_path, cli, content, match):
    path = tmp_path / "result.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, _, err = cli("leaderboard", path, "--no-published")
    assert code == 2 and err.count("\n") == 1 and match in err


def test_stats_refuses_the_same_files_and_bad_tables_in_one_line(tmp_path, cli):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"kind": KIND, "schema_version": "0.9"}))
    code, _, err = cli("stats", path)
    assert code == 2 and "no longer reads" in err and err.count("\n") == 1
    csv = tmp_path / "scores.csv"
    pd.DataFrame({"model": ["a"], "score": [0.1]}).to_csv(csv, index=False)
    code, _, err = cli("stats", csv)
    assert code == 2 and "no column unit, value" in err and err.count("\n") == 1
    csv.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = cli("stats", csv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_export_and_leaderboard_refuse_what_is_not_a_run(tmp_path, cli):
    code, _, err = cli("export", tmp_path)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    code, _, err = cli("leaderboard", tmp_path)
    assert code == 2 and "not a run directory" in err
    code, _, err = cli("leaderboard", tmp_path / "absent.json")
    assert code == 2 and "cannot read result file" in err


def test_the_shipped_published_file_is_valid():
    assert len(load_published()) >= 8
    with pytest.raises(DataError, match="cannot read published numbers"):
        load_published("/nonexistent/published.toml")

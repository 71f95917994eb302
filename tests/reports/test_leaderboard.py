"""The leaderboard per protocol and the shipped file of published numbers."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.errors import ConfigError
from reports.leaderboard import AGGREGATIONS, board_display, cell, comparison, leaderboard, load_published
from reports.resultfile import read_result
from reports.tables import to_markdown


def test_the_shipped_published_numbers():
    pub = {p.id: p for p in load_published()}
    table3 = {k: v.value for k, v in pub.items() if k.startswith("park2024")}
    assert table3 == {"park2024-performer-bilstm": 0.236, "park2024-performer-midibert": 0.212,
                      "park2024-performer-han": 0.285, "park2024-composition-bilstm": 0.185,
                      "park2024-composition-midibert": 0.313, "park2024-composition-han": 0.397}
    for k in table3:
        p = pub[k]
        assert p.metric == "r2" and p.aggregation == "fixed_test_set" and "Table 3" in p.source
    for k in ("park2024-performer-bilstm", "park2024-performer-han"):
        assert pub[k].comparable["percepiano_performer4"][0] == "same"
    for k in ("park2024-composition-han",):
        assert pub[k].comparable["excerpt_leaky"][0] == "close"
        assert pub[k].comparable["excerpt"][0] == "not comparable" and "near-duplicates" in pub[k].comparable["excerpt"][1]
    audio = [pub["dhiman2026-muq"], pub["dhiman2026-muq-pianoteq"]]
    assert [a.value for a in audio] == [0.533, 0.537] and all(a.aggregation == "per_fold" for a in audio)
    assert pub["dhiman2026-muq-pianoteq"].ci == (0.465, 0.575)
    assert all(a.comparable["excerpt"][0] == "not comparable" for a in audio)
    assert all(p.source and p.model and p.protocol and p.comparable for p in pub.values())


def _as_performer4(result: dict) -> dict:
    """A result file relabelled as a run of the paper's protocol (pooled over a fixed test set)."""
    res = copy.deepcopy(result)
    res["split"]["name"] = "percepiano_performer4"
    res["split"]["partition"] = False
    for m in res["models"]:
        for scores in m["scores"].values():
            for key in ("pooled", "pooled_pianists"):
                scores[key]["aggregation"] = "fixed_test_set"
    return res


@pytest.fixture(scope="module")
def result(small_run):
    return read_result(Path(small_run) / "result.json")


def test_performer4_board_sets_ours_beside_the_papers_in_labelled_columns(result):
    ours = _as_performer4(result)
    (board,) = leaderboard([ours], metric="r2")
    assert board.protocol == "percepiano_performer4"
    assert board.columns == ["fixed_test_set", "fixed_test_set_pianists", "per_fold", "within_performer"]
    published = [r for r in board.rows if "published" in r]
    assert sorted(r["values"]["fixed_test_set"][0] for r in published) == [0.212, 0.236, 0.285]
    assert all(set(r["values"]) == {"fixed_test_set"} and r["comparability"] == "same" for r in published)
    # Our rows: the file's own numbers, each under its own aggregation.
    rf = next(r for r in board.rows if r["model"] == "rf")
    entry = next(m for m in ours["models"] if m["name"] == "rf")["scores"]["r2"]
    assert rf["values"]["fixed_test_set"][0] == entry["pooled"]["value"]
    assert rf["values"]["per_fold"][0] == entry["per_fold"]["mean"] and rf["comparability"] == "ours"
    assert rf["values"]["per_fold"][2] == entry["per_fold"]["sd"]
    assert rf["values"]["fixed_test_set_pianists"][0] == entry["pooled_pianists"]["value"]
    # Ordered by the first column, higher R^2 first.
    first = [r["values"]["fixed_test_set"][0] for r in board.rows]
    assert first == sorted(first, reverse=True)
    md = to_markdown(board_display(board))
    assert "R² (fixed test set, mean over fold models) [95% CI]" in md and "R² (per fold, mean ± sd over folds)" in md
    assert "0.285" in md and "Park et al. 2024" in md and "never share a column" in md
    assert f"| {cell(rf['values']['per_fold'])} |" in md and " ± " in cell(rf["values"]["per_fold"])
    # The three Table 3 rows share one source and reason: one note names them all.
    assert md.count("same protocol, the same fold ids") == 1
    frame = board.frame()
    assert list(frame["fixed_test_set"].notna()) == [True] * len(frame)
    assert frame.loc[frame["origin"].str.startswith("Park"), "per_fold"].isna().all()
    park = frame[frame["published_id"] == "park2024-performer-han"]
    assert len(park) == 1 and park["why"].iloc[0].startswith("the same fold ids")


def test_aggregation_filter_keeps_rows_apart(result):
    """--aggregation per_fold: the paper's fixed-test-set numbers are not put into the per-fold column."""
    (board,) = leaderboard([_as_performer4(result)], metric="r2", aggregations=("per_fold",))
    assert board.columns == ["per_fold"] and all("published" not in r for r in board.rows)
    assert {r["model"] for r in board.rows} == {"mean", "ridge", "rf"}


def test_not_comparable_entries_are_named_under_the_table(result):
    (board,) = leaderboard([result], metric="r2")  # the small run is lopo
    assert board.protocol == "lopo" and all("published" not in r for r in board.rows)
    named = {p.id for p, _ in board.not_comparable}
    assert {"park2024-performer-han", "dhiman2026-muq-pianoteq"} <= named
    md = to_markdown(board_display(board))
    assert "Not comparable, left out: Dhiman 2026" in md
    assert "MuQ layers 9-12 with Pianoteq soundfont augmentation (the paper's best) R² 0.537" in md
    # One note per source and reason, not one per row.
    assert md.count("Not comparable, left out: Park et al. 2024") == 1 and "R² 0.212, Bi-LSTM + score" in md
    lines = comparison([board])
    assert len(lines) == 1 and lines[0].startswith("Under `lopo` no published number is comparable: Park et al.")


def test_published_only_boards_and_protocol_choice():
    boards = leaderboard([], metric="r2")
    protocols = [b.protocol for b in boards]
    assert protocols == ["percepiano_performer4", "excerpt_leaky"]
    leaky = boards[1]
    assert leaky.columns == ["fixed_test_set", "per_fold"]
    assert all(r["comparability"] == "close" for r in leaky.rows)
    (only,) = leaderboard([], metric="r2", protocols=("excerpt",))
    assert only.rows == [] and len(only.not_comparable) == 5
    with pytest.raises(ConfigError, match="protocol 'kfold'"):
        leaderboard([], protocols=("kfold",))
    with pytest.raises(ConfigError, match="unknown metric"):
        leaderboard([], metric="accuracy")
    assert leaderboard([], metric="mse") == []  # no published MSE: nothing to show


def test_nothing_to_show_is_one_line(capsys):
    assert main(["leaderboard", "--metric", "mse"]) == 2
    assert "nothing to show" in capsys.readouterr().err


def test_leaderboard_cli_formats(small_run, tmp_path, capsys):
    assert main(["leaderboard", str(small_run), "--metric", "pearson"]) == 0
    out = capsys.readouterr().out
    assert "Leaderboard, protocol lopo: r." in out and "r (pooled out-of-fold) [95% CI]" in out
    csv = tmp_path / "b.csv"
    assert main(["leaderboard", str(small_run / "result.json"), "--format", "csv", "-o", str(csv)]) == 0
    frame = pd.read_csv(csv)
    assert set(frame["model"]) == {"mean", "ridge", "rf"} and (frame["protocol"] == "lopo").all()
    assert main(["leaderboard", "--protocol", "percepiano_performer4", "--format", "tex"]) == 0
    tex = capsys.readouterr().out
    assert "\\begin{tabular}" in tex and "0.285" in tex
    assert main(["leaderboard", "--format", "xls"]) == 2
    assert "--format 'xls'" in capsys.readouterr().err


def test_a_run_directory_without_result_json_is_exported_on_the_fly(small_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "old"
    shutil.copytree(small_run, run)
    (run / "result.json").unlink()
    assert main(["leaderboard", str(run), "--no-published", "--n-resamples", "20"]) == 0
    captured = capsys.readouterr()
    assert "writing it now" in captured.err and "| rf |" not in captured.err
    assert json.loads((run / "result.json").read_text())["statistics"]["n_resamples"] == 20
    assert main(["leaderboard", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_aggregations_are_the_result_files():
    from reports.resultfile import AGGREGATIONS as FILE_AGGREGATIONS

    assert set(AGGREGATIONS) == set(FILE_AGGREGATIONS)


def test_pianists_only_columns_beside_the_pooled_ones(result):
    """Our pooled column has its pianists-only column beside it (the synthetic data has a Score player, so the two
    differ); published numbers, over all players, never enter it; --population pianists shows those columns alone."""
    (board,) = leaderboard([result], metric="pearson", published=[])
    assert board.columns == ["pooled", "pooled_pianists", "per_fold", "within_performer"]
    for r in board.rows:
        entry = next(m for m in result["models"] if m["name"] == r["model"])["scores"]["pearson"]
        if entry["pooled"]["value"] is None:
            continue
        assert r["values"]["pooled"][0] == entry["pooled"]["value"]
        assert r["values"]["pooled_pianists"][0] == entry["pooled_pianists"]["value"]
        assert r["values"]["pooled_pianists"][1] == tuple(entry["pooled_pianists"]["ci_segments"])
    rf = next(r for r in board.rows if r["model"] == "rf")
    assert rf["values"]["pooled"][0] != rf["values"]["pooled_pianists"][0]
    assert "r (pooled out-of-fold, pianists only) [95% CI]" in to_markdown(board_display(board))
    (only,) = leaderboard([_as_performer4(result)], metric="r2", population="pianists")
    assert only.columns == ["fixed_test_set_pianists"] and all("published" not in r for r in only.rows)
    with pytest.raises(ConfigError, match="unknown population"):
        leaderboard([result], population="humans")


def test_comparison_sets_our_best_beside_the_papers_best_in_one_column(result):
    ours = _as_performer4(result)
    published = load_published()
    protocols = ("percepiano_performer4", "excerpt_leaky")
    boards = leaderboard([ours], published, metric="r2", protocols=protocols)
    lines = comparison(boards, published)
    best = max((m for m in ours["models"]), key=lambda m: m["scores"]["r2"]["pooled"]["value"] or -9)
    value = best["scores"]["r2"]["pooled"]["value"]
    (p4,) = [line for line in lines if line.startswith("Under `percepiano_performer4`")]
    assert f"our best, `{best['name']}`" in p4 and "the best published, Bi-LSTM + score alignment + HAN" in p4
    assert f"difference {value - 0.285:+.3f}" in p4 and "R² (fixed test set, mean over fold models)" in p4
    # No run of ours under excerpt_leaky: those entries are named as not set beside one, grouped by source.
    rest = [line for line in lines if line.startswith("Not set beside")]
    assert len(rest) == 2 and "0.397" in rest[0] and "0.537" in rest[1] and "not comparable to `excerpt`" in rest[1]
    # A published per-fold number with our rows lacking it says so instead of borrowing another column.
    only_pooled = copy.deepcopy(ours)
    for m in only_pooled["models"]:
        m["scores"]["r2"]["per_fold"] = None
    only_pooled["split"]["name"] = "excerpt_leaky"
    for m in only_pooled["models"]:
        for key in ("pooled", "pooled_pianists"):
            m["scores"]["r2"][key]["aggregation"] = "pooled"
    (leaky,) = leaderboard([only_pooled], published, metric="r2")
    lines = comparison([leaky], published)
    muq = [line for line in lines if "Dhiman" in line and line.startswith("Under")]
    assert muq and all("no number of ours has that aggregation" in line for line in muq)


def test_readme_references_script_writes_its_block(result, tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "readme_references.py"
    spec = importlib.util.spec_from_file_location("readme_references", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    res = tmp_path / "p4.json"
    res.write_text(json.dumps(_as_performer4(result)))
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- results:references -->\nold\n<!-- /results:references -->\nafter\n")
    script.main([str(res), "--models", "rf,ridge", "--file", str(readme)])
    text = readme.read_text()
    assert text.startswith("before\n<!-- results:references -->\nGenerated by `python scripts/readme_references.py")
    assert text.endswith("<!-- /results:references -->\nafter\n") and "\nold\n" not in text
    assert "Leaderboard, protocol percepiano_performer4" in text and "| mean |" not in text
    assert "Under `percepiano_performer4` (same protocol as Park et al. 2024" in text
    with pytest.raises(SystemExit, match="no model 'lgbm'"):
        script.main([str(res), "--models", "lgbm", "--file", str(readme)])


def test_a_published_pianists_number_goes_into_the_pianists_column(result, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[[entry]]\nid = "x"\nsource = "S"\nmodel = "M"\nmetric = "pearson"\naggregation = "pooled"\n'
                    'value = 0.5\nprotocol = "p"\npopulation = "pianists"\n[[entry.comparable]]\nsplit = "lopo"\n'
                    'level = "close"\nwhy = "w"\n')
    (board,) = leaderboard([result], load_published(path), metric="pearson")
    (row,) = [r for r in board.rows if "published" in r]
    assert set(row["values"]) == {"pooled_pianists"} and row["values"]["pooled_pianists"][0] == 0.5

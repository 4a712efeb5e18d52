"""`heed compare`: two generations of one index on the same judged queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from heed.errors import GenerationNotFound, InvalidInput
from heed.store.clicks import record_click

from .conftest import writable_copy

# Judged on mini.jsonl's ids; generation 2 of `two_generations` turned module:csv into zebras.
QUERIES = {"q1": "read and write CSV files", "q2": "parse a JSON string into an object"}
QRELS = [("q1", "module:csv", 2), ("q1", "func:csv.reader", 1), ("q2", "func:json.loads", 1)]


def judged(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("")  # the index is the corpus here
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    )
    rows = ["query-id\tcorpus-id\tscore", *("\t".join(map(str, r)) for r in QRELS)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return folder


def compare(index: Path, *args: str) -> CliRunner:
    return CliRunner().invoke(cli_app, ["compare", *args, "--index", str(index), "--no-self"])


def test_compare_reports_per_mode_deltas_and_the_queries_that_lost(two_generations, tmp_path):
    out = tmp_path / "compare.json"
    collection = judged(tmp_path / "judged")
    result = compare(
        two_generations.index_dir, "1", "2", "--collection", str(collection),
        "--modes", "bm25,dense", "--json", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert (doc["a"]["generation"], doc["b"]["generation"]) == (1, 2)
    assert (doc["a"]["documents"], doc["b"]["documents"]) == (26, 27)
    [found] = doc["sets"]
    assert found["name"] == "judged" and found["queries"] == 2
    for mode in ("bm25", "dense"):
        row = found["modes"][mode]
        assert row["delta"]["ndcg@10"] == pytest.approx(row["b"]["ndcg@10"] - row["a"]["ndcg@10"])
        assert row["delta"]["ndcg@10"] < 0  # the CSV page is gone
        assert [q["query_id"] for q in row["lost"]] == ["q1"]
        assert row["lost"][0]["delta"] < 0 and row["gained"] == []
        assert (row["queries_lost"], row["queries_gained"]) == (1, 0)
    assert "read and write CSV files" in result.output and "lost" in result.output


def test_a_generation_compared_with_itself_moves_nothing(two_generations, tmp_path):
    out = tmp_path / "same.json"
    collection = judged(tmp_path / "judged")
    args = ["2", "2", "--collection", str(collection), "--modes", "bm25", "--json", str(out)]
    assert compare(two_generations.index_dir, *args).exit_code == 0
    row = json.loads(out.read_text())["sets"][0]["modes"]["bm25"]
    assert set(row["delta"].values()) == {0.0}
    assert row["gained"] == row["lost"] == []
    assert row["queries_gained"] == row["queries_lost"] == 0


def test_compare_on_clicks(two_generations, tmp_path):
    index = writable_copy(two_generations, tmp_path).index_dir
    record_click(index, "read a csv file", "module:csv", 1, 1, "hybrid")
    out = tmp_path / "clicks.json"
    result = compare(index, "1", "2", "--clicks", "--modes", "bm25", "--json", str(out))
    assert result.exit_code == 0, result.output
    [found] = json.loads(out.read_text())["sets"]
    assert found["name"] == "clicks" and found["modes"]["bm25"]["delta"]["ndcg@10"] < 0


def test_compare_refuses_unknown_generations_and_having_no_queries(two_generations, tmp_path):
    missing = compare(two_generations.index_dir, "1", "5", "--collection", str(tmp_path))
    assert isinstance(missing.exception, GenerationNotFound)
    nothing = compare(two_generations.index_dir, "1", "2")
    assert isinstance(nothing.exception, InvalidInput)
    assert "nothing to compare on" in str(nothing.exception)


def test_compare_by_default_runs_self_evaluation_queries_on_held_out_copies(
    two_generations, tmp_path
):
    out = tmp_path / "self.json"
    args = ["compare", "2", "2", "--index", str(two_generations.index_dir)]
    result = CliRunner().invoke(
        cli_app, [*args, "--modes", "bm25", "--queries", "10", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    [found] = json.loads(out.read_text())["sets"]
    assert found["name"].startswith("self:") and found["queries"] > 0
    row = found["modes"]["bm25"]
    assert set(row["delta"].values()) == {0.0}  # the same generation, the same held-out queries

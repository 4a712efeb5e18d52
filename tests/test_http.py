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

"""Expensive searches are bounded: a capped re-rank depth and explain page, and a bounded queue
for cross-encoder work that answers 503 with Retry-After instead of stalling everyone."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from service.app import create_app

from .conftest import LiveServer

EXPENSIVE = {"query": "read and write files", "k": 20, "candidates": 100, "explain": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "csv", "candidates": 101}, "candidates"),
        ({"query": "csv", "candidates": 1000}, "candidates"),
        ({"query": "csv", "k": 21, "explain": True}, "k"),
    ],
)
def test_search_cost_above_the_caps_is_a_422(client, body, field):
    r = client.post("/search", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith(field), error


def test_search_at_the_caps_is_served(client):
    r = client.post(
        "/search",
        json={"query": "csv", "candidates": 100, "k": 20, "explain": True, "rerank": True},
    )
    assert r.status_code == 200, r.text
    assert r.json()["reranked"] and r.json()["results"][0]["highlights"] is not None


@pytest.fixture(scope="module")
def small_gate(settings):
    tight = settings.model_copy(update={"model_slots": 1, "model_queue": 1, "model_wait_s": 2.0})
    with LiveServer(create_app(tight)) as live:
        yield live


def test_a_flood_of_expensive_searches_gets_503_while_cheap_requests_are_served(small_gate):
    answers: list[tuple[int, float, httpx.Response]] = []

    def expensive() -> None:
        started = time.monotonic()
        r = httpx.post(f"{small_gate.url}/search", json=EXPENSIVE, timeout=120)
        answers.append((r.status_code, time.monotonic() - started, r))

    threads = [threading.Thread(target=expensive) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # the flood is in
    started = time.monotonic()
    cheap = httpx.post(
        f"{small_gate.url}/search",
        json={"query": "read a csv file", "rerank": False},
        timeout=60,
    )
    cheap_s = time.monotonic() - started
    health = httpx.get(f"{small_gate.url}/healthz", timeout=60)
    for t in threads:
        t.join()
    assert cheap.status_code == 200 and health.status_code == 200
    assert cheap_s < 5, f"a search without the cross-encoder waited {cheap_s:.1f} s"
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) == {200, 503} and statuses.count(200) >= 1, statuses
    for status, seconds, r in answers:
        if status == 503:
            assert r.json()["error"]["code"] == "overloaded"
            assert int(r.headers["retry-after"]) >= 1
            assert seconds < 2.0 + 3, f"a refused request stalled {seconds:.1f} s first"
    after = httpx.post(f"{small_gate.url}/search", json=EXPENSIVE, timeout=120)
    assert after.status_code == 200  # slots are given back


def test_page_and_api_searches_wait_for_a_held_slot_but_cheap_ones_do_not(settings):
    from fastapi.testclient import TestClient

    tight = settings.model_copy(update={"model_slots": 1, "model_queue": 0, "model_wait_s": 0.5})
    app = create_app(tight)
    with TestClient(app) as c:
        with app.state.model_gate.slot():  # a long search holds the only slot
            page = c.get("/", params={"q": "csv"})
            assert page.status_code == 503 and page.headers["retry-after"] == "1"
            api = c.post("/search", json={"query": "csv", "rerank": True})
            assert api.status_code == 503 and api.json()["error"]["code"] == "overloaded"
            assert c.get("/").status_code == 200
            assert c.post("/search", json={"query": "csv", "rerank": False}).status_code == 200
        assert c.get("/", params={"q": "csv"}).status_code == 200  # the slot was given back

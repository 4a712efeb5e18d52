"""Document writes over HTTP, behind the admin key; search behind the read key when set."""

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app

ADMIN = {"Authorization": "Bearer admin-secret"}
OTTER = {
    "title": "Sea otters",
    "text": "Sea otters float on their backs and crack shellfish open with stones.",
    "metadata": {"kind": "animal"},
}


@pytest.fixture
def admin_client(writable_settings):
    settings = writable_settings.model_copy(update={"admin_key": SecretStr("admin-secret")})
    with TestClient(create_app(settings)) as c:
        yield c


def doc_ids(client, query, **options):
    body = client.post("/search", json={"query": query, "k": 5, **options}).json()
    return [r["doc_id"] for r in body["results"]]


def test_writes_are_disabled_without_an_admin_key(client):
    r = client.put("/documents/otter", json=OTTER)
    assert r.status_code == 403 and "HEED_ADMIN_KEY" in r.json()["error"]["message"]


def test_writes_need_the_right_key(admin_client):
    assert admin_client.put("/documents/otter", json=OTTER).status_code == 401
    wrong = admin_client.put("/documents/otter", json=OTTER, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
    assert admin_client.delete("/documents/module:csv").status_code == 401


def test_put_makes_a_document_searchable_and_same_content_is_not_re_embedded(admin_client):
    live = admin_client.get("/healthz").json()
    r = admin_client.put("/documents/otter", json=OTTER, headers=ADMIN)
    assert r.status_code == 200, r.text
    # a small write commits in place: the same generation, one version on
    assert r.json()["added"] == 1 and r.json()["generation"] == live["generation"]
    assert r.json()["version"] == live["version"] + 1
    assert doc_ids(admin_client, "which animal uses tools to open shellfish")[0] == "otter"
    again = admin_client.put("/documents/otter", json=OTTER, headers=ADMIN).json()
    assert again["passages_embedded"] == 0 and again["unchanged"] == 1
    assert again["version"] == live["version"] + 1  # nothing changed, nothing committed


def test_delete_removes_a_document_from_every_mode(admin_client):
    assert "module:csv" in doc_ids(admin_client, "read a csv file", mode="keyword")
    r = admin_client.delete("/documents/module:csv", headers=ADMIN)
    assert r.status_code == 200 and r.json()["removed"] == 1
    for mode in ("dense", "keyword", "hybrid"):
        assert "module:csv" not in doc_ids(admin_client, "read a csv file", mode=mode)
    assert admin_client.get("/documents/module:csv").status_code == 404
    missing = admin_client.delete("/documents/module:csv", headers=ADMIN)
    assert missing.status_code == 404


def test_batch_upsert_is_one_write(admin_client):
    live = admin_client.get("/healthz").json()
    batch = {
        "documents": [{"id": f"n{i}", "text": f"note number {i} about otters"} for i in range(3)]
    }
    r = admin_client.post("/documents", json=batch, headers=ADMIN)
    assert r.status_code == 200 and r.json()["added"] == 3
    now = admin_client.get("/healthz").json()
    assert (now["generation"], now["version"]) == (live["generation"], live["version"] + 1)
    assert now["documents"] == live["documents"] + 3


@pytest.mark.parametrize(
    "body",
    [
        {"documents": []},
        {"documents": [{"id": "x", "text": "   "}]},
        {"documents": [{"text": "t"}]},
    ],
)
def test_bad_upserts_are_422(admin_client, body):
    r = admin_client.post("/documents", json=body, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_read_key_guards_search_and_documents(settings):
    locked = settings.model_copy(
        update={"read_key": SecretStr("reader"), "admin_key": SecretStr("admin-secret")}
    )
    with TestClient(create_app(locked)) as c:
        assert c.get("/search", params={"q": "csv"}).status_code == 401
        assert c.get("/documents/module:csv").status_code == 401
        ok = {"Authorization": "Bearer reader"}
        assert c.get("/search", params={"q": "csv"}, headers=ok).status_code == 200
        assert c.get("/search", params={"q": "csv"}, headers=ADMIN).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes stay open


def test_oversized_body_is_413_before_it_is_read(writable_settings):
    small = writable_settings.model_copy(
        update={"admin_key": SecretStr("admin-secret"), "max_body_bytes": 2048}
    )
    with TestClient(create_app(small)) as c:
        big = {"documents": [{"id": "big", "text": "word " * 2000}]}
        r = c.post("/documents", json=big, headers=ADMIN)
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        assert c.post("/search", json={"query": "small is fine"}).status_code == 200


def test_rate_limit_per_client_is_a_json_429(settings):
    limited = settings.model_copy(update={"rate_limit": "3/minute"})
    with TestClient(create_app(limited)) as c:
        codes = [
            c.get("/search", params={"q": "csv", "rerank": "false"}).status_code for _ in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]
        r = c.get("/search", params={"q": "csv"})
        assert r.json()["error"]["code"] == "rate_limited"
        other = c.get("/search", params={"q": "csv"}, headers={"Authorization": "Bearer other"})
        assert other.status_code == 200  # another key is another client

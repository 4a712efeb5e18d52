"""A reindex or prune that would drop most of the live documents refuses unless forced."""

import time

import httpx
import pytest
from pydantic import SecretStr

from heed.errors import ShrinkRefused
from heed.store import current_generation, live_manifest
from indexer.build import build_index
from indexer.sources import read_documents
from service.app import create_app

from .conftest import FIXTURES, MINI, LiveServer
from .test_cli import heed

ADMIN = {"Authorization": "Bearer admin-secret"}
FORMATS = FIXTURES / "formats"  # 7 documents against the index's 26: a 73 % shrink


@pytest.fixture
def server(writable_settings, tmp_path):
    """Reindex sources must lie under a source root: the fixtures and this test's folder."""
    settings = writable_settings.model_copy(
        update={"admin_key": SecretStr("admin-secret"), "source_roots": [FIXTURES, tmp_path]}
    )
    with LiveServer(create_app(settings)) as live:
        yield live


def finished(server, job_id, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.url}/admin/jobs/{job_id}", headers=ADMIN).json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    pytest.fail("job did not finish")


def test_reindex_from_an_empty_folder_is_refused_and_the_index_kept(
    server, writable_settings, tmp_path
):
    index_dir = writable_settings.index_dir
    live, before = current_generation(index_dir), live_manifest(index_dir).documents
    empty = tmp_path / "empty"
    empty.mkdir()
    r = httpx.post(f"{server.url}/admin/reindex", headers=ADMIN, json={"source": str(empty)})
    assert r.status_code == 202
    job = finished(server, r.json()["job_id"])
    assert job["state"] == "failed"
    assert "0 of its 26 documents" in job["error"] and "allow_shrink" in job["error"]
    assert current_generation(index_dir) == live
    assert httpx.get(f"{server.url}/healthz").json()["documents"] == before
    assert httpx.get(f"{server.url}/search", params={"q": "csv"}).json()["results"]


def test_reindex_that_drops_most_documents_needs_allow_shrink(server, writable_settings):
    index_dir = writable_settings.index_dir
    live = current_generation(index_dir)
    body = {"source": str(FORMATS)}
    refused = finished(
        server, httpx.post(f"{server.url}/admin/reindex", headers=ADMIN, json=body).json()["job_id"]
    )
    assert refused["state"] == "failed" and "7 of its 26 documents" in refused["error"]
    assert current_generation(index_dir) == live
    forced = httpx.post(
        f"{server.url}/admin/reindex", headers=ADMIN, json={**body, "allow_shrink": True}
    )
    job = finished(server, forced.json()["job_id"])
    assert job["state"] == "succeeded", job
    assert httpx.get(f"{server.url}/healthz").json()["documents"] == 7


def test_prune_that_drops_most_documents_raises_shrink_refused(writable_settings, encoder):
    with pytest.raises(ShrinkRefused) as refused:
        build_index(read_documents([FORMATS]), writable_settings, prune=True, encoder=encoder)
    assert refused.value.code == "shrink_refused" and refused.value.status == 409
    assert live_manifest(writable_settings.index_dir).documents == 26
    # A prune that keeps most documents needs no force; the share is a setting.
    lenient = writable_settings.model_copy(update={"max_shrink": 0.8})
    stats = build_index(read_documents([FORMATS]), lenient, prune=True, encoder=encoder)
    assert stats.removed == 26 and live_manifest(writable_settings.index_dir).documents == 7


def test_cli_prune_and_reindex_refuse_in_one_line_unless_forced(writable_settings, tmp_path):
    index_dir = str(writable_settings.index_dir)
    live = current_generation(writable_settings.index_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (("index", str(empty), "--prune"), ("reindex", str(empty))):
        refused = heed(*args, "--index", index_dir)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "0 of its 26 documents" in refused.stderr and "--force" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert current_generation(writable_settings.index_dir) == live
    forced = heed("index", str(FORMATS), "--prune", "--force", "--index", index_dir)
    assert forced.returncode == 0, forced.stderr
    assert live_manifest(writable_settings.index_dir).documents == 7
    grown = heed("index", str(MINI), "--prune", "--index", index_dir)  # 7 -> 26: no force needed
    assert grown.returncode == 0, grown.stderr

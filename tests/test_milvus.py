"""The Milvus backend against a real Milvus Lite: embedded (a file) and as a server on 127.0.0.1.

Milvus Lite is the test double for a Milvus cluster: the same pymilvus ``MilvusClient`` API, by
URI. The session's FAISS index is migrated (exact vectors, no embedding) so both backends hold
the same vectors and can be compared query by query.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

pytest.importorskip(
    "pymilvus", reason="the milvus extra is not installed: pip install heed[milvus]"
)
pytest.importorskip(
    "milvus_lite", reason="the milvus extra is not installed: pip install heed[milvus]"
)

from cli import app
from heed.errors import HeedError, UnknownFilterField
from heed.settings import Settings
from heed.store import current_generation, milvus_index, open_reader
from heed.store.live import open_live
from heed.store.milvus_reader import MilvusReader, stitch
from heed.store.vectors import target_of
from indexer.build import repair_index
from indexer.migrate import migrate_index
from search.searcher import Models, load_models, open_searcher
from service.app import create_app

from .conftest import ADMIN, DONE, FIXTURES, ROOT, LiveServer, free_port, searches_running, wait_for

QUERIES = [
    "how do I read a csv file",
    "parse json text",
    "sort a list in place",
    "regular expression",
]


def on_milvus(settings: Settings, tmp_path: Path, uri: str, prefix: str) -> Settings:
    """A copy of ``settings``'s index, its vectors migrated into Milvus at ``uri``."""
    copy = tmp_path / "idx"
    shutil.copytree(settings.index_dir, copy)
    moved = settings.model_copy(
        update={
            "index_dir": copy,
            "vector_backend": "milvus",
            "milvus_uri": uri,
            "milvus_prefix": prefix,
            "admin_key": SecretStr("admin-secret"),
            "source_roots": [FIXTURES],
        }
    )
    migrate_index(moved, "milvus")
    return moved


@pytest.fixture(scope="module")
def lite(settings, tmp_path_factory) -> Settings:
    tmp = tmp_path_factory.mktemp("lite")
    return on_milvus(settings, tmp, str(tmp / "lite.db"), "emb")


@pytest.fixture(scope="module")
def models(settings) -> Models:
    return load_models(settings)


def searchers(settings, lite, models):
    faiss = open_searcher(settings, open_reader(settings.index_dir), models)
    milvus = open_searcher(lite, open_live(lite), models)
    return faiss, milvus


def test_the_live_reader_on_milvus_needs_no_index_folder(lite):
    reader = open_live(lite.model_copy(update={"index_dir": Path("/nonexistent")}))
    assert isinstance(reader, MilvusReader)
    assert reader.manifest.backend == "milvus" and reader.manifest.passages == 95
    assert reader.metadata_fields == {"kind", "module"}


def test_dense_search_on_milvus_returns_faiss_ids_and_scores(settings, lite, models):
    faiss, milvus = searchers(settings, lite, models)
    vec = models.encoder.encode_queries(QUERIES[:1])[0]
    want, got = faiss.reader.dense(vec, 10), milvus.reader.dense(vec, 10)
    assert [i for i, _ in got] == [i for i, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-4)


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_every_mode_on_milvus_finds_what_faiss_finds(settings, lite, models, mode):
    faiss, milvus = searchers(settings, lite, models)
    for query in QUERIES:
        want = faiss.search(query, 5, mode=mode, rerank=False)
        got = milvus.search(query, 5, mode=mode, rerank=False)
        assert got.mode == mode and got.hits
        ids = [h.passage.doc_id for h in got.hits]
        assert ids[0] in [h.passage.doc_id for h in want.hits[:3]], (query, ids)
        assert len(set(ids)) == len(ids)  # collapsed: one passage per document


def test_keyword_scores_are_positive_and_best_first_whatever_milvus_reports(lite):
    hits = open_live(lite).keyword("csv reader dialect", 10)
    scores = [s for _, s in hits]
    assert scores and min(scores) > 0 and scores == sorted(scores, reverse=True)


def test_a_long_querys_term_statistics_come_from_milvus(settings, lite, models):
    frequencies = open_live(lite).document_frequencies(['"csv"', '"zebra"'])
    assert frequencies['"csv"'] > 0 and frequencies['"zebra"'] == 0
    _, milvus = searchers(settings, lite, models)
    example = open_reader(settings.index_dir).document("module:csv")["text"]
    out = milvus.search(example, 3, mode="keyword", rerank=False)
    assert out.keyword_terms and out.hits[0].passage.doc_id == "module:csv"


def test_rerank_explain_and_collapse_on_milvus(settings, lite, models):
    _, milvus = searchers(settings, lite, models)
    out = milvus.search("read a csv file", 5, rerank=True, explain=True)
    assert out.reranked and out.explain_method
    assert all(h.rerank_score is not None and h.highlights is not None for h in out.hits)
    assert all(h.dense_score is not None for h in out.hits)  # exact vectors read from Milvus
    flat = milvus.search("csv", 20, mode="keyword", rerank=False, collapse=False)
    docs = [h.passage.doc_id for h in flat.hits]
    assert len(docs) > len(set(docs))  # uncollapsed: several passages of one document


def test_filters_on_milvus_keep_only_matching_documents(settings, lite, models):
    _, milvus = searchers(settings, lite, models)
    for mode in ("dense", "keyword", "hybrid"):
        out = milvus.search("read a file", 10, mode=mode, rerank=False, filters={"kind": "module"})
        assert out.hits and all(h.passage.metadata["kind"] == "module" for h in out.hits)
    with pytest.raises(UnknownFilterField, match="known fields: kind, module"):
        milvus.search("x", 3, filters={"colour": "red"})


def test_documents_read_from_milvus_match_the_ledger(settings, lite):
    want = open_reader(settings.index_dir).document("module:csv")
    got = open_live(lite).document("module:csv")
    assert got["passages"] == want["passages"] and got["metadata"] == want["metadata"]
    assert got["text"].split() == want["text"].split()  # stitched from the passages


def test_stitch_rebuilds_overlapping_passages():
    assert stitch([(0, "abcd"), (2, "cdef"), (8, "ij")]) == "abcdef  ij"


def test_heed_check_compares_the_ledger_with_the_collection_and_repair_rebuilds(
    lite, tmp_path, encoder
):
    moved = on_milvus(lite, tmp_path, str(tmp_path / "check.db"), "chk")
    assert open_reader(moved.index_dir).consistency().ok
    live = open_live(moved)
    milvus_index.client(target_of(moved)).delete(live.collection, ids=[3])
    found = open_reader(moved.index_dir).consistency(sample=None)
    assert found.missing_vectors == [3] and not found.ok
    stats = repair_index(moved, encoder=encoder)
    assert stats.passages_embedded == 0 and open_reader(moved.index_dir).consistency().ok
    assert open_live(moved).collection != live.collection  # a new collection, switched


def test_upsert_and_delete_over_http_on_milvus(lite, tmp_path):
    moved = on_milvus(lite, tmp_path, str(tmp_path / "http.db"), "web")
    otter = {"title": "Sea otters", "text": "Sea otters crack shellfish open with stones."}
    with TestClient(create_app(moved)) as c:
        assert c.put("/documents/otter", json=otter, headers=ADMIN).status_code == 200
        for mode in ("dense", "keyword"):
            r = c.get("/search", params={"q": "otters shellfish", "mode": mode, "k": 1}).json()
            assert r["results"][0]["doc_id"] == "otter", mode
        assert c.get("/documents/otter").json()["text"] == otter["text"]
        assert c.delete("/documents/otter", headers=ADMIN).status_code == 200
        r = c.get("/search", params={"q": "otters shellfish", "k": 3}).json()
        assert "otter" not in [h["doc_id"] for h in r["results"]]
        assert c.get("/documents/otter").status_code == 404
    assert open_reader(moved.index_dir).consistency(sample=None).ok


def test_migrate_back_to_faiss_keeps_every_vector(lite, tmp_path):
    moved = on_milvus(lite, tmp_path, str(tmp_path / "back.db"), "back")
    stats = migrate_index(moved, "faiss")
    reader = open_reader(moved.index_dir)
    assert stats.vectors_rebuilt == 95 and reader.manifest.backend == "faiss"
    assert reader.consistency(sample=None).ok


# -- Milvus Lite as a server on 127.0.0.1 ----------------------------------------------------------
class LiteServer:
    """``milvus-lite server`` in a subprocess; restartable on the same data directory."""

    def __init__(self, data_dir: Path):
        self.data_dir, self.port = data_dir, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LiteServer:
        exe = str(Path(sys.executable).with_name("milvus-lite"))
        self.proc = subprocess.Popen(
            [
                exe,
                "server",
                "--data-dir",
                str(self.data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError("milvus-lite server did not start")

    def stop(self) -> None:
        milvus_index.close_clients()
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def lite_server(tmp_path_factory):
    server = LiteServer(tmp_path_factory.mktemp("lite-server") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served(settings, lite_server, tmp_path_factory) -> Settings:
    return on_milvus(settings, tmp_path_factory.mktemp("served"), lite_server.uri, "srv")


def test_reindex_job_builds_a_new_collection_and_switches_with_zero_failed_searches(
    served, tmp_path
):
    moved = on_milvus(served, tmp_path, served.milvus_uri, "job")
    before = open_live(moved).collection
    with LiveServer(create_app(moved)) as server:
        with searches_running(server) as (answered, failures):
            r = httpx.post(
                f"{server.url}/admin/reindex",
                headers=ADMIN,
                json={"source": str(FIXTURES / "formats"), "allow_shrink": True},
            )
            job = wait_for(server, r.json()["job_id"], DONE)
            time.sleep(0.7)  # past the replicas' meta row cache
        assert job["state"] == "succeeded", job
        assert not failures and len(answered) > 5
        top = httpx.get(f"{server.url}/search", params={"q": "robin singing in winter"}).json()
        assert top["results"][0]["doc_id"] == "bird-1"
        write = {"text": "Sea otters crack shellfish open with stones."}  # in place, no switch
        assert httpx.put(f"{server.url}/documents/otter", json=write, headers=ADMIN).is_success
    after = open_live(moved)
    assert after.collection != before and after.generation == current_generation(moved.index_dir)
    c = milvus_index.client(target_of(moved))
    assert c.describe_alias("job")["collection_name"] == after.collection  # alias follows
    assert c.has_collection(before)  # kept (for replicas still on it) until the next switch


def test_a_restarted_lite_server_serves_the_same_index(served, lite_server, models):
    searcher = open_searcher(served, open_live(served), models)
    want = [h.passage.passage_id for h in searcher.search(QUERIES[0], 5, rerank=False).hits]
    lite_server.stop()
    lite_server.start()
    again = open_searcher(served, open_live(served), models)  # its collections start released
    assert [h.passage.passage_id for h in again.search(QUERIES[0], 5, rerank=False).hits] == want


def test_two_heed_serve_processes_on_one_milvus_see_each_others_writes(served, tmp_path):
    """A writes (with the ledger); B has no index folder of its own: it reads Milvus only."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HEED_VECTOR_BACKEND": "milvus",
        "HEED_MILVUS_URI": served.milvus_uri,
        "HEED_MILVUS_PREFIX": served.milvus_prefix,
        "HEED_ADMIN_KEY": "admin-secret",
        "HEED_THREADS": "1",
    }
    heed = str(Path(sys.executable).with_name("heed"))
    dirs = {"a": served.index_dir, "b": tmp_path / "empty"}
    procs, urls = [], {}
    try:
        for name, index_dir in dirs.items():
            port = free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            procs.append(
                subprocess.Popen(
                    [heed, "serve", "--index", str(index_dir), "--port", str(port)],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for url in urls.values():
            wait_ready(url)
        assert not (tmp_path / "empty" / "CURRENT").exists()  # B never indexed anything
        otter = {"title": "Sea otters", "text": "Sea otters crack shellfish open with stones."}
        put = httpx.put(f"{urls['a']}/documents/otter", json=otter, headers=ADMIN, timeout=60)
        assert put.status_code == 200, put.text
        time.sleep(0.6)  # B's view of the meta row is at most LIVE_TTL_S old (rows: at once)
        r = httpx.get(f"{urls['b']}/search", params={"q": "otters shellfish", "k": 1}, timeout=60)
        assert r.json()["results"][0]["doc_id"] == "otter"
        assert r.json()["generation"] == put.json()["generation"]
        assert httpx.get(f"{urls['b']}/documents/otter", timeout=10).status_code == 200
        refused = httpx.put(f"{urls['b']}/documents/x", json=otter, headers=ADMIN, timeout=60)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_ledger"
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


def wait_ready(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not become ready")


def test_serve_on_an_empty_milvus_with_a_faiss_ledger_says_to_migrate(settings, tmp_path):
    env = {"HEED_VECTOR_BACKEND": "milvus", "HEED_MILVUS_URI": str(tmp_path / "empty.db")}
    result = CliRunner().invoke(app, ["serve", "--index", str(settings.index_dir)], env=env)
    assert result.exit_code == 1
    assert isinstance(result.exception, HeedError)
    assert "heed migrate --to milvus" in str(result.exception)

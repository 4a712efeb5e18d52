"""Rollback: a kept generation goes live again atomically, from the CLI, the store and HTTP."""

from __future__ import annotations

import threading

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from cli import app as cli_app
from heed.errors import (
    DocumentNotFound,
    GenerationNotFound,
    IndexBusy,
    ModelMismatch,
    NothingToRollBack,
)
from heed.records import Document
from heed.store import current_generation, open_reader
from heed.store.layout import lock_writer, unlock
from heed.store.rollback import kept_generations, rollback
from indexer.build import build_index
from service.app import create_app

from .conftest import LiveServer, writable_copy

ADMIN = {"Authorization": "Bearer admin-key"}


def has(settings, doc_id: str) -> bool:
    reader = open_reader(settings.index_dir)
    try:
        reader.document(doc_id)
        return True
    except DocumentNotFound:
        return False
    finally:
        reader.close()


def test_rollback_goes_back_to_the_newest_older_generation_and_can_go_forward(
    two_generations, tmp_path
):
    settings = writable_copy(two_generations, tmp_path)
    assert [m.generation for m in kept_generations(settings.index_dir)] == [1, 2]
    assert has(settings, "topic:with")
    done = rollback(settings.index_dir)
    assert (done.previous, done.manifest.generation) == (2, 1)
    assert current_generation(settings.index_dir) == 1
    assert not has(settings, "topic:with")
    assert rollback(settings.index_dir, to=2).manifest.generation == 2  # newer ones stay kept
    assert has(settings, "topic:with")


def test_rollback_refuses_unknown_live_or_missing_older_generations(two_generations, tmp_path):
    settings = writable_copy(two_generations, tmp_path)
    with pytest.raises(GenerationNotFound, match="no complete generation 7"):
        rollback(settings.index_dir, to=7)
    with pytest.raises(NothingToRollBack, match="already live"):
        rollback(settings.index_dir, to=2)
    rollback(settings.index_dir)
    with pytest.raises(NothingToRollBack, match="no older generation is kept"):
        rollback(settings.index_dir)
    with pytest.raises(ModelMismatch):
        rollback(settings.index_dir, to=2, model="some-other-model")
    assert current_generation(settings.index_dir) == 1


def test_rollback_waits_for_a_running_writer_then_refuses_busy(two_generations, tmp_path):
    settings = writable_copy(two_generations, tmp_path)
    writer = lock_writer(settings.index_dir)
    try:
        with pytest.raises(IndexBusy):
            rollback(settings.index_dir, wait_s=0.2)
    finally:
        unlock(writer)
    assert current_generation(settings.index_dir) == 2


def test_a_write_after_rollback_builds_on_the_rolled_back_generation(
    two_generations, tmp_path, encoder
):
    settings = writable_copy(two_generations, tmp_path)
    rollback(settings.index_dir)
    doc = Document(doc_id="topic:pass", title="pass", text="The pass statement does nothing.")
    build_index([doc], settings, encoder=encoder)
    assert has(settings, "topic:pass")
    assert not has(settings, "topic:with")  # written after generation 1: gone with the rollback


def test_cli_rollback_lists_kept_generations_and_switches(two_generations, tmp_path):
    settings = writable_copy(two_generations, tmp_path)
    runner = CliRunner()
    listed = runner.invoke(cli_app, ["rollback", "--list", "--index", str(settings.index_dir)])
    assert listed.exit_code == 0, listed.output
    assert "2 (live)" in listed.output
    done = runner.invoke(cli_app, ["rollback", "--index", str(settings.index_dir)])
    assert done.exit_code == 0, done.output
    assert "generation 1 is live (was 2)" in done.output
    missing = runner.invoke(cli_app, ["rollback", "--to", "9", "--index", str(settings.index_dir)])
    assert isinstance(missing.exception, GenerationNotFound)  # cli:main prints it, exit 1


def test_admin_rollback_needs_the_admin_key_and_answers_json_errors(two_generations, tmp_path):
    settings = writable_copy(two_generations, tmp_path).model_copy(
        update={"admin_key": SecretStr("admin-key")}
    )
    with TestClient(create_app(settings)) as client:
        assert client.post("/admin/rollback").status_code == 401
        wrong = client.post("/admin/rollback", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        listed = client.get("/admin/generations", headers=ADMIN).json()["generations"]
        assert [(g["generation"], g["live"]) for g in listed] == [(2, True), (1, False)]
        unknown = client.post("/admin/rollback", json={"to": 9}, headers=ADMIN)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "generation_not_found"
        assert client.post("/admin/rollback", json={"to": 0}, headers=ADMIN).status_code == 422
        assert client.get("/search?q=with+statement&rerank=false").json()["generation"] == 2
        done = client.post("/admin/rollback", headers=ADMIN)
        assert done.status_code == 200
        assert done.json() | {"documents": 0, "passages": 0} == {
            "generation": 1,
            "previous": 2,
            "documents": 0,
            "passages": 0,
            "embed_model": two_generations.embed_model,
        }
        assert client.get("/search?q=with+statement&rerank=false").json()["generation"] == 1
        again = client.post("/admin/rollback", json={}, headers=ADMIN)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "nothing_to_roll_back"


def test_searches_never_fail_while_a_live_server_rolls_back_and_forth(two_generations, tmp_path):
    settings = writable_copy(two_generations, tmp_path).model_copy(
        update={"admin_key": SecretStr("admin-key")}
    )
    failures: list[str] = []
    seen: set[int] = set()
    stop = threading.Event()

    def search(url: str, query: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                for path in (f"/search?q={query}&rerank=false", f"/search?q={query}&k=3"):
                    r = http.get(path)
                    if r.status_code != 200 or not r.json()["results"]:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        seen.add(r.json()["generation"])

    with LiveServer(create_app(settings)) as live:
        threads = [
            threading.Thread(target=search, args=(live.url, q))
            for q in ("read a csv file", "zebra stripes", "with statement", "json")
        ]
        for t in threads:
            t.start()
        try:
            with httpx.Client(base_url=live.url, timeout=60, headers=ADMIN) as admin:
                for target in (1, 2) * 4:
                    r = admin.post("/admin/rollback", json={"to": target})
                    assert r.status_code == 200, r.text
                    threading.Event().wait(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert not failures, failures[:3]
    assert seen == {1, 2}

"""Readers of retired generations are closed once their last request is done: no deleted files
stay open, however many writes the service takes."""

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from heed.records import Document
from heed.store import DB
from indexer.build import build_index
from service.app import create_app
from service.engine import Engine

ADMIN = {"Authorization": "Bearer k"}


def open_db_files(index_dir: Path) -> list[str]:
    """Targets of this process's open file descriptors that are databases of this index."""
    targets = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(index_dir)) and DB in target:
            targets.append(target)
    return targets


@pytest.fixture
def admin_settings(writable_settings):
    return writable_settings.model_copy(update={"admin_key": SecretStr("k")})


def test_many_writes_leave_no_deleted_index_files_open(admin_settings):
    with TestClient(create_app(admin_settings)) as client:
        for i in range(25):
            doc = {"title": f"note {i}", "text": f"Note number {i} about otters and rivers."}
            assert client.put(f"/documents/note:{i}", json=doc, headers=ADMIN).status_code == 200
            assert client.get("/search", params={"q": "otters", "k": 3}).status_code == 200
            assert client.get("/documents/module:csv").status_code == 200
        held = open_db_files(admin_settings.index_dir)
        deleted = [t for t in held if t.endswith("(deleted)")]
        assert not deleted, held
        # SQLite connections (each also holds its -wal and -shm): the live snapshot's reader,
        # the version probe, at most one retiring reader, and one descriptor SQLite keeps from
        # a closed connection while others hold locks on the file (it reuses it, never piles up)
        assert len([t for t in held if t.endswith(DB)]) <= 4, held


def test_a_retired_reader_stays_open_until_its_last_request_ends(admin_settings, encoder):
    engine = Engine(admin_settings)
    engine.encoder = encoder
    with engine.lease() as old:
        assert old.reader.keyword("csv", 1)
        with engine.lease() as same:
            assert same is old
        otter = Document(doc_id="otter", text="Sea otters crack shellfish with stones.")
        build_index([otter], admin_settings, encoder=encoder)
        with engine.lease() as new:
            assert new.generation == old.generation + 1
            assert old.reader.keyword("csv", 1)  # still open: this request is not done
        assert old.reader.keyword("csv", 1)
    assert old.reader.closed and not new.reader.closed

"""Shared fixtures: a small real index (SQLite, FAISS, the packaged models), built once."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as cli:main does

from heed.models.encoders import BiEncoder, load_bi_encoder
from heed.settings import Settings
from indexer.build import build_index
from indexer.sources import read_documents
from service.app import create_app

FIXTURES = Path(__file__).parent / "fixtures"
MINI = FIXTURES / "mini.jsonl"
ROOT = Path(__file__).parents[1]


def make_settings(index_dir: Path, **overrides) -> Settings:
    return Settings(index_dir=index_dir, **overrides)


@pytest.fixture(scope="session")
def encoder() -> BiEncoder:
    return load_bi_encoder(Settings().embed_model, Settings().model_runtime())


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, encoder: BiEncoder) -> Settings:
    """Settings pointing at a real index of tests/fixtures/mini.jsonl (26 Python doc pages)."""
    settings = make_settings(tmp_path_factory.mktemp("index") / "idx")
    build_index(read_documents([MINI]), settings, encoder=encoder)
    return settings


@pytest.fixture(scope="session")
def ann_settings(tmp_path_factory: pytest.TempPathFactory, encoder: BiEncoder) -> Settings:
    """The same corpus in an IVF-SQ8 index: a tiny ``ann_threshold`` makes ``auto`` choose it."""
    settings = make_settings(tmp_path_factory.mktemp("ann") / "idx", ann_threshold=10)
    build_index(read_documents([MINI]), settings, encoder=encoder)
    return settings


def writable_copy(settings: Settings, tmp_path: Path) -> Settings:
    """A private copy of a session index, for tests that change it."""
    copy = tmp_path / "idx"
    shutil.copytree(settings.index_dir, copy)
    return settings.model_copy(update={"index_dir": copy})


@pytest.fixture
def writable_settings(settings: Settings, tmp_path: Path) -> Settings:
    return writable_copy(settings, tmp_path)


@pytest.fixture(scope="session")
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn on 127.0.0.1 in a thread of this process (so the models load once)."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("live server did not start")

    def __exit__(self, *_) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings)) as server:
        yield server


STRIPES = "Zebras are African equines with distinctive black and white stripes on their coats."


@pytest.fixture(scope="session")
def two_generations(tmp_path_factory: pytest.TempPathFactory, encoder: BiEncoder) -> Settings:
    """An index of mini.jsonl (generation 1) fully rebuilt as generation 2, where ``module:csv``
    is about zebras instead and ``topic:with`` is new: two kept generations to compare or roll
    back between. Tests that change it take a ``writable_copy``."""
    from heed.records import Document

    settings = make_settings(tmp_path_factory.mktemp("two") / "idx")
    build_index(read_documents([MINI]), settings, encoder=encoder)
    changed = [
        Document(doc_id=d.doc_id, title="Zebras", text=STRIPES) if d.doc_id == "module:csv" else d
        for d in read_documents([MINI])
    ]
    changed.append(
        Document(
            doc_id="topic:with",
            title="The with statement",
            text="The with statement wraps a block in a context manager's enter and exit.",
        )
    )
    build_index(changed, settings, rebuild=True, encoder=encoder)
    return settings


ADMIN = {"Authorization": "Bearer admin-secret"}
DONE = {"succeeded", "failed", "cancelled"}


def wait_for(server: LiveServer, job_id: str, states: set[str], timeout: float = 300) -> dict:
    """Poll an admin job until it reaches one of ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.url}/admin/jobs/{job_id}", headers=ADMIN).json()
        if job["state"] in states:
            return job
        time.sleep(0.2)
    pytest.fail(f"job stuck in {job['state']}")


@contextlib.contextmanager
def searches_running(server: LiveServer, clients: int = 2) -> Iterator[tuple[list, list]]:
    """Searches looping from ``clients`` threads while the block runs; yields the status codes
    of the answered ones and of the failed ones, complete once the block has left."""
    answered: list[int] = []
    failures: list[int] = []
    stop = threading.Event()

    def search_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            while not stop.is_set():
                r = c.get("/search", params={"q": "robin", "k": 3, "rerank": "false"})
                (answered if r.status_code == 200 else failures).append(r.status_code)

    threads = [threading.Thread(target=search_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield answered, failures
    finally:
        stop.set()
        for t in threads:
            t.join()

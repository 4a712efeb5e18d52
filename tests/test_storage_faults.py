"""A full or read-only disk under a real server and a real `heed index`: a clear error, no leak.

The full disk is real: a small tmpfs (mounting needs root; CI runs as root) or, without any
privilege, RLIMIT_FSIZE on a child process (its writes past the limit fail with EFBIG).
"""

import contextlib
import errno
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from heed.store import current_generation
from heed.store.fs_errors import storage_error
from heed.store.layout import GENERATIONS
from service.app import create_app
from service.errors import without_paths

from .conftest import FIXTURES, LiveServer

ADMIN = {"Authorization": "Bearer k"}
OTTER = {"title": "Sea otters", "text": "Sea otters crack shellfish open with stones."}


@contextlib.contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(
            "this test fills a real file system: it mounts a small tmpfs, which needs root "
            f"(CAP_SYS_ADMIN), as CI has; mount said: {mounted.stderr.strip()}"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fill(folder: Path, leave: int) -> Path:
    """Take all free space of ``folder``'s file system but ``leave`` bytes."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free - leave
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(free, 0))
    return filler


@pytest.fixture
def small_disk(settings, tmp_path) -> Iterator[tuple]:
    """The session index copied onto a tmpfs twice its size, and a server on it."""
    with tmpfs(tmp_path / "mnt", 2 * du(settings.index_dir) + 256 * 1024) as mnt:
        index_dir = mnt / "idx"
        shutil.copytree(settings.index_dir, index_dir)
        served = settings.model_copy(update={"index_dir": index_dir, "admin_key": SecretStr("k")})
        with LiveServer(create_app(served)) as server:
            yield server, index_dir


def test_full_disk_is_507_disk_full_and_the_next_write_succeeds_once_space_is_freed(small_disk):
    server, index_dir = small_disk
    live = current_generation(index_dir)
    version = httpx.get(f"{server.url}/healthz").json()["version"]
    filler = fill(index_dir.parent, leave=16 * 1024)
    r = httpx.put(f"{server.url}/documents/disk:1", headers=ADMIN, json=OTTER, timeout=60)
    assert r.status_code == 507, r.text
    error = r.json()["error"]
    assert error["code"] == "disk_full" and "space" in error["message"]
    assert str(index_dir) not in error["message"]  # no server paths to clients
    assert current_generation(index_dir) == live
    assert sorted(p.name for p in (index_dir / GENERATIONS).iterdir()) == [f"{live:06d}"]
    assert httpx.get(f"{server.url}/search", params={"q": "csv"}).status_code == 200

    filler.unlink()
    r = httpx.put(f"{server.url}/documents/disk:1", headers=ADMIN, json=OTTER, timeout=60)
    assert r.status_code == 200, r.text  # at once: the lock went with the failed writer
    assert r.json()["generation"] == live and r.json()["version"] == version + 1  # in place
    top = httpx.get(f"{server.url}/search", params={"q": "otters crack shellfish", "k": 1})
    assert top.json()["results"][0]["doc_id"] == "disk:1"


def test_read_only_index_is_503_read_only_and_searches_go_on(small_disk):
    server, index_dir = small_disk
    live = current_generation(index_dir)
    version = httpx.get(f"{server.url}/healthz").json()["version"]
    remount(index_dir.parent, "ro")
    try:
        r = httpx.put(f"{server.url}/documents/ro:1", headers=ADMIN, json=OTTER, timeout=60)
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == "read_only" and "read-only" in error["message"]
        assert httpx.get(f"{server.url}/search", params={"q": "csv"}).status_code == 200
    finally:
        remount(index_dir.parent, "rw")
    r = httpx.put(f"{server.url}/documents/ro:1", headers=ADMIN, json=OTTER, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["generation"] == live and r.json()["version"] == version + 1


def limited_heed(limit: int, *args: str) -> subprocess.CompletedProcess:
    """`heed ARGS` whose files may not grow past ``limit`` bytes (no privilege needed)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    env = {**os.environ, "COLUMNS": "200", "HEED_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "heed", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        preexec_fn=cap,  # Python ignores SIGXFSZ, so the write fails with EFBIG instead
    )


def test_cli_reports_a_full_disk_in_one_line_and_a_rerun_succeeds(writable_settings):
    index_dir = writable_settings.index_dir
    live = current_generation(index_dir)
    gen = index_dir / GENERATIONS / f"{live:06d}"
    limit = (gen / "docs.db").stat().st_size // 2  # the copy of docs.db cannot be completed
    args = ("index", str(FIXTURES / "formats"), "--index", str(index_dir))
    failed = limited_heed(limit, *args)
    assert failed.returncode == 1
    lines = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "disk full" in lines[0], failed.stderr
    assert "Traceback" not in failed.stderr
    assert current_generation(index_dir) == live
    assert sorted(p.name for p in (index_dir / GENERATIONS).iterdir()) == [f"{live:06d}"]
    done = limited_heed(resource.RLIM_INFINITY, *args)
    assert done.returncode == 0, done.stderr
    assert current_generation(index_dir) == live + 1


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "disk_full"),
        (OSError(errno.EFBIG, "File too large"), "disk_full"),
        (OSError(errno.EROFS, "Read-only file system"), "read_only"),
        (sqlite3.OperationalError("database or disk is full"), "disk_full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read_only"),
        (RuntimeError("write error in x: 0 != 4 (No space left on device)"), "disk_full"),
        (RuntimeError("some other faiss failure"), None),
        (ValueError("not a storage error"), None),
    ],
)
def test_storage_errors_are_named_and_nothing_else_is(error, code, tmp_path):
    mapped = storage_error(error, tmp_path)
    assert (mapped.code if mapped else None) == code


def test_client_messages_lose_server_paths_but_keep_urls_and_words():
    message = "/srv/heed/idx: disk full; see https://example.org/a/b and and/or /search"
    assert (
        without_paths(message) == "…/idx: disk full; see https://example.org/a/b and and/or /search"
    )

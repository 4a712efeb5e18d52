"""Snapshots: taken while a real server serves and writes; restored only when wholly intact."""

import hashlib
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from heed.errors import ModelMismatch, SnapshotDamaged
from heed.snapshots import create_snapshot, list_snapshots, restore_snapshot
from heed.store import current_generation, open_reader
from service.app import create_app

from .conftest import LiveServer

ADMIN = {"Authorization": "Bearer admin-secret"}


def heed(*args: str, settings) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "COLUMNS": "250",
        "HEED_INDEX_DIR": str(settings.index_dir),
        "HEED_SNAPSHOT_DIR": str(settings.snapshot_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "heed", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture
def snap_settings(writable_settings, tmp_path):
    return writable_settings.model_copy(
        update={"admin_key": SecretStr("admin-secret"), "snapshot_dir": tmp_path / "snapshots"}
    )


def state(index_dir: Path) -> dict[str, str]:
    """Every file of the index, with its sha256: what 'unchanged' means."""
    return {
        str(p.relative_to(index_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(index_dir.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }


def test_snapshot_and_restore_while_the_server_writes(snap_settings):
    acknowledged: list[tuple[float, str]] = []  # (time the write was answered, doc id)
    failed, searched, stop = [], [], threading.Event()

    def write_loop(client: httpx.Client) -> None:
        i = 0
        while not stop.is_set():
            doc = {"title": f"note {i}", "text": f"Snapshot note number {i} about otters."}
            r = client.put(f"/documents/w-{i}", json=doc, headers=ADMIN)
            if r.status_code == 200:
                acknowledged.append((time.monotonic(), f"w-{i}"))
            elif r.json()["error"]["code"] != "index_busy":  # a restore's publish: retryable
                failed.append(r.text)
            i += 1

    def search_loop(client: httpx.Client) -> None:
        while not stop.is_set():
            r = client.get("/search", params={"q": "otters", "k": 3, "rerank": "false"})
            (searched if r.status_code == 200 else failed).append(r.status_code)

    with LiveServer(create_app(snap_settings)) as server:
        client = httpx.Client(base_url=server.url, timeout=120)
        threads = [
            threading.Thread(target=write_loop, args=(client,)),
            threading.Thread(target=search_loop, args=(client,)),
        ]
        for t in threads:
            t.start()
        try:
            while len(acknowledged) < 2:
                time.sleep(0.1)
            before_snapshot = time.monotonic()
            in_snapshot = {d for _, d in acknowledged}
            r = client.post("/admin/snapshots", headers=ADMIN)
            assert r.status_code == 201, r.text
            snap = r.json()
            after_snapshot = time.monotonic()
            while not [d for t, d in acknowledged if t > after_snapshot]:
                time.sleep(0.1)
            listed = client.get("/admin/snapshots", headers=ADMIN).json()["snapshots"]
            assert [s["name"] for s in listed] == [snap["name"]] and listed[0]["error"] is None
            cli_listed = heed("snapshot", "list", settings=snap_settings)
            assert snap["name"] in cli_listed.stdout

            before_restore = time.monotonic()
            restored = heed("snapshot", "restore", snap["name"], settings=snap_settings)
            assert restored.returncode == 0, restored.stderr
            assert "checksums and consistency verified" in restored.stdout
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not failed and len(searched) > 3
        written_between = {d for t, d in acknowledged if after_snapshot < t < before_restore}
        live = client.get("/healthz").json()
        assert live["generation"] == current_generation(snap_settings.index_dir)
        ids = {
            r[0]
            for r in open_reader(snap_settings.index_dir).db.execute("SELECT doc_id FROM documents")
        }
        assert in_snapshot <= ids  # acknowledged before the snapshot: kept
        assert written_between and not written_between & ids  # after it: gone with the restore
        assert snap["documents"] >= 26 + len(in_snapshot) and before_snapshot < after_snapshot
        client.close()
    check = heed("check", settings=snap_settings)
    assert check.returncode == 0 and "consistent" in check.stdout


def damage(path: Path, how: str) -> Path:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "bit-flip in the data":
        data[len(data) // 3] ^= 0x01
    else:  # in snapshot.json, the last member
        with tarfile.open(path) as tar:
            member = tar.getmember("snapshot.json")
        data[member.offset_data + 40] ^= 0x01
    bad = path.with_name(f"damaged-{how.replace(' ', '-')}.tar")
    bad.write_bytes(bytes(data))
    return bad


@pytest.mark.parametrize("how", ["truncated", "bit-flip in the data", "bit-flip in the index"])
def test_a_damaged_snapshot_is_refused_and_changes_nothing(snap_settings, how):
    archive = create_snapshot(snap_settings).path
    bad = damage(archive, how)
    before = state(snap_settings.index_dir)
    with pytest.raises(SnapshotDamaged, match=str(bad)):
        restore_snapshot(snap_settings, str(bad))
    assert state(snap_settings.index_dir) == before
    result = heed("snapshot", "restore", str(bad), settings=snap_settings)
    assert result.returncode == 1 and "error:" in result.stderr and "Traceback" not in result.stderr
    assert state(snap_settings.index_dir) == before


def test_listing_names_a_damaged_archive_and_why(snap_settings):
    good = create_snapshot(snap_settings)
    bad = damage(good.path, "truncated")
    bad.rename(snap_settings.snapshot_dir / "heed-0-damaged.tar")
    listed = {s.name: s for s in list_snapshots(snap_settings)}
    assert listed[good.name].error is None and listed[good.name].passages == good.passages
    assert "truncated" in listed["heed-0-damaged.tar"].error


def test_an_inconsistent_index_in_an_intact_archive_is_refused(snap_settings):
    from heed.store.layout import generation_dir, live_manifest, write_manifest

    manifest = live_manifest(snap_settings.index_dir)
    folder = generation_dir(snap_settings.index_dir, manifest.generation)
    write_manifest(folder, manifest.model_copy(update={"passages": manifest.passages + 1}))
    archive = create_snapshot(snap_settings)  # checksums are right: the content is not
    before = state(snap_settings.index_dir)
    with pytest.raises(SnapshotDamaged, match="inconsistent"):
        restore_snapshot(snap_settings, archive.name)
    assert state(snap_settings.index_dir) == before


def test_a_snapshot_of_another_bi_encoder_is_refused(snap_settings):
    archive = create_snapshot(snap_settings)
    other = snap_settings.model_copy(update={"embed_model": "some/other-model"})
    before = state(snap_settings.index_dir)
    with pytest.raises(ModelMismatch, match="HEED_EMBED_MODEL"):
        restore_snapshot(other, archive.name)
    assert state(snap_settings.index_dir) == before


def test_snapshot_routes_need_the_admin_key(client):
    assert client.post("/admin/snapshots").status_code == 403  # no admin key configured

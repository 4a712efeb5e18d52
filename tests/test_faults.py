"""kill -9 a real `heed serve` in the middle of a reindex job, again and again."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from heed.store import current_generation, open_reader

from .conftest import ROOT, free_port
from .test_cli import heed

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": "Bearer k"}


def start_server(index_dir, source_root) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "HEED_ADMIN_KEY": "k",
        "HEED_THREADS": "1",
        "HEED_SOURCE_ROOTS": str(source_root),
    }
    cmd = [sys.executable, "-m", "heed", "serve", "--index", str(index_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("server did not start")


def test_killing_the_server_mid_reindex_never_damages_the_live_index(writable_settings, tmp_path):
    index_dir = writable_settings.index_dir
    live = current_generation(index_dir)
    source = tmp_path / "more.jsonl"
    lines = (ROOT / "data" / "python-docs.jsonl").read_text().splitlines()[:160]
    source.write_text("\n".join(lines) + "\n")

    for delay in (0.0, 1.5, 4.0):
        proc, url = start_server(index_dir, tmp_path)
        r = httpx.post(f"{url}/admin/reindex", headers=ADMIN, json={"source": str(source)})
        job_id = r.json()["job_id"]
        while httpx.get(f"{url}/admin/jobs/{job_id}", headers=ADMIN).json()["state"] == "queued":
            time.sleep(0.05)
        time.sleep(delay)
        state = httpx.get(f"{url}/admin/jobs/{job_id}", headers=ADMIN).json()["state"]
        assert state == "running", "job ended before the kill; use more data"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert current_generation(index_dir) == live
        checked = heed("check", "--index", str(index_dir))
        assert checked.returncode == 0, checked.stdout + checked.stderr

    proc, url = start_server(index_dir, tmp_path)
    try:
        assert httpx.get(f"{url}/search", params={"q": "csv"}).json()["generation"] == live
        r = httpx.post(f"{url}/admin/reindex", headers=ADMIN, json={"source": str(source)})
        job_id = r.json()["job_id"]
        deadline = time.monotonic() + 300
        while (job := httpx.get(f"{url}/admin/jobs/{job_id}", headers=ADMIN).json())["state"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert job["state"] == "succeeded", job
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    reader = open_reader(index_dir)
    doc_ids = [r[0] for r in reader.db.execute("SELECT doc_id FROM documents").fetchall()]
    expected = {json.loads(line)["id"] for line in lines}
    assert len(doc_ids) == len(set(doc_ids)) and set(doc_ids) == expected  # a rebuild: source only
    assert reader.consistency().ok

"""Kill a real `heed index` process mid-run: the previous generation must stay whole and served."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heed.store import current_generation, live_manifest, open_reader
from indexer.build import build_index
from indexer.sources import read_documents

from .conftest import MINI, ROOT

pytestmark = pytest.mark.slow


def start_indexer(source: Path, index_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "HEED_THREADS": "1"}
    cmd = [sys.executable, "-m", "heed", "index", str(source), "--index", str(index_dir)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_new_generation(index_dir: Path, live: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (index_dir / "generations" / f"{live + 1:06d}").exists():
            return
        if proc.poll() is not None:
            pytest.fail(f"indexer exited early: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    pytest.fail("indexer never started a new generation")


def assert_serves(index_dir: Path, generation: int, documents: int) -> None:
    assert current_generation(index_dir) == generation
    reader = open_reader(index_dir)
    assert reader.manifest.documents == documents
    assert reader.index.ntotal == reader.manifest.passages
    assert reader.keyword("json", 3)  # SQLite answers
    assert reader.dense(reader.vectors([reader.keyword("json", 1)[0][0]])[0], 3)  # FAISS answers


def test_killed_indexer_leaves_previous_generation_intact_and_rerun_completes(
    writable_settings, tmp_path, encoder
):
    index_dir = writable_settings.index_dir
    live = current_generation(index_dir)
    before = live_manifest(index_dir).documents
    source = tmp_path / "more.jsonl"
    lines = (ROOT / "data" / "python-docs.jsonl").read_text().splitlines()[:160]
    source.write_text("\n".join(lines) + "\n")
    new_ids = {json.loads(line)["id"] for line in lines}

    for delay in (0.0, 2.0, 6.0):  # while reading, early and late in embedding
        proc = start_indexer(source, index_dir)
        wait_for_new_generation(index_dir, live, proc)
        time.sleep(delay)
        assert proc.poll() is None, "indexer finished before it could be killed; use more data"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert_serves(index_dir, live, before)

    stats = build_index(read_documents([source]), writable_settings, encoder=encoder)
    assert stats.published and stats.generation == live + 1
    reader = open_reader(index_dir)
    doc_ids = [r[0] for r in reader.db.execute("SELECT doc_id FROM documents").fetchall()]
    assert len(doc_ids) == len(set(doc_ids))
    old_ids = {json.loads(line)["id"] for line in MINI.open()}
    assert set(doc_ids) == old_ids | new_ids
    assert reader.index.ntotal == reader.manifest.passages
    leftovers = sorted(p.name for p in (index_dir / "generations").iterdir())
    assert leftovers == [f"{live:06d}", f"{live + 1:06d}"]

"""Small writes commit in place (heed/store/delta.py): a real SIGKILL mid-stream loses no
acknowledged write, readers never see half a write, the files grow by the change, and concurrent
API writers queue instead of failing."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from pydantic import SecretStr

from heed.records import Document
from heed.store import current_generation, generation_dir, open_reader
from heed.store.delta import BASES
from indexer.build import build_index, delete_documents
from service.app import create_app

from .conftest import LiveServer

ADMIN = {"Authorization": "Bearer k"}

# A writer process: a stream of small writes (upserts, replacements, deletes), merging every few
# writes, printing each document id once its write is acknowledged (committed).
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from heed.records import Document
    from heed.settings import Settings
    from heed.models.encoders import load_bi_encoder
    from indexer.build import build_index, delete_documents

    settings = Settings(index_dir=Path(sys.argv[1]), merge_after=4)
    encoder = load_bi_encoder(settings.embed_model, settings.model_runtime())
    print("ready", flush=True)
    for i in range(10_000):
        doc = Document(doc_id=f"k{i}", title=f"kill {i}", text=f"Killed writer note {i}. " * 20)
        build_index([doc], settings, encoder=encoder, in_place=True)
        print(f"put k{i}", flush=True)
        if i % 3 == 2:
            delete_documents([f"k{i - 1}"], settings, encoder=encoder, in_place=True)
            print(f"del k{i - 1}", flush=True)
    """
)


def test_sigkill_during_small_writes_loses_no_acknowledged_write(writable_settings, encoder):
    index_dir = writable_settings.index_dir
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HEED_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(index_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    acked: dict[str, bool] = {}  # doc id -> present after its last acknowledged write
    last = ""
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 120
    while len(acked) < 12 and time.monotonic() < deadline:
        last = proc.stdout.readline()
        op, doc_id = last.split()
        acked[doc_id] = op == "put"
    time.sleep(0.05 * (len(acked) % 5))  # land the kill anywhere in the next write or merge
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for line in proc.stdout:  # acknowledged before the kill landed
        op, doc_id = line.split()
        acked[doc_id], last = op == "put", line
    assert len(acked) >= 12
    # The write in flight when the kill landed was not acknowledged: it may or may not be there.
    op, doc_id = last.split()
    i = int(doc_id[1:])
    in_flight = f"k{i - 1}" if op == "put" and i % 3 == 2 else f"k{i + 1 if op == 'put' else i + 2}"
    acked.pop(in_flight, None)

    reader = open_reader(index_dir)
    stored = {r[0] for r in reader.db.execute("SELECT doc_id FROM documents")}
    assert {d for d, present in acked.items() if present} <= stored
    assert not {d for d, present in acked.items() if not present} & stored
    report = reader.consistency(sample=None)
    assert report.ok, report
    put = max((d for d, present in acked.items() if present), key=lambda d: int(d[1:]))
    pid = reader.document(put)["passages"][0]["passage_id"]
    assert reader.dense(reader.vectors([pid])[0], 1)[0][0] == pid

    # the index takes writes again, and a batch (new generation) carries everything over
    after_crash = Document(doc_id="after", text="after the crash")
    build_index([after_crash], writable_settings, encoder=encoder, in_place=True)
    build_index([Document(doc_id="batch", text="a batch")], writable_settings, encoder=encoder)
    after = open_reader(index_dir)
    assert after.consistency(sample=None).ok
    assert {"after", "batch"} | {d for d, p in acked.items() if p} <= {
        r[0] for r in after.db.execute("SELECT doc_id FROM documents")
    }


def test_readers_never_see_half_of_a_write(writable_settings, encoder):
    """A three-passage document rewritten over and over: every snapshot holds one whole version,
    in its rows, its keyword index and its vectors."""
    settings = writable_settings.model_copy(update={"merge_after": 5})
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]

    def version(n: int) -> Document:
        text = "\n\n".join(f"{w} {w} version{n} " * 60 for w in words[:3])
        return Document(doc_id="flip", title="flip", text=text)

    build_index([version(0)], settings, encoder=encoder, in_place=True)
    done = threading.Event()
    problems: list[str] = []

    def write() -> None:
        try:
            for n in range(1, 16):
                build_index([version(n)], settings, encoder=encoder, in_place=True)
        finally:
            done.set()

    from heed.store import Reader

    writer = threading.Thread(target=write)
    writer.start()
    previous, seen = None, set()
    while not done.is_set():
        reader = Reader(
            settings.index_dir, current_generation(settings.index_dir), previous=previous
        )
        doc = reader.document("flip")
        n = int(doc["text"].split("version")[1].split()[0])
        seen.add(n)
        ids = [p["passage_id"] for p in doc["passages"]]
        texts = [reader.passages([i])[i].text for i in ids]
        if not all(f"version{n} " in t for t in texts):
            problems.append(f"rows of versions mixed at {n}")
        hits = {i for i, _ in reader.keyword(f"version{n}", 50)}
        if not set(ids) <= hits:
            problems.append(f"keyword index behind rows at {n}")
        passages = {r[0] for r in reader.db.execute("SELECT id FROM passages")}
        if set(reader.ann_index().ids().tolist()) != passages:
            problems.append(f"vectors and rows differ at {n}")
        if previous is not None:
            previous.close()
        previous = reader
    writer.join()
    assert not problems, problems[:5]
    assert len(seen) > 1  # the reader did see the document change


def wchar() -> int:
    """Bytes this process has handed to write(2) so far."""
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(io["wchar"])


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_file_growth_per_small_write_is_bounded_and_merges_clean_up(writable_settings, encoder):
    settings = writable_settings.model_copy(update={"merge_after": 8})
    index_dir = settings.index_dir
    live = current_generation(index_dir)
    folder = generation_dir(index_dir, live)
    build_index([Document(doc_id="warm", text="warm up")], settings, encoder=encoder, in_place=True)
    before = du(index_dir)
    writes, written = 40, []
    for i in range(writes):
        doc = Document(doc_id=f"g{i % 10}", title="grow", text=f"Growth note {i}. " * 30)
        start = wchar()
        build_index([doc], settings, encoder=encoder, in_place=True)
        written.append(wchar() - start)
    growth = (du(index_dir) - before) / writes
    # a 1.5 KB vector, a few rows and FTS entries: WAL frames of the 4 KB pages they touch (a
    # few dozen, whatever the index size); a copy of this small index (the old write path) is
    # 700 KB, of a large one gigabytes
    assert growth < 64 * 1024, growth
    assert sorted(written)[writes // 2] < 256 * 1024, written  # bytes handed to write(2)
    assert current_generation(index_dir) == live  # nothing was copied into a new generation
    assert len(list((folder / BASES).iterdir())) <= 2  # current and previous merged base
    reader = open_reader(index_dir)
    assert reader.state is not None and reader.state.base.startswith(BASES)
    assert reader.consistency(sample=None).ok
    assert reader.counts()[0] == 26 + 1 + 10
    delete_documents(["g3"], settings, encoder=encoder, in_place=True)
    after = open_reader(index_dir)
    assert after.consistency(sample=None).ok and after.counts()[0] == 26 + 10


def test_concurrent_api_writers_queue_and_none_gets_a_5xx(writable_settings):
    settings = writable_settings.model_copy(update={"admin_key": SecretStr("k")})
    with LiveServer(create_app(settings)) as server:
        start = httpx.get(f"{server.url}/healthz").json()
        statuses: list[int] = []

        def client(n: int) -> None:
            with httpx.Client(base_url=server.url, headers=ADMIN, timeout=120) as http:
                for i in range(4):
                    body = {"title": f"c{n}", "text": f"Concurrent writer {n} note {i} on otters."}
                    statuses.append(http.put(f"/documents/c{n}-{i}", json=body).status_code)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 24, statuses
        now = httpx.get(f"{server.url}/healthz").json()
        assert now["documents"] == start["documents"] + 24
        assert now["version"] == start["version"] + 24  # each write one commit, none lost
        got = httpx.get(f"{server.url}/documents/c5-3")
        assert got.status_code == 200
        top = httpx.get(f"{server.url}/search", params={"q": "concurrent writer 3 note 2", "k": 3})
        assert any(r["doc_id"].startswith("c") for r in top.json()["results"])


def test_the_delta_is_searched_exactly_beside_the_base(writable_settings, encoder):
    build_index(
        [Document(doc_id="newt", text="Newts regrow lost limbs and live in ponds.")],
        writable_settings,
        encoder=encoder,
        in_place=True,
    )
    reader = open_reader(writable_settings.index_dir)
    pid = reader.document("newt")["passages"][0]["passage_id"]
    vector = reader.vectors([pid])[0]
    hits = reader.dense(vector, 3)
    assert hits[0][0] == pid and np.isclose(hits[0][1], 1.0, atol=1e-5)
    assert reader.dense(vector, 3, filters=None) == hits

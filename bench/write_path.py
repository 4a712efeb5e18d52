"""The cost of a small write: single-document upserts into indexes of 10k, 100k and 1M passages.

No model runs: the bi-encoder's tokenizer chunks the text and passage vectors are random unit
vectors (as ``bench.stages heed-io`` does), so the numbers are the write path's own. For each
size it builds one index (random words, random vectors; main's code and this branch write the
same format), copies it, and measures the same steps against each code tree:

* ``upsert``: ``Engine.upsert`` of one new one-passage document, the call ``PUT /documents/{id}``
  makes: latency p50/p95, and bytes written per upsert (``wchar`` of /proc/self/io: bytes handed
  to write(2), and ``write_bytes``: bytes sent to the block layer), and the index folder's growth;
* ``searches/s``: dense searches (random query vector, top 10, passages fetched) through
  ``Engine.lease`` in one thread, alone and while another thread upserts without pause.

    python -m bench.write_path run [--sizes 10000 100000 1000000] [--main /tmp/heed-main]

``--main`` is a checkout of main (``git worktree add /tmp/heed-main main``): its code is measured
first ("before"), then this tree's ("after"), each in its own process. Prints a table, writes
bench/results/write_path.json, and removes the indexes it built.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORDS = [f"w{i}" for i in range(5000)]
PASSAGES_PER_DOC = 10
WORDS_PER_PASSAGE = 40


class RandomModel:
    """The real bi-encoder (tokenizer, name, dimension) whose vectors are random unit vectors."""

    def __init__(self, encoder: Any, seed: int = 0):
        import numpy as np

        self._encoder = encoder
        self._rng = np.random.default_rng(seed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def vectors(self, n: int) -> Any:
        import numpy as np

        v = self._rng.standard_normal((n, self._encoder.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def encode_passages(self, texts: Any, **_: Any) -> Any:
        return self.vectors(len(texts))


def settings_for(index_dir: Path) -> Any:
    from heed.settings import Settings

    return Settings(index_dir=index_dir, keep_generations=2)


def model(settings: Any) -> RandomModel:
    from heed.models.encoders import load_bi_encoder

    return RandomModel(load_bi_encoder(settings.embed_model, settings.model_runtime()))


def sentence(rng: Any, n: int) -> str:
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), n))


def build(index_dir: Path, passages: int) -> dict:
    """An index of ``passages`` random passages (10 per document), written by one Writer."""
    import numpy as np

    from heed.records import Document, Passage
    from indexer.build import open_writer

    settings = settings_for(index_dir)
    encoder = model(settings)
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    with open_writer(settings, encoder, rebuild=True) as writer:
        pending: list[tuple[int, str]] = []
        for d in range(passages // PASSAGES_PER_DOC):
            parts = [sentence(rng, WORDS_PER_PASSAGE) for _ in range(PASSAGES_PER_DOC)]
            text, spans, at = "", [], 0
            for i, part in enumerate(parts):
                spans.append(Passage(ord=i, start=at, end=at + len(part), text=part))
                text += part + " "
                at += len(part) + 1
            pending += writer.put(Document(doc_id=f"d{d}", title=f"doc {d}", text=text), spans)
            if len(pending) >= 20_000:
                writer.add_vectors([p for p, _ in pending], encoder.vectors(len(pending)))
                pending = []
        if pending:
            writer.add_vectors([p for p, _ in pending], encoder.vectors(len(pending)))
        writer.commit()
    return {"passages": passages, "build_s": round(time.perf_counter() - started, 1)}


def io_counters() -> dict[str, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {k: int(fields[k]) for k in ("wchar", "write_bytes")}


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(index_dir: Path, upserts: int, seconds: float) -> dict:
    import numpy as np

    from heed.records import Document
    from service.engine import Engine

    settings = settings_for(index_dir)
    engine = Engine(settings)
    encoder = model(settings)
    engine.encoder = encoder  # type: ignore[assignment]
    rng = np.random.default_rng(2)
    counter = iter(range(10**9))

    def upsert() -> tuple[float, dict[str, int]]:
        doc = Document(doc_id=f"new{next(counter)}", title="new", text=sentence(rng, 40))
        before, t = io_counters(), time.perf_counter()
        engine.upsert([doc])
        ms = (time.perf_counter() - t) * 1000
        after = io_counters()
        return ms, {k: after[k] - before[k] for k in after}

    def search_loop(stop: threading.Event, done: list[int]) -> None:
        query = encoder.vectors(1)[0]
        while not stop.is_set():
            with engine.lease() as searcher:
                ids = [i for i, _ in searcher.reader.dense(query, 10)]
                searcher.reader.passages(ids)
            done[0] += 1

    def searches_per_s(with_writes: bool) -> tuple[float, int]:
        stop, done, writes = threading.Event(), [0], 0
        thread = threading.Thread(target=search_loop, args=(stop, done))
        started = time.perf_counter()
        thread.start()
        while time.perf_counter() - started < seconds or (with_writes and not writes):
            if with_writes:
                upsert()
                writes += 1
            else:
                time.sleep(0.05)
        stop.set()
        thread.join()
        return done[0] / (time.perf_counter() - started), writes

    engine.searcher()  # open the index (and load the model) before the clock
    upsert()  # warm-up: an index from before in-place writes gets their format here
    text = sentence(rng, 40)
    embed = []
    for _ in range(5):  # the model's share of a real upsert, reported apart
        t = time.perf_counter()
        encoder._encoder.encode_passages([text])
        embed.append((time.perf_counter() - t) * 1000)
    size = du(index_dir)
    latencies, wchar, block = [], [], []
    for _ in range(upserts):
        ms, io = upsert()
        latencies.append(ms)
        wchar.append(io["wchar"])
        block.append(io["write_bytes"])
    growth = (du(index_dir) - size) / upserts
    idle, _ = searches_per_s(with_writes=False)
    busy, writes = searches_per_s(with_writes=True)
    return {
        "upserts": upserts,
        "embed_one_passage_ms": round(float(np.median(embed)), 1),
        "upsert_p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "upsert_p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "wchar_per_upsert": int(np.median(wchar)),
        "write_bytes_per_upsert": int(np.median(block)),
        "growth_per_upsert": int(growth),
        "index_bytes": size,
        "searches_per_s_idle": round(idle, 1),
        "searches_per_s_during_upserts": round(busy, 1),
        "upserts_during_search": writes,
    }


def child(code: Path, *args: str) -> dict:
    """Run one phase of this script in a new process that imports heed from ``code``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": ""}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--code", str(code), *args]
    out = subprocess.run(cmd, env=env, cwd=code, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(sizes: list[int], main: Path | None, upserts: int, seconds: float, work: Path) -> None:
    trees = ([("before", main)] if main else []) + [("after", ROOT)]
    rows: list[dict] = []
    for n in sizes:
        base = work / f"{n}" / "base"
        if (base / "built.json").exists():  # built earlier (a 1M build takes minutes)
            built = json.loads((base / "built.json").read_text())
        else:
            shutil.rmtree(work / f"{n}", ignore_errors=True)
            built = child(main or ROOT, "build", str(base), "--passages", str(n))
            (base / "built.json").write_text(json.dumps(built))
        for label, code in trees:
            target = work / f"{n}" / label
            shutil.copytree(base, target)
            # main copies the whole index per write: a few samples say it at 1M
            count = min(upserts, 5) if label == "before" and n >= 1_000_000 else upserts
            result = child(code, "measure", str(target), "--upserts", str(count),
                           "--seconds", str(seconds))  # fmt: skip
            rows.append({"passages": n, "code": label, **built, **result})
            print(json.dumps(rows[-1]), flush=True)
            shutil.rmtree(target)
        shutil.rmtree(work / f"{n}", ignore_errors=True)
    table(rows)
    sys.path.insert(0, str(ROOT))
    from bench.common import write_results

    path = write_results(
        "write_path",
        {"note": "2 shared cores: compare before/after within one run", "rows": rows},
    )
    print(f"wrote {path}")


def table(rows: list[dict]) -> None:
    head = (
        f"{'passages':>9} {'code':>6} {'p50 ms':>8} {'p95 ms':>8} {'wchar/upsert':>13} "
        f"{'disk/upsert':>12} {'growth':>10} {'srch/s idle':>11} {'srch/s writes':>13}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['passages']:>9} {r['code']:>6} {r['upsert_p50_ms']:>8} {r['upsert_p95_ms']:>8} "
            f"{r['wchar_per_upsert']:>13,} {r['write_bytes_per_upsert']:>12,} "
            f"{r['growth_per_upsert']:>10,} {r['searches_per_s_idle']:>11} "
            f"{r['searches_per_s_during_upserts']:>13}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", type=Path, help="import heed from this tree (phases only)")
    sub = parser.add_subparsers(dest="phase", required=True)
    p_run = sub.add_parser("run")
    p_run.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p_run.add_argument("--main", type=Path, help="a checkout of main: measured as 'before'")
    p_run.add_argument("--upserts", type=int, default=40)
    p_run.add_argument("--seconds", type=float, default=10.0)
    p_run.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "write_path")
    p_build = sub.add_parser("build")
    p_build.add_argument("index_dir", type=Path)
    p_build.add_argument("--passages", type=int, required=True)
    p_measure = sub.add_parser("measure")
    p_measure.add_argument("index_dir", type=Path)
    p_measure.add_argument("--upserts", type=int, default=40)
    p_measure.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.code:
        sys.path.insert(0, str(args.code.resolve()))
    if args.phase == "run":
        run(args.sizes, args.main, args.upserts, args.seconds, args.work)
    elif args.phase == "build":
        print(json.dumps(build(args.index_dir, args.passages)))
    else:
        print(json.dumps(measure(args.index_dir, args.upserts, args.seconds)))


if __name__ == "__main__":
    main()

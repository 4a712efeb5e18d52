"""Indexing throughput and query latency on the shipped corpus, heed against baselines, one run.

Indexing: heed's whole write path (chunking, SQLite, FTS5, FAISS, incremental bookkeeping) vs a
bare ``SentenceTransformer.encode`` of the same passage texts, each in its own process (peak
memory is that process's). Query: a real ``heed serve`` on 127.0.0.1, sequential HTTP requests
per configuration; re-ranking is compared with the same search without it.

    python -m bench.index_and_query [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import CORPUS, ROOT, percentiles, serve, stop_server, write_results
from bench.stages import run_stage

CONFIGS = [
    ("dense", {"mode": "dense", "rerank": False}),
    ("keyword", {"mode": "keyword", "rerank": False}),
    ("hybrid", {"mode": "hybrid", "rerank": False}),
    ("hybrid+rerank@20", {"mode": "hybrid", "rerank": True, "candidates": 20}),
    ("hybrid+rerank@30", {"mode": "hybrid", "rerank": True, "candidates": 30}),
    ("hybrid+rerank@50", {"mode": "hybrid", "rerank": True, "candidates": 50}),
]


# -- queries over HTTP, sequential ----------------------------------------------------------------
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
            out[name] = {"requests": len(times), **percentiles(times)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
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
            stop_server(proc)
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
    out = write_results(
        "index_and_query", {"corpus": CORPUS.name, "indexing": indexing, "queries": queries}
    )
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

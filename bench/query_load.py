"""Query latency and throughput under concurrent load, over HTTP against a real `heed serve`.

Builds an index of the shipped corpus (or takes ``--index``), starts `heed serve` on 127.0.0.1
and, per configuration (dense, hybrid, hybrid + re-rank of the top 20 and of the top 50), sends
a fixed number of POST /search from 1 and from 8 concurrent clients (one asyncio loop, httpx,
at most that many requests in flight). Warm-up requests are not counted. Prints a table, writes
bench/results/query_load.json (or ``--out``).

    python -m bench.query_load [--requests N] [--clients 1 8] [--env HEED_KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.common import (
    ROOT,
    VAR,
    build_shipped_index,
    percentiles,
    serve,
    stop_server,
    write_results,
)
from bench.queries import QUERIES

CONFIGS = {
    "dense": {"mode": "dense", "rerank": False},
    "hybrid": {"mode": "hybrid", "rerank": False},
    "hybrid+rerank@20": {"mode": "hybrid", "rerank": True, "candidates": 20},
    "hybrid+rerank@50": {"mode": "hybrid", "rerank": True, "candidates": 50},
}
REQUESTS, RERANK_REQUESTS = 300, 60  # per configuration and client count, unless --requests


async def load(url: str, body: dict, clients: int, requests: int, warmup: int) -> dict:
    """``requests`` searches from ``clients`` concurrent workers; latencies of the successful."""
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        for i in range(warmup):
            query = QUERIES[-1 - i % len(QUERIES)]
            (await client.post("/search", json={"query": query, **body})).raise_for_status()
        counter = iter(range(requests))

        async def worker() -> None:
            for n in counter:  # shared iterator: exactly ``requests`` in total
                started = time.perf_counter()
                try:
                    r = await client.post(
                        "/search", json={"query": QUERIES[n % len(QUERIES)], **body}
                    )
                    error = "" if r.status_code == 200 else f"{r.status_code} {r.text[:100]}"
                except httpx.HTTPError as exc:
                    error = repr(exc)
                ms = (time.perf_counter() - started) * 1000
                if error:
                    errors.append(error)
                else:
                    latencies.append(ms)
                    for stage, t in r.json()["timings_ms"].items():
                        stages.setdefault(stage, []).append(t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - started
    stats = percentiles(latencies)
    return {
        "clients": clients,
        "requests": requests,
        "errors": len(errors),
        "error_samples": errors[:3],
        "seconds": round(seconds, 2),
        "throughput_per_s": round(len(latencies) / seconds, 2),
        **stats,
        "p99_over_p50": round(stats["p99_ms"] / stats["p50_ms"], 2),
        # the server's own per-stage time (embed, retrieve, rerank): the rest is HTTP and queueing
        "server_p50_ms": {k: round(float(np.median(v)), 1) for k, v in stages.items()},
    }


def run(url: str, configs: list[str], clients: list[int], requests: int | None) -> list[dict]:
    rows = []
    for name in configs:
        body = {"k": 10, **CONFIGS[name]}
        n = requests or (RERANK_REQUESTS if body["rerank"] else REQUESTS)
        for c in clients:
            rows.append({"config": name, **asyncio.run(load(url, body, c, n, 2 * c))})
    return rows


def table(rows: list[dict], title: str) -> Table:
    t = Table(title=title)
    for col in ("configuration", "clients", "requests", "errors", "req/s", "p50 ms", "p95 ms"):
        t.add_column(col, justify="right")
    t.add_column("p99 ms", justify="right")
    t.add_column("p99/p50", justify="right")
    t.add_column("server p50 ms", justify="left")
    for r in rows:
        t.add_row(
            r["config"],
            str(r["clients"]),
            str(r["requests"]),
            str(r["errors"]),
            f"{r['throughput_per_s']:.1f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['p99_over_p50']:.2f}",
            " ".join(f"{k} {v:.0f}" for k, v in r["server_p50_ms"].items()),
        )
    return t


def env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests",
        type=int,
        help=f"per configuration and client count (default {REQUESTS}, re-rank {RERANK_REQUESTS})",
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument(
        "--env",
        type=env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set for the server, e.g. HEED_BACKEND=onnx (repeatable)",
    )
    parser.add_argument(
        "--index", type=Path, help="an existing index (default: build the shipped one)"
    )
    parser.add_argument("--out", default="query_load", help="results file name, without .json")
    args = parser.parse_args()
    env = dict(args.env)
    with tempfile.TemporaryDirectory(prefix="heed-qload-", dir=VAR) as tmp:
        index_dir = args.index
        if index_dir is None:
            index_dir = Path(tmp) / "index"
            build_shipped_index(index_dir)
        proc, url = serve(index_dir, **env)
        try:
            rows = run(url, args.configs, args.clients, args.requests)
        finally:
            stop_server(proc)
    title = "POST /search over HTTP, 127.0.0.1, shipped corpus"
    if env:
        title += " (" + ", ".join(f"{k}={v}" for k, v in env.items()) + ")"
    console = Console()
    console.print(table(rows, title))
    out = write_results(args.out, {"server_env": env, "queries": len(QUERIES), "runs": rows})
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    VAR.mkdir(parents=True, exist_ok=True)
    main()

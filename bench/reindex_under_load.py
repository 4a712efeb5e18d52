"""Searches under a full reindex: concurrent clients against a real `heed serve` on 127.0.0.1.

Builds an index of the shipped corpus, starts the server, runs ``--clients`` search loops, starts
``POST /admin/reindex`` of the same corpus, and keeps searching until the job has swapped and at
least ``--searches`` searches have been answered. Baseline side by side: the same clients with
no job running. Prints a table, writes bench/results/reindex_under_load.json.

    python -m bench.reindex_under_load [--clients 8] [--searches 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.common import (
    CORPUS,
    ROOT,
    build_shipped_index,
    percentiles,
    serve,
    stop_server,
    write_results,
)
from bench.queries import QUERIES

ADMIN = {"Authorization": "Bearer bench-admin"}


def load(url: str, clients: int, until: threading.Event, body: dict) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    generations: set[int] = set()
    lock = threading.Lock()

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            n = i
            while not until.is_set():
                q = QUERIES[n % len(QUERIES)]
                n += clients
                started = time.perf_counter()
                try:
                    r = c.post("/search", json={"query": q, **body})
                    ok = r.status_code == 200
                    detail = "" if ok else f"{r.status_code} {r.text[:100]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, repr(exc)
                ms = (time.perf_counter() - started) * 1000
                with lock:
                    if ok:
                        latencies.append(ms)
                        generations.add(r.json()["generation"])
                    else:
                        failures.append(detail)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    return {
        "threads": threads,
        "latencies": latencies,
        "failures": failures,
        "generations": generations,
        "started": started,
    }


def finish(run: dict) -> dict:
    for t in run["threads"]:
        t.join()
    lat = run["latencies"]
    seconds = time.perf_counter() - run["started"]
    return {
        "searches": len(lat),
        "failed": len(run["failures"]),
        "failures": run["failures"][:5],
        "generations_seen": sorted(run["generations"]),
        "throughput_per_s": round(len(lat) / seconds, 1),
        **percentiles(lat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--rerank", action="store_true", help="re-rank every search (slow)")
    args = parser.parse_args()
    body = {"k": 10, "rerank": args.rerank}
    with tempfile.TemporaryDirectory(prefix="heed-load-") as tmp:
        index_dir = Path(tmp) / "index"
        build_shipped_index(index_dir)
        proc, url = serve(index_dir, HEED_ADMIN_KEY="bench-admin")
        try:
            stop = threading.Event()
            baseline_run = load(url, args.clients, stop, body)
            while len(baseline_run["latencies"]) < args.searches // 2:
                time.sleep(0.1)
            stop.set()
            baseline = finish(baseline_run)

            stop = threading.Event()
            run = load(url, args.clients, stop, body)
            job_id = httpx.post(
                f"{url}/admin/reindex", headers=ADMIN, json={"source": str(CORPUS)}
            ).json()["job_id"]
            while True:
                job = httpx.get(f"{url}/admin/jobs/{job_id}", headers=ADMIN).json()
                if job["state"] not in ("queued", "running"):
                    break
                time.sleep(0.5)
            while len(run["latencies"]) + len(run["failures"]) < args.searches:
                time.sleep(0.1)
            time.sleep(1.0)  # searches after the swap
            stop.set()
            during = finish(run)
        finally:
            stop_server(proc)
    job_s = None
    if job.get("finished_at") and job.get("started_at"):
        from datetime import datetime

        job_s = (
            datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
        ).total_seconds()
    table = Table(title=f"{args.clients} clients, POST /search (rerank={args.rerank}), 127.0.0.1")
    for col in (
        "phase",
        "searches",
        "failed",
        "per s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "generations",
    ):
        table.add_column(col, justify="right")
    for name, r in (("no job (baseline)", baseline), ("during full reindex", during)):
        table.add_row(
            name,
            str(r["searches"]),
            str(r["failed"]),
            str(r["throughput_per_s"]),
            str(r["p50_ms"]),
            str(r["p95_ms"]),
            str(r["p99_ms"]),
            ",".join(map(str, r["generations_seen"])),
        )
    Console().print(table)
    Console().print(
        f"job {job['state']}: {job['passages_total']} passages in {job_s:.0f}s; "
        f"p99 during / baseline = {during['p99_ms'] / baseline['p99_ms']:.2f}x"
    )
    out = write_results(
        "reindex_under_load",
        {
            "clients": args.clients,
            "rerank": args.rerank,
            "job": {"state": job["state"], "seconds": job_s, "passages": job["passages_total"]},
            "baseline": baseline,
            "during_reindex": during,
        },
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

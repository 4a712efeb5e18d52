"""How long one `heed search` takes from a cold process, per mode, against an older heed.

Each run is a new process (what a user waits for: imports, model loading, one query, the
table). Caches are warm (the ONNX exports exist; a first warm-up run per side makes them), so
the numbers are what every later call costs. The baseline is an older source tree, run with
the same venv on the same index, its runs interleaved with ours so both see the same load::

    git archive f1f2a5b | tar -x -C /tmp/heed-base
    python -m bench.cli_search --baseline /tmp/heed-base --runs 5

Prints a table and writes bench/results/cli_search.json.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ENV, ROOT, VAR, build_shipped_index, serve, stop_server, write_results

QUERY = "run a subprocess and capture output"
CASES = {
    "keyword": ["--mode", "keyword", "--no-rerank"],
    "dense": ["--mode", "dense", "--no-rerank"],
    "hybrid": ["--mode", "hybrid", "--no-rerank"],
    "hybrid + re-rank (default)": [],
    "hybrid + explain": ["--explain", "--no-rerank"],
}


def run(src: Path | None, index_dir: Path, args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the process and its threads)."""
    # `python -m` puts the working directory first on the path: run the older tree from its own
    env = {**ENV, "COLUMNS": "200", "HEED_MODEL_CACHE": str(ROOT / "var" / "models")}
    cmd = [sys.executable, "-m", "heed", "search", QUERY, "--index", str(index_dir), *args]
    cpu = _children_cpu()
    started = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=src or ROOT, check=True, capture_output=True)
    return time.perf_counter() - started, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=VAR / "shipped")
    parser.add_argument("--baseline", type=Path, help="source tree of the older heed")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    opts = parser.parse_args()
    opts.index = opts.index.resolve()
    if not (opts.index / "CURRENT").exists():
        build_shipped_index(opts.index)
    sides: dict[str, Path | None] = {"now": None}  # both share the model cache (var/models)
    if opts.baseline:
        sides["baseline"] = opts.baseline
    rows = []
    for case in opts.cases.split(","):
        args = CASES[case]
        times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
        for src in sides.values():
            run(src, opts.index, args)  # warm-up: exports, page cache
        for _ in range(opts.runs):
            for side, src in sides.items():
                times[side].append(run(src, opts.index, args))
        row: dict = {"case": case}
        for side, t in times.items():
            row.update(summary(side, t))
        if opts.baseline:
            row["speedup"] = round(row["baseline_median_s"] / row["now_median_s"], 1)
        rows.append(row)
        print(row, flush=True)
    url_row = remote(opts.index, opts.runs)
    rows.append(url_row)
    print_table(rows, bool(opts.baseline))
    out = write_results(
        "cli_search",
        {"query": QUERY, "runs": opts.runs, "baseline": str(opts.baseline), "rows": rows},
    )
    print(f"written {out}")


def remote(index_dir: Path, runs: int) -> dict:
    """`heed search --url` against a running service: nothing loads in the calling process."""
    proc, url = serve(index_dir)
    try:
        args = ["--url", url, "--no-rerank"]
        run(None, index_dir, args)
        times = [run(None, index_dir, args) for _ in range(runs)]
    finally:
        stop_server(proc)
    return {"case": "hybrid via --url (service)", **summary("now", times)}


def summary(side: str, times: list[tuple[float, float]]) -> dict:
    return {
        f"{side}_median_s": round(statistics.median(w for w, _ in times), 2),
        f"{side}_cpu_median_s": round(statistics.median(c for _, c in times), 2),
        f"{side}_runs_s": [round(w, 2) for w, _ in times],
    }


def print_table(rows: list[dict], baseline: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cold `heed search`: median wall and CPU (user+sys) seconds ({QUERY!r})")
    sides = ("baseline", "now") if baseline else ("now",)
    cols = ["case"] + [f"{s} {k}" for s in sides for k in ("wall", "cpu")]
    for col in [*cols, "speedup"] if baseline else cols:
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in rows:
        cells = [r["case"]]
        for s in sides:
            cells += [str(r.get(f"{s}_median_s", "")), str(r.get(f"{s}_cpu_median_s", ""))]
        if baseline:
            cells.append(f"{r['speedup']}x" if "speedup" in r else "")
        table.add_row(*cells)
    Console().print(table)


if __name__ == "__main__":
    main()

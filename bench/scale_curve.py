"""Search latency, memory and recall@10 of each FAISS index kind at 10k, 100k and 1M vectors.

Base vectors are real 384-d passage vectors (the heed indexes in ``--sources``, read-only)
expanded to the size by Gaussian perturbation and renormalisation; queries are real questions
(SQuAD dev and bench/queries.py) embedded with the packaged bi-encoder. Both are cached in
``var/bench/``. Recall@10 is against exact search over the same base. IVF uses heed's own builder
(:mod:`heed.store.faiss_index`); HNSW-SQ8 is measured for comparison (heed does not offer it: see
heed/store/faiss_index.py).

    python -m bench.scale_curve [--sizes 10000,100000,1000000] [--hnsw-max 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from heed.store import faiss_index as ann

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "var" / "bench" / "scale-data.npz"
SOURCES = [
    Path("/work/main/var/try"),
    Path("/work/main/var/cran"),
    Path("/work/main/var/tune-squad-dev"),
]
NOISE = 0.02  # per-dimension sigma: a copy keeps cos ~0.93 with its source
K = 10
NPROBES = [4, 8, 16, 32, 64]
EF_SEARCH = [16, 32, 64, 128]
HNSW_M = 32


# -- data -----------------------------------------------------------------------------------------
def real_vectors(sources: list[Path]) -> NDArray[np.float32]:
    from heed.store import open_reader

    parts = []
    for folder in sources:
        if (folder / "CURRENT").exists():
            reader = open_reader(folder)
            ids = [int(i) for i in ann.vector_ids(reader.index)]
            parts.append(reader.vectors(ids))
            reader.close()
    return np.concatenate(parts).astype(np.float32)


def query_vectors(limit: int) -> NDArray[np.float32]:
    from bench.queries import QUERIES
    from heed.models.encoders import load_bi_encoder
    from heed.settings import Settings

    squad = ROOT.parent / "main" / "var" / "squad-dev" / "queries.jsonl"
    texts = list(QUERIES)
    if squad.exists():
        with squad.open() as fh:
            texts += [json.loads(line)["text"] for line in fh]
    encoder = load_bi_encoder(Settings().embed_model, Settings().model_runtime())
    return encoder.encode_queries(texts[:limit])


def load_data(sources: list[Path], queries: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    if CACHE.exists():
        data = np.load(CACHE)
        return data["base"], data["queries"][:queries]
    base, qs = real_vectors(sources), query_vectors(queries)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, base=base, queries=qs)
    return base, qs


def expand(real: NDArray[np.float32], n: int, seed: int = 0) -> NDArray[np.float32]:
    """``n`` vectors: the real ones, then perturbed, renormalised copies of random real ones."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    head = min(n, len(real))
    out[:head] = real[rng.permutation(len(real))[:head]]
    for start in range(head, n, 100_000):
        stop = min(n, start + 100_000)
        rows = real[rng.integers(len(real), size=stop - start)]
        rows = rows + rng.normal(0, NOISE, rows.shape).astype(np.float32)
        out[start:stop] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


# -- measuring ------------------------------------------------------------------------------------
def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def built(make: Callable[[], Any]) -> tuple[Any, float, int]:
    """(index, build seconds on all cores, RSS growth while it was built)."""
    gc.collect()
    before = rss_bytes()
    search_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    index = make()
    seconds = time.perf_counter() - started
    faiss.omp_set_num_threads(search_threads)
    gc.collect()
    return index, seconds, rss_bytes() - before


def latency(search: Callable[[NDArray[np.float32]], NDArray[np.int64]], queries) -> dict:
    found, times = [], []
    for q in queries:
        started = time.perf_counter()
        found.append(search(q))
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "ids": np.stack(found),
    }


def recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def row(kind: str, n: int, param: str, index: Any, seconds: float, rss: int, lat: dict, truth):
    size = faiss.serialize_index(index).nbytes
    return {
        "type": kind,
        "n": n,
        "param": param,
        "build_s": round(seconds, 2),
        "bytes_per_vector": round(size / n, 1),
        "rss_bytes_per_vector": round(rss / n, 1),
        "p50_ms": round(lat["p50_ms"], 3),
        "p95_ms": round(lat["p95_ms"], 3),
        "recall_at_10": round(recall(lat["ids"], truth), 4),
    }


# -- index kinds ----------------------------------------------------------------------------------
def measure_size(base: NDArray[np.float32], queries, hnsw: bool, log: Callable) -> list[dict]:
    n, rows = len(base), []
    ids = np.arange(n, dtype=np.int64)

    def flat() -> Any:
        index = ann.new_flat(base.shape[1])
        index.add_with_ids(base, ids)
        return index

    index, seconds, rss = built(flat)
    lat = latency(lambda q: ann.search(index, q, K, 0)[1][0], queries)
    truth = index.search(queries, K)[1]  # batched exact search: the ground truth
    rows.append(row("flat", n, "exact", index, seconds, rss, lat, truth))
    log(rows[-1])
    del index
    index, seconds, rss = built(lambda: ivf(base, ids))
    for nprobe in NPROBES:
        lat = latency(lambda q, p=nprobe: ann.search(index, q, K, p)[1][0], queries)
        nlist = faiss.extract_index_ivf(index).nlist
        rows.append(
            row("ivf-sq8", n, f"nlist={nlist} nprobe={nprobe}", index, seconds, rss, lat, truth)
        )
        log(rows[-1])
    del index
    if hnsw:
        index, seconds, rss = built(lambda: hnsw_sq8(base))
        for ef in EF_SEARCH:
            params = faiss.SearchParametersHNSW(efSearch=ef)
            lat = latency(
                lambda q, p=params: index.search(q.reshape(1, -1), K, params=p)[1][0], queries
            )
            rows.append(row("hnsw-sq8", n, f"M={HNSW_M} ef={ef}", index, seconds, rss, lat, truth))
            log(rows[-1])
    return rows


def ivf(base: NDArray[np.float32], ids: NDArray[np.int64]) -> Any:
    """As heed's writer builds it: a random training sample, then every vector added."""
    nlist = ann.nlist_for(len(base))
    rng = np.random.default_rng(1)
    sample = base[rng.permutation(len(base))[: nlist * ann.TRAIN_PER_LIST]]
    index = ann.train_ivf(sample, nlist, nprobe=16)
    index.add_with_ids(base, ids)
    return index


def hnsw_sq8(base: NDArray[np.float32]) -> Any:
    index = faiss.IndexHNSWSQ(
        base.shape[1], faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT
    )
    index.train(base[:100_000])
    index.add(base)
    return index


# -- report ---------------------------------------------------------------------------------------
def table(rows: list[dict]) -> Table:
    out = Table(title=f"FAISS index kinds, 384-d, k={K}, single queries")
    for name in (
        "n",
        "type",
        "param",
        "p50 ms",
        "p95 ms",
        "recall@10",
        "B/vector",
        "RSS B/vector",
        "build s",
    ):
        out.add_column(name, justify="left" if name in ("type", "param") else "right")
    for r in rows:
        out.add_row(
            f"{r['n']:,}",
            r["type"],
            r["param"],
            f"{r['p50_ms']:.2f}",
            f"{r['p95_ms']:.2f}",
            f"{r['recall_at_10']:.3f}",
            f"{r['bytes_per_vector']:.0f}",
            f"{r['rss_bytes_per_vector']:.0f}",
            f"{r['build_s']:.1f}",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=500, help="at most this many")
    parser.add_argument(
        "--sources", default=",".join(map(str, SOURCES)), help="heed indexes to take vectors from"
    )
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="skip HNSW above this size")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="FAISS search threads (one query of a busy service); builds use all cores",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "scale_curve.json")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    console = Console(width=140)
    real, queries = load_data([Path(p) for p in args.sources.split(",")], args.queries)
    console.print(f"{len(real):,} real passage vectors, {len(queries):,} real queries")
    rows: list[dict] = []
    for n in (int(s) for s in args.sizes.split(",")):
        base = expand(real, n)
        rows += measure_size(
            base, queries, n <= args.hnsw_max, lambda r: console.print(json.dumps(r))
        )
        del base
        gc.collect()
    console.print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "threads": args.threads,
        "real_vectors": len(real),
        "queries": len(queries),
        "noise": NOISE,
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

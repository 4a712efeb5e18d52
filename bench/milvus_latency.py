"""First-stage search latency and insert rate: FAISS + SQLite beside Milvus Lite (embedded file),
same passages, same vectors, one run.

Passages are synthetic (no embedding: the question is the store, not the model): random unit
384-d vectors and texts of 60 words drawn from a Zipf-like 5,000-word vocabulary, one passage per
document, a ``shard`` metadata field with 10 values for filters. The ledger is written by heed's
own Writer (FAISS flat), then ``heed migrate --to milvus`` copies it (the insert rate). Queries:
random unit vectors and 3-word texts from the same vocabulary.

    python -m bench.milvus_latency [--sizes 10000,100000] [--queries 100]
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.common import VAR, percentiles, write_results
from heed.records import Document, Passage
from heed.settings import Settings
from heed.store import Writer, open_reader
from heed.store.live import open_live
from heed.store.vectors import ann_config
from indexer.migrate import migrate_index

DIM = 384
WORDS = [f"w{i}" for i in range(5000)]


def build(index_dir: Path, n: int, rng: np.random.Generator) -> Settings:
    settings = Settings(index_dir=index_dir, milvus_uri=str(index_dir.parent / "bench.db"))
    weights = 1 / np.arange(1, len(WORDS) + 1)
    weights /= weights.sum()
    with Writer(
        index_dir,
        embed_model="synthetic",
        dimension=DIM,
        chunk_tokens=200,
        chunk_overlap=32,
        ann_config=ann_config(settings),
        keep=1,
    ) as writer:
        for start in range(0, n, 1000):
            ids: list[int] = []
            for i in range(start, min(n, start + 1000)):
                text = " ".join(rng.choice(WORDS, 60, p=weights))
                doc = Document(doc_id=f"d{i}", title=f"t{i}", text=text, metadata={"shard": i % 10})
                ids += [
                    pid
                    for pid, _ in writer.put(
                        doc, [Passage(ord=0, start=0, end=len(text), text=text)]
                    )
                ]
            vectors = rng.standard_normal((len(ids), DIM)).astype(np.float32)
            writer.add_vectors(ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
        writer.commit()
    return settings


def timed(fn: Callable[[Any], object], inputs: list[Any]) -> dict[str, float]:
    fn(inputs[0])  # warm
    times = []
    for x in inputs:
        t = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t) * 1000)
    return percentiles(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    console = Console()
    rows: list[dict[str, Any]] = []
    for n in [int(s) for s in args.sizes.split(",")]:
        root = VAR / f"milvus-{n}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        t = time.perf_counter()
        settings = build(root / "idx", n, rng)
        ledger_s = time.perf_counter() - t
        faiss = open_reader(settings.index_dir)
        t = time.perf_counter()
        migrate_index(settings.model_copy(update={"vector_backend": "milvus"}), "milvus")
        insert_s = time.perf_counter() - t
        milvus = open_live(settings.model_copy(update={"vector_backend": "milvus"}))
        vecs = rng.standard_normal((args.queries, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        texts = [" ".join(rng.choice(WORDS[:2000], 3)) for _ in range(args.queries)]
        for name, reader in (("faiss+sqlite", faiss), ("milvus-lite", milvus)):
            row = {"passages": n, "store": name}
            row["dense"] = timed(lambda v, r=reader: r.dense(v, 20), list(vecs))
            row["dense+filter"] = timed(
                lambda v, r=reader: r.dense(v, 20, {"shard": 3}), list(vecs)
            )
            row["keyword"] = timed(lambda q, r=reader: r.keyword(q, 20), texts)
            row["insert_per_s"] = round(n / (ledger_s if name == "faiss+sqlite" else insert_s))
            rows.append(row)
        faiss.close()
    table = Table(title="first-stage latency, k=20 (ms p50 / p95); shared 2-core machine")
    for col in ("passages", "store", "dense", "dense+filter", "keyword", "inserts/s"):
        table.add_column(col, justify="right")
    for r in rows:
        cells = [
            f"{r[m]['p50_ms']} / {r[m]['p95_ms']}" for m in ("dense", "dense+filter", "keyword")
        ]
        table.add_row(f"{r['passages']:,}", r["store"], *cells, f"{r['insert_per_s']:,}")
    console.print(table)
    out = write_results("milvus_latency", {"queries": args.queries, "rows": rows})
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Sweep fusion, re-rank depth and re-rank weight on one collection, through heed's own search.

Each (query, passage) pair is scored by the cross-encoder once and cached, so the sweep costs
one re-rank of the deepest list per query; every configuration then runs the real
``Searcher.search`` code path. Choose defaults on a held-out collection (``bench.squad_dev``);
run it on shared/eval collections only to report, never to choose.

    python -m bench.tune_rerank var/squad-dev --index var/tune-squad-dev
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from heed.models.encoders import load_bi_encoder, load_reranker
from heed.settings import Settings
from heed.store import open_reader
from indexer.build import build_index
from indexer.sources import Fields, read_documents
from search.evaluation import Collection, evaluate, load_collection
from search.searcher import Models, Searcher, open_searcher

DEPTHS = (20, 30, 50)
WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0)


class CachedReranker:
    def __init__(self, reranker) -> None:
        self.reranker, self.cache, self.scored = reranker, {}, 0

    def __getattr__(self, name):  # query_max_tokens, is_heed, ...: the model's own
        return getattr(self.reranker, name)

    def score(self, query, passages):
        todo = [p for p in dict.fromkeys(passages) if (query, p) not in self.cache]
        if todo:
            self.cache.update(
                zip(((query, p) for p in todo), self.reranker.score(query, todo), strict=False)
            )
            self.scored += len(todo)
        return np.array([self.cache[(query, p)] for p in passages], dtype=np.float32)


class CachedEncoder:
    def __init__(self, encoder) -> None:
        self.encoder, self.name, self.cache = encoder, encoder.name, {}

    def __getattr__(self, name):  # fit_query, tokenizer, ...: the model's own
        return getattr(self.encoder, name)

    def encode_queries(self, queries):
        key = tuple(queries)
        if key not in self.cache:
            self.cache[key] = self.encoder.encode_queries(queries)
        return self.cache[key]


def sweep(collection: Collection, searcher: Searcher, modes: list[str]) -> list[dict]:
    rows = []
    for fusion in ("rrf", "weighted"):
        for name in modes:
            if name == "dense" and fusion == "weighted":
                continue
            base = evaluate(searcher, collection, [name], fusion=fusion)[name].metrics
            rows.append({"mode": name, "fusion": fusion, "depth": 0, "weight": None, **base})
            for depth, weight in itertools.product(DEPTHS, WEIGHTS[1:]):
                plus = f"{name}+rerank"
                m = evaluate(
                    searcher,
                    collection,
                    [plus],
                    fusion=fusion,
                    candidates=depth,
                    rerank_weight=weight,
                )[plus].metrics
                rows.append({"mode": plus, "fusion": fusion, "depth": depth, "weight": weight, **m})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collection", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--modes", default="dense,hybrid")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings(index_dir=args.index)
    collection = load_collection(args.collection)
    docs = read_documents([collection.corpus], Fields(id="_id"), on_error=lambda e: None)
    build_index(docs, settings)
    started = time.monotonic()
    reranker = CachedReranker(load_reranker(settings.rerank_model, settings.model_runtime()))
    encoder = CachedEncoder(load_bi_encoder(settings.embed_model, settings.model_runtime()))
    models = Models(encoder, reranker)  # type: ignore[arg-type]
    searcher = open_searcher(settings, open_reader(args.index), models)
    rows = sweep(collection, searcher, args.modes.split(","))
    table = Table(title=f"{collection.name}: re-rank sweep ({len(collection.queries)} queries)")
    for col in ("mode", "fusion", "depth", "weight", "nDCG@10", "R@100", "MRR@10"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["mode"],
            r["fusion"],
            str(r["depth"] or "-"),
            str(r["weight"] or "-"),
            f"{r['ndcg@10']:.4f}",
            f"{r['recall@100']:.4f}",
            f"{r['mrr@10']:.4f}",
        )
    Console().print(table)
    out = args.out or Path("bench/results") / f"tune-{collection.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "collection": collection.name,
                "queries": len(collection.queries),
                "pairs_scored": reranker.scored,
                "seconds": round(time.monotonic() - started),
                "rows": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Re-rankers and re-rank settings on the dev suite's average, from cached cross-encoder scores.

For each dev-suite collection (``bench.dev_suite``) the index is built once (var/dev-suite/index/),
each model scores each (query, passage) pair once (cached on disk per model and collection), and
every (depth, weight) then runs the real ``Searcher.search`` path. A setting is chosen by the
suite's *average* gain over the same first stage, never by one collection; the table also shows
the worst collection, since the goal is a gain on every one.

    python -m bench.rerank_suite --model models/heed-reranker-minilm --model var/train/run1
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.common import ROOT, write_results
from bench.dev_suite import OUT, collections
from bench.tune_rerank import CachedEncoder
from heed.models.encoders import load_bi_encoder, load_reranker
from heed.settings import Settings
from heed.store import open_reader
from indexer.build import build_index
from indexer.sources import Fields, read_documents
from search.evaluation import evaluate, load_collection
from search.searcher import Models, open_searcher

DEPTHS = (10, 20)
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
FIRST_STAGES = ("dense", "hybrid")


class DiskCachedReranker:
    """A re-ranker whose scores are kept per (query, passage) in a JSON file."""

    def __init__(self, reranker, path: Path) -> None:
        self.reranker, self.path = reranker, path
        self.cache: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}
        self.scored = 0

    def __getattr__(self, name):  # query_max_tokens, is_heed, ...: the model's own
        return getattr(self.reranker, name)

    @staticmethod
    def _key(query: str, passage: str) -> str:
        return hashlib.sha1(f"{query}\x00{passage}".encode()).hexdigest()

    def score(self, query, passages, batch_size: int = 32):
        keys = [self._key(query, p) for p in passages]
        todo = {k: p for k, p in zip(keys, passages, strict=True) if k not in self.cache}
        if todo:
            scores = self.reranker.score(query, list(todo.values()))
            self.cache.update(zip(todo, map(float, scores), strict=True))
            self.scored += len(todo)
            if self.scored // 500 != (self.scored - len(todo)) // 500:
                self.save()  # a killed run keeps what it scored
        return np.array([self.cache[k] for k in keys], dtype=np.float32)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.cache))


def model_key(folder: str) -> str:
    """The model's name and a digest of its weights, so a retrained folder gets new scores."""
    weights = ROOT / folder / "model.safetensors"
    digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:10] if weights.exists() else "hub"
    return f"{Path(folder).name}-{digest}"


def index_for(name: str, corpus: Path, settings: Settings) -> Path:
    index_dir = OUT / "index" / name
    if not (index_dir / "DONE").is_file():
        docs = read_documents([corpus], Fields(id="_id"), on_error=lambda e: None)
        build_index(docs, settings.model_copy(update={"index_dir": index_dir}), rebuild=True)
        (index_dir / "DONE").write_text("built\n")
    return index_dir


def measure(
    model: str,
    queries: int,
    limit: int | None,
    weights: tuple[float, ...] = WEIGHTS,
    only: list[str] | None = None,
) -> dict[str, dict]:
    """{collection: {"first": {mode: ndcg}, "rerank": {"mode|depth|weight": ndcg}}}."""
    settings = Settings()
    runtime = settings.model_runtime()
    encoder = CachedEncoder(load_bi_encoder(settings.embed_model, runtime))
    out: dict[str, dict] = {}
    for name, folder in collections(queries).items():
        if only and name not in only:
            continue
        collection = load_collection(folder).subset(0, limit)
        index_dir = index_for(f"{name}-{queries}", collection.corpus, settings)
        cache = OUT / "scores" / model_key(model) / f"{name}-{queries}.json"
        reranker = DiskCachedReranker(load_reranker(model, runtime), cache)
        models = Models(encoder, reranker)  # type: ignore[arg-type]
        local = settings.model_copy(update={"index_dir": index_dir})
        searcher = open_searcher(local, open_reader(index_dir), models)
        first = evaluate(searcher, collection, list(FIRST_STAGES))
        row: dict[str, dict] = {"queries": len(collection.queries), "first": {}, "rerank": {}}
        for mode in FIRST_STAGES:
            row["first"][mode] = first[mode].metrics["ndcg@10"]
        for mode, depth, weight in itertools.product(FIRST_STAGES, DEPTHS, weights):
            plus = f"{mode}+rerank"
            got = evaluate(searcher, collection, [plus], candidates=depth, rerank_weight=weight)
            row["rerank"][f"{mode}|{depth}|{weight}"] = got[plus].metrics["ndcg@10"]
        reranker.save()
        print(f"{model} {name}: {reranker.scored} pairs scored", file=sys.stderr)
        out[name] = row
    return out


def gains(rows: dict[str, dict], setting: str) -> dict[str, float]:
    mode = setting.split("|")[0]
    return {name: r["rerank"][setting] - r["first"][mode] for name, r in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="re-ranker folder")
    parser.add_argument("--queries", type=int, default=200, help="dev-suite collection size")
    parser.add_argument("--limit", type=int, default=None, help="first N judged queries each")
    parser.add_argument("--name", default="rerank_suite", help="bench/results/<name>.json")
    parser.add_argument("--only", help="comma-separated collection names (a partial suite)")
    parser.add_argument("--weights", default=",".join(map(str, WEIGHTS)), help="re-rank weights")
    args = parser.parse_args()
    console = Console(width=140)
    results = {}
    for model in args.model:
        weights = tuple(float(w) for w in args.weights.split(","))
        only = args.only.split(",") if args.only else None
        rows = measure(model, args.queries, args.limit, weights, only)
        settings = list(next(iter(rows.values()))["rerank"])
        summary = {}
        for setting in settings:
            g = gains(rows, setting)
            summary[setting] = {"average": float(np.mean(list(g.values()))), "min": min(g.values())}
        table = Table(title=f"{model}: average / worst re-rank gain (nDCG@10) over the dev suite")
        table.add_column("first stage|depth|weight")
        table.add_column("average gain", justify="right")
        table.add_column("worst collection", justify="right")
        for setting, s in summary.items():
            table.add_row(setting, f"{s['average']:+.4f}", f"{s['min']:+.4f}")
        console.print(table)
        for mode in FIRST_STAGES:
            best = max(
                (s for s in settings if s.startswith(mode)), key=lambda s: summary[s]["average"]
            )
            detail = Table(title=f"{model}: best {mode} setting by average: {best}")
            detail.add_column("collection")
            detail.add_column(mode, justify="right")
            detail.add_column("+ re-rank", justify="right")
            detail.add_column("gain", justify="right")
            for name, r in rows.items():
                detail.add_row(
                    name,
                    f"{r['first'][mode]:.3f}",
                    f"{r['rerank'][best]:.3f}",
                    f"{r['rerank'][best] - r['first'][mode]:+.3f}",
                )
            console.print(detail)
        results[model] = {"collections": rows, "summary": summary}
    command = "python -m bench.rerank_suite " + " ".join(sys.argv[1:])
    console.print(f"printed by: {command}")
    path = write_results(args.name, {"command": command, "models": results})
    console.print(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Measuring ranking quality on a BEIR-format collection, per retrieval mode.

The metrics come from ranx (nDCG with linear gains, Recall, MRR), never from hand-written
formulas; a document's score is its best passage's score (results are collapsed per document).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from heed.errors import InvalidInput
from search.modes import EVAL_MODES, eval_name
from search.searcher import Searcher

METRICS = ("ndcg@10", "recall@100", "mrr@10")
DEPTH = 100


@dataclass
class Collection:
    name: str
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def subset(self, skip: int = 0, limit: int | None = None) -> Collection:
        """The judged queries from ``skip`` on, at most ``limit`` of them (file order)."""
        if not skip and limit is None:
            return self
        ids = list(self.queries)[skip : None if limit is None else skip + limit]
        if not ids:
            raise InvalidInput(f"{self.name}: no queries left after skipping {skip}")
        return Collection(
            self.name,
            self.corpus,
            {q: self.queries[q] for q in ids},
            {q: self.qrels[q] for q in ids},
        )


@dataclass
class ModeResult:
    metrics: dict[str, float]
    latencies_ms: list[float] = field(repr=False)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)  # metric->

    def summary(self) -> dict[str, float]:
        lat = np.array(self.latencies_ms)
        return {
            **{k: round(v, 4) for k, v in self.metrics.items()},
            "latency_ms_mean": round(float(lat.mean()), 2),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
        }


def load_collection(path: Path, split: str = "test") -> Collection:
    """corpus.jsonl, queries.jsonl and qrels/<split>.tsv; errors name the file and line."""
    corpus, queries_path, qrels_path = (
        path / "corpus.jsonl",
        path / "queries.jsonl",
        path / "qrels" / f"{split}.tsv",
    )
    for p in (corpus, queries_path, qrels_path):
        if not p.is_file():
            raise InvalidInput(
                f"{p}: missing; a BEIR collection has corpus.jsonl, queries.jsonl "
                f"and qrels/{split}.tsv"
            )
    queries: dict[str, str] = {}
    with queries_path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{queries_path}:{lineno}: not a query record ({exc})") from None
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        for lineno, row in enumerate(rows, 1):
            if lineno == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # header line
            try:
                qid, doc_id, score = row[0], row[1], int(row[2])
            except (IndexError, ValueError):
                raise InvalidInput(
                    f"{qrels_path}:{lineno}: expected query-id<TAB>corpus-id<TAB>score"
                ) from None
            if score > 0:
                qrels.setdefault(qid, {})[doc_id] = score
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise InvalidInput(
            f"{qrels_path}: query {missing[0]!r} is judged but not in {queries_path}"
        )
    return Collection(path.name, corpus, {q: queries[q] for q in qrels}, qrels)


def evaluate(
    searcher: Searcher,
    collection: Collection,
    modes: list[str],
    on_query: Callable[[str], None] | None = None,
    **search_options: Any,
) -> dict[str, ModeResult]:
    """Run every judged query in every mode; metrics per mode."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    qrels = Qrels(collection.qrels)
    results: dict[str, ModeResult] = {}
    for name in modes:
        spec = EVAL_MODES[name]
        run: dict[str, dict[str, float]] = {}
        latencies = []
        for qid, text in collection.queries.items():
            started = time.perf_counter()
            outcome = searcher.search(
                text, DEPTH, mode=spec.mode, rerank=spec.rerank, **search_options
            )
            latencies.append((time.perf_counter() - started) * 1000)
            # ranx needs distinct scores to keep our order; ties broken by rank.
            n = len(outcome.hits)
            run[qid] = {h.passage.doc_id: float(n - i) for i, h in enumerate(outcome.hits)}
            if on_query:
                on_query(name)
        scores = ranx_evaluate(
            qrels, Run(run), list(METRICS), make_comparable=True, return_mean=False
        )
        results[name] = ModeResult(
            {m: float(np.mean(scores[m])) for m in METRICS},
            latencies,
            {m: dict(zip(qrels.keys(), map(float, scores[m]), strict=True)) for m in METRICS},
        )
    return results


def report(
    collection: Collection, results: dict[str, ModeResult], searcher: Searcher
) -> dict[str, Any]:
    """The `--json` document."""
    s = searcher.settings
    manifest = searcher.reader.manifest
    return {
        "collection": collection.name,
        "queries": len(collection.queries),
        "modes": {name: r.summary() for name, r in results.items()},
        "default_mode": eval_name(s.mode, searcher.defaults.rerank),
        "settings": {
            "fusion": s.fusion,
            "dense_weight": searcher.defaults.dense_weight,
            "candidates": s.candidates,
            "rerank_weight": s.rerank_weight,
        },
        "index": {
            "embed_model": manifest.embed_model,
            "embed_reason": manifest.embed_reason,
            "rerank_model": s.rerank_model,
            "documents": manifest.documents,
            "passages": manifest.passages,
        },
    }

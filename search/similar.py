"""More like this: the documents nearest to one document, from its stored passage vectors.

Nothing is embedded again: the document's exact passage vectors (SQLite keeps them) are averaged
into one unit vector, and the index is searched with it like a query. The mean stands for the
whole document, not for its best passage, so a long document finds documents about the same
thing rather than documents sharing one paragraph. Each result is the best passage of another
document (one per document; the document itself never comes back), scored by cosine similarity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heed.store import Reader
from search.collapse import best_per_document
from search.hits import Hit
from search.searcher import MAX_DEPTH


@dataclass
class Similar:
    doc_id: str
    title: str
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)


def mean_direction(vectors: np.ndarray) -> np.ndarray:
    """The normalised mean of unit vectors: what a document's passages have in common."""
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return np.asarray(mean / norm if norm > 0 else mean, dtype=np.float32)


def similar_documents(
    reader: Reader, doc_id: str, k: int = 10, filters: dict[str, Any] | None = None
) -> Similar:
    """The ``k`` documents nearest to ``doc_id``, best first, each with its closest passage."""
    started = time.perf_counter()
    doc = reader.document(doc_id)  # DocumentNotFound (404) for an unknown id
    vector = mean_direction(reader.vectors([p["passage_id"] for p in doc["passages"]]))
    depth = min(MAX_DEPTH, (k + 1) * 4)
    while True:
        scored = [(pid, s) for pid, s in reader.dense(vector, depth, filters)]
        rows = reader.passages(pid for pid, _ in scored)
        hits = [
            Hit(rows[pid], s, s, dense_score=s, retrieved_by=("dense",))
            for pid, s in scored
            if pid in rows and rows[pid].doc_id != doc_id
        ]
        others = best_per_document(hits)
        if len(others) >= k or len(scored) < depth or depth >= MAX_DEPTH:
            break
        depth = min(MAX_DEPTH, depth * 2)  # many passages of the same documents: dig deeper
    took = round((time.perf_counter() - started) * 1000, 2)
    return Similar(doc["doc_id"], doc["title"], others[:k], {"retrieve": took})

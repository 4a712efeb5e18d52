"""A/B of two index generations: the same judged queries on both, per-mode deltas and the
queries that gained and lost most (``heed compare``).

The query sets are :class:`~search.evaluation.Collection`\\ s whose judgements name the index's
own document ids: self-evaluation queries made from the index, a judged collection the index was
built from, or the readers' clicks. Both generations are searched with the same settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search.evaluation import METRICS, Collection, ModeResult, evaluate
from search.modes import eval_name
from search.searcher import Searcher

FOCUS = "ndcg@10"  # the metric queries are ranked by in the gained / lost lists


def describe(searcher: Searcher) -> dict[str, Any]:
    m = searcher.reader.manifest
    return {
        "generation": m.generation,
        "created_at": m.created_at.isoformat(),
        "embed_model": m.embed_model,
        "documents": m.documents,
        "passages": m.passages,
    }


def query_changes(collection: Collection, a: ModeResult, b: ModeResult, top: int) -> dict[str, Any]:
    """How many queries' nDCG@10 rose and fell from A to B, and the ``top`` of each."""
    rows: list[dict[str, Any]] = [
        {
            "query_id": qid,
            "query": collection.queries[qid],
            "a": round(a.per_query[FOCUS][qid], 4),
            "b": round(b.per_query[FOCUS][qid], 4),
            "delta": round(b.per_query[FOCUS][qid] - a.per_query[FOCUS][qid], 4),
        }
        for qid in collection.qrels
    ]
    rows.sort(key=lambda r: (-r["delta"], r["query_id"]))
    gained = [r for r in rows if r["delta"] > 0]
    lost = [r for r in reversed(rows) if r["delta"] < 0]
    return {
        "queries_gained": len(gained),
        "queries_lost": len(lost),
        "gained": gained[:top],
        "lost": lost[:top],
    }


def compare_on(
    collection: Collection,
    a: Searcher,
    b: Searcher,
    modes: list[str],
    *,
    top: int = 5,
    on_query: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One query set on both generations in every mode: per mode, A's and B's metrics, B - A,
    and the ``top`` queries that gained and lost most."""
    on_a = evaluate(a, collection, modes, on_query=on_query)
    on_b = evaluate(b, collection, modes, on_query=on_query)
    per_mode = {}
    for name in modes:
        per_mode[name] = {
            "a": {m: round(on_a[name].metrics[m], 4) for m in METRICS},
            "b": {m: round(on_b[name].metrics[m], 4) for m in METRICS},
            "delta": {m: round(on_b[name].metrics[m] - on_a[name].metrics[m], 4) for m in METRICS},
            **query_changes(collection, on_a[name], on_b[name], top),
        }
    return {"name": collection.name, "queries": len(collection.qrels), "modes": per_mode}


def comparison(a: Searcher, b: Searcher, sets: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``heed compare`` report (``--json``): both generations and each set's results."""
    return {
        "a": describe(a),
        "b": describe(b),
        "default_mode": eval_name(b.settings.mode, b.defaults.rerank),
        "sets": sets,
    }

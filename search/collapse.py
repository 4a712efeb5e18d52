"""Collapsing passage hits to one per document."""

from __future__ import annotations

from search.hits import Hit


def best_per_document(hits: list[Hit]) -> list[Hit]:
    """Each document's best-scoring hit, best first."""
    seen: set[str] = set()
    best = []
    for h in sorted(hits, key=lambda h: -h.score):
        if h.passage.doc_id not in seen:
            seen.add(h.passage.doc_id)
            best.append(h)
    return best

"""Fusing a dense and a keyword ranking into one list of (passage id, score), best first.

Plain Python (no numpy): the mode table imports this, and `heed --help` reads the table.
"""

from __future__ import annotations

from collections.abc import Sequence

Scored = list[tuple[int, float]]


def rrf(rankings: Sequence[Sequence[tuple[int, float]]], k: int) -> Scored:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the lists that contain an item."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (pid, _) in enumerate(ranking, 1):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda x: -x[1])


def weighted_fusion(
    dense: Sequence[tuple[int, float]], keyword: Sequence[tuple[int, float]], dense_weight: float
) -> Scored:
    """Min-max normalised scores, mixed; a missing item scores 0 in that list."""
    d, kw = _minmax(dense), _minmax(keyword)
    ids = list(dict.fromkeys([pid for pid, _ in dense] + [pid for pid, _ in keyword]))
    fused = [
        (pid, dense_weight * d.get(pid, 0.0) + (1 - dense_weight) * kw.get(pid, 0.0)) for pid in ids
    ]
    return sorted(fused, key=lambda x: -x[1])


def _minmax(scored: Sequence[tuple[int, float]]) -> dict[int, float]:
    if not scored:
        return {}
    values = [s for _, s in scored]
    lo, span = min(values), max(values) - min(values)
    return {pid: (s - lo) / span if span > 0 else 1.0 for pid, s in scored}

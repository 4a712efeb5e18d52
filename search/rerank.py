"""Re-ranking the head of a first-stage list with the cross-encoder.

Why the final score mixes re-rank and first-stage scores: both are standardised over the
candidate list and averaged with ``rerank_weight``, so the re-ranker refines the fused order
instead of replacing it; a re-ranker that is unsure (flat scores) cannot sink a list that was
already good. The weight is a setting; its default is the measured one (README, "Relevance").
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from heed.models.encoders import Reranker
from heed.records import embed_text
from search.hits import Hit


def rerank(
    reranker: Reranker, query: str, hits: list[Hit], candidates: int, weight: float
) -> list[Hit]:
    """The first ``candidates`` hits re-scored and re-ordered; the rest below them, in order."""
    head, tail = hits[:candidates], hits[candidates:]
    texts = [embed_text(h.passage.title, h.passage.text) for h in head]
    scores = reranker.score(query, texts)
    first = np.array([h.first_stage for h in head], dtype=np.float32)
    final = mix_scores(scores, first, weight)
    for h, r, f in zip(head, scores, final, strict=True):
        h.rerank_score, h.score = float(r), float(f)
    head.sort(key=lambda h: -h.score)
    floor = head[-1].score if head else 0.0
    for i, h in enumerate(tail, 1):  # below every re-ranked hit, in first-stage order
        h.score = floor - i
    return head + tail


def mix_scores(
    rerank: NDArray[np.float32], first_stage: NDArray[np.float32], weight: float
) -> NDArray[np.float32]:
    """The final score of re-ranked candidates: standardised scores, ``weight`` for re-rank."""
    mixed = weight * _standardise(rerank) + (1 - weight) * _standardise(first_stage)
    return mixed.astype(np.float32, copy=False)


def _standardise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    std = x.std()
    return (x - x.mean()) / std if std > 1e-9 else np.zeros_like(x)

"""Retrieve -> fuse -> re-rank -> collapse. Plain Python over a store snapshot: no FastAPI here.

Why the final score mixes re-rank and first-stage scores: both are standardised over the
candidate list and averaged with ``rerank_weight``, so the re-ranker refines the fused order
instead of replacing it; a re-ranker that is unsure (flat scores) cannot sink a list that was
already good. The weight is a setting; its default is the measured one (README, "Relevance").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heed.encoders import BiEncoder, Reranker
from heed.errors import ExplainUnavailable, InvalidInput, ModelMismatch
from heed.explain import Explainer, Span
from heed.records import embed_text
from heed.settings import Fusion, Mode, Settings
from heed.store import PassageHit, Reader

MAX_DEPTH = 1000
log = logging.getLogger(__name__)


@dataclass
class Hit:
    passage: PassageHit
    score: float
    first_stage: float
    dense_score: float | None = None
    keyword_score: float | None = None
    rerank_score: float | None = None
    highlights: list[Span] | None = None


@dataclass
class Outcome:
    hits: list[Hit]
    mode: Mode
    reranked: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    explain_method: str | None = None


class Searcher:
    """Answers queries against one index generation with one pair of models."""

    def __init__(
        self,
        reader: Reader,
        encoder: BiEncoder,
        reranker: Reranker | None,
        settings: Settings,
        explainer: Explainer | None = None,
    ):
        built_with = reader.manifest.embed_model
        if encoder.name != built_with:
            raise ModelMismatch(
                f"the index was built with {built_with!r} but queries would be embedded with "
                f"{encoder.name!r}; set HEED_EMBED_MODEL={built_with} or rebuild the index"
            )
        self.reader = reader
        self.encoder = encoder
        self.reranker = reranker
        self.settings = settings
        self.explainer = explainer

    @property
    def generation(self) -> int:
        return self.reader.generation

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: Mode | None = None,
        rerank: bool | None = None,
        candidates: int | None = None,
        filters: dict[str, Any] | None = None,
        collapse: bool = True,
        fusion: Fusion | None = None,
        rerank_weight: float | None = None,
        explain: bool = False,
    ) -> Outcome:
        """The best ``k`` results (one passage per document when ``collapse``).

        ``explain`` adds highlights from the cross-encoder to each result, re-ranked or not.
        """
        query = query.strip()
        if not query:
            raise InvalidInput("query is empty")
        if explain and self.explainer is None:
            raise ExplainUnavailable(
                "explain needs heed's cross-encoder; set HEED_RERANK_MODEL to a heed re-ranker "
                "folder (the default is models/heed-reranker-minilm)"
            )
        s = self.settings
        mode = mode or s.mode
        if mode == "hybrid" and not self.reader.vectors_ok:
            # Keyword results beat none; the response's mode says which answered, /readyz fails.
            log.warning("generation %d: vectors unavailable, hybrid -> keyword", self.generation)
            mode = "keyword"
        rerank = s.rerank if rerank is None else rerank
        if rerank and self.reranker is None:
            rerank = False
        candidates = candidates or s.candidates
        timings: dict[str, float] = {}
        depth = min(MAX_DEPTH, max(k, candidates if rerank else 0) * 2)
        query_vec = None
        if mode != "keyword":
            t = time.perf_counter()
            query_vec = self.encoder.encode_queries([query])[0]
            timings["embed"] = _ms(t)
        while True:
            t = time.perf_counter()
            hits = self.first_stage(query, query_vec, mode, depth, filters, fusion or s.fusion)
            timings["retrieve"] = timings.get("retrieve", 0.0) + _ms(t)
            if not collapse or depth >= MAX_DEPTH or len(hits) < depth:
                break
            if len({h.passage.doc_id for h in hits}) >= max(k, candidates if rerank else 0):
                break
            depth = min(MAX_DEPTH, depth * 2)  # many passages of the same documents: dig deeper
        if rerank and hits:
            t = time.perf_counter()
            hits = self._rerank(
                query, hits, candidates, s.rerank_weight if rerank_weight is None else rerank_weight
            )
            timings["rerank"] = _ms(t)
        if collapse:
            hits = _best_per_document(hits)
        hits = hits[:k]
        if query_vec is not None:
            self._fill_dense_scores(hits, query_vec)
        method = None
        if explain and hits:
            t = time.perf_counter()
            method = self._explain(query, hits)
            timings["explain"] = _ms(t)
        return Outcome(
            hits=hits, mode=mode, reranked=rerank, timings_ms=timings, explain_method=method
        )

    # -- stages ----------------------------------------------------------------------------------
    def first_stage(
        self,
        query: str,
        query_vec: np.ndarray | None,
        mode: Mode,
        depth: int,
        filters: dict[str, Any] | None,
        fusion: Fusion,
    ) -> list[Hit]:
        """Passage hits before re-ranking, best first (not collapsed)."""
        dense = self.reader.dense(query_vec, depth, filters) if query_vec is not None else []
        keyword = self.reader.keyword(query, depth, filters) if mode != "dense" else []
        if mode == "dense":
            scored = [(pid, s) for pid, s in dense]
        elif mode == "keyword":
            scored = list(keyword)
        elif fusion == "rrf":
            scored = rrf([dense, keyword], self.settings.rrf_k)
        else:
            scored = weighted_fusion(dense, keyword, self.settings.dense_weight)
        rows = self.reader.passages(pid for pid, _ in scored)
        dense_of, keyword_of = dict(dense), dict(keyword)
        return [
            Hit(rows[pid], s, s, dense_of.get(pid), keyword_of.get(pid))
            for pid, s in scored
            if pid in rows
        ]

    def _rerank(self, query: str, hits: list[Hit], candidates: int, weight: float) -> list[Hit]:
        head, tail = hits[:candidates], hits[candidates:]
        texts = [embed_text(h.passage.title, h.passage.text) for h in head]
        scores = self.reranker.score(query, texts)  # type: ignore[union-attr]
        first = np.array([h.first_stage for h in head], dtype=np.float32)
        final = mix_scores(scores, first, weight)
        for h, r, f in zip(head, scores, final, strict=True):
            h.rerank_score, h.score = float(r), float(f)
        head.sort(key=lambda h: -h.score)
        floor = head[-1].score if head else 0.0
        for i, h in enumerate(tail, 1):  # below every re-ranked hit, in first-stage order
            h.score = floor - i
        return head + tail

    def _explain(self, query: str, hits: Sequence[Hit]) -> str:
        assert self.explainer is not None
        passages = [(h.passage.title, h.passage.text) for h in hits]
        for h, spans in zip(hits, self.explainer.explain(query, passages), strict=True):
            h.highlights = spans
        return self.explainer.method

    def _fill_dense_scores(self, hits: Sequence[Hit], query_vec: np.ndarray) -> None:
        missing = [h for h in hits if h.dense_score is None]
        if missing:
            vecs = self.reader.vectors([h.passage.passage_id for h in missing])
            for h, v in zip(missing, vecs @ query_vec, strict=True):
                h.dense_score = float(v)


def mix_scores(rerank: np.ndarray, first_stage: np.ndarray, weight: float) -> np.ndarray:
    """The final score of re-ranked candidates: standardised scores, ``weight`` for re-rank."""
    return weight * _standardise(rerank) + (1 - weight) * _standardise(first_stage)


def rrf(rankings: Sequence[Sequence[tuple[int, float]]], k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the lists that contain an item."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (pid, _) in enumerate(ranking, 1):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda x: -x[1])


def weighted_fusion(
    dense: Sequence[tuple[int, float]], keyword: Sequence[tuple[int, float]], dense_weight: float
) -> list[tuple[int, float]]:
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
    values = np.array([s for _, s in scored])
    lo, span = values.min(), values.max() - values.min()
    return {pid: float((s - lo) / span) if span > 0 else 1.0 for pid, s in scored}


def _standardise(x: np.ndarray) -> np.ndarray:
    std = x.std()
    return (x - x.mean()) / std if std > 1e-9 else np.zeros_like(x)


def _best_per_document(hits: list[Hit]) -> list[Hit]:
    seen: set[str] = set()
    best = []
    for h in sorted(hits, key=lambda h: -h.score):
        if h.passage.doc_id not in seen:
            seen.add(h.passage.doc_id)
            best.append(h)
    return best


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)

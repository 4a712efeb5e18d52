"""What a search returns: passage hits with every score that made them, and the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from heed.highlights import Span
from heed.settings import Mode
from heed.store import PassageHit


@dataclass
class Hit:
    passage: PassageHit
    score: float
    first_stage: float
    dense_score: float | None = None
    keyword_score: float | None = None
    rerank_score: float | None = None
    highlights: list[Span] | None = None
    retrieved_by: tuple[str, ...] = ()  # "dense" and/or "keyword": the lists that found it
    relevance: float | None = None  # calibrated probability of relevance (heed tune), 0-1


@dataclass
class Outcome:
    hits: list[Hit]
    mode: Mode
    reranked: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    explain_method: str | None = None
    query_truncated: bool = False  # a model read only the start of the query
    keyword_terms: list[str] | None = None  # a long query's terms that keyword search used

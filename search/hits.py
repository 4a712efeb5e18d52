"""What a search returns: passage hits with every score that made them, and the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from heed.models.explain import Span
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


@dataclass
class Outcome:
    hits: list[Hit]
    mode: Mode
    reranked: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    explain_method: str | None = None

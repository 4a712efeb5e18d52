"""The retrieval modes, in one table: what each first stage reads and how it ranks.

Everything that lists modes reads this table: ``Searcher`` (the first stage), ``heed eval`` (the
names it measures), ``heed search --help`` and the API's ``mode`` enum (``heed.settings.Mode``,
checked against the table at import).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from heed.errors import InvalidInput
from heed.settings import Fusion, Mode
from search.fusion import Scored, rrf, weighted_fusion


@dataclass(frozen=True)
class FusionParams:
    fusion: Fusion
    rrf_k: int
    dense_weight: float


Rank = Callable[[Scored, Scored, FusionParams], Scored]


def _fuse(dense: Scored, keyword: Scored, p: FusionParams) -> Scored:
    if p.fusion == "rrf":
        return rrf([dense, keyword], p.rrf_k)
    return weighted_fusion(dense, keyword, p.dense_weight)


@dataclass(frozen=True)
class RetrievalMode:
    """One first stage: which retrievers it runs and how it ranks their (id, score) lists."""

    dense: bool  # embeds the query and searches the vector index
    keyword: bool  # searches SQLite FTS5 (BM25)
    rank: Rank
    eval_name: str  # its name in `heed eval` and the eval report
    eval_rerank: bool  # `heed eval` also measures it re-ranked


MODES: dict[Mode, RetrievalMode] = {
    # "bm25": the eval report's name for keyword search since its first release (README tables,
    # bench/results); `--modes keyword` is accepted too.
    "keyword": RetrievalMode(False, True, lambda d, k, p: list(k), "bm25", False),
    "dense": RetrievalMode(True, False, lambda d, k, p: list(d), "dense", True),
    "hybrid": RetrievalMode(True, True, _fuse, "hybrid", True),
}
if set(MODES) != set(get_args(Mode)):  # pragma: no cover - a new Mode needs its row here
    raise RuntimeError(f"search.modes.MODES {sorted(MODES)} != Mode {get_args(Mode)}")

RERANKED = "+rerank"


@dataclass(frozen=True)
class EvalMode:
    """A mode as `heed eval` measures it: first stage plus re-rank on or off."""

    mode: Mode
    rerank: bool


EVAL_MODES: dict[str, EvalMode] = {
    **{spec.eval_name: EvalMode(mode, False) for mode, spec in MODES.items()},
    **{
        spec.eval_name + RERANKED: EvalMode(mode, True)
        for mode, spec in MODES.items()
        if spec.eval_rerank
    },
}


def eval_name(mode: Mode, rerank: bool) -> str:
    """The `heed eval` name of a mode, re-ranked or not."""
    spec = MODES[mode]
    return spec.eval_name + (RERANKED if rerank and spec.eval_rerank else "")


def parse_modes(text: str | None) -> list[str]:
    """`heed eval --modes`: comma-separated eval names (a mode's own name works too)."""
    names = [m.strip() for m in text.split(",")] if text else list(EVAL_MODES)
    resolved = []
    for name in names:
        base, plus, _ = name.partition(RERANKED)
        if base in MODES and (not plus or MODES[base].eval_rerank):
            name = eval_name(base, bool(plus))  # e.g. "keyword" for "bm25"
        if name not in EVAL_MODES:
            raise InvalidInput(f"unknown mode {name!r}; choose from {', '.join(EVAL_MODES)}")
        resolved.append(name)
    return resolved

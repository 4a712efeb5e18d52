"""The search page: server-rendered HTML (Jinja2), no JavaScript build, nothing from a CDN.

The query lives in the URL (``/?q=...&mode=...``), so a result page can be shared and reloaded.
Explanations are on here (off by default in the API): the page is where a reader looks at them.
Errors render on the page with their status, so the reader sees what to do next; the JSON API
keeps its own error bodies (``service/errors.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from heed.errors import HeedError
from heed.highlights import Span
from heed.settings import Mode
from search.hits import Hit, Outcome
from search.long_queries import unquoted
from search.similar import Similar, similar_documents
from service.auth import require_page_reader
from service.deps import EngineDep
from service.engine import Engine
from service.errors import without_paths
from service.examples import example_queries
from service.limits import PageSearchSlot

HERE = Path(__file__).resolve().parents[1]
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False, dependencies=[Depends(require_page_reader)])
# Highlight weights in three steps a reader can tell apart (the legend names them): weights
# are relative to the passage's heaviest word, and marks start at 0.25 (heed.models.explain).
LEVELS = ((0.75, 3), (0.5, 2), (0.0, 1))


@dataclass
class Piece:
    """A run of passage text; ``weight`` (and its ``level``, 1-3) is set on highlighted words."""

    text: str
    weight: float | None = None

    @property
    def level(self) -> int:
        return next(level for floor, level in LEVELS if (self.weight or 0.0) >= floor)


def pieces(text: str, spans: list[Span] | None) -> list[Piece]:
    """The passage cut at its highlights, for the template to wrap the words in <mark>.

    Line breaks stay (the page shows them, so code keeps its lines); blank space at the
    passage's ends goes.
    """
    out, last = [], 0
    for span in sorted(spans or [], key=lambda s: s.start):
        if span.start < last:
            continue
        out.append(Piece(text[last : span.start]))
        out.append(Piece(text[span.start : span.end], span.weight))
        last = span.end
    out.append(Piece(text[last:]))
    if out[0].weight is None:
        out[0].text = out[0].text.lstrip()
    if out[-1].weight is None:
        out[-1].text = out[-1].text.rstrip()
    return [p for p in out if p.text]


def found_by(hit: Hit) -> str | None:
    """Which retrieval found a result, in a reader's words (no score: it only ranks)."""
    by = set(hit.retrieved_by)
    if by == {"dense", "keyword"}:
        return "matches your words and their meaning"
    if by == {"keyword"}:
        return "matches your words"
    if by == {"dense"}:
        return "close in meaning"
    return None


@router.get("/", response_class=HTMLResponse, dependencies=[PageSearchSlot])
def search_page(
    request: Request,
    engine: EngineDep,
    q: Annotated[str, Query()] = "",
    mode: Annotated[Mode | None, Query()] = None,
    rerank: Annotated[list[str] | None, Query()] = None,
    like: Annotated[str, Query(description="a document id: documents like it")] = "",
) -> HTMLResponse:
    settings = engine.settings
    mode = mode or settings.mode
    # The form always sends rerank=off and, ticked, rerank=on after it; no value at all (a bare
    # shared URL) means the index's default.
    use_rerank = None if not rerank else rerank[-1] == "on"
    context: dict[str, Any] = {
        "q": q,
        "mode": mode,
        "rerank": _default_rerank(engine) if use_rerank is None else use_rerank,
        "modes": get_args(Mode),
        "max_query_chars": settings.max_query_chars,
        "examples": [],
        "results": None,
        "like": None,
        "error": None,
        "clicks": settings.clicks,  # result links ping /clicks (see service/routes/clicks.py)
    }
    status = 200
    started = time.perf_counter()
    try:
        if like:
            with engine.lease() as searcher:
                found = similar_documents(searcher.reader, like, 10)
            context.update(_similar(found, started))
        elif q.strip():
            with engine.lease() as searcher:
                outcome = searcher.search(
                    q, 10, mode=mode, rerank=use_rerank, explain=searcher.can_explain
                )
                if use_rerank is None:
                    context["rerank"] = searcher.defaults.rerank
            context.update(_results(outcome, started))
        else:
            context["examples"] = _examples(engine)
    except HeedError as exc:
        status = exc.status
        context["error"] = without_paths(str(exc))
    return templates.TemplateResponse(request, "search.html", context, status_code=status)


def _examples(engine: Engine) -> list[str]:
    configured = engine.settings.example_queries
    if configured is not None:
        return configured
    try:
        with engine.lease() as searcher:  # a retired generation is closed by its last lease
            return example_queries(searcher.reader)
    except HeedError:  # no index yet: the page says so when a search runs
        return []


def _default_rerank(engine: Engine) -> bool:
    """The live index's default (off for text the English re-ranker cannot read)."""
    try:
        return engine.searcher().defaults.rerank
    except HeedError:  # no index yet: the page shows the error when a query comes
        return engine.settings.rerank


@router.get("/doc/{doc_id:path}", response_class=HTMLResponse)
def document_page(
    request: Request,
    engine: EngineDep,
    doc_id: str,
    start: int | None = None,
    end: int | None = None,
    q: str = "",
) -> HTMLResponse:
    """A whole document; the passage a result came from (``start``-``end``) is marked."""
    try:
        with engine.lease() as searcher:
            doc = searcher.reader.document(doc_id)
    except HeedError as exc:
        context: dict[str, Any] = {"doc": None, "error": without_paths(str(exc)), "q": q}
        return templates.TemplateResponse(request, "document.html", context, status_code=exc.status)
    text = doc["text"]
    if start is not None and end is not None and 0 <= start < end <= len(text):
        parts = [text[:start], text[start:end], text[end:]]
    else:
        parts = [text, "", ""]
    context = {"doc": doc, "parts": parts, "error": None, "q": q}
    return templates.TemplateResponse(request, "document.html", context)


def _result(h: Hit) -> dict[str, Any]:
    return {
        "doc_id": h.passage.doc_id,
        "title": h.passage.title or h.passage.doc_id,
        "start": h.passage.start,
        "end": h.passage.end,
        "found_by": found_by(h),
        "pieces": pieces(h.passage.text, h.highlights),
    }


def _results(outcome: Outcome, started: float) -> dict[str, Any]:
    return {
        "results": [_result(h) for h in outcome.hits],
        "took_ms": round((time.perf_counter() - started) * 1000),
        "timings": {k: round(v) for k, v in outcome.timings_ms.items()},
        "explain_method": outcome.explain_method,
        "reranked": outcome.reranked,
        "query_truncated": outcome.query_truncated,
        "keyword_terms": unquoted(outcome.keyword_terms),
    }


def _similar(found: Similar, started: float) -> dict[str, Any]:
    return {
        "like": {"doc_id": found.doc_id, "title": found.title or found.doc_id},
        "results": [{**_result(h), "found_by": None} for h in found.hits],
        "took_ms": round((time.perf_counter() - started) * 1000),
        "timings": {k: round(v) for k, v in found.timings_ms.items()},
        "explain_method": None,
    }

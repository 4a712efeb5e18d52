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

from heed.errors import HeedError, InvalidInput
from heed.models.explain import Span
from heed.settings import Mode
from search.hits import Outcome
from service.auth import require_page_reader
from service.deps import EngineDep
from service.errors import without_paths
from service.limits import PageSearchSlot
from service.schemas import MAX_QUERY_CHARS

HERE = Path(__file__).resolve().parents[1]
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False, dependencies=[Depends(require_page_reader)])
EXAMPLES = ("how do I read a CSV file", "run a shell command and capture its output", "柏林人口")


@dataclass
class Piece:
    """A run of passage text; ``weight`` is set on highlighted words."""

    text: str
    weight: float | None = None


def pieces(text: str, spans: list[Span] | None) -> list[Piece]:
    """The passage cut at its highlights, for the template to wrap the words in <mark>."""
    out, last = [], 0
    for span in sorted(spans or [], key=lambda s: s.start):
        if span.start < last:
            continue
        out.append(Piece(text[last : span.start]))
        out.append(Piece(text[span.start : span.end], span.weight))
        last = span.end
    out.append(Piece(text[last:]))
    return [p for p in out if p.text]


@router.get("/", response_class=HTMLResponse, dependencies=[PageSearchSlot])
def search_page(
    request: Request,
    engine: EngineDep,
    q: Annotated[str, Query()] = "",
    mode: Annotated[Mode | None, Query()] = None,
    rerank: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    settings = engine.settings
    mode = mode or settings.mode
    # The form always sends rerank=off and, ticked, rerank=on after it; no value at all (a bare
    # shared URL) means the service's default.
    use_rerank = settings.rerank if not rerank else rerank[-1] == "on"
    context: dict[str, Any] = {
        "q": q,
        "mode": mode,
        "rerank": use_rerank,
        "modes": get_args(Mode),
        "examples": EXAMPLES,
        "results": None,
        "error": None,
    }
    status = 200
    if q.strip():
        started = time.perf_counter()
        try:
            if len(q) > MAX_QUERY_CHARS:
                raise InvalidInput(
                    f"the query is {len(q)} characters long; keep it under {MAX_QUERY_CHARS}"
                )
            with engine.lease() as searcher:
                outcome = searcher.search(
                    q, 10, mode=mode, rerank=use_rerank, explain=searcher.explainer is not None
                )
                context.update(_results(outcome, started))
        except HeedError as exc:
            status = exc.status
            context["error"] = without_paths(str(exc))
    return templates.TemplateResponse(request, "search.html", context, status_code=status)


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


def _results(outcome: Outcome, started: float) -> dict[str, Any]:
    took = round((time.perf_counter() - started) * 1000)
    return {
        "results": [
            {
                "doc_id": h.passage.doc_id,
                "title": h.passage.title or h.passage.doc_id,
                "start": h.passage.start,
                "end": h.passage.end,
                "score": h.score,
                "pieces": pieces(h.passage.text, h.highlights),
            }
            for h in outcome.hits
        ],
        "took_ms": took,
        "timings": {k: round(v) for k, v in outcome.timings_ms.items()},
        "explain_method": outcome.explain_method,
        "reranked": outcome.reranked,
    }

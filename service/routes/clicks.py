"""Clicks: the search page reports which result a reader opened (``HEED_CLICKS``, off by default).

The page sends them without script, by the ``ping`` attribute of its result links: the browser
POSTs to the ping URL as it follows the link (a browser with pings turned off sends nothing).
So the click is described by query parameters and the body (``PING``) is ignored; an API client
can POST the same URL. Nothing about the client (address, cookie, agent) is stored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from heed.errors import ClicksDisabled
from heed.settings import Mode
from heed.store.clicks import record_click
from service.auth import require_reader
from service.deps import SearcherDep
from service.errors import invalid_field
from service.schemas import error_responses

router = APIRouter(tags=["clicks"], dependencies=[Depends(require_reader)])
ERRORS = error_responses(401, 403, 404, 413, 422, 429, 503)


@router.post("/clicks", status_code=204, response_class=Response, responses=ERRORS)
def click(
    searcher: SearcherDep,
    query: Annotated[str, Query(min_length=1, description="the query the results answered")],
    doc_id: Annotated[str, Query(min_length=1, max_length=512, description="the result opened")],
    rank: Annotated[int, Query(ge=1, le=100, description="its place on the page, 1 = first")],
    mode: Mode | None = None,
) -> Response:
    """Record that a reader opened ``doc_id`` for ``query`` (403 ``clicks_disabled`` unless
    HEED_CLICKS is on). ``heed eval --clicks`` turns the clicks into judgements."""
    settings = searcher.settings
    if not settings.clicks:
        raise ClicksDisabled("clicks are not recorded here; set HEED_CLICKS=true to record them")
    if len(query) > settings.max_query_chars:
        raise invalid_field("query", f"at most {settings.max_query_chars} characters")
    searcher.reader.document(doc_id)  # 404 for a document this index does not hold
    record_click(settings.index_dir, query, doc_id, rank, searcher.generation, mode)
    return Response(status_code=204)

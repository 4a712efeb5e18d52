"""FastAPI dependencies: route signatures name what they need, not how it is found."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from search.searcher import Searcher
from service.engine import Engine


async def get_engine(request: Request) -> Engine:
    """Async: a sync dependency costs every request a trip through the threadpool."""
    return request.app.state.engine


def get_searcher(request: Request) -> Iterator[Searcher]:
    """The live searcher, leased until the response is done (see Engine.lease)."""
    with request.app.state.engine.lease() as searcher:
        yield searcher


EngineDep = Annotated[Engine, Depends(get_engine)]
SearcherDep = Annotated[Searcher, Depends(get_searcher)]

"""FastAPI dependencies: route signatures name what they need, not how it is found."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from search.searcher import Searcher
from service.engine import Engine


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_searcher(request: Request) -> Searcher:
    return get_engine(request).searcher()


EngineDep = Annotated[Engine, Depends(get_engine)]
SearcherDep = Annotated[Searcher, Depends(get_searcher)]

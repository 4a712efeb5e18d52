"""The FastAPI application factory: ``create_app(settings)``, no module-level app or settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from heed import __version__
from heed.settings import Settings
from service.engine import Engine
from service.errors import install_error_handlers
from service.headers import SecurityHeaders
from service.limits import install_limits
from service.metrics import Metrics, install_metrics
from service.routes import admin, documents, health, login, page, search


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = Engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(engine.load_models)  # once per process, before traffic
        yield
        await run_in_threadpool(engine.jobs.shutdown)  # a running reindex is cancelled cleanly

    app = FastAPI(
        title="heed",
        version=__version__,
        summary="Semantic search: dense + keyword retrieval, re-ranked by a cross-encoder.",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_error_handlers(app)
    login.install_login(app)
    install_limits(app, settings)
    docs = frozenset(
        p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p
    )
    app.add_middleware(SecurityHeaders, docs_paths=docs)
    install_metrics(app, app.state.metrics)  # last added runs first: it sees every response
    for module in (search, documents, health, admin, page, login):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=page.HERE / "static"), name="static")
    return app

"""The FastAPI application factory: ``create_app(settings)``, no module-level app or settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from heed import __version__
from heed.settings import Settings
from service.docs import DOCS_PATHS, install_docs
from service.engine import Engine
from service.errors import install_error_handlers
from service.headers import SecurityHeaders
from service.limits import install_limits
from service.metrics import Metrics, install_metrics
from service.routes import admin, clicks, documents, health, login, page, search, snapshots


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
        docs_url=None,  # served from installed assets by install_docs, not from a CDN
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_error_handlers(app)
    login.install_login(app)
    install_limits(app, settings)
    install_docs(app)
    app.add_middleware(SecurityHeaders, docs_paths=DOCS_PATHS, clicks=settings.clicks)
    install_metrics(app, app.state.metrics)  # last added runs first: it sees every response
    for module in (search, documents, health, admin, snapshots, clicks, page, login):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=page.HERE / "static"), name="static")
    return app

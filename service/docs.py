"""API docs that work offline: Swagger UI at /docs and ReDoc at /redoc, from installed files.

FastAPI's default docs pages load their JavaScript and CSS from a CDN, which an air-gapped
install cannot reach (the page stays blank). The ``fastapi-offline`` package ships the
Swagger UI and ReDoc bundles; heed serves them itself, as FastAPI's "self-hosting JavaScript
and CSS for docs" recipe does, and turns off everything that would still go out: Google
fonts and the footer logo (ReDoc), the spec validator badge (Swagger UI).
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_JS_URL = "/redoc.standalone.js"
# Pages with inline scripts (FastAPI's docs HTML): the security headers spare them a strict CSP.
DOCS_PATHS = frozenset({"/docs", "/redoc", OAUTH2_REDIRECT_URL})
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"  # its footer's "API docs by Redocly"


def assets_dir() -> Path:
    """The installed Swagger UI / ReDoc bundles (swagger-ui-bundle.js, redoc.standalone.js...)."""
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


@functools.cache
def redoc_bundle() -> bytes:
    """ReDoc's bundle with its one hard-wired CDN address pointed at the local favicon."""
    js = (assets_dir() / "redoc.standalone.js").read_text(encoding="utf-8")
    return js.replace(REDOC_LOGO, f"{ASSETS_URL}/favicon.png").encode()


def install_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from local assets; create the app with ``docs_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    title = app.title
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} · HTTP API",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # the badge would call out
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_JS_URL, include_in_schema=False)
    def redoc_js() -> Response:
        return Response(redoc_bundle(), media_type="text/javascript")

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} · HTTP API",
            redoc_js_url=REDOC_JS_URL,
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

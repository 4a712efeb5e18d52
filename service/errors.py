"""The one place where errors become HTTP responses: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from heed.errors import HeedError

log = logging.getLogger(__name__)
# An absolute path of two or more parts: /srv/heed/index/generations/000042/vectors.faiss
ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])(?:/[^\s/'\"`:;,()\[\]{}<>]+){2,}")


def without_paths(message: str) -> str:
    """A message for clients: server paths cut to their last part (the log keeps them whole)."""
    return ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(0).rsplit("/", 1)[-1], message)


def error_response(
    status: int, code: str, message: str, details: list | None = None
) -> JSONResponse:
    body: dict = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeedError)  # subclasses match too: the lookup walks the MRO
    async def on_heed_error(request: Request, exc: HeedError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(exc.status, exc.code, without_paths(str(exc)))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "request"
        message = f"{where}: {first['msg']}".replace("Value error, ", "")
        return error_response(422, "invalid_request", message, details)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; see the server log")

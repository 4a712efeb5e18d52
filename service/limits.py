"""Request limits: body size (413) and a per-client rate limit (429), both as JSON errors.

The rate limit uses the ``limits`` library (moving window, in memory); a client is its API key
when it sends one (hashed, never stored in clear), else its address. slowapi's middleware was
tried first: it cannot see routes that FastAPI includes from routers, so it limited nothing.
"""

from __future__ import annotations

import hashlib

from fastapi import FastAPI, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heed.settings import Settings
from service.auth import bearer_token
from service.errors import error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes are never throttled


def client_key(request: Request) -> str:
    token = bearer_token(request)
    if token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return "ip:" + (request.client.host if request.client else "unknown")


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses bodies over ``limit`` bytes before they are buffered: by header, then by count."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "body_too_large", f"request body over {self.limit:,} bytes")
        await response(scope, receive, send)


def install_limits(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    if not settings.rate_limit:
        return
    limit = parse(settings.rate_limit)
    limiter = MovingWindowRateLimiter(MemoryStorage())

    @app.middleware("http")
    async def rate_limit(request: Request, call_next):
        if request.url.path in OPEN_PATHS or limiter.hit(limit, client_key(request)):
            return await call_next(request)
        return error_response(429, "rate_limited", f"rate limit exceeded: {settings.rate_limit}")

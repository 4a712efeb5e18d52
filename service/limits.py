"""Request limits: body size (413), a per-client rate limit (429) and a bounded queue for
cross-encoder work (503 with Retry-After), all as JSON errors.

The rate limit uses the ``limits`` library (moving window, in memory); a client is its API key
when it sends one (hashed, never stored in clear), else its address. slowapi's middleware was
tried first: it cannot see routes that FastAPI includes from routers, so it limited nothing.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from fastapi import Depends, FastAPI, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heed.errors import Overloaded
from heed.settings import Settings
from service.auth import bearer_token
from service.errors import error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes are never throttled


def client_key(request: Request) -> str:
    token = bearer_token(request)
    if token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return "ip:" + (request.client.host if request.client else "unknown")


class BodyTooLarge(HTTPException):
    """Raised while the body is read: FastAPI re-raises HTTPExceptions from body reading as
    they are (anything else becomes a 400), so the 413 passes through the error handler, the
    metrics and the access log like any other response."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit:,} bytes (HEED_MAX_BODY_BYTES)")


class BodySizeLimit:
    """Refuses bodies over ``limit`` bytes without buffering them: by the declared
    Content-Length before the first byte is read, else by counting chunks as they stream."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_long = bool(declared and declared.isdigit() and int(declared) > self.limit)
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            if too_long:
                raise BodyTooLarge(self.limit)
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counting_receive, send)


class ModelGate:
    """At most ``slots`` requests run cross-encoder work at once and ``queue`` more wait for a
    slot, each up to ``wait_s``; any other is refused at once. Without it, a few deep re-ranks
    queued every search behind them for tens of seconds (issue #12)."""

    def __init__(self, slots: int, queue: int, wait_s: float) -> None:
        self._running = threading.BoundedSemaphore(slots)
        self._admitted = threading.BoundedSemaphore(slots + queue)  # running or waiting
        self.wait_s = wait_s
        self.retry_after = max(1, math.ceil(wait_s))

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelGate:
        return cls(settings.model_slots, settings.model_queue, settings.model_wait_s)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._admitted.acquire(blocking=False):
            raise self._overloaded("the queue for the cross-encoder is full")
        try:
            if not self._running.acquire(timeout=self.wait_s):
                raise self._overloaded(f"no cross-encoder slot came free in {self.wait_s:g} s")
            try:
                yield
            finally:
                self._running.release()
        finally:
            self._admitted.release()

    def _overloaded(self, why: str) -> Overloaded:
        return Overloaded(
            f"busy: {why}; retry in {self.retry_after} s, or search without re-ranking "
            '("rerank": false)',
            self.retry_after,
        )


def model_slot(request: Request, uses_cross_encoder: bool) -> AbstractContextManager[None]:
    """A slot of the app's :class:`ModelGate` for work that runs the cross-encoder."""
    return request.app.state.model_gate.slot() if uses_cross_encoder else nullcontext()


def page_search_slot(request: Request) -> Iterator[None]:
    """The search page re-ranks and explains whenever it has a query."""
    with model_slot(request, bool(request.query_params.get("q", "").strip())):
        yield


# scope="function": the slot is given back when the page is rendered, not once it is sent.
PageSearchSlot = Depends(page_search_slot, scope="function")


def install_limits(app: FastAPI, settings: Settings) -> None:
    app.state.model_gate = ModelGate.from_settings(settings)
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

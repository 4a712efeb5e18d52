"""API keys: ``Authorization: Bearer <key>``, compared in constant time, never logged."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from heed.errors import Forbidden, Unauthorized


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _same(token: str, key: SecretStr) -> bool:
    return hmac.compare_digest(token.encode(), key.get_secret_value().encode())


def _check(request: Request, key: SecretStr, what: str) -> None:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized(f"{what} needs an API key: send 'Authorization: Bearer <key>'")
    if not _same(token, key):
        raise Forbidden("invalid API key")


def require_admin(request: Request) -> None:
    """Document writes and admin routes: the admin key, and none configured means disabled."""
    key = request.app.state.settings.admin_key
    if key is None:
        raise Forbidden("document writes are disabled; set HEED_ADMIN_KEY to enable them")
    _check(request, key, "this route")


def require_reader(request: Request) -> None:
    """Search and reads: open unless HEED_READ_KEY is set (the admin key works too)."""
    settings = request.app.state.settings
    if settings.read_key is None:
        return
    token = bearer_token(request)
    if token and settings.admin_key is not None and _same(token, settings.admin_key):
        return
    _check(request, settings.read_key, "search")


AdminDep = Annotated[None, Depends(require_admin)]

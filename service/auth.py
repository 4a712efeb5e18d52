"""API keys: ``Authorization: Bearer <key>``, compared in constant time, never logged."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from heed.errors import Forbidden, Unauthorized


def _check(request: Request, key: SecretStr, what: str) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(f"{what} needs an API key: send 'Authorization: Bearer <key>'")
    if not hmac.compare_digest(token.encode(), key.get_secret_value().encode()):
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
    admin = settings.admin_key
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2]
    if (
        admin is not None
        and token
        and hmac.compare_digest(token.encode(), admin.get_secret_value().encode())
    ):
        return
    _check(request, settings.read_key, "search")


AdminDep = Annotated[None, Depends(require_admin)]
ReaderDep = Annotated[None, Depends(require_reader)]

"""API keys: ``Authorization: Bearer <key>``, compared in constant time, never logged.

With ``HEED_READ_KEY`` set, a browser cannot send a header, so the search page's login form
(``service/routes/login.py``) exchanges the key for a session cookie: an expiry time signed with
HMAC-SHA256 under the read key, checked in constant time. It grants reads only, and changing the
read key ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from heed.errors import Forbidden, Unauthorized

SESSION_COOKIE = "heed_session"
# Declares the scheme in OpenAPI; the checks below read the header themselves.
bearer = HTTPBearer(
    auto_error=False,
    description="HEED_ADMIN_KEY for writes and admin routes; HEED_READ_KEY (when set) for reads",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


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


def session_token(read_key: SecretStr, hours: float) -> str:
    """A cookie value: ``<expiry>.<hmac>``; it holds no key and cannot be forged without one."""
    expires = int(time.time() + hours * 3600)
    return f"{expires}.{_signature(read_key, expires)}"


def valid_session(token: str | None, read_key: SecretStr) -> bool:
    expires, _, signature = (token or "").partition(".")
    if not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(signature.encode(), _signature(read_key, int(expires)).encode())


def _signature(read_key: SecretStr, expires: int) -> str:
    message = f"heed-session:{expires}".encode()
    return hmac.new(read_key.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def is_reader_key(key: str, request: Request) -> bool:
    """The read key, or the admin key (which may read too)."""
    settings = request.app.state.settings
    return any(k is not None and _same(key, k) for k in (settings.read_key, settings.admin_key))


# The checks are async: they only compare strings, and a sync dependency costs every request a
# trip through the threadpool.
async def require_admin(request: Request, credentials: Credentials) -> None:
    """Document writes and admin routes: the admin key, and none configured means disabled."""
    key = request.app.state.settings.admin_key
    if key is None:
        raise Forbidden("document writes are disabled; set HEED_ADMIN_KEY to enable them")
    _check(request, key, "this route")


def check_reader(request: Request) -> None:
    """Search and reads: open unless HEED_READ_KEY is set; then the read key, the admin key
    or a login session cookie."""
    settings = request.app.state.settings
    if settings.read_key is None:
        return
    if valid_session(request.cookies.get(SESSION_COOKIE), settings.read_key):
        return
    token = bearer_token(request)
    if token and settings.admin_key is not None and _same(token, settings.admin_key):
        return
    _check(request, settings.read_key, "search")


async def require_reader(request: Request, credentials: Credentials) -> None:
    check_reader(request)


class LoginRequired(Exception):
    """A page was asked for without a read key or session; the browser goes to the form."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def require_page_reader(request: Request) -> None:
    """Like ``require_reader``, but a browser without a session is sent to the login form."""
    try:
        check_reader(request)
    except (Unauthorized, Forbidden):
        query = request.url.query
        raise LoginRequired(request.url.path + (f"?{query}" if query else "")) from None


AdminDep = Annotated[None, Depends(require_admin)]

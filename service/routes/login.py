"""The search page's login: a form that exchanges HEED_READ_KEY for a session cookie.

Browsers cannot send ``Authorization`` headers from a link, so with a read key set the page
redirects to ``/login``; a right key sets an HttpOnly, SameSite=Strict cookie (``service/auth.py``
signs it) and returns to the page that was asked for. Scripts keep using the header.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.auth import SESSION_COOKIE, LoginRequired, is_reader_key, session_token
from service.routes.page import templates

router = APIRouter(include_in_schema=False)


def local_path(url: str) -> str:
    """``url`` if it is a path on this site, else ``/``: the login never sends you elsewhere."""
    if url.startswith("/") and not url.startswith("//") and "\\" not in url and url.isprintable():
        return url
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str, Query()] = "/") -> Response:
    if request.app.state.settings.read_key is None:
        return RedirectResponse("/", status_code=303)
    return _form(request, local_path(next))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    settings = request.app.state.settings
    if settings.read_key is None:
        return RedirectResponse("/", status_code=303)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key, next_url = form.get("key", [""])[0], local_path(form.get("next", ["/"])[0])
    if not is_reader_key(key, request):
        error = "That key did not match this server's read key. Check it and try again."
        return _form(request, next_url, error, status=403)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_token(settings.read_key, settings.session_hours),
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _form(request: Request, next_url: str, error: str | None = None, status: int = 200) -> Response:
    hours = f"{request.app.state.settings.session_hours:g}"
    context = {"next": next_url, "error": error, "hours": hours, "q": ""}
    return templates.TemplateResponse(request, "login.html", context, status_code=status)


def install_login(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)

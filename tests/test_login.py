"""With HEED_READ_KEY set, a browser logs in once with a form and gets a cookie for reads."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app
from service.auth import SESSION_COOKIE, session_token

from .conftest import LiveServer

KEYS = {"read_key": SecretStr("reader-key"), "admin_key": SecretStr("admin-key")}


@pytest.fixture(scope="module")
def locked(settings):
    with TestClient(create_app(settings.model_copy(update=KEYS)), follow_redirects=False) as c:
        yield c


def login(client, key: str, next_url: str = "/"):
    response = client.post("/login", data={"key": key, "next": next_url})
    client.cookies.clear()  # each test sends the cookie it means to
    return response


def with_cookie(client, method: str, path: str, token: str, **kw):
    client.cookies.set(SESSION_COOKIE, token)
    try:
        return client.request(method, path, **kw)
    finally:
        client.cookies.clear()


def test_the_page_without_a_session_redirects_to_the_login_form(locked):
    r = locked.get("/", params={"q": "csv"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F%3Fq%3Dcsv"
    form = locked.get("/login", params={"next": "/?q=csv"})
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    assert 'type="password"' in form.text and 'action="/login"' in form.text
    assert 'for="key"' in form.text and "/?q=csv" in form.text
    assert "default-src 'none'" in form.headers["content-security-policy"]


def test_the_right_key_sets_an_httponly_strict_cookie_and_returns_to_the_page(locked):
    r = login(locked, "reader-key", "/?q=csv")
    assert r.status_code == 303 and r.headers["location"] == "/?q=csv"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "reader-key" not in cookie
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Max-Age=" in cookie
    token = r.cookies[SESSION_COOKIE]
    page = with_cookie(locked, "GET", "/", token, params={"q": "csv"})
    assert page.status_code == 200 and '<li class="result">' in page.text
    api = with_cookie(locked, "GET", "/search", token, params={"q": "csv"})
    assert api.status_code == 200  # reads only:
    write = with_cookie(locked, "DELETE", "/documents/module:csv", token)
    assert write.status_code == 401


def test_a_wrong_key_shows_the_form_again_with_an_error(locked):
    r = login(locked, "not-the-key")
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert "did not match" in r.text and 'type="password"' in r.text


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "9999999999.0000",
        f"{int(time.time()) - 1}.x",  # expired, whatever the signature
    ],
)
def test_forged_or_expired_cookies_are_refused(locked, token):
    r = with_cookie(locked, "GET", "/", token, params={"q": "csv"})
    assert r.status_code == 303


def test_an_expired_signed_cookie_is_refused(locked):
    expired = session_token(KEYS["read_key"], hours=-1)
    assert with_cookie(locked, "GET", "/", expired).status_code == 303
    fresh = session_token(KEYS["read_key"], hours=1)
    assert with_cookie(locked, "GET", "/", fresh).status_code == 200
    other = session_token(SecretStr("another-key"), hours=1)
    assert with_cookie(locked, "GET", "/", other).status_code == 303


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "/\\evil"])
def test_login_only_returns_to_pages_of_this_site(locked, next_url):
    r = login(locked, "reader-key", next_url)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_without_a_read_key_there_is_nothing_to_log_in_to(client):
    r = client.get("/login", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_real_browser_logs_in_and_searches(settings):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "apt-get install chromium"
    csp_errors: list[str] = []
    with LiveServer(create_app(settings.model_copy(update=KEYS))) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless"])
        page = browser.new_page()
        page.on("console", lambda m: csp_errors.append(m.text) if "Security" in m.text else None)
        page.goto(server.url + "/?q=how+do+I+read+a+csv+file")
        assert "/login" in page.url
        page.fill("#key", "reader-key")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/login" not in page.url and "q=how+do+I+read+a+csv+file" in page.url
        first = page.locator("ol.results > li").first
        assert "csv" in first.locator("h2").inner_text().lower()
        shade = first.locator("mark").first.evaluate("m => getComputedStyle(m).backgroundColor")
        levels = ("rgb(255, 244, 194)", "rgb(255, 209, 102)", "rgb(245, 158, 11)")  # heed.css
        assert shade in levels, f"the highlight shades (heed.css) were blocked: {shade}"
        first.locator("h2 a").click()
        page.wait_for_load_state()
        assert "/doc/" in page.url and page.locator("mark#passage").count() == 1
        cookies = page.context.cookies()
        browser.close()
    session = next(c for c in cookies if c["name"] == SESSION_COOKIE)
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert not csp_errors, csp_errors

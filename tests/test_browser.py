"""The search page in a real headless Chromium (Debian's), against a real uvicorn on 127.0.0.1.

No skip: if the browser cannot start, these tests fail and say how to install it, because a page
nobody has seen render is not tested. Screenshots land in var/test-artifacts/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.sources import read_documents
from service.app import create_app

from .conftest import FIXTURES, MINI, ROOT, LiveServer, make_settings

playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "var" / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, encoder) -> Iterator[LiveServer]:
    """The Python pages plus the Chinese cities, so the page is tried in both scripts."""
    settings = make_settings(tmp_path_factory.mktemp("page") / "idx")
    build_index(read_documents([MINI, FIXTURES / "zh"]), settings, encoder=encoder)
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def search(page, server: LiveServer, query: str) -> None:
    page.goto(server.url + "/")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'q'")
    page.keyboard.type(query)  # the box has the focus on load
    with page.expect_navigation():
        page.keyboard.press("Enter")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_typing_a_query_and_enter_shows_the_right_document_first_with_highlights(page, server):
    search(page, server, "how do I read a csv file")
    assert "q=how+do+I+read+a+csv+file" in page.url  # shareable, reloadable
    first = page.locator("ol.results > li").first
    assert "csv" in first.locator("h2").inner_text().lower()
    marks = first.locator("mark")
    assert marks.count() >= 3
    assert "csv" in [m.lower() for m in marks.all_inner_texts()]
    weights = [float(m.get_attribute("style").split(":")[1]) for m in marks.all()]
    assert max(weights) == 1.0 and min(weights) < 1.0  # shaded by weight, not all alike
    assert "ms" in page.locator(".summary").inner_text()
    assert page.locator("#q").input_value() == "how do I read a csv file"
    shot(page, "search-results.png")


def test_reloading_the_url_gives_the_same_results(page, server):
    search(page, server, "generate a random unique identifier")
    first = page.locator("ol.results > li h2").first.inner_text()
    page.reload()
    assert page.locator("ol.results > li h2").first.inner_text() == first
    assert "uuid" in first.lower()


def test_the_result_link_opens_the_full_document_at_the_passage(page, server):
    search(page, server, "how do I read a csv file")
    page.locator("ol.results > li h2 a").first.click()
    page.wait_for_load_state()
    assert "/doc/" in page.url and "csv" in page.locator("h1").inner_text().lower()
    assert page.locator("mark#passage").count() == 1


def test_empty_query_shows_how_to_start(page, server):
    page.goto(server.url + "/")
    assert page.evaluate("document.activeElement.id") == "q"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("ol.results").count() == 0
    assert "Type a question" in page.locator(".notice").inner_text()


def test_a_query_with_no_results_says_what_to_try(page, server):
    page.goto(server.url + "/?q=zzqxjv+wqpfk&mode=keyword")
    notice = page.locator(".notice.none")
    assert "No passages match" in notice.inner_text()
    assert notice.locator("a", has_text="dense").count() == 1


def test_a_chinese_query_finds_the_chinese_document_with_character_highlights(page, server):
    search(page, server, "柏林有多少人口")
    first = page.locator("ol.results > li").first
    assert "柏林" in first.locator("h2").inner_text()
    marks = first.locator("mark").all_inner_texts()
    assert marks and all(len(m) == 1 for m in marks), marks
    shot(page, "search-chinese.png")


def test_the_options_are_labelled_and_reachable_by_keyboard(page, server):
    page.goto(server.url + "/?q=json&mode=dense")
    assert page.locator("#mode").input_value() == "dense"
    for control in ("#q", "#mode", "input[name=rerank][type=checkbox]"):
        label = page.evaluate(
            "(sel) => { const el = document.querySelector(sel); "
            "return el.labels && el.labels.length ? el.labels[0].innerText.trim() : '' }",
            control,
        )
        assert label, control
    page.locator("#q").focus()
    seen = set()
    for _ in range(4):
        page.keyboard.press("Tab")
        seen.add(page.evaluate("document.activeElement.id || document.activeElement.name"))
    assert {"mode", "rerank"} <= seen


def test_unticking_rerank_is_kept_in_the_url_and_the_form(page, server):
    search(page, server, "parse json")
    assert "rerank=on" in page.url
    page.locator("input[name=rerank][type=checkbox]").uncheck()
    with page.expect_navigation():
        page.locator("#q").press("Enter")
    assert "rerank=off" in page.url and "rerank=on" not in page.url
    assert not page.locator("input[name=rerank][type=checkbox]").is_checked()
    assert "rerank" not in page.locator(".timings").inner_text()


def test_the_page_fits_a_narrow_screen(browser, server):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(server.url + "/?q=how+do+I+read+a+csv+file")
    assert page.locator("input[name=rerank][type=checkbox]").is_checked()  # a bare URL: default
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    shot(page, "search-narrow.png")
    context.close()


@pytest.fixture(scope="module")
def chinese_server(tmp_path_factory) -> Iterator[LiveServer]:
    """Tang poems indexed with no model named: heed picks the multilingual bi-encoder."""
    settings = make_settings(tmp_path_factory.mktemp("page-zh") / "idx")
    build_index(read_documents([FIXTURES / "zh-poems"]), settings)
    with LiveServer(create_app(settings)) as live:
        yield live


def test_a_chinese_index_answers_a_chinese_query_with_term_highlights(browser, chinese_server):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(chinese_server.url + "/")
    # the English re-ranker cannot read Chinese: off by default on this index
    assert not page.locator("input[name=rerank][type=checkbox]").is_checked()
    search(page, chinese_server, "夜来风雨声")
    assert "rerank" not in page.locator(".timings").inner_text()
    first = page.locator("ol.results > li").first
    assert first.locator("h2").inner_text().strip() == "春晓"
    assert first.locator("mark").all_inner_texts() == ["夜来风雨声"]
    assert "highlights: terms" in page.locator(".summary").inner_text()
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "WenQuanYi Zen Hei" in font and "Noto Sans CJK SC" in font
    # a line of unspaced Chinese wraps inside the narrow screen instead of overflowing it
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    line = float(page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight)"))
    assert first.locator("p.passage").bounding_box()["height"] > 1.5 * line  # it wrapped
    shot(page, "search-chinese-use.png")
    context.close()

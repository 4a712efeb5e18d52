"""The search page in a real headless Chromium (Debian's), against a real uvicorn on 127.0.0.1.

No skip: if the browser cannot start, these tests fail and say how to install it, because a page
nobody has seen render is not tested. Screenshots land in var/test-artifacts/.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from heed.settings import Settings
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
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get update && "
            "apt-get install -y chromium chromium-driver fonts-wqy-zenhei"
        )
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
    weights = [float(m.get_attribute("data-weight")) for m in marks.all()]
    assert max(weights) == 1.0 and min(weights) < 1.0  # shaded by weight, not all alike
    assert "ms" in page.locator(".summary").inner_text()
    assert page.locator("#q").input_value() == "how do I read a csv file"
    shot(page, "search-results.png")


def background(locator) -> str:
    return locator.evaluate("el => getComputedStyle(el).backgroundColor")


def test_highlight_levels_look_different_and_the_legend_names_them(page, server):
    search(page, server, "how do I read a csv file")
    marks = page.locator("ol.results mark")
    by_level: dict[str, set[str]] = {}
    for mark in marks.all():
        level = mark.get_attribute("class")
        weight = float(mark.get_attribute("data-weight"))
        assert level == ("w3" if weight >= 0.75 else "w2" if weight >= 0.5 else "w1")
        by_level.setdefault(level, set()).add(background(mark))
    assert len(by_level) >= 2, by_level  # this query's marks span levels
    colours = [c for shades in by_level.values() for c in shades]
    assert all(len(shades) == 1 for shades in by_level.values())  # one shade per level
    assert len(set(colours)) == len(by_level)  # and no two levels alike
    legend = page.locator("#legend")
    assert legend.locator("mark").count() == 3
    assert len({background(m) for m in legend.locator("mark").all()}) == 3
    assert "weighed most" in legend.inner_text()


def test_passages_keep_their_lines_and_show_no_raw_scores(page, server):
    search(page, server, "csv reader dialect")
    passage = page.locator("ol.results .passage").first
    assert passage.evaluate("el => getComputedStyle(el).whiteSpace") == "pre-wrap"
    texts = page.locator("ol.results .passage").all_inner_texts()
    assert any("\n" in t for t in texts)  # code and paragraphs keep their line breaks
    assert all(t == t.strip() for t in texts)
    results = page.locator("ol.results").inner_text()
    assert "score" not in results and not re.search(r"-\d+\.\d{3}", results)
    assert page.locator("ol.results .found-by").first.inner_text() in (
        "matches your words and their meaning",
        "matches your words",
        "close in meaning",
    )


def test_the_start_page_suggests_queries_from_the_loaded_corpus(page, server):
    page.goto(server.url + "/")
    examples = page.locator("ul.examples a").all_inner_texts()
    assert len(examples) == 3 and "柏林人口" not in examples
    titles = {json.loads(line)["title"] for line in MINI.read_text().splitlines()}
    assert all(any(e in t for t in titles) for e in examples), examples
    with page.expect_navigation():
        page.locator("ul.examples a").first.click()
    assert page.locator("ol.results > li").count() > 0


def test_more_like_this_from_a_result_and_from_the_document(page, server):
    search(page, server, "parse a json string")
    first = page.locator("ol.results > li").first
    title = first.locator("h2").inner_text()
    with page.expect_navigation():
        first.locator("a.similar").click()
    assert page.locator("h2.like").inner_text() == f"Documents like {title}"
    others = page.locator("ol.results > li h2").all_inner_texts()
    assert len(others) == 10 and title not in others
    with page.expect_navigation():
        page.locator("ol.results > li h2 a").first.click()
    with page.expect_navigation():
        page.locator("article a.similar").click()
    assert page.locator("h2.like").count() == 1
    shot(page, "more-like-this.png")


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


def test_ticking_and_unticking_rerank_is_kept_in_the_url_and_the_form(page, server):
    search(page, server, "parse json")
    box = page.locator("input[name=rerank][type=checkbox]")
    assert box.is_checked() is Settings().rerank  # the page shows the default
    box.check()
    with page.expect_navigation():
        page.locator("#q").press("Enter")
    assert "rerank=on" in page.url and box.is_checked()
    assert "rerank" in page.locator(".timings").inner_text()
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
    box = page.locator("input[name=rerank][type=checkbox]")
    assert box.is_checked() is Settings().rerank  # a bare URL: the default
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    shot(page, "search-narrow.png")
    context.close()


def offline(page) -> list[str]:
    """Refuse every request that leaves the server under test; returns the refused URLs."""
    refused: list[str] = []

    def route(r) -> None:
        if r.request.url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return refused


def test_the_api_docs_render_their_operations_offline(page, server):
    refused = offline(page)
    page.goto(server.url + "/docs")
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/search" in paths and any(p.startswith("/documents/") for p in paths), paths
    page.locator(".opblock-summary-path", has_text="/search").first.click()
    assert page.locator(".opblock-body").first.is_visible()  # the operation opens
    assert refused == []
    shot(page, "api-docs.png")


def test_redoc_renders_offline_too(page, server):
    refused = offline(page)
    page.goto(server.url + "/redoc")
    page.get_by_text("Passages most relevant to a plain-language query").first.wait_for()
    assert refused == []


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


def test_with_clicks_on_opening_a_result_records_the_click_and_no_address(
    browser, settings, tmp_path
):
    import contextlib
    import sqlite3
    import time

    from heed.store.clicks import clicks_path

    from .conftest import writable_copy

    on = writable_copy(settings, tmp_path).model_copy(update={"clicks": True})
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        with LiveServer(create_app(on)) as live:
            search(page, live, "read a csv file")
            second = page.locator("ol.results > li").nth(1)
            doc_id = second.locator(".doc-id").inner_text()
            with page.expect_navigation():
                second.locator("h2 a").click()  # the browser pings /clicks as it follows it
            assert "/doc/" in page.url
            deadline, rows = time.monotonic() + 20, []
            while not rows and time.monotonic() < deadline:
                if clicks_path(on.index_dir).exists():
                    with (
                        sqlite3.connect(clicks_path(on.index_dir)) as conn,
                        contextlib.suppress(sqlite3.OperationalError),  # file before its table
                    ):
                        rows = conn.execute("SELECT query, doc_id, rank FROM clicks").fetchall()
                time.sleep(0.2)
    finally:
        context.close()
    assert rows == [("read a csv file", doc_id, 2)]
    assert b"127.0.0.1" not in clicks_path(on.index_dir).read_bytes()

"""The search page as HTML, no browser: states, escaping, errors (test_browser.py drives it)."""

import pytest


def test_the_page_without_a_query_shows_examples_and_focuses_the_box(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="q"' in r.text and "autofocus" in r.text and 'for="q"' in r.text
    assert "Examples" in r.text and "<ol" not in r.text


def test_results_carry_marks_timing_and_a_link_to_the_document(client):
    r = client.get("/", params={"q": "how do I read a csv file"})
    assert r.status_code == 200
    assert r.text.count('<li class="result">') == 10
    assert "<mark" in r.text and "explain" in r.text
    assert 'href="/doc/module%3Acsv?start=' in r.text


def test_the_query_is_escaped_everywhere_it_is_shown(client):
    hostile = '"><script>alert(1)</script>'
    r = client.get("/", params={"q": hostile, "mode": "keyword"})
    assert "<script>alert(1)" not in r.text
    assert "&lt;script&gt;" in r.text or "&#34;&gt;&lt;script" in r.text


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({"q": "x" * 20_001}, 422, "the limit is 20,000"),
        ({"q": "json", "mode": "fuzzy"}, 422, None),
    ],
)
def test_bad_page_requests_get_a_clear_status(client, params, status, text):
    r = client.get("/", params=params)
    assert r.status_code == status
    if text:
        assert text in r.text and "could not run" in r.text


def test_a_missing_document_page_is_a_404_that_says_what_to_do(client):
    r = client.get("/doc/no-such-doc")
    assert r.status_code == 404
    assert "no document with id" in r.text and 'href="/"' in r.text


def test_the_document_page_marks_the_passage_and_links_back_to_the_query(client):
    r = client.get("/doc/module:csv", params={"start": 0, "end": 40, "q": "csv"})
    assert r.status_code == 200
    assert '<mark id="passage"' in r.text and 'href="/?q=csv"' in r.text


def test_the_stylesheet_is_served_locally(client):
    r = client.get("/static/heed.css")
    assert r.status_code == 200 and "mark" in r.text


def test_a_pasted_text_is_searched_and_the_page_says_what_was_used(client):
    from .test_query_by_example import CSV_EXAMPLE

    r = client.get("/", params={"q": CSV_EXAMPLE * 12})
    assert r.status_code == 200 and r.text.count('<li class="result">') == 10
    assert "Your query is long: the models read its beginning only" in r.text
    assert "most telling words (" in r.text and "delimiter" in r.text


def test_examples_fit_the_corpus_or_come_from_the_settings(client, settings):
    from fastapi.testclient import TestClient

    from service.app import create_app

    page = client.get("/").text
    assert "柏林人口" not in page and "Examples" in page
    # the descriptions after the dash in the corpus's titles, spread over the index
    for example in ("Regular expression operations", "Secure hashes and message digests"):
        assert f'href="/?q={example.replace(" ", "%20")}"' in page
    mine = settings.model_copy(update={"example_queries": ["my own example"]})
    with TestClient(create_app(mine)) as c:
        assert 'href="/?q=my%20own%20example"' in c.get("/").text

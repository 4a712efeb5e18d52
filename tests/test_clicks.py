"""Clicks as judgements: off by default; on, stored without addresses, and `heed eval --clicks`.

(A click from a real browser is in tests/test_browser.py.)
"""

from __future__ import annotations

import json
import sqlite3

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli import app as cli_app
from heed.errors import InvalidInput
from heed.settings import Settings
from heed.store.clicks import click_judgements, clicks_path, record_click
from heed.store.rollback import rollback
from indexer.build import build_index
from indexer.sources import read_documents
from service.app import create_app

from .conftest import MINI, writable_copy

CLICK = "/clicks?query=read+a+csv+file&doc_id=module:csv&rank=1&mode=hybrid"


def test_clicks_are_off_by_default_the_endpoint_refuses_and_the_page_pings_nothing(
    client, settings
):
    assert Settings().clicks is False
    refused = client.post(CLICK, content="PING", headers={"content-type": "text/ping"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "clicks_disabled"
    page = client.get("/?q=read+a+csv+file")
    assert page.status_code == 200 and "ping=" not in page.text
    assert "connect-src" not in page.headers["content-security-policy"]
    assert not clicks_path(settings.index_dir).exists()


def test_clicks_on_are_stored_with_query_document_rank_and_no_client_details(settings, tmp_path):
    on = writable_copy(settings, tmp_path).model_copy(update={"clicks": True})
    with TestClient(create_app(on)) as client:
        page = client.get("/?q=read+a+csv+file")
        assert (
            'ping="/clicks?query=read%20a%20csv%20file&amp;doc_id=module%3Acsv&amp;rank=1'
            in page.text
        )
        assert "connect-src 'self'" in page.headers["content-security-policy"]
        stored = client.post(
            CLICK,
            content="PING",
            headers={
                "content-type": "text/ping",
                "user-agent": "agent-007",
                "x-forwarded-for": "203.0.113.9",
            },
        )
        assert stored.status_code == 204
        unknown = client.post(CLICK.replace("module:csv", "no-such-doc"))
        assert unknown.status_code == 404
        assert client.post(CLICK.replace("rank=1", "rank=0")).status_code == 422
    with sqlite3.connect(clicks_path(on.index_dir)) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(clicks)")]
        rows = conn.execute("SELECT * FROM clicks").fetchall()
    assert columns == ["id", "at", "query", "doc_id", "rank", "generation", "mode"]
    assert [r[2:] for r in rows] == [("read a csv file", "module:csv", 1, 1, "hybrid")]
    raw = clicks_path(on.index_dir).read_bytes()
    for secret in (b"testclient", b"203.0.113.9", b"agent-007"):
        assert secret not in raw


def test_clicks_group_by_query_and_survive_rollback_and_reindex(two_generations, tmp_path, encoder):
    settings = writable_copy(two_generations, tmp_path)
    record_click(settings.index_dir, "Read a CSV file", "module:csv", 1, 2, "hybrid")
    record_click(settings.index_dir, "read a  csv file", "func:csv.reader", 2, 2, "hybrid")
    rollback(settings.index_dir)
    record_click(settings.index_dir, "read a csv file", "module:csv", 1, 1, None)
    build_index(read_documents([MINI]), settings, rebuild=True, encoder=encoder)
    judged = click_judgements(settings.index_dir)
    assert judged.clicks == 3
    assert list(judged.queries.values()) == ["read a csv file"]
    assert list(judged.qrels.values()) == [{"module:csv": 1, "func:csv.reader": 1}]
    twice = click_judgements(settings.index_dir, min_clicks=2)
    assert list(twice.qrels.values()) == [{"module:csv": 1}]


def test_eval_clicks_reports_per_mode_like_heed_eval(settings, tmp_path):
    index = writable_copy(settings, tmp_path).index_dir
    record_click(index, "read a csv file", "module:csv", 1, 1, "hybrid")
    record_click(index, "parse a json string", "func:json.loads", 2, 1, "hybrid")
    out = tmp_path / "clicks.json"
    args = ["eval", "--clicks", "--index", str(index), "--modes", "bm25,dense"]
    result = CliRunner().invoke(cli_app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["collection"] == "clicks" and report["queries"] == 2
    assert set(report["modes"]) == {"bm25", "dense"}
    assert report["modes"]["dense"]["ndcg@10"] > 0.5
    assert "clicks: 2 queries" in result.output


def test_eval_clicks_without_clicks_says_how_to_record_them(settings, tmp_path):
    index = writable_copy(settings, tmp_path).index_dir
    result = CliRunner().invoke(cli_app, ["eval", "--clicks", "--index", str(index)])
    assert isinstance(result.exception, InvalidInput)  # cli:main prints it, exit 1
    assert "HEED_CLICKS=true" in str(result.exception)

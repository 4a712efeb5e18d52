"""The `heed` command, run as users run it."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cli import app

from .conftest import FIXTURES

runner = CliRunner()


def heed(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "heed", *args], capture_output=True, text=True, env=env, timeout=300
    )


COMMANDS = [
    "index",
    "serve",
    "search",
    "eval",
    "train-reranker",
    "reindex",
    "jobs",
    "check",
    "tune",
    "snapshot",
]


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_index_then_search_from_the_terminal(tmp_path):
    index_dir = str(tmp_path / "idx")
    first = heed("index", str(FIXTURES / "formats"), "--index", index_dir)
    assert first.returncode == 0, first.stderr
    assert "7 documents: 7 added" in first.stdout
    # stderr is a pipe, not a terminal: progress comes as log lines, not a redrawn bar
    assert "indexing: 7 documents, passages" in first.stderr and "passages/s, ETA" in first.stderr
    again = heed("index", str(FIXTURES / "formats"), "--index", index_dir)
    assert "0 passages embedded" in again.stdout and "unchanged" in again.stdout
    found = heed("search", "how hot should water be for green tea", "--index", index_dir, "-k", "2")
    assert found.returncode == 0, found.stderr
    assert found.stdout.index("notes.txt") < found.stdout.index("2 ")


def test_search_explain_shows_the_part_of_the_passage_that_mattered(settings):
    args = ("search", "how do I read a csv file", "--index", str(settings.index_dir), "-k", "1")
    found = heed(*args, "--explain", "--no-rerank")
    assert found.returncode == 0, found.stderr
    assert "module:csv" in found.stdout and "CSV file" in found.stdout
    assert "…" in found.stdout  # a window of the passage (tests/test_cli_search.py: which one)


def test_bad_input_is_a_one_line_error_with_file_and_line(tmp_path):
    result = heed("index", str(FIXTURES / "broken" / "bad_json.jsonl"), "--index", str(tmp_path))
    assert result.returncode == 1
    assert "error:" in result.stderr and "bad_json.jsonl:3" in result.stderr
    assert "Traceback" not in result.stderr


def test_skip_errors_indexes_the_good_records(tmp_path):
    path = str(FIXTURES / "broken" / "bad_json.jsonl")
    result = heed("index", path, "--index", str(tmp_path), "--skip-errors")
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "3 documents: 3 added" in result.stdout


def test_search_without_an_index_says_how_to_build_one(tmp_path):
    result = heed("search", "anything", "--index", str(tmp_path / "none"))
    assert result.returncode == 1 and "heed index" in result.stderr


def test_serve_with_no_index_indexes_the_corpus_first_then_answers(tmp_path):
    import time

    import httpx

    from .conftest import free_port

    port = free_port()
    env = {**os.environ, "HEED_CORPUS": str(FIXTURES / "formats" / "records.csv")}
    cmd = [
        sys.executable,
        "-m",
        "heed",
        "serve",
        "--index",
        str(tmp_path / "idx"),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.3)
        body = httpx.get(f"{url}/search", params={"q": "bird that sleeps while flying"}).json()
        assert body["results"][0]["doc_id"] == "bird-2"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert b"indexing" in stderr and b"route=/search status=200" in stderr
    assert b"passages/s, ETA" in stderr  # the first start shows progress in a log too


def test_reindex_rebuilds_from_a_source_and_publishes(tmp_path):
    index_dir = str(tmp_path / "idx")
    assert heed("index", str(FIXTURES / "zh"), "--index", index_dir).returncode == 0
    result = heed("reindex", str(FIXTURES / "formats"), "--index", index_dir)
    assert result.returncode == 0, result.stderr
    assert "reindexed 7 documents into generation 2" in result.stdout
    assert "7 documents, passages" in result.stderr and "passages/s, ETA" in result.stderr
    found = heed("search", "chain lubricant", "--index", index_dir, "-k", "1", "--no-rerank")
    assert "page.html" in found.stdout and "berlin" not in found.stdout


def test_jobs_without_a_service_says_so(monkeypatch):
    monkeypatch.setenv("HEED_ADMIN_KEY", "k")
    result = heed("jobs", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1 and "no heed service" in result.stderr

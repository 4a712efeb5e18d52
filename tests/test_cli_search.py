"""`heed search`: only the models a mode needs, a running service over HTTP, the matching part."""

import json
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from heed.records import Document
from heed.snippets import Mark, snippet
from indexer.build import build_index
from service.app import create_app

from .conftest import LiveServer, make_settings

FAR = (
    "Tea is grown on many hillsides. " * 12
    + "Use `d[key] = [bold]value` to store a key; for a default, see dict.setdefault. "
    + "Gardens need water in summer. " * 12
)


def heed(*args: str, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250", **env}
    return subprocess.run(
        [sys.executable, "-m", "heed", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def far_index(tmp_path_factory, encoder):
    settings = make_settings(tmp_path_factory.mktemp("far") / "idx")
    docs = [
        Document(doc_id="far", title="Notes", text=FAR),
        Document(doc_id="tea", title="Tea", text="Green tea wants water at 80 degrees."),
    ]
    build_index(docs, settings, encoder=encoder)
    return settings


def test_the_table_shows_the_matching_part_with_inline_code_intact(far_index):
    found = heed("search", "setdefault", "--index", str(far_index.index_dir), "--mode", "keyword")
    assert found.returncode == 0, found.stderr
    assert "far" in found.stdout and "dict.setdefault" in found.stdout
    assert "`d[key] = [bold]value`" in found.stdout  # not eaten as markup, not cut
    assert "Tea is grown on many hillsides. Tea is grown" not in found.stdout  # not the start


def run_and_list_modules(index_dir, *args: str) -> set[str]:
    code = (
        "import sys, json; from cli import app\n"
        f"app({['search', 'store a key', '--index', str(index_dir), *args]!r}, "
        "standalone_mode=False)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'sentence_transformers', 'onnxruntime', 'pandas'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert out.returncode == 0, out.stderr
    return {m.split(".")[0] for m in json.loads(out.stdout.splitlines()[-1])}


def test_keyword_search_loads_no_model_and_imports_no_torch(far_index):
    loaded = run_and_list_modules(far_index.index_dir, "--mode", "keyword", "--no-rerank")
    assert loaded == set()


def test_dense_search_runs_on_the_onnx_export_without_torch(far_index):
    loaded = run_and_list_modules(far_index.index_dir, "--mode", "dense", "--no-rerank")
    assert loaded == {"onnxruntime"}


def test_search_url_asks_the_running_service_with_the_read_key(settings, tmp_path):
    keyed = settings.model_copy(update={"read_key": SecretStr("reader-secret")})
    with LiveServer(create_app(keyed)) as server:
        nowhere = str(tmp_path / "no-index-here")  # the answer can only come from the service
        args = ("search", "how do I read a csv file", "--index", nowhere, "-k", "2")
        found = heed(*args, "--url", server.url, HEED_READ_KEY="reader-secret")
        assert found.returncode == 0, found.stderr
        assert "module:csv" in found.stdout and server.url in found.stdout
        by_env = heed(
            *args, "--mode", "keyword", HEED_URL=server.url, HEED_READ_KEY="reader-secret"
        )
        assert by_env.returncode == 0 and "(keyword" in by_env.stdout
        refused = heed(*args, "--url", server.url, HEED_READ_KEY="wrong")
        assert refused.returncode == 1 and "403 invalid API key" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_search_url_without_a_service_says_so(tmp_path):
    result = heed("search", "anything", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1 and "no heed service at http://127.0.0.1:9" in result.stderr


def test_explained_rows_show_and_mark_the_heaviest_word(settings):
    from rich.console import Console

    from cli.search_table import HIGHLIGHT, results_table, search_here

    query = "how do I read a csv file"
    results = search_here(settings, query, 1, rerank=False, explain=True)
    row = results.rows[0]
    top = max(row.highlights, key=lambda m: m.weight)
    console = Console(record=True, width=400)
    console.print(results_table(query, results, "here"))
    shown = console.export_text()
    assert " ".join(row.text[top.start - 20 : top.end].split()[1:]) in shown
    passage = results_table(query, results, "here").columns[4]._cells[0]
    styled = {passage.plain[s.start : s.end] for s in passage.spans if s.style == HIGHLIGHT}
    assert row.text[top.start : top.end] in styled


def test_snippet_is_a_window_around_the_heaviest_marks():
    text = "start " * 100 + "the `a[i]` word matters here " + "end " * 100
    at = text.index("matters")
    part = snippet(text, [Mark(at, at + 7, 1.0), Mark(3, 5, 0.2)], width=60)
    assert part.text.startswith("…") and part.text.endswith("…")
    assert "`a[i]` word matters" in part.text and len(part.text) < 120
    assert [part.text[m.start : m.end] for m in part.marks] == ["matters"]


def test_snippet_without_marks_is_the_start_with_whitespace_folded():
    part = snippet("def f(x):\n    return x\n\n" + "y " * 300, [], width=40)
    assert part.text.startswith("def f(x): return x y") and part.text.endswith("…")

"""What `heed search` does: search here or at a running service, and print one results table.

A search here loads only what its mode needs, because a terminal search is one query per
process: keyword mode loads no model at all; dense and hybrid load the bi-encoder's query path
(the cached ONNX export, no torch); the re-ranker loads only when re-ranking is on, the torch
copy only for ``--explain``. With a service URL (``--url`` or ``HEED_URL``) the query goes over
HTTP with the read key, and nothing is loaded here.

Each row shows a window of the passage around its best-matching words (the explanation's
highlights when there are some, else where the query's keyword terms occur), as plain text:
nothing in a passage is read as rich markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from heed.errors import HeedError
from heed.keywords import match_spans
from heed.settings import Settings
from heed.snippets import Mark, snippet

HIGHLIGHT = "bold black on yellow"
TERM = "bold"


@dataclass
class Row:
    score: float
    doc_id: str
    title: str
    text: str
    highlights: list[Mark] | None  # from an explanation; None when none was asked for


@dataclass
class Results:
    rows: list[Row]
    mode: str
    reranked: bool


def search_here(
    settings: Settings, query: str, k: int, rerank: bool | None, explain: bool
) -> Results:
    """Search the local index, loading only the models this search needs."""
    from heed.scripts import read_defaults
    from heed.store.live import open_live
    from search.modes import MODES
    from search.searcher import open_searcher

    dense = MODES[settings.mode].dense
    reader = open_live(settings)
    defaults = read_defaults(reader.manifest.scripts, settings)  # per index: see heed/scripts.py
    rerank = defaults.rerank if rerank is None else rerank
    searcher = open_searcher(
        settings,
        reader,
        rerank=rerank,
        explain=explain and not defaults.term_highlights,
        dense=dense,
    )
    outcome = searcher.search(query, k, rerank=rerank, explain=explain)
    rows = [
        Row(
            h.score,
            h.passage.doc_id,
            h.passage.title,
            h.passage.text,
            None
            if h.highlights is None
            else [Mark(s.start, s.end, s.weight) for s in h.highlights],
        )
        for h in outcome.hits
    ]
    return Results(rows, outcome.mode, outcome.reranked)


def search_at(
    settings: Settings,
    url: str,
    query: str,
    k: int,
    mode: str | None,
    rerank: bool | None,
    explain: bool,
) -> Results:
    """The same search sent to a running service (``POST /search``), with the read key."""
    import httpx

    key = settings.read_key or settings.admin_key
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
    body: dict[str, Any] = {"query": query, "k": k, "explain": explain}
    if mode is not None:
        body["mode"] = mode
    if rerank is not None:
        body["rerank"] = rerank
    url = url.rstrip("/")
    try:
        r = httpx.post(f"{url}/search", json=body, headers=headers, timeout=60)
    except httpx.TransportError as exc:
        raise HeedError(f"no heed service at {url} ({exc})") from None
    if r.status_code != 200:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:200]
        raise HeedError(f"{url}: {r.status_code} {message}")
    doc = r.json()
    rows = [
        Row(
            hit["score"],
            hit["doc_id"],
            hit["title"],
            hit["text"],
            None
            if hit.get("highlights") is None
            else [Mark(h["start"], h["end"], h["weight"]) for h in hit["highlights"]],
        )
        for hit in doc["results"]
    ]
    return Results(rows, doc["mode"], doc["reranked"])


def results_table(query: str, results: Results, where: str) -> Table:
    """One row per result: rank, score, id, title, and the matching part of the passage."""
    title = f"{query!r} ({results.mode}{', re-ranked' if results.reranked else ''}; {where})"
    table = Table(title=Text(title))
    for col in ("#", "score", "doc_id", "title", "passage"):
        table.add_column(col, overflow="fold")
    terms = match_spans(query, [r.text for r in results.rows])
    for i, (row, found) in enumerate(zip(results.rows, terms, strict=True), 1):
        explained = row.highlights is not None
        marks = row.highlights if explained else [Mark(a, b) for a, b in found]
        part = snippet(row.text, marks or [])
        passage = Text(part.text)
        for m in part.marks:
            passage.stylize(HIGHLIGHT if explained else TERM, m.start, m.end)
        table.add_row(
            Text(str(i)), Text(f"{row.score:.3f}"), Text(row.doc_id), Text(row.title), passage
        )
    return table

"""Clicks: which result a reader opened for which query, kept beside the generations.

One SQLite file per index, ``<index>/clicks.db``, outside ``generations/``: it survives reindexes,
rollbacks and pruning (snapshots do not carry it). A row holds the query as typed, the document,
its rank on the page, the generation and mode that served it and the time; never an address, a
cookie or anything else that names the reader. Recorded only when ``HEED_CLICKS`` is on.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

CLICKS_DB = "clicks.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS clicks (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,           -- UTC, seconds
    query TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    rank INTEGER NOT NULL,      -- 1 = first result
    generation INTEGER,
    mode TEXT
)
"""


def clicks_path(index_dir: Path) -> Path:
    return index_dir / CLICKS_DB


def normalised(query: str) -> str:
    """How clicks on one query are grouped: case and spacing do not make another query."""
    return " ".join(query.casefold().split())


@contextlib.contextmanager
def _connect(index_dir: Path) -> Iterator[sqlite3.Connection]:
    index_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(clicks_path(index_dir), timeout=10)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(SCHEMA)
        with conn:
            yield conn
    finally:
        conn.close()


def record_click(
    index_dir: Path, query: str, doc_id: str, rank: int, generation: int | None, mode: str | None
) -> None:
    at = datetime.now(UTC).replace(microsecond=0).isoformat()
    with _connect(index_dir) as conn:
        conn.execute(
            "INSERT INTO clicks(at, query, doc_id, rank, generation, mode) VALUES (?,?,?,?,?,?)",
            (at, query, doc_id, rank, generation, mode),
        )


@dataclass
class ClickJudgements:
    """Clicks grouped per normalised query: each document opened at least ``min_clicks`` times
    is judged relevant (grade 1) for it."""

    queries: dict[str, str]  # query id -> the query (its most frequent spelling)
    qrels: dict[str, dict[str, int]]
    clicks: int  # rows read


def click_judgements(index_dir: Path, min_clicks: int = 1) -> ClickJudgements:
    if not clicks_path(index_dir).is_file():
        return ClickJudgements({}, {}, 0)
    with _connect(index_dir) as conn:
        rows = conn.execute("SELECT query, doc_id FROM clicks ORDER BY id").fetchall()
    spellings: dict[str, Counter[str]] = {}
    counts: dict[str, Counter[str]] = {}
    for query, doc_id in rows:
        key = normalised(query)
        if not key:
            continue
        spellings.setdefault(key, Counter())[" ".join(query.split())] += 1
        counts.setdefault(key, Counter())[doc_id] += 1
    queries, qrels = {}, {}
    for n, key in enumerate(counts, 1):
        judged = {doc: 1 for doc, c in counts[key].items() if c >= min_clicks}
        if judged:
            qid = f"c{n}"
            queries[qid] = spellings[key].most_common(1)[0][0]
            qrels[qid] = judged
    return ClickJudgements(queries, qrels, len(rows))

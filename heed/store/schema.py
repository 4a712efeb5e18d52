"""The SQLite tables of a generation, and how exact vectors are stored in them.

Exact float32 vectors are kept in SQLite (``vectors``): a vector index may hold lossy codes, and
training a new index, reusing an unchanged passage's vector or scoring a keyword-only hit must not
depend on them. They cost 1.5 KB per passage on disk, none in RAM (SQLite pages). Any backend can
be rebuilt from them.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import TYPE_CHECKING

import numpy as np
import sqlite_utils
from numpy.typing import NDArray

from heed.store.layout import FTS_TOKENIZER

if TYPE_CHECKING:
    from heed.store.vectors import VectorIndex

VECTOR_TABLE = """
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY,  -- the passage id; exact little-endian float32
    v BLOB NOT NULL
);
"""

SCHEMA = f"""
CREATE TABLE documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{{}}',
    hash TEXT NOT NULL,
    source TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: it is also the vector id
    doc INTEGER NOT NULL REFERENCES documents(id),
    ord INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX passages_doc ON passages(doc);
CREATE VIRTUAL TABLE passages_fts USING fts5(title, body, tokenize='{FTS_TOKENIZER}');
{VECTOR_TABLE}"""


def blob(vector: NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def unblob(data: bytes) -> NDArray[np.float32]:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def has_vector_table(db: sqlite_utils.Database) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'vectors'").fetchone() is not None


def id_diff(db: sqlite_utils.Database, index: VectorIndex) -> tuple[list[int], list[int]]:
    """(passages lacking a vector, vectors lacking a passage)."""
    passages = {r[0] for r in db.execute("SELECT id FROM passages")}
    vectors = set(index.ids().tolist())
    return sorted(passages - vectors), sorted(vectors - passages)


def marks(values: Sized) -> str:
    """``?,?,?``: one SQL parameter per value."""
    return ",".join("?" * len(values))

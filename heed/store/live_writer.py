"""A small write, in place: one SQLite transaction in the live generation (heed/store/delta.py).

:class:`LiveWriter` offers what :class:`~heed.store.writer.Writer` offers the indexer (put,
delete, add_vectors, commit, abort) but writes the live generation's ``docs.db`` in one
``BEGIN IMMEDIATE`` transaction in WAL mode, synchronously durable at ``COMMIT``: a reader sees
the whole write or none of it, and a write acknowledged after commit survives a crash. Vectors go
to the ``vectors`` table only (the delta); a removed passage the base holds becomes a tombstone.
Nothing is copied, so the cost is the change: the rows, their FTS5 entries, their vectors, one
WAL sync. Past ``merge_after`` delta rows the commit also merges them into a new base.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import IndexFormatError, IndexNotFound, ModelMismatch
from heed.settings import default
from heed.store.delta import merge, read_state
from heed.store.layout import DB, Manifest, current_generation, generation_dir, read_manifest
from heed.store.schema import marks
from heed.store.writer import SqliteVectors, Writer

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger(__name__)

WRITE_WAIT_S = 60.0  # a small write waits this long for another writer (a batch) to finish


def supports_in_place(index_dir: Path) -> bool:
    """True when the live generation takes writes in place (WAL and a state row)."""
    live = current_generation(index_dir)
    if live is None:
        return False
    if read_manifest(generation_dir(index_dir, live)).backend != "faiss":
        return False  # Milvus writes its collections in place its own way
    path = generation_dir(index_dir, live) / DB
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            return wal and read_state(conn) is not None
    except sqlite3.Error:
        return False


class StoredHashes(Mapping[str, str]):
    """doc_id -> content hash, looked up one id at a time (an upsert needs one, not all)."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    def __getitem__(self, doc_id: str) -> str:
        row = self.db.execute("SELECT hash FROM documents WHERE doc_id = ?", [doc_id]).fetchone()
        if row is None:
            raise KeyError(doc_id)
        return str(row[0])

    def __iter__(self) -> Iterator[str]:
        return (r[0] for r in self.db.execute("SELECT doc_id FROM documents").fetchall())

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM documents").fetchone()[0])


class LiveWriter(Writer):
    """Writes the live generation in place; :meth:`commit` is one durable SQLite commit."""

    merge_after: int = default("merge_after")  # delta rows + tombstones that make a merge
    lock_wait_s = WRITE_WAIT_S

    def _start(
        self,
        embed_model: str,
        dimension: int,
        chunk_tokens: int,
        chunk_overlap: int,
        rebuild: bool,
        scripts: dict[str, float] | None,
        embed_reason: str,
    ) -> None:
        import sqlite_utils

        live = current_generation(self.index_dir)
        if live is None:
            raise IndexNotFound(f"no index in {self.index_dir}")
        self.base = self.generation = live
        self.folder = generation_dir(self.index_dir, live)
        self.manifest: Manifest = read_manifest(self.folder)
        if self.manifest.embed_model != embed_model:
            raise ModelMismatch(
                f"{self.index_dir} was built with {self.manifest.embed_model!r}, not "
                f"{embed_model!r}; rebuild it (`heed index --rebuild` or `heed reindex`)"
            )
        self.dimension = dimension
        self.db = sqlite_utils.Database(self.folder / DB)
        self.db.execute("PRAGMA busy_timeout = 60000")
        self.db.execute("PRAGMA synchronous = FULL")  # the WAL is synced at every commit
        self.db.conn.execute("BEGIN IMMEDIATE")
        state = read_state(self.db)
        if state is None:
            raise IndexFormatError(
                f"{self.folder}: no state row; this index is not written in place"
            )
        self.state, self.version = state, state.version
        self.base_documents = state.documents
        self.changes = [0, 0]  # documents, passages
        self.unembedded: set[int] = set()

    # reads -----------------------------------------------------------------------------------
    def hashes(self) -> Mapping[str, str]:  # type: ignore[override]
        return StoredHashes(self.db)

    def count(self) -> tuple[int, int]:
        return self.state.documents + self.changes[0], self.state.passages + self.changes[1]

    # writes: the rows as Writer writes them, the vectors as delta and tombstones ---------------
    def _insert(self, table: str, row: dict[str, Any]) -> int:
        rowid = super()._insert(table, row)
        if table == "documents":
            self.changes[0] += 1
        elif table == "passages":
            self.changes[1] += 1
            self.unembedded.add(rowid)
        return rowid

    def delete(self, doc_id: str) -> None:
        super().delete(doc_id)
        self.changes[0] -= 1

    def _drop_passages(self, doc_id: str) -> dict[str, NDArray[np.float32]]:
        before = self.db.conn.total_changes
        vectors = super()._drop_passages(doc_id)
        if self.db.conn.total_changes != before:
            removed = self.db.execute("SELECT changes()").fetchone()[0]  # the passages DELETE
            self.changes[1] -= removed
        return vectors

    def remove_vectors(self, ids: Sequence[int]) -> None:
        ids = [int(i) for i in ids]
        in_base = [i for i in ids if i <= self.state.base_upto]
        self.db.conn.executemany("INSERT INTO tombstones(id) VALUES (?)", [(i,) for i in in_base])
        self.db.execute(f"DELETE FROM vectors WHERE id IN ({marks(ids)})", ids)
        self.unembedded.difference_update(ids)

    def add_vectors(self, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._store_exact(ids, vectors)
        self.unembedded.difference_update(int(i) for i in ids)

    def rebuild_vectors(self) -> int:
        raise TypeError("a rebuild writes a new generation: use Writer")

    # publish ---------------------------------------------------------------------------------
    def _commit(self, rerank_model: str | None) -> Manifest:
        if self.unembedded:
            raise IndexFormatError(
                f"refusing to commit: {len(self.unembedded)} passages without a vector"
            )
        docs, passages = self.count()
        self.db.execute(
            "UPDATE heed_state SET version = version + 1, documents = ?, passages = ?",
            [docs, passages],
        )
        self.db.conn.commit()
        self.published = True
        state = read_state(self.db)
        assert state is not None
        pending = self.db.execute(
            "SELECT count(*) FROM vectors WHERE id > ?", [state.base_upto]
        ).fetchone()[0]
        dead = self.db.execute("SELECT count(*) FROM tombstones").fetchone()[0]
        if pending + dead > self.merge_after:
            state = merge(self.db.conn, self.folder, self.manifest, self.ann, self._exact())
        self.db.conn.close()
        self._release()
        self.version = state.version
        return self.manifest.model_copy(update={"documents": docs, "passages": passages})

    def _exact(self) -> SqliteVectors:
        return SqliteVectors(self.db, self.dimension)

    def abort(self) -> None:
        """Roll the transaction back and release the lock; idempotent. Never removes files."""
        db: sqlite_utils.Database | None = getattr(self, "db", None)
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                if db.conn.in_transaction:
                    db.conn.rollback()
            with contextlib.suppress(sqlite3.Error):
                db.conn.close()
        self._release()

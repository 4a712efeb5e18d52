"""The write path of the index format: a new generation built beside the live one.

A :class:`Writer` copies the live generation into a new folder, applies changes there and
publishes it with one ``os.replace`` of ``CURRENT``; killed at any point before that, the previous
generation is untouched and the half-built folder is removed by the next writer. Vector ids *are*
SQLite rowids, so no side table maps one to the other and nothing can drift. The vector index is
reached through :class:`~heed.store.vectors.VectorIndex` only.

Indexes written before the ``vectors`` table existed get the table, filled from their (exact,
flat) index vectors, at their next write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import DocumentNotFound, IndexFormatError, ModelMismatch
from heed.keywords import keyword_form
from heed.records import Document, Passage, embed_text, text_hash
from heed.store.delta import STATE_TABLES, full_index, read_state, reset_state
from heed.store.fs_errors import storage_error
from heed.store.integrity import lacking_exact, sha256
from heed.store.layout import (
    DB,
    VECTORS,
    Manifest,
    current_generation,
    generation_dir,
    generations,
    lock_writer,
    make_durable,
    prune,
    publish,
    read_manifest,
    remove_unpublished,
    unlock,
    write_manifest,
)
from heed.store.schema import SCHEMA, VECTOR_TABLE, blob, has_vector_table, marks, unblob
from heed.store.vectors import AnnConfig, VectorIndex, create_index

if TYPE_CHECKING:  # imported by Writer: it imports pandas (0.7 s), which reads never need
    import sqlite_utils

log = logging.getLogger(__name__)

REBUILD_BATCH = 50_000  # exact vectors read from SQLite at a time while a new index is filled


class SqliteVectors:
    """A generation's exact vectors (the ``vectors`` table), as a backend (re)builds from them."""

    def __init__(self, db: sqlite_utils.Database, dimension: int):
        self.db, self.dimension = db, dimension

    def sample(self, n: int) -> NDArray[np.float32]:
        return self.rows("SELECT id, v FROM vectors ORDER BY random() LIMIT ?", [n])[1]

    def batches(self) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        last = -1
        while True:
            ids, vectors = self.rows(
                "SELECT id, v FROM vectors WHERE id > ? ORDER BY id LIMIT ?", [last, REBUILD_BATCH]
            )
            if not len(ids):
                return
            yield ids, vectors
            last = int(ids[-1])

    def rows(
        self, sql: str, params: Sequence[Any]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        rows = self.db.execute(sql, list(params)).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.array([unblob(r[1]) for r in rows], dtype=np.float32)
        return ids, vectors.reshape(-1, self.dimension)


def _backfill_vectors(db: sqlite_utils.Database, index: VectorIndex) -> None:
    """Give an index from before the ``vectors`` table one; its flat vectors are exact."""
    db.executescript(VECTOR_TABLE)
    if index.count:
        ids = index.ids()
        db.conn.executemany(
            "INSERT INTO vectors(id, v) VALUES (?, ?)",
            ((int(i), blob(v)) for i, v in zip(ids, index.reconstruct_batch(ids), strict=True)),
        )
    db.conn.commit()


def _raise_storage_error(exc: BaseException, index_dir: Path) -> None:
    """Raise the DiskFull / ReadOnlyIndex that ``exc`` stands for; return if it is neither."""
    error = storage_error(exc, index_dir)
    if error is not None and error is not exc:
        raise error from exc


class Writer:
    """Builds the next generation from a copy of the live one; :meth:`commit` publishes it.

    Use as a context manager: leaving it by an exception discards the new generation, so the
    live index never sees a half-applied change.
    """

    lock_wait_s = 0.0  # a batch that finds the index busy says so at once

    def __init__(
        self,
        index_dir: Path,
        embed_model: str,
        dimension: int,
        chunk_tokens: int,
        chunk_overlap: int,
        *,
        ann_config: AnnConfig,
        keep: int,
        rebuild: bool = False,
        scripts: dict[str, float] | None = None,
        embed_reason: str = "",
    ):
        self.index_dir = index_dir
        self.keep = keep
        self.ann = ann_config
        self.published = False
        self.version: int | None = None  # of the state row this writer leaves
        try:
            self._lock = lock_writer(index_dir, self.lock_wait_s)
        except OSError as exc:  # e.g. a read-only index directory
            _raise_storage_error(exc, index_dir)
            raise
        try:
            self._start(
                embed_model, dimension, chunk_tokens, chunk_overlap, rebuild, scripts, embed_reason
            )
        except BaseException as exc:  # the lock and the new folder must not outlive a failure
            self.abort()
            _raise_storage_error(exc, index_dir)
            raise

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
        index_dir = self.index_dir
        live = current_generation(index_dir)
        remove_unpublished(index_dir, live)
        self.base = live
        base_manifest = None if live is None else read_manifest(generation_dir(index_dir, live))
        self.base_documents = base_manifest.documents if base_manifest else 0
        if base_manifest and not rebuild and base_manifest.embed_model != embed_model:
            raise ModelMismatch(
                f"{index_dir} was built with {base_manifest.embed_model!r}, not {embed_model!r}; "
                "rebuild it (`heed index --rebuild` or `heed reindex`) to change the model"
            )
        self.generation = (max(generations(index_dir), default=0)) + 1
        self.folder = generation_dir(index_dir, self.generation)
        self.folder.mkdir(parents=True)
        import sqlite_utils

        self.dimension = dimension
        self.meta = {
            "embed_model": embed_model,
            "dimension": dimension,
            "chunk_tokens": chunk_tokens,
            "chunk_overlap": chunk_overlap,
            "scripts": scripts or {},
            "embed_reason": embed_reason,
        }
        damage = None
        if base_manifest and not rebuild:
            # An update keeps what the index was created with.
            self.meta["scripts"] = base_manifest.scripts
            self.meta["embed_reason"] = base_manifest.embed_reason
            base = generation_dir(index_dir, live)  # type: ignore[arg-type]
            with (
                contextlib.closing(sqlite3.connect(base / DB)) as src,
                contextlib.closing(sqlite3.connect(self.folder / DB)) as dst,
            ):
                src.backup(dst)
            with contextlib.closing(sqlite3.connect(self.folder / DB)) as copied:
                # base less tombstones plus delta, as the copied rows have them
                found, damage = full_index(copied, base, base_manifest, self.ann)
            self.index: VectorIndex = found or create_index(dimension, self.ann)
        else:
            with contextlib.closing(sqlite3.connect(self.folder / DB)) as conn:
                conn.executescript(SCHEMA)
            self.index = create_index(dimension, self.ann)
        self.db = sqlite_utils.Database(self.folder / DB)
        # The folder is thrown away on a crash, so durability is only needed at commit.
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA journal_mode=MEMORY")
        if not has_vector_table(self.db):
            if damage:
                raise IndexFormatError(
                    f"{index_dir}: {damage}, and this index predates the exact vectors in "
                    "SQLite; rebuild it with `heed index --rebuild`"
                )
            _backfill_vectors(self.db, self.index)
        if damage:  # never copy damage forward: the exact vectors are the truth
            log.warning("generation %s: %s; rebuilding it from the exact vectors", live, damage)
            self.rebuild_vectors()
        self.db.conn.execute("BEGIN")

    # context manager -------------------------------------------------------------------------
    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, _: Any) -> None:
        self.abort()  # after commit only releases; otherwise discards the new generation
        if exc is not None:
            _raise_storage_error(exc, self.index_dir)

    def _release(self) -> None:
        unlock(self._lock)

    # reads -----------------------------------------------------------------------------------
    def hashes(self) -> dict[str, str]:
        """doc_id -> content hash of every document in this generation."""
        return {r[0]: r[1] for r in self.db.execute("SELECT doc_id, hash FROM documents")}

    def count(self) -> tuple[int, int]:
        docs = self.db.execute("SELECT count(*) FROM documents").fetchone()[0]
        return docs, self.db.execute("SELECT count(*) FROM passages").fetchone()[0]

    # writes ----------------------------------------------------------------------------------
    def put(self, doc: Document, passages: Sequence[Passage]) -> list[tuple[int, str]]:
        """Insert or replace a document; returns (passage id, text to embed) still lacking vectors.

        A passage whose exact text the document had before keeps its vector: only new text costs
        an embedding.
        """
        reusable = self._drop_passages(doc.doc_id)
        now = datetime.now(UTC).isoformat()
        row = {
            "doc_id": doc.doc_id,
            "title": doc.title,
            "text": doc.text,
            "metadata": json.dumps(doc.metadata, ensure_ascii=False, default=str),
            "hash": doc.content_hash(),
            "source": doc.source,
            "updated_at": now,
        }
        existing = self.db.execute(
            "SELECT id FROM documents WHERE doc_id = ?", [doc.doc_id]
        ).fetchone()
        if existing:
            self.db.table("documents").update(existing[0], row)
            doc_row = existing[0]
        else:
            doc_row = self._insert("documents", row)
        pending: list[tuple[int, str]] = []
        reused_ids: list[int] = []
        reused_vecs: list[NDArray[np.float32]] = []
        for p in passages:
            text = embed_text(doc.title, p.text)
            h = text_hash(text)
            pid = self._insert(
                "passages",
                {
                    "doc": doc_row,
                    "ord": p.ord,
                    "start": p.start,
                    "end": p.end,
                    "text": p.text,
                    "hash": h,
                },
            )
            self.db.execute(
                "INSERT INTO passages_fts(rowid, title, body) VALUES (?, ?, ?)",
                [pid, keyword_form(doc.title), keyword_form(p.text)],
            )
            if h in reusable:
                reused_ids.append(pid)
                reused_vecs.append(reusable.pop(h))
            else:
                pending.append((pid, text))
        if reused_ids:
            self.add_vectors(reused_ids, np.stack(reused_vecs))
        return pending

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """Insert a row; its new rowid."""
        rowid = self.db.table(table).insert(row).last_pk
        assert rowid is not None
        return int(rowid)

    def delete(self, doc_id: str) -> None:
        """Remove a document, its passages and their vectors."""
        if not self.db.execute("SELECT 1 FROM documents WHERE doc_id = ?", [doc_id]).fetchone():
            raise DocumentNotFound(f"no document with id {doc_id!r}")
        self._drop_passages(doc_id)
        self.db.execute("DELETE FROM documents WHERE doc_id = ?", [doc_id])

    def _drop_passages(self, doc_id: str) -> dict[str, NDArray[np.float32]]:
        rows = self.db.execute(
            "SELECT p.id, p.hash FROM passages p JOIN documents d ON d.id = p.doc "
            "WHERE d.doc_id = ?",
            [doc_id],
        ).fetchall()
        if not rows:
            return {}
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        exact = dict(
            self.db.execute(f"SELECT id, v FROM vectors WHERE id IN ({marks(ids)})", ids.tolist())
        )
        # A passage added earlier in this same generation may not have its vector yet.
        vectors = {h: unblob(exact[pid]) for pid, h in rows if pid in exact}
        self.remove_vectors(ids.tolist())
        self.db.execute(f"DELETE FROM passages_fts WHERE rowid IN ({marks(ids)})", ids.tolist())
        self.db.execute(f"DELETE FROM passages WHERE id IN ({marks(ids)})", ids.tolist())
        return vectors

    def remove_vectors(self, ids: Sequence[int]) -> None:
        """Remove vectors from the index (for real) and from the exact copy."""
        self.index.remove(np.asarray(ids, dtype=np.int64))
        self.db.execute(f"DELETE FROM vectors WHERE id IN ({marks(ids)})", list(ids))

    def embed_inputs(self, ids: Sequence[int]) -> list[tuple[int, str]]:
        """(passage id, text the bi-encoder sees) for the given passages."""
        rows = self.db.execute(
            "SELECT p.id, d.title, p.text FROM passages p JOIN documents d ON d.id = p.doc "
            f"WHERE p.id IN ({marks(ids)})",
            list(ids),
        ).fetchall()
        return [(r[0], embed_text(r[1], r[2])) for r in rows]

    def add_vectors(self, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index.add(np.asarray(ids, dtype=np.int64), vectors)
        self._store_exact(ids, vectors)

    def _store_exact(self, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO vectors(id, v) VALUES (?, ?)",
            ((int(i), blob(v)) for i, v in zip(ids, vectors, strict=True)),
        )

    def rebuild_vectors(self) -> int:
        """A new vector index from the exact vectors in SQLite (no embedding); how many."""
        n = int(self.db.execute("SELECT count(*) FROM vectors").fetchone()[0])
        exact = SqliteVectors(self.db, self.dimension)
        self.index = self.index.fit(n, exact, rebuild=True)
        return n

    def exact_vector_diff(self) -> tuple[list[int], list[int]]:
        """(passages without an exact vector, exact vectors without a passage) in SQLite."""
        extra = self.db.execute(
            "SELECT v.id FROM vectors v LEFT JOIN passages p ON p.id = v.id WHERE p.id IS NULL"
        )
        return lacking_exact(self.db), [r[0] for r in extra]

    # publish ---------------------------------------------------------------------------------
    def commit(self, rerank_model: str | None = None) -> Manifest:
        """Write vectors and manifest, make them durable, then switch ``CURRENT`` to them.

        A failure before the switch discards the new generation and releases the lock.
        """
        try:
            return self._commit(rerank_model)
        except BaseException as exc:
            self.abort()
            _raise_storage_error(exc, self.index_dir)
            raise

    def _commit(self, rerank_model: str | None) -> Manifest:
        docs, passages = self.count()
        self.index = self.index.fit(passages, SqliteVectors(self.db, self.dimension))
        if self.index.count != passages:
            raise IndexFormatError(
                f"refusing to publish: {passages} passages but {self.index.count} vectors"
            )
        # Small writes go in place from here on (heed/store/delta.py): WAL, a fresh state row.
        self.db.executescript(STATE_TABLES)
        self.version = (old.version + 1) if (old := read_state(self.db)) else 1
        reset_state(self.db, docs, passages, self.version)
        self.db.conn.commit()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.conn.close()
        self.index.save(self.folder)
        manifest = Manifest(
            vectors_sha256=sha256(self.folder / VECTORS),
            generation=self.generation,
            rerank_model=rerank_model,
            documents=docs,
            passages=passages,
            created_at=datetime.now(UTC),
            backend=self.index.backend,
            index_type=self.index.kind,
            index_params=self.index.params,
            trained_on=self.index.trained_on,
            **self.meta,
        )
        write_manifest(self.folder, manifest)
        make_durable(self.folder)
        publish(self.index_dir, self.generation)
        self.published = True
        self.index.published(manifest)  # Milvus: replicas switch to it too
        prune(self.index_dir, self.keep)
        self._release()
        return manifest

    def abort(self) -> None:
        """Discard the new generation unless published, and release the lock; idempotent."""
        db: sqlite_utils.Database | None = getattr(self, "db", None)  # none if _start failed early
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.conn.close()
        folder: Path | None = getattr(self, "folder", None)
        if folder is not None and not self.published:
            shutil.rmtree(folder, ignore_errors=True)
        self._release()

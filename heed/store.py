"""The on-disk index format. Nothing else in heed opens these files or names these tables.

Layout::

    <index>/CURRENT                       name of the live generation, replaced atomically
    <index>/LOCK                          held by the one writer
    <index>/generations/<000042>/docs.db        SQLite, the source of truth (sqlite-utils)
    <index>/generations/<000042>/vectors.faiss  FAISS flat or IVF-SQ8; ids = passage rowids
    <index>/generations/<000042>/manifest.json  format version, models, dimension, counts, time

A generation is immutable once ``CURRENT`` names it. A :class:`Writer` copies the live generation
into a new folder, applies changes there and publishes it with one ``os.replace``; killed at any
point before that, the previous generation is untouched and the half-built folder is removed by
the next writer. FAISS ids *are* SQLite rowids (``IndexIDMap2`` for flat, native ids for IVF), so
no side table maps one to the other and nothing can drift.

Exact float32 vectors are also kept in SQLite (``vectors``): the FAISS index may hold lossy 8-bit
codes, and training a new IVF index, reusing an unchanged passage's vector or scoring a keyword-only
hit must not depend on them. They cost 1.5 KB per passage on disk, none in RAM (SQLite pages). At
commit the writer picks the index kind for the new size (:class:`heed.ann.AnnConfig`) and, when the
kind changes or an IVF index has grown past twice its training size, trains a new one from these
vectors. Deletions are real in both kinds (``remove_ids``); see heed/ann.py for why no HNSW.
Indexes written before the ``vectors`` table existed are read as they are and get the table, filled
from their (exact, flat) FAISS vectors, at their next write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Sequence, Sized
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import sqlite_utils
from numpy.typing import NDArray
from pydantic import BaseModel

from heed import ann
from heed.errors import (
    DocumentNotFound,
    IndexBusy,
    IndexFormatError,
    IndexNotFound,
    ModelMismatch,
    UnknownFilterField,
)
from heed.keywords import fts_query, keyword_form
from heed.records import Document, Passage, embed_text, text_hash

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT, LOCK, GENERATIONS = "CURRENT", "LOCK", "generations"
DB, VECTORS, MANIFEST = "docs.db", "vectors.faiss", "manifest.json"
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"

VECTOR_TABLE = """
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY,  -- the passage id; exact little-endian float32
    v BLOB NOT NULL
);
"""
REBUILD_BATCH = 50_000  # exact vectors read from SQLite at a time while a new index is filled

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
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: it is also the FAISS id
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


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    generation: int
    embed_model: str
    dimension: int
    rerank_model: str | None = None
    documents: int
    passages: int
    chunk_tokens: int
    chunk_overlap: int
    fts_tokenizer: str = FTS_TOKENIZER
    created_at: datetime
    index_type: ann.Kind = "flat"  # the defaults read indexes written before IVF existed
    index_params: dict[str, int] = {}
    trained_on: int = 0  # vectors the IVF lists were trained on; retrained at RETRAIN_GROWTH x
    # The corpus sampled at creation: share of words per script, and why this bi-encoder
    # (heed/scripts.py). Read-path defaults follow them; an older index reads as English.
    scripts: dict[str, float] = {}
    embed_reason: str = ""


@dataclass
class PassageHit:
    """A passage with its document, as the read path returns it."""

    passage_id: int
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    metadata: dict[str, Any]


# -- consistency ----------------------------------------------------------------------------------
@dataclass
class Consistency:
    """How one generation's SQLite passages, FAISS ids and manifest agree."""

    generation: int
    passages: int
    vectors: int
    missing_vectors: list[int]  # passages without a vector
    orphan_vectors: list[int]  # vectors without a passage
    manifest_counts: tuple[int, int]
    actual_counts: tuple[int, int]
    index: str = "flat"  # the FAISS kind and its parameters, as Reader.describe_index says

    @property
    def ok(self) -> bool:
        return (
            not self.missing_vectors
            and not self.orphan_vectors
            and self.manifest_counts == self.actual_counts
        )


def _id_diff(db: sqlite_utils.Database, index: Any) -> tuple[list[int], list[int]]:
    passage_ids = {r[0] for r in db.execute("SELECT id FROM passages")}
    vector_ids = set(ann.vector_ids(index).tolist())
    return sorted(passage_ids - vector_ids), sorted(vector_ids - passage_ids)


# -- exact vectors in SQLite ----------------------------------------------------------------------
def _blob(vector: NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _unblob(blob: bytes) -> NDArray[np.float32]:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def _has_vector_table(db: sqlite_utils.Database) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'vectors'").fetchone() is not None


def _backfill_vectors(db: sqlite_utils.Database, index: Any) -> None:
    """Give an index from before the ``vectors`` table one; its flat FAISS vectors are exact."""
    db.executescript(VECTOR_TABLE)
    if index.ntotal:
        ids = faiss.vector_to_array(index.id_map).tolist()
        vectors = index.index.reconstruct_n(0, index.ntotal)
        db.conn.executemany(
            "INSERT INTO vectors(id, v) VALUES (?, ?)",
            ((i, _blob(v)) for i, v in zip(ids, vectors, strict=True)),
        )
    db.conn.commit()


# -- layout ---------------------------------------------------------------------------------------
def current_generation(index_dir: Path) -> int | None:
    try:
        return int((index_dir / CURRENT).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def generation_dir(index_dir: Path, generation: int) -> Path:
    return index_dir / GENERATIONS / f"{generation:06d}"


def _generations(index_dir: Path) -> list[int]:
    root = index_dir / GENERATIONS
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []


def read_manifest(folder: Path) -> Manifest:
    try:
        manifest = Manifest.model_validate_json((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise IndexFormatError(f"{folder}: no {MANIFEST}; the index is damaged") from None
    except ValueError as exc:
        raise IndexFormatError(f"{folder / MANIFEST}: unreadable manifest ({exc})") from None
    if manifest.format_version != FORMAT_VERSION:
        raise IndexFormatError(
            f"{folder}: index format {manifest.format_version}, this heed reads "
            f"{FORMAT_VERSION}; rebuild it with `heed index --rebuild`"
        )
    return manifest


def live_manifest(index_dir: Path) -> Manifest | None:
    generation = current_generation(index_dir)
    return None if generation is None else read_manifest(generation_dir(index_dir, generation))


def _marks(values: Sized) -> str:
    return ",".join("?" * len(values))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(index_dir: Path, generation: int) -> None:
    tmp = index_dir / f"{CURRENT}.tmp"
    with tmp.open("w") as fh:
        fh.write(f"{generation}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / CURRENT)
    _fsync(index_dir)


# -- write path -----------------------------------------------------------------------------------
class Writer:
    """Builds the next generation from a copy of the live one; :meth:`commit` publishes it.

    Use as a context manager: leaving it by an exception discards the new generation, so the
    live index never sees a half-applied change.
    """

    def __init__(
        self,
        index_dir: Path,
        embed_model: str,
        dimension: int,
        chunk_tokens: int,
        chunk_overlap: int,
        rebuild: bool = False,
        keep: int = 2,
        ann_config: ann.AnnConfig | None = None,
        scripts: dict[str, float] | None = None,
        embed_reason: str = "",
    ):
        self.index_dir = index_dir
        self.keep = keep
        self.ann = ann_config or ann.AnnConfig()
        index_dir.mkdir(parents=True, exist_ok=True)
        self._lock = (index_dir / LOCK).open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise IndexBusy(f"{index_dir}: another heed process is writing this index") from None
        live = current_generation(index_dir)
        self._remove_unpublished(live)
        self.base = live
        base_manifest = None if live is None else read_manifest(generation_dir(index_dir, live))
        if base_manifest and not rebuild and base_manifest.embed_model != embed_model:
            self._release()
            raise ModelMismatch(
                f"{index_dir} was built with {base_manifest.embed_model!r}, not {embed_model!r}; "
                "rebuild it (`heed index --rebuild` or `heed reindex`) to change the model"
            )
        self.generation = (max(_generations(index_dir), default=0)) + 1
        self.folder = generation_dir(index_dir, self.generation)
        self.folder.mkdir(parents=True)
        self.meta = {
            "embed_model": embed_model,
            "dimension": dimension,
            "chunk_tokens": chunk_tokens,
            "chunk_overlap": chunk_overlap,
            "scripts": scripts or {},
            "embed_reason": embed_reason,
        }
        if base_manifest and not rebuild:
            # An update keeps what the index was created with.
            self.meta["scripts"] = base_manifest.scripts
            self.meta["embed_reason"] = base_manifest.embed_reason
            base = generation_dir(index_dir, live)  # type: ignore[arg-type]
            with sqlite3.connect(base / DB) as src, sqlite3.connect(self.folder / DB) as dst:
                src.backup(dst)
            self.index = faiss.read_index(str(base / VECTORS))
            self.trained_on = base_manifest.trained_on
        else:
            sqlite_utils.Database(self.folder / DB).executescript(SCHEMA)
            self.index = ann.new_flat(dimension)
            self.trained_on = 0
        self.db = sqlite_utils.Database(self.folder / DB)
        # The folder is thrown away on a crash, so durability is only needed at commit.
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA journal_mode=MEMORY")
        if not _has_vector_table(self.db):
            _backfill_vectors(self.db, self.index)
        self.db.conn.execute("BEGIN")

    # context manager -------------------------------------------------------------------------
    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()

    def _remove_unpublished(self, live: int | None) -> None:
        for generation in _generations(self.index_dir):
            if live is None or generation > live:
                shutil.rmtree(generation_dir(self.index_dir, generation), ignore_errors=True)

    def _release(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

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
            self.db["documents"].update(existing[0], row)
            doc_row = existing[0]
        else:
            doc_row = self.db["documents"].insert(row).last_pk
        pending: list[tuple[int, str]] = []
        reused_ids, reused_vecs = [], []
        for p in passages:
            text = embed_text(doc.title, p.text)
            h = text_hash(text)
            pid = (
                self.db["passages"]
                .insert(
                    {
                        "doc": doc_row,
                        "ord": p.ord,
                        "start": p.start,
                        "end": p.end,
                        "text": p.text,
                        "hash": h,
                    }
                )
                .last_pk
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
            self.db.execute(f"SELECT id, v FROM vectors WHERE id IN ({_marks(ids)})", ids.tolist())
        )
        # A passage added earlier in this same generation may not have its vector yet.
        vectors = {h: _unblob(exact[pid]) for pid, h in rows if pid in exact}
        self.remove_vectors(ids.tolist())
        self.db.execute(f"DELETE FROM passages_fts WHERE rowid IN ({_marks(ids)})", ids.tolist())
        self.db.execute(f"DELETE FROM passages WHERE id IN ({_marks(ids)})", ids.tolist())
        return vectors

    def id_diff(self) -> tuple[list[int], list[int]]:
        """(passages lacking a vector, vectors lacking a passage) in this generation."""
        return _id_diff(self.db, self.index)

    def remove_vectors(self, ids: Sequence[int]) -> None:
        """Remove vectors from FAISS (really, in every kind) and from the exact copy."""
        self.index.remove_ids(np.asarray(ids, dtype=np.int64))
        self.db.execute(f"DELETE FROM vectors WHERE id IN ({_marks(ids)})", list(ids))

    def embed_inputs(self, ids: Sequence[int]) -> list[tuple[int, str]]:
        """(passage id, text the bi-encoder sees) for the given passages."""
        rows = self.db.execute(
            "SELECT p.id, d.title, p.text FROM passages p JOIN documents d ON d.id = p.doc "
            f"WHERE p.id IN ({_marks(ids)})",
            list(ids),
        ).fetchall()
        return [(r[0], embed_text(r[1], r[2])) for r in rows]

    def add_vectors(self, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO vectors(id, v) VALUES (?, ?)",
            ((int(i), _blob(v)) for i, v in zip(ids, vectors, strict=True)),
        )

    # index kind ------------------------------------------------------------------------------
    def _fit_index(self, n: int) -> None:
        """Hold ``n`` vectors in the kind they call for; train a new index when needed."""
        current = ann.kind_of(self.index)
        if not self.ann.needs_training(n, current, self.trained_on):
            return
        kind = self.ann.kind_for(n, current)
        dimension = self.meta["dimension"]
        if kind == "flat":
            index = ann.new_flat(dimension)
        else:
            nlist = ann.nlist_for(n)
            sample = self._exact(
                "SELECT id, v FROM vectors ORDER BY random() LIMIT ?",
                [nlist * ann.TRAIN_PER_LIST],
            )[1]
            index = ann.train_ivf(sample, nlist, self.ann.nprobe)
        last = -1
        while True:
            ids, vectors = self._exact(
                "SELECT id, v FROM vectors WHERE id > ? ORDER BY id LIMIT ?", [last, REBUILD_BATCH]
            )
            if not len(ids):
                break
            index.add_with_ids(vectors, ids)
            last = int(ids[-1])
        log.info("index rebuilt as %s for %d vectors (was %s)", kind, n, current)
        self.index, self.trained_on = index, (n if kind == "ivf" else 0)

    def _exact(
        self, sql: str, params: Sequence[Any]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        rows = self.db.execute(sql, list(params)).fetchall()
        dimension = self.meta["dimension"]
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.array([_unblob(r[1]) for r in rows], dtype=np.float32).reshape(-1, dimension)
        return ids, vectors

    def _index_params(self) -> dict[str, int]:
        ivf = faiss.try_extract_index_ivf(self.index)
        return {} if ivf is None else {"nlist": ivf.nlist, "nprobe": self.ann.nprobe}

    # publish ---------------------------------------------------------------------------------
    def commit(self, rerank_model: str | None = None) -> Manifest:
        """Write vectors and manifest, make them durable, then switch ``CURRENT`` to them."""
        docs, passages = self.count()
        self._fit_index(passages)
        if self.index.ntotal != passages:
            raise IndexFormatError(
                f"refusing to publish: {passages} passages but {self.index.ntotal} vectors"
            )
        self.db.conn.commit()
        self.db.conn.close()
        faiss.write_index(self.index, str(self.folder / VECTORS))
        manifest = Manifest(
            generation=self.generation,
            rerank_model=rerank_model,
            documents=docs,
            passages=passages,
            created_at=datetime.now(UTC),
            index_type=ann.kind_of(self.index),
            index_params=self._index_params(),
            trained_on=self.trained_on,
            **self.meta,
        )
        (self.folder / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        for name in (DB, VECTORS, MANIFEST):
            _fsync(self.folder / name)
        _fsync(self.folder)
        _publish(self.index_dir, self.generation)
        self._prune_old()
        self._release()
        return manifest

    def abort(self) -> None:
        """Discard the new generation; the live one was never touched."""
        with contextlib.suppress(sqlite3.Error):
            self.db.conn.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self._release()

    def _prune_old(self) -> None:
        for generation in _generations(self.index_dir)[: -self.keep]:
            shutil.rmtree(generation_dir(self.index_dir, generation), ignore_errors=True)


# -- read path ------------------------------------------------------------------------------------
class Reader:
    """A read-only snapshot of one generation; safe to share between threads."""

    def __init__(self, index_dir: Path, generation: int):
        self.index_dir = index_dir
        self.generation = generation
        self.folder = generation_dir(index_dir, generation)
        self.manifest = read_manifest(self.folder)
        try:
            self.index = faiss.read_index(str(self.folder / VECTORS))
            conn = sqlite3.connect(
                f"file:{self.folder / DB}?mode=ro", uri=True, check_same_thread=False
            )
        except (RuntimeError, sqlite3.Error) as exc:
            raise IndexFormatError(f"{self.folder}: cannot open index ({exc})") from None
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.Lock()
        self._exact_vectors = _has_vector_table(self.db)
        self.metadata_fields = {
            r[0]
            for r in self._query(
                "SELECT DISTINCT j.key FROM documents, json_each(documents.metadata) j"
            )
        }

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        self.db.conn.close()

    # filters ---------------------------------------------------------------------------------
    def _filter_sql(self, filters: dict[str, Any] | None) -> tuple[str, list[Any]]:
        if not filters:
            return "", []
        unknown = sorted(set(filters) - self.metadata_fields)
        if unknown:
            known = ", ".join(sorted(self.metadata_fields)) or "none"
            raise UnknownFilterField(f"unknown filter field {unknown[0]!r}; known fields: {known}")
        clauses, params = [], []
        for key, value in sorted(filters.items()):
            clauses.append("json_extract(d.metadata, ?) = ?")
            params += [f'$."{key}"', value]
        return " AND " + " AND ".join(clauses), params

    def passage_ids(self, filters: dict[str, Any]) -> NDArray[np.int64]:
        where, params = self._filter_sql(filters)
        rows = self._query(
            f"SELECT p.id FROM passages p JOIN documents d ON d.id = p.doc WHERE 1 {where}", params
        )
        return np.array([r[0] for r in rows], dtype=np.int64)

    # retrieval -------------------------------------------------------------------------------
    def dense(
        self, query_vec: NDArray[np.float32], k: int, filters: dict[str, Any] | None = None
    ) -> list[tuple[int, float]]:
        """Top-k passages by inner product (= cosine: vectors are normalised)."""
        allowed = None
        if filters:
            allowed = self.passage_ids(filters)
            if not len(allowed):
                return []
        k = min(k, self.index.ntotal)
        if k <= 0:
            return []
        nprobe = self.manifest.index_params.get("nprobe", 1)
        scores, ids = ann.search(self.index, query_vec, k, nprobe, allowed)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def keyword(
        self, query: str, k: int, filters: dict[str, Any] | None = None
    ) -> list[tuple[int, float]]:
        """Top-k passages by FTS5 BM25 (title and body); higher is better."""
        match = fts_query(query)
        if match is None:
            return []
        where, params = self._filter_sql(filters)
        join = "JOIN passages p ON p.id = f.rowid JOIN documents d ON d.id = p.doc" if where else ""
        rows = self._query(
            f"SELECT f.rowid, -bm25(passages_fts) AS s FROM passages_fts f {join} "
            f"WHERE passages_fts MATCH ? {where} ORDER BY s DESC LIMIT ?",
            [match, *params, k],
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    def vectors(self, ids: Sequence[int]) -> NDArray[np.float32]:
        """The exact vectors of these passages, in order (never the index's lossy codes)."""
        if not ids:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        if not self._exact_vectors:  # written before the vectors table: a flat, exact index
            return np.stack([self.index.reconstruct(int(i)) for i in ids])
        found = dict(self._query(f"SELECT id, v FROM vectors WHERE id IN ({_marks(ids)})", ids))
        missing = [i for i in ids if i not in found]
        if missing:
            raise IndexFormatError(
                f"{self.folder}: passage {missing[0]} has no vector; run `heed check --repair`"
            )
        return np.stack([_unblob(found[i]) for i in ids])

    def passages(self, ids: Iterable[int]) -> dict[int, PassageHit]:
        ids = list(ids)
        if not ids:
            return {}
        rows = self._query(
            'SELECT p.id, d.doc_id, d.title, p.text, p.start, p."end", d.metadata '
            f"FROM passages p JOIN documents d ON d.id = p.doc WHERE p.id IN ({_marks(ids)})",
            ids,
        )
        return {
            r[0]: PassageHit(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows
        }

    def document(self, doc_id: str) -> dict[str, Any]:
        rows = self._query(
            "SELECT id, doc_id, title, text, metadata, updated_at FROM documents WHERE doc_id = ?",
            [doc_id],
        )
        if not rows:
            raise DocumentNotFound(f"no document with id {doc_id!r}")
        rowid, doc_id, title, text, metadata, updated_at = rows[0]
        passages = self._query(
            'SELECT id, ord, start, "end" FROM passages WHERE doc = ? ORDER BY ord', [rowid]
        )
        return {
            "doc_id": doc_id,
            "title": title,
            "text": text,
            "metadata": json.loads(metadata),
            "updated_at": updated_at,
            "passages": [
                {"passage_id": p[0], "ord": p[1], "start": p[2], "end": p[3]} for p in passages
            ],
        }

    def counts(self) -> tuple[int, int]:
        return self.manifest.documents, self.manifest.passages

    def describe_index(self) -> str:
        """FAISS kind and parameters, e.g. ``ivf-sq8 nlist=4096 nprobe=16 trained_on=1000000``."""
        m = self.manifest
        if m.index_type == "flat":
            return "flat (exact)"
        params = " ".join(f"{k}={v}" for k, v in m.index_params.items())
        return f"{m.index_type}-sq8 {params} trained_on={m.trained_on}"

    def consistency(self) -> Consistency:
        with self._lock:
            missing, orphans = _id_diff(self.db, self.index)
            docs = self.db.execute("SELECT count(*) FROM documents").fetchone()[0]
            passages = self.db.execute("SELECT count(*) FROM passages").fetchone()[0]
        return Consistency(
            generation=self.generation,
            passages=passages,
            vectors=self.index.ntotal,
            missing_vectors=missing,
            orphan_vectors=orphans,
            manifest_counts=self.counts(),
            actual_counts=(docs, passages),
            index=self.describe_index(),
        )


def open_reader(index_dir: Path) -> Reader:
    """The live generation, read-only; refuses a missing, damaged or unknown-version index."""
    generation = current_generation(index_dir)
    if generation is None:
        raise IndexNotFound(
            f"no index in {index_dir}; build one with `heed index PATH --index {index_dir}`"
        )
    return Reader(index_dir, generation)

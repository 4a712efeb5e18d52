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
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Sequence, Sized
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

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
    VectorsUnavailable,
)
from heed.fs_errors import storage_error
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
    vectors_sha256: str | None = None  # of vectors.faiss; None in indexes from before it existed


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
    vectors_problem: str | None = None  # vectors.faiss unreadable, or not what the manifest says
    vectors_checked: int = 0  # passages whose ANN vector was compared with the exact one
    wrong_vectors: list[int] = field(default_factory=list)  # ... and did not match it
    missing_exact: list[int] = field(default_factory=list)  # passages without a SQLite vector

    @property
    def ok(self) -> bool:
        return (
            not self.missing_vectors
            and not self.orphan_vectors
            and self.manifest_counts == self.actual_counts
            and self.vectors_problem is None
            and not self.wrong_vectors
            and not self.missing_exact
        )


def _id_diff(db: sqlite_utils.Database, index: Any) -> tuple[list[int], list[int]]:
    passage_ids = {r[0] for r in db.execute("SELECT id FROM passages")}
    vector_ids = set(ann.vector_ids(index).tolist())
    return sorted(passage_ids - vector_ids), sorted(vector_ids - passage_ids)


# -- the vector file: checksum, loading, contents against the exact vectors ----------------------
VECTOR_SAMPLE = 1000  # passages `heed check` compares by default (`--full`: all)
SQL_CHUNK = 900  # ids per IN (...) list: under SQLite's oldest variable limit


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _load_vectors(folder: Path, manifest: Manifest) -> tuple[Any, str | None]:
    """The generation's FAISS index (None if unreadable) and what is wrong with it, if anything.

    The checksum catches damage that still loads, such as random bytes over the vectors.
    """
    path = folder / VECTORS
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        log.error("%s: unreadable: %s", path, exc)
        return None, f"{VECTORS} cannot be read"
    if manifest.vectors_sha256 and _sha256(path) != manifest.vectors_sha256:
        log.error("%s: sha256 differs from %s", path, MANIFEST)
        return index, f"{VECTORS} checksum differs from the manifest"
    return index, None


def _wrong_vectors(db: sqlite_utils.Database, index: Any, ids: Sequence[int]) -> list[int]:
    """Passages among ``ids`` whose ANN vector is not their exact vector (IVF: not its code)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and ids:
        try:  # reconstruct by id needs an id -> code map; ids are rowids, so a hash table
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        except RuntimeError:
            return list(ids)
    wrong = []
    for start in range(0, len(ids), SQL_CHUNK):
        chunk = list(ids[start : start + SQL_CHUNK])
        rows = db.execute(f"SELECT id, v FROM vectors WHERE id IN ({_marks(chunk)})", chunk)
        exact = {pid: _unblob(v) for pid, v in rows}  # lacking ones: the id check reports them
        if not exact:
            continue
        want = np.stack(list(exact.values()))
        if ivf is not None:  # lossy 8-bit codes: compare with the exact vector's own code
            want = index.sa_decode(index.sa_encode(want))
        for pid, expected in zip(exact, want, strict=True):
            try:
                got = index.reconstruct(int(pid))
            except RuntimeError:
                got = None
            if got is None or np.abs(got - expected).max() > 1e-5:
                wrong.append(pid)
    return sorted(wrong)


# -- exact vectors in SQLite ----------------------------------------------------------------------
def _blob(vector: NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _unblob(blob: bytes) -> NDArray[np.float32]:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def _lacking_exact(db: sqlite_utils.Database) -> list[int]:
    """Passages without an exact vector in SQLite."""
    rows = db.execute(
        "SELECT p.id FROM passages p LEFT JOIN vectors v ON v.id = p.id WHERE v.id IS NULL"
    )
    return [r[0] for r in rows]


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


def _lock_index(index_dir: Path) -> IO[str]:
    """The index's writer lock, taken; IndexBusy while another writer holds it."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock = (index_dir / LOCK).open("w")
    except OSError as exc:
        _raise_storage_error(exc, index_dir)
        raise
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise IndexBusy(f"{index_dir}: another heed process is writing this index") from None
    return lock


def _raise_storage_error(exc: BaseException, index_dir: Path) -> None:
    """Raise the DiskFull / ReadOnlyIndex that ``exc`` stands for; return if it is neither."""
    error = storage_error(exc, index_dir)
    if error is not None and error is not exc:
        raise error from exc


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
    ):
        self.index_dir = index_dir
        self.keep = keep
        self.ann = ann_config or ann.AnnConfig()
        self.folder: Path | None = None
        self.db: sqlite_utils.Database | None = None
        self.published = False
        self._lock = _lock_index(index_dir)
        try:
            self._start(embed_model, dimension, chunk_tokens, chunk_overlap, rebuild)
        except BaseException as exc:  # the lock and the new folder must not outlive a failure
            self.abort()
            _raise_storage_error(exc, index_dir)
            raise

    def _start(
        self, embed_model: str, dimension: int, chunk_tokens: int, chunk_overlap: int, rebuild: bool
    ) -> None:
        index_dir = self.index_dir
        live = current_generation(index_dir)
        self._remove_unpublished(live)
        self.base = live
        base_manifest = None if live is None else read_manifest(generation_dir(index_dir, live))
        self.base_documents = base_manifest.documents if base_manifest else 0
        if base_manifest and not rebuild and base_manifest.embed_model != embed_model:
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
        }
        damage = None
        if base_manifest and not rebuild:
            base = generation_dir(index_dir, live)  # type: ignore[arg-type]
            with (
                contextlib.closing(sqlite3.connect(base / DB)) as src,
                contextlib.closing(sqlite3.connect(self.folder / DB)) as dst,
            ):
                src.backup(dst)
            self.index, damage = _load_vectors(base, base_manifest)
            self.kind, self.trained_on = base_manifest.index_type, base_manifest.trained_on
        else:
            with contextlib.closing(sqlite3.connect(self.folder / DB)) as conn:
                conn.executescript(SCHEMA)
            self.index, self.kind, self.trained_on = ann.new_flat(dimension), "flat", 0
        self.db = sqlite_utils.Database(self.folder / DB)
        # The folder is thrown away on a crash, so durability is only needed at commit.
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA journal_mode=MEMORY")
        if not _has_vector_table(self.db):
            if self.index is None:
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

    def _remove_unpublished(self, live: int | None) -> None:
        for generation in _generations(self.index_dir):
            if live is None or generation > live:
                shutil.rmtree(generation_dir(self.index_dir, generation), ignore_errors=True)

    def _release(self) -> None:
        if not self._lock.closed:
            try:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._lock, fcntl.LOCK_UN)
            finally:
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
        if self.ann.needs_training(n, current, self.trained_on):
            self.rebuild_vectors(self.ann.kind_for(n, current))

    def rebuild_vectors(self, kind: ann.Kind | None = None) -> int:
        """A new ANN index from the exact vectors in SQLite (no embedding); how many it holds."""
        n = self.db.execute("SELECT count(*) FROM vectors").fetchone()[0]
        current = self.kind if self.index is None else ann.kind_of(self.index)
        kind = kind or self.ann.kind_for(n, current)
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
        return n

    def exact_vector_diff(self) -> tuple[list[int], list[int]]:
        """(passages without an exact vector, exact vectors without a passage) in SQLite."""
        extra = self.db.execute(
            "SELECT v.id FROM vectors v LEFT JOIN passages p ON p.id = v.id WHERE p.id IS NULL"
        )
        return _lacking_exact(self.db), [r[0] for r in extra]

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
        self._fit_index(passages)
        if self.index.ntotal != passages:
            raise IndexFormatError(
                f"refusing to publish: {passages} passages but {self.index.ntotal} vectors"
            )
        self.db.conn.commit()
        self.db.conn.close()
        faiss.write_index(self.index, str(self.folder / VECTORS))
        manifest = Manifest(
            vectors_sha256=_sha256(self.folder / VECTORS),
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
        self.published = True
        self._prune_old()
        self._release()
        return manifest

    def abort(self) -> None:
        """Discard the new generation unless published, and release the lock; idempotent."""
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.conn.close()
        if self.folder is not None and not self.published:
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
            conn = sqlite3.connect(
                f"file:{self.folder / DB}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise IndexFormatError(f"{self.folder}: cannot open index ({exc})") from None
        # Damaged vectors leave keyword search and documents working: dense raises instead.
        self.index, self.vectors_problem = _load_vectors(self.folder, self.manifest)
        self.db = sqlite_utils.Database(conn)
        self.closed = False
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
        """Close the SQLite connection and drop the vectors (the engine calls it when retired)."""
        with self._lock:
            self.db.conn.close()
            self.index, self.closed = None, True

    @property
    def vectors_ok(self) -> bool:
        return self.vectors_problem is None and self.index is not None

    def ann_index(self) -> Any:
        """The FAISS index, or VectorsUnavailable while it is damaged."""
        if self.vectors_problem or self.index is None:
            raise VectorsUnavailable(
                f"generation {self.generation}: {self.vectors_problem or 'closed'}; dense "
                "search is unavailable, keyword search still works; `heed check --repair` "
                "rebuilds the vector index from the exact vectors in SQLite"
            )
        return self.index

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
        index = self.ann_index()
        k = min(k, index.ntotal)
        if k <= 0:
            return []
        nprobe = self.manifest.index_params.get("nprobe", 1)
        scores, ids = ann.search(index, query_vec, k, nprobe, allowed)
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
            index = self.ann_index()
            return np.stack([index.reconstruct(int(i)) for i in ids])
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

    def consistency(self, sample: int | None = VECTOR_SAMPLE) -> Consistency:
        """Ids, counts, the vector file's checksum, and ``sample`` vectors (None: all) compared
        with their exact copies. For `heed check`: on IVF it adds an id map to this index."""
        with self._lock:
            docs = self.db.execute("SELECT count(*) FROM documents").fetchone()[0]
            passages = self.db.execute("SELECT count(*) FROM passages").fetchone()[0]
            missing: list[int] = []
            orphans: list[int] = []
            wrong: list[int] = []
            ids: list[int] = []
            missing_exact = _lacking_exact(self.db) if self._exact_vectors else []
            if self.index is not None:
                missing, orphans = _id_diff(self.db, self.index)
                order = "ORDER BY id" if sample is None else "ORDER BY random() LIMIT ?"
                params = [] if sample is None else [sample]
                ids = [r[0] for r in self.db.execute(f"SELECT id FROM passages {order}", params)]
                wrong = _wrong_vectors(self.db, self.index, ids)
        return Consistency(
            generation=self.generation,
            passages=passages,
            vectors=0 if self.index is None else self.index.ntotal,
            missing_vectors=missing,
            orphan_vectors=orphans,
            manifest_counts=self.counts(),
            actual_counts=(docs, passages),
            index=self.describe_index(),
            vectors_problem=self.vectors_problem,
            vectors_checked=len(ids),
            wrong_vectors=wrong,
            missing_exact=missing_exact,
        )


def open_reader(index_dir: Path) -> Reader:
    """The live generation, read-only; refuses a missing, damaged or unknown-version index."""
    generation = current_generation(index_dir)
    if generation is None:
        raise IndexNotFound(
            f"no index in {index_dir}; build one with `heed index PATH --index {index_dir}`"
        )
    return Reader(index_dir, generation)

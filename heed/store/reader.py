"""The read path of the index format: a read-only snapshot of one generation."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import (
    DocumentNotFound,
    IndexFormatError,
    IndexNotFound,
    UnknownFilterField,
    VectorsUnavailable,
)
from heed.keywords import fts_query, match_expression
from heed.store.delta import LiveVectors, base_folder, base_problem, live_index, read_state
from heed.store.integrity import VECTOR_SAMPLE, lacking_exact, load_checked, wrong_vectors
from heed.store.layout import DB, current_generation, generation_dir, read_manifest
from heed.store.schema import has_vector_table, id_diff, marks, unblob
from heed.store.vectors import VectorIndex


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


@dataclass
class Consistency:
    """How one generation's SQLite passages, vector ids and manifest agree."""

    generation: int
    passages: int
    vectors: int
    missing_vectors: list[int]  # passages without a vector
    orphan_vectors: list[int]  # vectors without a passage
    manifest_counts: tuple[int, int]
    actual_counts: tuple[int, int]
    index: str = "flat"  # the index kind and its parameters, as Reader.describe_index says
    vectors_problem: str | None = None  # vectors.faiss unreadable, or not what the manifest says
    vectors_checked: int = 0  # passages whose indexed vector was compared with the exact one
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


class Reader:
    """A read-only snapshot of one generation; safe to share between threads."""

    def __init__(
        self,
        index_dir: Path,
        generation: int,
        folder: Path | None = None,
        previous: Reader | None = None,
    ):
        """``folder``: a generation not (yet) in its place, e.g. a snapshot being restored.
        ``previous``: an older snapshot of the same generation, whose loaded base it reuses."""
        self.index_dir = index_dir
        self.generation = generation
        self.folder = folder or generation_dir(index_dir, generation)
        self.manifest = read_manifest(self.folder)
        try:
            conn = sqlite3.connect(
                f"file:{self.folder / DB}?mode=ro", uri=True, check_same_thread=False
            )
            conn.execute("BEGIN")  # one snapshot for this reader's whole life (WAL: no blocking)
            self.state = read_state(conn)
        except sqlite3.Error as exc:
            raise IndexFormatError(f"{self.folder}: cannot open index ({exc})") from None
        self.version = self.state.version if self.state else 0
        if previous is not None and (previous.generation, previous.folder) != (
            generation,
            self.folder,
        ):
            previous = None
        # Damaged vectors leave keyword search and documents working: dense raises instead.
        self.index: VectorIndex | None
        self.index, self.vectors_problem = self._vectors(conn, previous)
        self.db = conn
        self.closed = False
        self._lock = threading.Lock()
        self._exact_vectors = has_vector_table(self.db)
        if previous is None or self.state is None:
            sql, params = (
                "SELECT DISTINCT j.key FROM documents, json_each(documents.metadata) j",
                [],
            )
            self.metadata_fields: set[str] = set()
        else:  # a write adds fields only with new passages: read the delta's documents
            sql = (
                "SELECT DISTINCT j.key FROM passages p JOIN documents d ON d.id = p.doc, "
                "json_each(d.metadata) j WHERE p.id > ?"
            )
            params, self.metadata_fields = [self.state.base_upto], set(previous.metadata_fields)
        self.metadata_fields |= {r[0] for r in self._query(sql, params)}

    def _vectors(
        self, conn: sqlite3.Connection, previous: Reader | None
    ) -> tuple[VectorIndex | None, str | None]:
        """This snapshot's vector index: the base (reused from ``previous`` when the same),
        less tombstones, plus the delta; the base itself while there are neither."""
        self.base_index: VectorIndex | None = None
        self.base_manifest = self.manifest  # of the vector file the snapshot's base is in
        if self.state is None or not has_vector_table(conn) or self.manifest.backend != "faiss":
            # from before in-place writes (or exact vectors), or Milvus: one vector index
            return load_checked(self.folder, self.manifest)
        if previous is not None and previous.state is not None and previous.base_index is not None:
            same = previous.state.base == self.state.base
            previous = previous if same else None
        else:
            previous = None
        if previous is not None:
            base, problem = previous.base_index, previous.vectors_problem
            self.base_manifest = previous.base_manifest
        else:
            where = base_folder(self.folder, self.state)
            self.base_manifest = read_manifest(where)
            base, problem = load_checked(where, self.base_manifest)
        self.base_index = base
        if base is None:
            return None, problem
        earlier = previous.index if previous is not None else None
        live = live_index(
            conn, self.state, base, earlier if isinstance(earlier, LiveVectors) else None
        )
        return (live if len(live.delta_ids) or len(live.dead) else base), problem

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.db.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        """Close the SQLite connection and drop the vectors (the engine calls it when retired)."""
        with self._lock:
            self.db.close()
            self.index, self.closed = None, True

    @property
    def vectors_ok(self) -> bool:
        return self.vectors_problem is None and self.index is not None

    def ann_index(self) -> VectorIndex:
        """The vector index, or VectorsUnavailable while it is damaged."""
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
            # json_each compares decoded keys: a JSON path cannot name a key holding a quote
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(d.metadata) j WHERE j.key = ? AND j.value = ?)"
            )
            params += [key, value]
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
        return self.ann_index().search(query_vec, k, allowed)

    def keyword(
        self,
        query: str,
        k: int,
        filters: dict[str, Any] | None = None,
        terms: Iterable[str] | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k passages by FTS5 BM25 (title and body); higher is better.

        ``terms`` (quoted, see :func:`heed.keywords.query_terms`) replaces the query's own.
        """
        match = fts_query(query) if terms is None else match_expression(terms)
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

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """How many passages match each FTS term (quoted, see heed.keywords.query_terms)."""
        sql = "SELECT count(*) FROM passages_fts WHERE passages_fts MATCH ?"
        return {term: self._query(sql, [term])[0][0] for term in terms}

    def vectors(self, ids: Sequence[int]) -> NDArray[np.float32]:
        """The exact vectors of these passages, in order (never the index's lossy codes)."""
        if not ids:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        if not self._exact_vectors:  # written before the vectors table: a flat, exact index
            return self.ann_index().reconstruct_batch(ids)
        found = dict(self._query(f"SELECT id, v FROM vectors WHERE id IN ({marks(ids)})", ids))
        missing = [i for i in ids if i not in found]
        if missing:
            raise IndexFormatError(
                f"{self.folder}: passage {missing[0]} has no vector; run `heed check --repair`"
            )
        return np.stack([unblob(found[i]) for i in ids])

    def passages(self, ids: Iterable[int]) -> dict[int, PassageHit]:
        ids = list(ids)
        if not ids:
            return {}
        rows = self._query(
            'SELECT p.id, d.doc_id, d.title, p.text, p.start, p."end", d.metadata '
            f"FROM passages p JOIN documents d ON d.id = p.doc WHERE p.id IN ({marks(ids)})",
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

    def titles(self, limit: int) -> list[str]:
        """Up to ``limit`` non-empty document titles, in index order."""
        rows = self._query(
            "SELECT title FROM documents WHERE title != '' ORDER BY id LIMIT ?", [limit]
        )
        return [r[0] for r in rows]

    def counts(self) -> tuple[int, int]:
        if self.state is not None:  # small writes change them in place
            return self.state.documents, self.state.passages
        return self.manifest.documents, self.manifest.passages

    def describe_index(self) -> str:
        """Index kind and parameters, e.g. ``ivf-sq8 nlist=4096 nprobe=16 trained_on=1000000``."""
        if self.index is None:
            return f"{self.manifest.index_type} (unreadable)"
        return self.index.describe()

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
            missing_exact = lacking_exact(self.db) if self._exact_vectors else []
            if self.index is not None:
                missing, orphans = id_diff(self.db, self.index)
                order = "ORDER BY id" if sample is None else "ORDER BY random() LIMIT ?"
                params = [] if sample is None else [sample]
                ids = [r[0] for r in self.db.execute(f"SELECT id FROM passages {order}", params)]
                wrong = wrong_vectors(self.db, self.index, ids)
        problem = self.vectors_problem
        base = self.base_index
        if problem is None and base is not None and self.state is not None:
            problem = base_problem(base, self.base_manifest)
        return Consistency(
            generation=self.generation,
            passages=passages,
            vectors=0 if self.index is None else self.index.count,
            missing_vectors=missing,
            orphan_vectors=orphans,
            manifest_counts=self.counts(),
            actual_counts=(docs, passages),
            index=self.describe_index(),
            vectors_problem=problem,
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

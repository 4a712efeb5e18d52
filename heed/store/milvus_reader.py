"""A stateless replica's read path: a :class:`~heed.store.reader.Reader` whose rows live in Milvus.

Everything a search reads (vectors, BM25, passages, documents, filter fields, the manifest) comes
from the live collection that ``<prefix>_meta`` names, so any number of ``heed serve`` processes
can serve one Milvus with no index folder of their own, and a write through one is seen by all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import DocumentNotFound, InvalidInput, UnknownFilterField
from heed.keywords import query_terms
from heed.store.milvus_index import (
    Live,
    MilvusIndex,
    bm25_search,
    count_rows,
    dense_search,
    fetch_rows,
    fetch_vectors,
    query_rows,
    quote,
)
from heed.store.reader import Consistency, PassageHit, Reader
from heed.store.vectors import MilvusTarget, VectorIndex


class MilvusReader(Reader):
    """One live generation in Milvus, read-only; safe to share between threads (the client is)."""

    def __init__(self, target: MilvusTarget, live: Live):  # no SQLite: Reader.__init__ is not run
        self.target = target
        self.collection = live.collection
        self.manifest = live.manifest
        self.generation = live.manifest.generation
        self.index_dir = self.folder = Path(live.collection)  # for messages only
        self.metadata_fields = set(live.metadata_fields)
        self.milvus = MilvusIndex(
            target, live.manifest.dimension, live.collection, live.manifest.passages, None
        )
        self.index = self.milvus
        self.vectors_problem = None
        self.closed = False

    def close(self) -> None:
        self.closed = True  # the client is the process's, shared with the next generation

    @property
    def vectors_ok(self) -> bool:
        return True

    def ann_index(self) -> VectorIndex:
        return self.milvus

    def _where(self, filters: dict[str, Any] | None) -> str:
        """A Milvus boolean expression: every filter field equals its value."""
        if not filters:
            return ""
        unknown = sorted(set(filters) - self.metadata_fields)
        if unknown:
            known = ", ".join(sorted(self.metadata_fields)) or "none"
            raise UnknownFilterField(f"unknown filter field {unknown[0]!r}; known fields: {known}")
        return " and ".join(
            f"metadata[{quote(k)}] == {quote(v)}" for k, v in sorted(filters.items())
        )

    def passage_ids(self, filters: dict[str, Any]) -> NDArray[np.int64]:
        rows = query_rows(self.target, self.collection, self._where(filters) or "id >= 0", ["id"])
        return np.array(sorted(r["id"] for r in rows), dtype=np.int64)

    def dense(
        self, query_vec: NDArray[np.float32], k: int, filters: dict[str, Any] | None = None
    ) -> list[tuple[int, float]]:
        return dense_search(self.target, self.collection, query_vec, k, self._where(filters))

    def keyword(
        self,
        query: str,
        k: int,
        filters: dict[str, Any] | None = None,
        terms: Iterable[str] | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k by Milvus BM25; the terms are heed's (stop words out, CJK pairs), unquoted."""
        words = [t.strip('"') for t in (query_terms(query) if terms is None else terms)]
        if not words:
            return []
        return bm25_search(self.target, self.collection, " ".join(words), k, self._where(filters))

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        return {
            t: count_rows(
                self.target, self.collection, f"text_match(keywords, {quote(t.strip(chr(34)))})"
            )
            for t in terms
        }

    def vectors(self, ids: Sequence[int]) -> NDArray[np.float32]:
        return fetch_vectors(self.target, self.collection, ids, self.manifest.dimension)

    def passages(self, ids: Iterable[int]) -> dict[int, PassageHit]:
        rows = fetch_rows(self.target, self.collection, list(ids))
        return {pid: _hit(r) for pid, r in rows.items()}

    def document(self, doc_id: str) -> dict[str, Any]:
        """The document as its passages hold it: the text is stitched from them at their offsets
        (characters outside every passage, e.g. leading blanks, read as spaces)."""
        rows = query_rows(self.target, self.collection, f"doc_id == {quote(doc_id)}")
        if not rows:
            raise DocumentNotFound(f"no document with id {doc_id!r}")
        rows.sort(key=lambda r: r["ord"])
        first = rows[0]
        return {
            "doc_id": first["doc_id"],
            "title": first["title"],
            "text": stitch((r["start"], r["text"]) for r in rows),
            "metadata": first["metadata"],
            "updated_at": first["updated_at"],
            "passages": [
                {"passage_id": r["id"], "ord": r["ord"], "start": r["start"], "end": r["end"]}
                for r in rows
            ],
        }

    def titles(self, limit: int) -> list[str]:
        rows = query_rows(
            self.target, self.collection, 'ord == 0 and title != ""', ["title"], limit
        )
        return [r["title"] for r in rows]

    def describe_index(self) -> str:
        return self.milvus.describe()

    def consistency(self, sample: int | None = None) -> Consistency:
        raise InvalidInput(
            "heed check compares the indexer's ledger with Milvus: run it where HEED_INDEX_DIR "
            "holds the ledger"
        )


def _hit(r: dict[str, Any]) -> PassageHit:
    return PassageHit(
        r["id"], r["doc_id"], r["title"], r["text"], r["start"], r["end"], r["metadata"] or {}
    )


def stitch(pieces: Iterable[tuple[int, str]]) -> str:
    """A text from (offset, piece) pairs that may overlap; gaps become spaces."""
    text = ""
    for start, piece in pieces:
        if start > len(text):
            text += " " * (start - len(text))
        text = text[:start] + piece if start + len(piece) > len(text) else text
    return text

"""The Milvus backend of :class:`~heed.store.vectors.VectorIndex`; the only module that imports
pymilvus.

One ``MilvusClient`` API reaches an embedded Milvus Lite file, a standalone server or a cluster,
by URI (``HEED_MILVUS_URI``). Each passage is one row holding everything the read path needs
(vector, text, title, doc id, offsets, metadata, and the text Milvus's BM25 function indexes),
so search replicas need nothing but Milvus (:mod:`heed.store.milvus_reader`).

Generations. A rebuild (``heed index --rebuild``, a reindex job, ``heed migrate``, a repair) fills
a new collection ``<prefix>_g<generation>``; ordinary writes change the live collection in place
(upserts first, then deletes: a search between them sees a document twice, never not at all).
Which collection is live, and the manifest replicas read, is one row of ``<prefix>_meta``,
replaced in one upsert: that is the switch. Where the server has aliases, ``<prefix>`` is also
pointed at the live collection, for other clients; heed itself reads the meta row, so the switch
works the same on servers without aliases. The previously live collection is kept until the
next switch, so a replica still on it finishes its searches (zero failed searches).

The SQLite ledger (content hashes, exact vectors) stays with the indexer: rows written to Milvus
are read from the generation's ``docs.db`` at :meth:`MilvusIndex.save`, and any collection can
be rebuilt from it without embedding. The generation's vector file (``vectors.faiss``) is a small
JSON pointer to the collection.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import IndexFormatError, VectorsUnavailable
from heed.keywords import keyword_form
from heed.store.layout import DB, VECTORS, Manifest
from heed.store.schema import marks, unblob
from heed.store.vectors import AnnConfig, MilvusTarget, known_target

if TYPE_CHECKING:
    from heed.store.vectors import ExactVectors

log = logging.getLogger(__name__)

KIND = "autoindex"  # the server picks the index (Lite: exact scan; Milvus 2.x: HNSW-like)
BATCH = 1000  # rows per insert / query call
QUERY_LIMIT = 16_384  # Milvus's offset + limit cap for one query
TEXT_CHARS = 65_535  # VARCHAR limit; passages are a few hundred tokens
TITLE_CHARS = 2_048
DOC_ID_CHARS = 1_024
META_ID = 0
# BM25 over title + body: lowercased, English stems (FTS5 uses porter unicode61); CJK characters
# arrive space-separated (heed.keywords.keyword_form), so each is a token.
ANALYZER = {
    "tokenizer": "standard",
    "filter": ["lowercase", {"type": "stemmer", "language": "english"}],
}
OUTPUT = ["id", "doc_id", "title", "text", "start", "end", "metadata", "updated_at", "ord"]
_clients: dict[tuple[str, str], Any] = {}  # one client per (uri, token) per process
_clients_lock = threading.Lock()


def client(target: MilvusTarget) -> Any:
    """The process's client for ``target``: Lite allows one process per file, and a client per
    request would pay a connection each time."""
    from pymilvus import MilvusClient

    key = (target.uri, target.token or "")
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            try:
                found = MilvusClient(uri=target.uri, token=target.token or "")
            except Exception as exc:  # pymilvus raises its own tree, and grpc/OSError below it
                raise VectorsUnavailable(f"cannot reach Milvus at {target.shown}: {exc}") from None
            _clients[key] = found
        return found


def close_clients() -> None:
    """Close every client (tests that restart a Milvus Lite server)."""
    with _clients_lock:
        for c in _clients.values():
            with contextlib.suppress(Exception):
                c.close()
        _clients.clear()
        _loaded.clear()


def meta_name(prefix: str) -> str:
    return f"{prefix}_meta"


def collection_name(prefix: str, generation: int) -> str:
    """A new collection's name: unique, so no two ledgers (or retries) ever share one."""
    return f"{prefix}_g{generation:06d}_{secrets.token_hex(3)}"


def _generation_collections(c: Any, prefix: str) -> list[str]:
    pattern = re.compile(rf"^{re.escape(prefix)}_g\d{{6}}_[0-9a-f]{{6}}$")
    return sorted(n for n in c.list_collections() if pattern.match(n))


# -- schema ---------------------------------------------------------------------------------------
def _create_passages(c: Any, name: str, dimension: int) -> None:
    from pymilvus import DataType, Function, FunctionType

    schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)  # the passage rowid
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=DOC_ID_CHARS)
    schema.add_field("title", DataType.VARCHAR, max_length=TITLE_CHARS)
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_CHARS)
    schema.add_field("ord", DataType.INT64)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("updated_at", DataType.VARCHAR, max_length=64)
    schema.add_field(
        "keywords",
        DataType.VARCHAR,
        max_length=TEXT_CHARS,
        enable_analyzer=True,
        enable_match=True,
        analyzer_params=ANALYZER,
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)  # BM25's output: never written
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["keywords"],
            output_field_names=["sparse"],
        )
    )
    index = c.prepare_index_params()
    index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
    index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    c.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def _ensure_meta(c: Any, prefix: str) -> str:
    from pymilvus import DataType

    name = meta_name(prefix)
    if not c.has_collection(name):
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("live", DataType.VARCHAR, max_length=TEXT_CHARS)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs one vector field
        index = c.prepare_index_params()
        index.add_index(field_name="v", index_type="AUTOINDEX", metric_type="IP")
        c.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    return name


# -- rows from the ledger -------------------------------------------------------------------------
ROW_SQL = (
    'SELECT p.id, p.ord, p.start, p."end", p.text, d.doc_id, d.title, d.metadata, d.updated_at, '
    "v.v FROM passages p JOIN documents d ON d.id = p.doc JOIN vectors v ON v.id = p.id"
)


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    pid, ord_, start, end, text, doc_id, title, metadata, updated_at, vector = r
    return {
        "id": pid,
        "vector": unblob(vector).tolist(),
        "doc_id": doc_id,
        "title": title[:TITLE_CHARS],
        "text": text,
        "ord": ord_,
        "start": start,
        "end": end,
        "metadata": json.loads(metadata),
        "updated_at": updated_at,
        "keywords": f"{keyword_form(title)}\n{keyword_form(text)}"[:TEXT_CHARS],
    }


def ledger_rows(
    db: sqlite3.Connection, ids: Sequence[int] | None
) -> Iterator[list[dict[str, Any]]]:
    """Milvus rows for ``ids`` (None: every passage), read from a generation's SQLite, a batch at
    a time."""
    if ids is None:
        last = -1
        while True:
            rows = db.execute(f"{ROW_SQL} WHERE p.id > ? ORDER BY p.id LIMIT ?", [last, BATCH])
            batch = [_row(r) for r in rows]
            if not batch:
                return
            yield batch
            last = batch[-1]["id"]
    else:
        for start in range(0, len(ids), BATCH):
            chunk = list(ids[start : start + BATCH])
            yield [_row(r) for r in db.execute(f"{ROW_SQL} WHERE p.id IN ({marks(chunk)})", chunk)]


def metadata_fields(db: sqlite3.Connection) -> list[str]:
    rows = db.execute("SELECT DISTINCT j.key FROM documents, json_each(documents.metadata) j")
    return sorted(r[0] for r in rows)


# -- the live pointer -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Live:
    """What ``<prefix>_meta`` says is live: the collection and the manifest replicas read."""

    collection: str
    manifest: Manifest
    metadata_fields: list[str]


def read_live(target: MilvusTarget) -> Live | None:
    """The live collection of ``target`` (None: no index published to it yet)."""
    c = client(target)
    name = meta_name(target.prefix)
    try:
        if not c.has_collection(name):
            return None
        rows = loaded(target, name).query(name, ids=[META_ID], output_fields=["live"])
    except Exception as exc:
        raise VectorsUnavailable(f"cannot read {name} at {target.shown}: {exc}") from None
    if not rows:
        return None
    data = json.loads(rows[0]["live"])
    manifest = Manifest.model_validate(data["manifest"])
    return Live(data["collection"], manifest, data["metadata_fields"])


def switch_live(target: MilvusTarget, live: Live) -> None:
    """Make ``live.collection`` the one replicas search: one upsert of the meta row; if that
    changed the collection, point the alias (where the server has them) and drop collections
    older than the previous one."""
    c = client(target)
    name = _ensure_meta(c, target.prefix)
    before = read_live(target)
    payload = {
        "collection": live.collection,
        "manifest": json.loads(live.manifest.model_dump_json()),
        "metadata_fields": live.metadata_fields,
    }
    c.upsert(name, [{"id": META_ID, "live": json.dumps(payload), "v": [0.0, 0.0]}])
    if before is not None and before.collection == live.collection:
        return  # a write in place: the previous collection stays until the next switch
    _point_alias(c, target.prefix, live.collection)
    keep = {live.collection} | ({before.collection} if before else set())
    for old in _generation_collections(c, target.prefix):
        if old not in keep:
            log.info("dropping Milvus collection %s (no longer live)", old)
            c.drop_collection(old)


def _point_alias(c: Any, alias: str, collection: str) -> None:
    try:
        if alias in c.list_aliases().get("aliases", []):
            c.alter_alias(collection, alias)
        else:
            c.create_alias(collection, alias)
    except Exception as exc:  # e.g. milvus-lite 2.5: UNIMPLEMENTED; the meta row still switched
        log.info("alias %s not set (%s); heed reads the meta row either way", alias, exc)


# -- the VectorIndex ------------------------------------------------------------------------------
class MilvusIndex:
    """A collection as a :class:`~heed.store.vectors.VectorIndex` for the writer: changes are
    kept until :meth:`save`, which writes them (rows read from the committed SQLite) to Milvus."""

    backend = "milvus"
    trained_on = 0

    def __init__(
        self,
        target: MilvusTarget,
        dimension: int,
        collection: str | None,
        base_count: int,
        config: AnnConfig | None,
    ):
        self.target = target
        self.dimension = dimension
        self.collection = collection  # None: a new collection, filled whole at save
        self.base_count = base_count
        self.config = config
        self.added: set[int] = set()
        self.removed: set[int] = set()
        self.fields: list[str] = []  # metadata keys of the saved generation (filters)

    @property
    def kind(self) -> str:
        return KIND

    @property
    def count(self) -> int:
        return self.base_count + len(self.added) - len(self.removed)

    @property
    def params(self) -> dict[str, int]:
        return {}

    def _client(self) -> Any:
        return (
            client(self.target) if self.collection is None else loaded(self.target, self.collection)
        )

    def _remote_ids(self) -> NDArray[np.int64]:
        if self.collection is None:
            return np.zeros(0, dtype=np.int64)
        found: list[int] = []
        iterator = loaded(self.target, self.collection).query_iterator(
            self.collection, batch_size=BATCH, filter="id >= 0", output_fields=["id"]
        )
        while batch := iterator.next():
            found += [int(r["id"]) for r in batch]
        iterator.close()
        return np.array(sorted(found), dtype=np.int64)

    def ids(self) -> NDArray[np.int64]:
        ids = (set(self._remote_ids().tolist()) | self.added) - self.removed
        return np.array(sorted(ids), dtype=np.int64)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        self.added.update(int(i) for i in ids)  # the vectors are in SQLite; save reads them

    def remove(self, ids: NDArray[np.int64]) -> None:
        for i in (int(i) for i in ids):
            if i in self.added:
                self.added.discard(i)
            elif self.collection is not None:
                self.removed.add(i)

    def search(
        self, query: NDArray[np.float32], k: int, allowed: NDArray[np.int64] | None = None
    ) -> list[tuple[int, float]]:
        if self.collection is None or k <= 0:
            return []
        where = f"id in {[int(i) for i in allowed]}" if allowed is not None else ""
        return dense_search(self.target, self.collection, query, k, where)

    def reconstruct_batch(self, ids: Sequence[int] | NDArray[np.int64]) -> NDArray[np.float32]:
        assert self.collection is not None
        return fetch_vectors(self.target, self.collection, [int(i) for i in ids], self.dimension)

    def fit(self, n: int, exact: ExactVectors, rebuild: bool = False) -> MilvusIndex:
        """Milvus indexes as rows arrive: only a rebuild makes a new (whole) collection."""
        if not rebuild:
            return self
        fresh = MilvusIndex(self.target, self.dimension, None, 0, self.config)
        fresh.added = {int(i) for ids, _ in exact.batches() for i in ids}
        return fresh

    def mismatched(self, ids: NDArray[np.int64], exact: NDArray[np.float32]) -> list[int]:
        if self.collection is None:
            return [int(i) for i in ids]
        got = fetch_rows(self.target, self.collection, [int(i) for i in ids], ["id", "vector"])
        wrong = []
        for pid, want in zip(ids, exact, strict=True):
            row = got.get(int(pid))
            vector = None if row is None else np.asarray(row["vector"], dtype=np.float32)
            if vector is None or np.abs(vector - want).max() > 1e-5:
                wrong.append(int(pid))
        return wrong

    def save(self, folder: Path) -> None:
        """Write the changes to Milvus (a new collection: every row), then the pointer file."""
        c = self._client()
        with contextlib.closing(sqlite3.connect(folder / DB)) as db:
            if self.collection is None:
                name = collection_name(self.target.prefix, int(folder.name))
                _create_passages(c, name, self.dimension)
                for rows in ledger_rows(db, None):
                    c.insert(name, rows)
                c.flush(name)  # sealed segments: searches skip scanning the write buffer
                self.collection = name
            else:
                for rows in ledger_rows(db, sorted(self.added)):
                    c.upsert(self.collection, rows)
                if self.removed:
                    ids = sorted(self.removed)
                    for start in range(0, len(ids), BATCH):
                        c.delete(self.collection, ids=ids[start : start + BATCH])
            fields = metadata_fields(db)
        self.base_count, self.added, self.removed = self.count, set(), set()
        self.fields = fields
        pointer = {
            "backend": self.backend,
            "uri": self.target.uri,
            "prefix": self.target.prefix,
            "collection": self.collection,
        }
        (folder / VECTORS).write_text(json.dumps(pointer))

    def published(self, manifest: Manifest) -> None:
        """The writer published ``manifest``: switch replicas to it (the meta row)."""
        assert self.collection is not None
        switch_live(self.target, Live(self.collection, manifest, self.fields))

    def describe(self) -> str:
        return f"milvus {self.collection or '(new)'} at {self.target.shown}"


# -- reads ----------------------------------------------------------------------------------------
def dense_search(
    target: MilvusTarget, collection: str, query: NDArray[np.float32], k: int, where: str
) -> list[tuple[int, float]]:
    """Top-k (id, inner product) in ``collection``, best first, among rows matching ``where``."""
    hits = _call(
        target,
        collection,
        lambda c: c.search(
            collection,
            data=[np.asarray(query, dtype=np.float32).tolist()],
            anns_field="vector",
            limit=k,
            filter=where,
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        ),
    )
    return [(int(h["id"]), float(h["distance"])) for h in hits[0]]


def bm25_search(
    target: MilvusTarget, collection: str, text: str, k: int, where: str
) -> list[tuple[int, float]]:
    """Top-k (id, BM25) by Milvus's BM25 function, best first.

    The order is Milvus's; the score is the magnitude it reports (Milvus Lite 3 reports BM25
    negated), so callers must not read more into it than "higher is better within this list".
    """
    hits = _call(
        target,
        collection,
        lambda c: c.search(
            collection,
            data=[text],
            anns_field="sparse",
            limit=k,
            filter=where,
            output_fields=["id"],
            search_params={"metric_type": "BM25"},
        ),
    )
    return [(int(h["id"]), abs(float(h["distance"]))) for h in hits[0]]


def fetch_rows(
    target: MilvusTarget, collection: str, ids: Sequence[int], fields: Sequence[str] = OUTPUT
) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        rows = _call(
            target,
            collection,
            lambda c, chunk=chunk: c.query(collection, ids=chunk, output_fields=list(fields)),
        )
        found.update({int(r["id"]): dict(r) for r in rows})
    return found


def fetch_vectors(
    target: MilvusTarget, collection: str, ids: Sequence[int], dimension: int
) -> NDArray[np.float32]:
    """The exact float32 vectors of ``ids``, in order (Milvus keeps FLOAT_VECTOR exactly)."""
    if not ids:
        return np.zeros((0, dimension), dtype=np.float32)
    rows = fetch_rows(target, collection, ids, ["id", "vector"])
    missing = [i for i in ids if i not in rows]
    if missing:
        raise IndexFormatError(f"{collection}: passage {missing[0]} has no row")
    return np.array([rows[i]["vector"] for i in ids], dtype=np.float32)


def query_rows(
    target: MilvusTarget,
    collection: str,
    where: str,
    fields: Sequence[str] = OUTPUT,
    limit: int = QUERY_LIMIT,
) -> list[dict[str, Any]]:
    rows = _call(
        target,
        collection,
        lambda c: c.query(collection, filter=where, output_fields=list(fields), limit=limit),
    )
    return [dict(r) for r in rows]


def count_rows(target: MilvusTarget, collection: str, where: str = "") -> int:
    rows = _call(
        target, collection, lambda c: c.query(collection, filter=where, output_fields=["count(*)"])
    )
    return int(rows[0]["count(*)"])


def _call(target: MilvusTarget, collection: str, call: Any) -> Any:
    """One client call on a loaded ``collection``; a failure of Milvus itself becomes
    VectorsUnavailable (503)."""
    from pymilvus import MilvusException

    try:
        return call(loaded(target, collection))
    except MilvusException as exc:
        raise VectorsUnavailable(f"Milvus at {target.shown}: {exc.message}") from None


_loaded: set[tuple[MilvusTarget, str]] = set()


def loaded(target: MilvusTarget, collection: str) -> Any:
    """The client, with ``collection`` loaded: a restarted server (or Lite file) holds its
    collections released until someone loads them. Loaded once per process and collection."""
    c = client(target)
    if (target, collection) not in _loaded:
        c.load_collection(collection)
        _loaded.add((target, collection))
    return c


def quote(value: Any) -> str:
    """A filter-expression literal: JSON strings are valid Milvus string literals."""
    return json.dumps(value, ensure_ascii=False)


# -- the backend ----------------------------------------------------------------------------------
def _target(config: AnnConfig | None, pointer: dict[str, Any] | None = None) -> MilvusTarget:
    """The writer's target; a reader's is the pointer's (its token remembered by the edge)."""
    if config is not None and config.milvus is not None:
        return config.milvus
    if pointer is not None and "uri" in pointer:
        return known_target(pointer["uri"], pointer["prefix"])
    raise IndexFormatError(
        "this index keeps its vectors in Milvus: set HEED_VECTOR_BACKEND=milvus and "
        "HEED_MILVUS_URI to write it"
    )


def create(dimension: int, config: AnnConfig) -> MilvusIndex:
    return MilvusIndex(_target(config), dimension, None, 0, config)


def load(folder: Path, manifest: Manifest, config: AnnConfig | None = None) -> MilvusIndex:
    try:
        pointer = json.loads((folder / VECTORS).read_text())
        collection = pointer["collection"]
    except (OSError, ValueError, KeyError) as exc:
        raise IndexFormatError(f"{folder / VECTORS}: not a Milvus pointer ({exc})") from None
    target = _target(config, pointer)
    index = MilvusIndex(target, manifest.dimension, collection, 0, config)
    try:
        index.base_count = count_rows(target, collection)
    except VectorsUnavailable as exc:
        raise IndexFormatError(str(exc)) from None
    return index

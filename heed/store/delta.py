"""Small writes in place: the live generation's SQLite in WAL mode, its vectors as base + delta.

A generation's ``docs.db`` is the source of truth and is written in place by small writes (one
SQLite transaction each, :class:`~heed.store.live_writer.LiveWriter`). Its vector index is split:

``base``
    an immutable vector file (any :class:`~heed.store.vectors.VectorIndex` backend) holding the
    passages with ids up to ``base_upto`` when it was written: the generation's own
    ``vectors.faiss``, or a merged one in ``bases/<n>/`` (with its own manifest);
``delta``
    the passages after ``base_upto`` (ids are AUTOINCREMENT rowids, so never reused): their
    exact vectors are already in the ``vectors`` table, searched by brute force;
``tombstones``
    removed passages the base still holds, masked out of its results.

The ``heed_state`` row says which base is current, up to which id, the counts and a version that
every write bumps; it changes in the same transaction as the rows, so a reader's snapshot (one
read transaction, held for the reader's life) always pairs the right base, delta and tombstones.
When the delta and tombstones pass ``merge_after`` rows, the writer folds them into a new base
folder, makes it durable, renames it into place and switches the state row to it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import IndexFormatError
from heed.store.integrity import Queryable, load_checked, sha256
from heed.store.layout import (
    DB,
    MANIFEST,
    VECTORS,
    Manifest,
    fsync,
    read_manifest,
    write_manifest,
)
from heed.store.schema import has_vector_table, unblob

if TYPE_CHECKING:
    from heed.store.vectors import AnnConfig, ExactVectors, VectorIndex

log = logging.getLogger(__name__)

BASES = "bases"
STATE_TABLES = """
CREATE TABLE IF NOT EXISTS heed_state (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    version INTEGER NOT NULL,  -- bumped by every committed write
    documents INTEGER NOT NULL,
    passages INTEGER NOT NULL,
    base TEXT NOT NULL,  -- the base vector folder, relative to the generation ('' = itself)
    base_upto INTEGER NOT NULL  -- the base holds the passages with id <= this, but tombstones
);
CREATE TABLE IF NOT EXISTS tombstones (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id INTEGER NOT NULL  -- a removed passage the base still holds
);
"""


@dataclass(frozen=True)
class State:
    version: int
    documents: int
    passages: int
    base: str
    base_upto: int


def read_state(db: Queryable) -> State | None:
    """The state row; None in a generation written before in-place writes existed."""
    try:
        row = db.execute(
            "SELECT version, documents, passages, base, base_upto FROM heed_state"
        ).fetchone()
    except sqlite3.OperationalError:  # no such table
        return None
    return None if row is None else State(*row)


def reset_state(db: Queryable, documents: int, passages: int, version: int) -> None:
    """A fresh state for a generation whose vector file holds every passage (no delta)."""
    db.execute("DELETE FROM tombstones")
    db.execute("DELETE FROM heed_state")
    upto = db.execute("SELECT coalesce(max(id), 0) FROM passages").fetchone()[0]
    db.execute(
        "INSERT INTO heed_state VALUES (0, ?, ?, ?, '', ?)", [version, documents, passages, upto]
    )


def base_folder(folder: Path, state: State | None) -> Path:
    return folder / state.base if state and state.base else folder


def delta_rows(db: Queryable, after: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    rows = db.execute("SELECT id, v FROM vectors WHERE id > ? ORDER BY id", [after]).fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = [unblob(r[1]) for r in rows]
    return ids, np.stack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)


def tombstones(db: Queryable) -> NDArray[np.int64]:
    return np.array([r[0] for r in db.execute("SELECT id FROM tombstones")], dtype=np.int64)


def base_problem(base: VectorIndex, manifest: Manifest) -> str | None:
    """A vector base must hold what its manifest counted when it was written."""
    if base.count == manifest.passages:
        return None
    return f"the vector base holds {base.count} vectors, its manifest says {manifest.passages}"


class LiveVectors:
    """A read-only :class:`VectorIndex`: the base without its tombstones, plus the delta."""

    def __init__(
        self,
        base: VectorIndex,
        delta_ids: NDArray[np.int64],
        delta: NDArray[np.float32],
        dead: NDArray[np.int64],
    ):
        self.base, self.delta_ids, self.dead = base, delta_ids, dead
        self.delta = delta.reshape(len(delta_ids), -1) if len(delta_ids) else delta
        self._dead = set(dead.tolist())
        self.backend, self.trained_on = base.backend, base.trained_on

    @property
    def kind(self) -> str:
        return self.base.kind

    @property
    def count(self) -> int:
        return self.base.count - len(self._dead) + len(self.delta_ids)

    @property
    def params(self) -> dict[str, int]:
        return self.base.params

    def ids(self) -> NDArray[np.int64]:
        base = self.base.ids()
        kept = base[~np.isin(base, self.dead)] if len(self.dead) else base
        return np.concatenate([kept, self.delta_ids])

    def search(
        self, query: NDArray[np.float32], k: int, allowed: NDArray[np.int64] | None = None
    ) -> list[tuple[int, float]]:
        # Over-fetch by the tombstones: top k+t of the base holds the top k live ones.
        hits = [
            h
            for h in self.base.search(query, k + len(self._dead), allowed)
            if h[0] not in self._dead
        ][:k]
        if len(self.delta_ids):
            scores = self.delta @ np.asarray(query, dtype=np.float32).reshape(-1)
            if allowed is not None:
                scores = np.where(np.isin(self.delta_ids, allowed), scores, -np.inf)
            top = np.argsort(-scores)[:k]
            hits += [(int(self.delta_ids[i]), float(scores[i])) for i in top if scores[i] > -np.inf]
        return sorted(hits, key=lambda h: -h[1])[:k]

    def reconstruct_batch(self, ids: Sequence[int] | NDArray[np.int64]) -> NDArray[np.float32]:
        where = {int(i): n for n, i in enumerate(self.delta_ids)}
        out = [
            self.delta[where[int(i)]] if int(i) in where else self.base.reconstruct_batch([i])[0]
            for i in ids
        ]
        return np.stack(out).astype(np.float32)

    def fit(self, n: int, exact: ExactVectors, rebuild: bool = False) -> VectorIndex:
        raise TypeError("a reader's base + delta cannot be refitted; the writer merges it")

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        raise TypeError("read-only")

    def remove(self, ids: NDArray[np.int64]) -> None:
        raise TypeError("read-only")

    def save(self, folder: Path) -> None:
        raise TypeError("read-only")

    def published(self, manifest: Manifest) -> None:
        raise TypeError("read-only")

    def mismatched(self, ids: NDArray[np.int64], exact: NDArray[np.float32]) -> list[int]:
        in_delta = np.isin(ids, self.delta_ids)
        wrong = self.base.mismatched(ids[~in_delta], exact[~in_delta]) if (~in_delta).any() else []
        wrong += [int(i) for i in ids[~in_delta] if int(i) in self._dead]
        if in_delta.any():  # the delta is the exact vectors themselves
            got = self.reconstruct_batch(ids[in_delta])
            bad = np.abs(got - exact[in_delta]).max(axis=1) > 1e-5
            wrong += [int(i) for i in ids[in_delta][bad]]
        return sorted(wrong)

    def describe(self) -> str:
        return f"{self.base.describe()} + delta {len(self.delta_ids)}, {len(self.dead)} tombstones"


def live_index(
    db: Queryable,
    state: State,
    base: VectorIndex,
    previous: LiveVectors | None = None,
) -> LiveVectors:
    """The base + delta of ``state``; a ``previous`` one of the same base lends its delta rows."""
    if previous is None or not len(previous.delta_ids):
        ids, vectors = delta_rows(db, state.base_upto)
    else:  # fetch only the rows it lacks; drop the ones removed since
        now = np.array(
            [r[0] for r in db.execute("SELECT id FROM vectors WHERE id > ?", [state.base_upto])],
            dtype=np.int64,
        )
        keep = np.isin(previous.delta_ids, now)
        new_ids, new_vectors = delta_rows(db, int(previous.delta_ids.max()))
        ids = np.concatenate([previous.delta_ids[keep], new_ids])
        parts = [previous.delta[keep]] + ([new_vectors] if len(new_ids) else [])
        vectors = np.concatenate(parts) if len(ids) else np.zeros((0, 0), dtype=np.float32)
    return LiveVectors(base, ids, vectors, tombstones(db))


def full_index(
    db: sqlite3.Connection, folder: Path, manifest: Manifest, config: AnnConfig | None
) -> tuple[VectorIndex | None, str | None]:
    """The generation's whole vector index as a writer fills it: base less tombstones, plus the
    delta; or (None, the damage) when the base cannot be trusted."""
    state = read_state(db)
    where = base_folder(folder, state)
    base_manifest = read_manifest(where) if state else manifest
    index, damage = load_checked(where, base_manifest, config)
    if index is None or damage or state is None or not has_vector_table(db):
        return index, damage
    if base_manifest.backend != "faiss":  # Milvus takes small writes into its collection
        return index, damage
    damage = base_problem(index, base_manifest)
    if damage:
        return index, damage
    dead = tombstones(db)
    if len(dead):
        index.remove(dead)
    ids, vectors = delta_rows(db, state.base_upto)
    if len(ids):
        index.add(ids, vectors)
    return index, None


def merge(
    db: Any, folder: Path, manifest: Manifest, config: AnnConfig, exact: ExactVectors
) -> State:
    """Fold delta and tombstones into a new base folder and switch the state row to it.

    Runs under the writer lock, after the write's own commit. The new folder is durable before
    the switch; killed before it, the old base is still the one named and the half-built folder
    is removed by the next merge.
    """
    state = read_state(db)
    assert state is not None
    index, damage = full_index(db, folder, manifest, config)
    if index is None or damage:
        from heed.store.vectors import create_index

        log.warning("%s: %s; merging from the exact vectors", folder, damage)
        index = create_index(manifest.dimension, config)
        index = index.fit(state.passages, exact, rebuild=True)
    else:
        index = index.fit(state.passages, exact)
    if index.count != state.passages:
        raise IndexFormatError(
            f"refusing to merge: {state.passages} passages but {index.count} vectors"
        )
    bases = folder / BASES
    bases.mkdir(exist_ok=True)
    named = [int(p.name) for p in bases.iterdir() if p.name.isdigit()]
    name = f"{BASES}/{max(named, default=0) + 1:06d}"
    tmp = bases / f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    index.save(tmp)
    write_manifest(tmp, with_vectors(manifest, tmp, index, state, backend=index.backend))
    for path in (tmp / VECTORS, tmp / MANIFEST, tmp):
        fsync(path)
    tmp.rename(folder / name)
    fsync(bases)
    upto = db.execute("SELECT coalesce(max(id), 0) FROM passages").fetchone()[0]
    with db:  # one transaction: readers see the old base or the new one, never a mix
        db.execute("DELETE FROM tombstones")
        db.execute(
            "UPDATE heed_state SET base = ?, base_upto = ?, version = version + 1", [name, upto]
        )
    _remove_old_bases(folder, keep={name, state.base})
    log.info("merged %s: %d passages in %s", folder, state.passages, name)
    return read_state(db)  # type: ignore[return-value]


def _remove_old_bases(folder: Path, keep: set[str]) -> None:
    """Bases neither current nor previous (a reader may still be opening the previous one)."""
    for path in (folder / BASES).iterdir():
        if f"{BASES}/{path.name}" not in keep:
            shutil.rmtree(path, ignore_errors=True)


class Probe:
    """The version of a generation's latest commit: has a reader's snapshot gone stale?"""

    def __init__(self, folder: Path):
        self.folder = folder
        self.conn = sqlite3.connect(
            f"file:{folder / DB}?mode=ro", uri=True, check_same_thread=False
        )
        self._lock = threading.Lock()

    def version(self) -> int | None:
        with self._lock:
            state = read_state(self.conn)
        return None if state is None else state.version

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def with_vectors(
    manifest: Manifest, folder: Path, index: VectorIndex, state: State, **extra: Any
) -> Manifest:
    """``manifest`` for the vector file just saved in ``folder``: its checksum, the rows it
    counts and the ANN index's shape, so that `heed check` can hold the two to each other."""
    update = {
        "vectors_sha256": sha256(folder / VECTORS),
        "documents": state.documents,
        "passages": state.passages,
        "index_type": index.kind,
        "index_params": index.params,
        "trained_on": index.trained_on,
    }
    return manifest.model_copy(update={**update, **extra})


@contextlib.contextmanager
def frozen_copy(folder: Path, into: Path) -> Iterator[dict[str, IO[bytes]]]:
    """The generation in ``folder`` at one commit, as a self-contained generation in ``into``:
    a copy of its SQLite (the backup API reads one snapshot, whatever writers do meanwhile) and
    one vector file with base, tombstones and delta merged, its manifest counting that commit's
    rows. (A damaged base is copied as it is: a restore of it then refuses.)"""
    with (
        contextlib.closing(sqlite3.connect(f"file:{folder / DB}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(into / DB)) as dst,
    ):
        src.backup(dst)
        state = read_state(dst)
        manifest = read_manifest(folder)
        index, damage = full_index(dst, folder, manifest, None)
        if state is None or index is None or damage:
            where = base_folder(folder, state)
            shutil.copyfile(where / VECTORS, into / VECTORS)
            shutil.copyfile(where / MANIFEST, into / MANIFEST)
        else:
            index.save(into)
            with dst:
                reset_state(dst, state.documents, state.passages, state.version)
            write_manifest(into, with_vectors(manifest, into, index, state))
    with contextlib.ExitStack() as stack:
        yield {n: stack.enter_context((into / n).open("rb")) for n in (DB, VECTORS, MANIFEST)}


@dataclass(frozen=True)
class LiveCounts:
    generation: int
    version: int
    documents: int
    passages: int


def live_counts(index_dir: Path) -> LiveCounts | None:
    """What the live index holds now, small writes included; None without an index."""
    from heed.store.layout import current_generation, generation_dir

    generation = current_generation(index_dir)
    if generation is None:
        return None
    folder = generation_dir(index_dir, generation)
    manifest = read_manifest(folder)
    with contextlib.closing(sqlite3.connect(f"file:{folder / DB}?mode=ro", uri=True)) as conn:
        state = read_state(conn)
    if state is None:
        return LiveCounts(generation, 0, manifest.documents, manifest.passages)
    return LiveCounts(generation, state.version, state.documents, state.passages)

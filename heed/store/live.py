"""Where a service finds the live generation: the index folder's ``CURRENT``, or, with
``HEED_VECTOR_BACKEND=milvus``, the meta row in Milvus (stateless replicas need no folder).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

from heed.errors import IndexNotFound
from heed.settings import Settings
from heed.store.layout import Manifest, current_generation, live_manifest
from heed.store.milvus_index import Live, read_live  # pymilvus is imported on first call only
from heed.store.milvus_reader import MilvusReader
from heed.store.reader import Reader
from heed.store.vectors import MilvusTarget, target_of

LIVE_TTL_S = 0.5  # how stale a replica's view of the meta row may be (writes are in place anyway)


class LiveIndex(Protocol):
    """The live generation of one index, wherever it is kept."""

    def generation(self) -> int | None: ...

    def manifest(self) -> Manifest | None: ...

    def open(self, generation: int, previous: Reader | None = None) -> Reader:
        """The live generation (``generation`` or, if it moved on meanwhile, a newer one);
        ``previous``: an older snapshot whose loaded vectors it may reuse."""
        ...


class FolderLive:
    def __init__(self, index_dir: Path):
        self.index_dir = index_dir

    def generation(self) -> int | None:
        return current_generation(self.index_dir)

    def manifest(self) -> Manifest | None:
        return live_manifest(self.index_dir)

    def open(self, generation: int, previous: Reader | None = None) -> Reader:
        return Reader(self.index_dir, generation, previous=previous)


class MilvusLive:
    """The meta row of ``target``, read at most every :data:`LIVE_TTL_S` seconds."""

    def __init__(self, target: MilvusTarget):
        self.target = target
        self._lock = threading.Lock()
        self._seen: tuple[float, Live | None] = (-LIVE_TTL_S, None)

    def _live(self) -> Live | None:
        with self._lock:
            at, live = self._seen
            if time.monotonic() - at >= LIVE_TTL_S:
                live = read_live(self.target)
                self._seen = (time.monotonic(), live)
            return live

    def generation(self) -> int | None:
        live = self._live()
        return None if live is None else live.manifest.generation

    def manifest(self) -> Manifest | None:
        live = self._live()
        return None if live is None else live.manifest

    def open(self, generation: int, previous: Reader | None = None) -> Reader:
        live = self._live()
        if live is None:
            raise IndexNotFound(f"no heed index in Milvus at {self.target.shown}")
        return MilvusReader(self.target, live)


def live_index(settings: Settings) -> LiveIndex:
    """Milvus's meta row when the backend is milvus; else the index folder."""
    if settings.vector_backend == "milvus":
        return MilvusLive(target_of(settings))
    return FolderLive(settings.index_dir)


def open_live(settings: Settings) -> Reader:
    """The live generation for one-off reads (``heed search``, ``heed eval``): from Milvus when
    the backend is milvus, else from the index folder."""
    live = live_index(settings)
    generation = live.generation()
    if generation is None:
        where = live.target.shown if isinstance(live, MilvusLive) else settings.index_dir
        raise IndexNotFound(
            f"no index in {where}; build one with `heed index PATH --index {settings.index_dir}`"
        )
    return live.open(generation)

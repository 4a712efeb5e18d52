"""The seam between the store and a vector index: what any backend must do.

:class:`~heed.store.writer.Writer` and :class:`~heed.store.reader.Reader` talk to a
:class:`VectorIndex` only; a backend lives in its own module (``faiss_index.py``,
``milvus_index.py``) and is the only module that imports its library. The manifest names the
backend and its parameters, so a reader opens a generation with the backend that wrote it.
Vector ids are passage rowids, and the exact vectors stay in SQLite (:class:`ExactVectors`), so
any backend can be rebuilt from them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from heed.errors import IndexFormatError
from heed.settings import IndexType, Settings, VectorBackend

if TYPE_CHECKING:
    from heed.store.layout import Manifest

Ids = NDArray[np.int64]
Vectors = NDArray[np.float32]

Kind = Literal["flat", "ivf"]
RETRAIN_GROWTH = 2.0  # an IVF index is retrained once it holds this many times its training size
MIN_IVF = 2  # fewer vectors than this are always held flat


@dataclass(frozen=True)
class MilvusTarget:
    """Where a Milvus-backed index lives: a Lite file (absolute path) or an http(s) URI."""

    uri: str
    prefix: str
    token: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The URI for messages and logs (never the token)."""
        return self.uri


_TOKENS: dict[str, str | None] = {}  # uri -> token, remembered by milvus_target() at the edge


def milvus_target(uri: str, prefix: str, token: str | None) -> MilvusTarget:
    """A target from settings; a file path is made absolute (the pointer file records it)."""
    if "://" not in uri:
        uri = str(Path(uri).expanduser().resolve())
    _TOKENS[uri] = token
    return MilvusTarget(uri, prefix, token)


def target_of(settings: Settings) -> MilvusTarget:
    """The Milvus that ``settings`` name (whatever the backend setting says)."""
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    return milvus_target(settings.milvus_uri, settings.milvus_prefix, token)


def ann_config(settings: Settings, backend: VectorBackend | None = None) -> AnnConfig:
    """How new vector indexes are made: ``backend`` (default: the setting) and its sizes."""
    backend = backend or settings.vector_backend
    return AnnConfig(
        backend,
        settings.index_type,
        settings.ann_threshold,
        settings.ivf_nprobe,
        target_of(settings) if backend == "milvus" else None,
    )


def known_target(uri: str, prefix: str) -> MilvusTarget:
    """The target a generation's pointer names, with the token this process was given for it."""
    return MilvusTarget(uri, prefix, _TOKENS.get(uri))


@dataclass(frozen=True)
class AnnConfig:
    """Which backend a new index uses and how the writer sizes it: exact (flat) or approximate
    (ivf), and its nprobe. Built from Settings at the edge; a backend reads what it supports.
    """

    backend: VectorBackend
    index_type: IndexType
    threshold: int
    nprobe: int
    milvus: MilvusTarget | None = None  # where the milvus backend writes

    def kind_for(self, n: int, current: Kind) -> Kind:
        """The kind ``n`` vectors should be held in; ``current`` keeps it from flapping.

        An IVF index that shrinks stays IVF until it is below half the threshold, so a few
        deletions around the threshold do not rebuild the index each time.
        """
        if n < MIN_IVF:
            return "flat"  # nothing to train k-means on
        if self.index_type != "auto":
            return self.index_type
        limit = self.threshold // 2 if current == "ivf" else self.threshold
        return "ivf" if n > limit else "flat"

    def needs_training(self, n: int, current: Kind, trained_on: int) -> bool:
        """True when the next commit must build the index afresh from the exact vectors."""
        target = self.kind_for(n, current)
        if target != current:
            return True
        return target == "ivf" and n > RETRAIN_GROWTH * max(trained_on, 1)


class ExactVectors(Protocol):
    """The exact float32 vectors of a generation (kept in SQLite), for (re)building an index."""

    def sample(self, n: int) -> Vectors:
        """Up to ``n`` vectors drawn at random (for training)."""
        ...

    def batches(self) -> Iterator[tuple[Ids, Vectors]]:
        """Every (ids, vectors) pair, in id order, a bounded batch at a time."""
        ...


class VectorIndex(Protocol):
    """A searchable set of normalised vectors whose ids are passage rowids."""

    backend: str  # the manifest's name for this backend
    trained_on: int  # vectors a trained kind learned from; 0 when untrained

    @property
    def kind(self) -> str:
        """The backend's variant, e.g. "flat" or "ivf"."""
        ...

    @property
    def count(self) -> int: ...

    @property
    def params(self) -> dict[str, int]:
        """The parameters the manifest records (and a reader searches with)."""
        ...

    def ids(self) -> Ids: ...

    def add(self, ids: Ids, vectors: Vectors) -> None: ...

    def remove(self, ids: Ids) -> None:
        """Remove for real: a removed id is never returned again."""
        ...

    def search(self, query: Vectors, k: int, allowed: Ids | None = None) -> list[tuple[int, float]]:
        """Top-k (id, inner product), best first; only ``allowed`` ids when given."""
        ...

    def reconstruct_batch(self, ids: Sequence[int] | Ids) -> Vectors:
        """The vectors as the index holds them (lossy for quantised kinds)."""
        ...

    def fit(self, n: int, exact: ExactVectors, rebuild: bool = False) -> VectorIndex:
        """This index, or a new one of the kind ``n`` vectors call for, filled from ``exact``
        (always a new one with ``rebuild``)."""
        ...

    def mismatched(self, ids: Ids, exact: Vectors) -> list[int]:
        """The ids whose stored vector is not what this index makes of their ``exact`` vector
        (or that it does not hold)."""
        ...

    def save(self, folder: Path) -> None: ...

    def describe(self) -> str:
        """Kind and parameters for people, e.g. ``ivf-sq8 nlist=4096 nprobe=16 ...``."""
        ...

    def published(self, manifest: Manifest) -> None:
        """The writer made ``manifest`` live (``CURRENT``); a backend that readers reach
        without the index folder (Milvus) switches them here."""
        ...


def create_index(dimension: int, config: AnnConfig) -> VectorIndex:
    """An empty index of the configured backend, for a new generation."""
    return backend(config.backend).create(dimension, config)


def load_index(folder: Path, manifest: Manifest, config: AnnConfig | None = None) -> VectorIndex:
    """The index of the generation in ``folder``, opened by the backend its manifest names.

    ``config`` is the writer's (how to fit the next size); a reader passes none.
    """
    return backend(manifest.backend).load(folder, manifest, config)


class Backend(Protocol):
    """What a backend module offers: a new index, or the one a generation holds."""

    def create(self, dimension: int, config: AnnConfig) -> VectorIndex: ...

    def load(self, folder: Path, manifest: Manifest, config: AnnConfig | None) -> VectorIndex: ...


def backend(name: str) -> Backend:
    """The backend module, imported on first use: only it loads its library."""
    if name == "faiss":
        from heed.store import faiss_index

        return faiss_index
    if name == "milvus":
        from heed.store import milvus_index

        return milvus_index
    raise IndexFormatError(f"unknown vector index backend {name!r}; this heed knows: faiss, milvus")

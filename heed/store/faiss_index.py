"""The FAISS backend of :class:`~heed.store.vectors.VectorIndex`: exact flat or IVF-SQ8.

The only module that imports FAISS. Which kind holds the vectors: exact for small indexes,
IVF-SQ8 beyond a threshold.

Two kinds, chosen per commit by :meth:`AnnConfig.kind_for` (the numbers behind the defaults are
in README, "Index types", from ``python -m bench.scale_curve``):

``flat``
    ``IndexIDMap2(IndexFlatIP)``: exact inner product, 1,536 bytes and one full dot product per
    vector per query. Search time grows linearly; fine up to ``ann_threshold`` vectors.
``ivf``
    ``IndexIVFScalarQuantizer`` (``IVF{nlist},SQ8``, inner product): k-means lists over the
    vectors, 8-bit codes (384 bytes for 384-d), a query scans ``nprobe`` lists. FAISS ids are the
    passage rowids natively (no ``IndexIDMap``: its id bookkeeping assumes a sub-index that
    compacts on removal, which IVF does not), and ``remove_ids`` removes them for real, so a
    deleted passage is gone from the lists at once; no tombstones are needed.

HNSW was measured (bench/scale_curve.py) and is not offered: FAISS HNSW cannot remove ids, so
deletions would need a tombstone filter plus periodic rebuilds; HNSW-SQ8 also took more memory
(656 vs ~400 bytes per vector), built 10x slower than IVF trained at 100k vectors, and its recall
fell with size on the benchmark data where IVF-SQ8 held 0.96.

Codes are lossy, so exact float32 vectors live in SQLite (the store's ``vectors`` table): training,
retraining and reusing the vector of an unchanged passage never compound quantisation error.
:meth:`FaissIndex.fit` picks the kind for the new size at each commit and, when the kind changes
or an IVF index has grown past ``RETRAIN_GROWTH`` times its training size, trains a new one from
them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
from numpy.typing import NDArray

from heed.errors import IndexFormatError
from heed.store.layout import VECTORS
from heed.store.vectors import RETRAIN_GROWTH as RETRAIN_GROWTH  # re-exported beside nlist_for
from heed.store.vectors import AnnConfig, Kind

if TYPE_CHECKING:
    from heed.store.layout import Manifest
    from heed.store.vectors import ExactVectors

log = logging.getLogger(__name__)

TRAIN_PER_LIST = 40  # k-means sample: vectors per list (FAISS warns below 39)
KMEANS_ITERATIONS = 10  # FAISS defaults to 25; the lists barely move after 10


def nlist_for(n: int) -> int:
    """About 2·sqrt(n) lists (a power of two), never more than the vectors can train.

    k-means costs grow with lists squared (sample = TRAIN_PER_LIST per list): 2·sqrt(n) keeps
    training and filling at 1M vectors to about 11 s on two cores (bench/scale_curve.py), and a
    query that scans ``nprobe`` of them still reads under 1 % of the codes.
    """
    if n < 2:
        return 1
    wanted: int = 2 ** round(math.log2(2 * math.sqrt(n)))
    return max(1, min(wanted, n // 2))


def new_flat(dimension: int) -> Any:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def train_ivf(sample: NDArray[np.float32], nlist: int, nprobe: int) -> Any:
    """An empty IVF-SQ8 inner-product index, its lists and code ranges trained on ``sample``."""
    index = faiss.index_factory(sample.shape[1], f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = KMEANS_ITERATIONS
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.nprobe = nprobe
    return index


def kind_of(index: Any) -> Kind:
    """The kind of a FAISS index (or of a :class:`FaissIndex`)."""
    index = index.raw if isinstance(index, FaissIndex) else index
    return "ivf" if faiss.try_extract_index_ivf(index) is not None else "flat"


def vector_ids(index: Any) -> NDArray[np.int64]:
    """Every id the index holds, whatever its kind."""
    index = index.raw if isinstance(index, FaissIndex) else index
    if not index.ntotal:
        return np.zeros(0, dtype=np.int64)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return np.asarray(faiss.vector_to_array(index.id_map), dtype=np.int64)
    lists = ivf.invlists
    parts = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(lists.nlist)
        if lists.list_size(i)
    ]
    return np.concatenate(parts).astype(np.int64)


def search(
    index: Any,
    query: NDArray[np.float32],
    k: int,
    nprobe: int,
    allowed: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Top-k by inner product, restricted to ``allowed`` ids when given.

    With a filter, IVF probes more lists in proportion to how much the filter removes: a filter
    that keeps 1 % of the vectors leaves about 1 % in each list, so ``nprobe`` lists alone would
    rarely hold k allowed hits. Probing ``nprobe / fraction`` lists (at most all of them) keeps the
    number of candidates, and so recall, roughly what an unfiltered query gets.
    """
    sel = faiss.IDSelectorBatch(allowed) if allowed is not None else None
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        params: Any = faiss.SearchParameters(sel=sel) if sel is not None else None
    else:
        probes = nprobe
        if allowed is not None:
            probes = math.ceil(nprobe * index.ntotal / max(len(allowed), 1))
        params = faiss.SearchParametersIVF(sel=sel, nprobe=min(ivf.nlist, probes))
    scores, ids = index.search(query.reshape(1, -1), k, params=params)
    return scores, ids


class FaissIndex:
    """A FAISS index as a :class:`~heed.store.vectors.VectorIndex`; ids are passage rowids."""

    backend = "faiss"

    def __init__(self, index: Any, nprobe: int, trained_on: int, config: AnnConfig | None):
        self.raw = index  # the FAISS object
        self.nprobe = nprobe
        self.trained_on = trained_on
        self.config = config  # how the writer fits the next size; None in a reader

    @property
    def kind(self) -> Kind:
        return kind_of(self.raw)

    @property
    def count(self) -> int:
        return int(self.raw.ntotal)

    ntotal = count  # FAISS's own name for it

    @property
    def params(self) -> dict[str, int]:
        ivf = faiss.try_extract_index_ivf(self.raw)
        return {} if ivf is None else {"nlist": ivf.nlist, "nprobe": self.nprobe}

    def ids(self) -> NDArray[np.int64]:
        return vector_ids(self.raw)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        self.raw.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )

    def remove(self, ids: NDArray[np.int64]) -> None:
        self.raw.remove_ids(np.asarray(ids, dtype=np.int64))  # real in both kinds

    def search(
        self, query: NDArray[np.float32], k: int, allowed: NDArray[np.int64] | None = None
    ) -> list[tuple[int, float]]:
        k = min(k, self.count)
        if k <= 0:
            return []
        scores, ids = search(self.raw, query, k, self.nprobe, allowed)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def reconstruct_batch(self, ids: Sequence[int] | NDArray[np.int64]) -> NDArray[np.float32]:
        return np.asarray(
            self.raw.reconstruct_batch(np.asarray(ids, dtype=np.int64)), dtype=np.float32
        )

    def fit(self, n: int, exact: ExactVectors, rebuild: bool = False) -> FaissIndex:
        """Hold ``n`` vectors in the kind they call for; train a new index when needed."""
        config = self.config
        if config is None:
            raise TypeError("a FaissIndex opened for reading cannot be refitted")
        current = self.kind
        if not rebuild and not config.needs_training(n, current, self.trained_on):
            return self
        kind = config.kind_for(n, current)
        if kind == "flat":
            raw = new_flat(self.raw.d)
        else:
            nlist = nlist_for(n)
            raw = train_ivf(exact.sample(nlist * TRAIN_PER_LIST), nlist, config.nprobe)
        for ids, vectors in exact.batches():
            raw.add_with_ids(vectors, ids)
        log.info("index rebuilt as %s for %d vectors (was %s)", kind, n, current)
        return FaissIndex(raw, config.nprobe, n if kind == "ivf" else 0, config)

    def mismatched(self, ids: NDArray[np.int64], exact: NDArray[np.float32]) -> list[int]:
        ivf = faiss.try_extract_index_ivf(self.raw)
        want = exact
        if ivf is not None:
            try:  # reconstruct by id needs an id -> code map; ids are rowids: a hash table
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
            except RuntimeError:
                return [int(i) for i in ids]
            want = self.raw.sa_decode(self.raw.sa_encode(exact))  # the exact vector's own code
        wrong = []
        for pid, expected in zip(ids, want, strict=True):
            try:
                got = self.raw.reconstruct(int(pid))
            except RuntimeError:
                got = None
            if got is None or np.abs(got - expected).max() > 1e-5:
                wrong.append(int(pid))
        return wrong

    def save(self, folder: Path) -> None:
        faiss.write_index(self.raw, str(folder / VECTORS))

    def published(self, manifest: Manifest) -> None:
        """Readers find a FAISS generation through ``CURRENT``: nothing to switch here."""

    def describe(self) -> str:
        if self.kind == "flat":
            return "flat (exact)"
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"ivf-sq8 {params} trained_on={self.trained_on}"


def create(dimension: int, config: AnnConfig) -> FaissIndex:
    return FaissIndex(new_flat(dimension), config.nprobe, 0, config)


def load(folder: Path, manifest: Manifest, config: AnnConfig | None = None) -> FaissIndex:
    try:
        raw = faiss.read_index(str(folder / VECTORS))
    except RuntimeError as exc:
        raise IndexFormatError(f"{folder}: cannot open index ({exc})") from None
    # A reader searches with the nprobe the generation was written with; a writer with its own.
    nprobe = config.nprobe if config else manifest.index_params.get("nprobe", 1)
    return FaissIndex(raw, nprobe, manifest.trained_on, config)

"""Which FAISS index holds the vectors: exact for small indexes, IVF-SQ8 beyond a threshold.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import faiss
import numpy as np
from numpy.typing import NDArray

IndexType = Literal["auto", "flat", "ivf"]
Kind = Literal["flat", "ivf"]
RETRAIN_GROWTH = 2.0  # an IVF index is retrained once it holds this many times its training size
MIN_IVF = 2  # fewer vectors than this are always held flat
TRAIN_PER_LIST = 40  # k-means sample: vectors per list (FAISS warns below 39)
KMEANS_ITERATIONS = 10  # FAISS defaults to 25; the lists barely move after 10


@dataclass(frozen=True)
class AnnConfig:
    """How the writer chooses and tunes the index kind (built from Settings at the edge)."""

    index_type: IndexType = "auto"
    threshold: int = 50_000
    nprobe: int = 16

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


def nlist_for(n: int) -> int:
    """About 2·sqrt(n) lists (a power of two), never more than the vectors can train.

    k-means costs grow with lists squared (sample = TRAIN_PER_LIST per list): 2·sqrt(n) keeps
    training and filling at 1M vectors to about 11 s on two cores (bench/scale_curve.py), and a
    query that scans ``nprobe`` of them still reads under 1 % of the codes.
    """
    if n < 2:
        return 1
    wanted = 2 ** round(math.log2(2 * math.sqrt(n)))
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
    return "ivf" if faiss.try_extract_index_ivf(index) is not None else "flat"


def vector_ids(index: Any) -> NDArray[np.int64]:
    """Every id the index holds, whatever its kind."""
    if not index.ntotal:
        return np.zeros(0, dtype=np.int64)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return faiss.vector_to_array(index.id_map).astype(np.int64)
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

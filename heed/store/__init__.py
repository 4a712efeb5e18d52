"""The on-disk index format. Nothing else in heed opens these files or names these tables.

``layout`` (paths, manifest, generations, publish), ``schema`` (the SQLite tables), ``writer``
(a new generation, published atomically), ``delta`` and ``live_writer`` (small writes in
place: WAL, base + delta vectors), ``reader`` (a read-only snapshot), ``vectors`` (the
:class:`VectorIndex` seam) and one module per backend (``faiss_index``). Importing this package
does not import a backend's library; :func:`vectors.load_index` does, on first use.
"""

from heed.store.delta import LiveCounts, Probe, live_counts
from heed.store.integrity import VECTOR_SAMPLE
from heed.store.layout import (
    CURRENT,
    DB,
    MANIFEST,
    VECTORS,
    Manifest,
    current_generation,
    generation_dir,
    live_manifest,
    read_manifest,
)
from heed.store.reader import Consistency, PassageHit, Reader, open_reader
from heed.store.vectors import AnnConfig, VectorIndex
from heed.store.writer import Writer

__all__ = [
    "CURRENT",
    "DB",
    "MANIFEST",
    "VECTORS",
    "VECTOR_SAMPLE",
    "AnnConfig",
    "Consistency",
    "LiveCounts",
    "Manifest",
    "PassageHit",
    "Probe",
    "Reader",
    "VectorIndex",
    "Writer",
    "current_generation",
    "generation_dir",
    "live_counts",
    "live_manifest",
    "open_reader",
    "read_manifest",
]

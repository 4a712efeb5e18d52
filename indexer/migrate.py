"""Moving an index to another vector backend (FAISS <-> Milvus) from its exact vectors.

The SQLite ledger holds every passage's exact float32 vector, so the new backend is filled from
it: no passage is embedded again and no model is loaded. The result is published as a new
generation like any other write; searches go on against the old one until the switch.
"""

from __future__ import annotations

import time

from heed.errors import IndexNotFound, InvalidInput
from heed.settings import Settings, VectorBackend
from heed.store import Writer, live_manifest
from heed.store.vectors import ann_config, create_index
from indexer.build import BuildStats


def migrate_index(settings: Settings, to: VectorBackend) -> BuildStats:
    """Copy the live index of ``settings.index_dir`` into backend ``to`` as a new generation."""
    started = time.monotonic()
    manifest = live_manifest(settings.index_dir)
    if manifest is None:
        raise IndexNotFound(f"no index in {settings.index_dir} to migrate")
    if manifest.backend == to and to == "faiss":
        raise InvalidInput(f"{settings.index_dir} already keeps its vectors in faiss")
    config = ann_config(settings, to)
    with Writer(
        settings.index_dir,
        embed_model=manifest.embed_model,
        dimension=manifest.dimension,
        chunk_tokens=manifest.chunk_tokens,
        chunk_overlap=manifest.chunk_overlap,
        ann_config=config,
        keep=settings.keep_generations,
    ) as writer:
        writer.index = create_index(manifest.dimension, config)
        stats = BuildStats(embed_model=manifest.embed_model)
        stats.vectors_rebuilt = writer.rebuild_vectors()
        stats.documents = writer.count()[0]
        published = writer.commit(rerank_model=manifest.rerank_model)
    stats.generation, stats.published = published.generation, True
    stats.seconds = time.monotonic() - started
    return stats

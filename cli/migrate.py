"""`heed migrate`: the index's vectors to another backend (FAISS <-> Milvus), no re-embedding."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import IndexOpt, err, settings_with
from heed.settings import VectorBackend


def migrate(
    to: Annotated[
        str, typer.Option("--to", help="faiss, or milvus (HEED_MILVUS_URI, HEED_MILVUS_PREFIX)")
    ],
    index_dir: IndexOpt = None,
) -> None:
    """Copy the index's exact vectors into another vector backend as a new generation."""
    from typing import get_args

    from heed.errors import InvalidInput
    from indexer.migrate import migrate_index

    if to not in get_args(VectorBackend):
        raise InvalidInput(f"--to {to!r}: choose faiss or milvus")
    settings = settings_with(index_dir=index_dir, vector_backend=to)
    stats = migrate_index(settings, to)  # type: ignore[arg-type]  # checked above
    where = settings.milvus_uri if to == "milvus" else settings.index_dir
    err.print(
        f"{stats.vectors_rebuilt} vectors of {stats.documents} documents copied to {to} "
        f"({where}) in {stats.seconds:.1f}s, none embedded (generation {stats.generation})"
    )

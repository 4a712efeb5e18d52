"""Where an index lives on disk, what its manifest says, and how a generation is published.

Layout::

    <index>/CURRENT                       name of the live generation, replaced atomically
    <index>/LOCK                          held by the one writer
    <index>/generations/<000042>/docs.db        SQLite, the source of truth (sqlite-utils)
    <index>/generations/<000042>/vectors.faiss  the vector index (its backend's file); ids = rowids
    <index>/generations/<000042>/manifest.json  format version, models, backend, counts, time

A generation is immutable once ``CURRENT`` names it; :func:`publish` switches ``CURRENT`` with
one ``os.replace`` after the new files are durable.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from heed.errors import IndexFormatError

FORMAT_VERSION = 1
CURRENT, LOCK, GENERATIONS = "CURRENT", "LOCK", "generations"
DB, VECTORS, MANIFEST = "docs.db", "vectors.faiss", "manifest.json"
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    generation: int
    embed_model: str
    dimension: int
    rerank_model: str | None = None
    documents: int
    passages: int
    chunk_tokens: int
    chunk_overlap: int
    fts_tokenizer: str = FTS_TOKENIZER
    created_at: datetime
    backend: str = "faiss"  # the VectorIndex backend; the defaults read indexes from before it
    index_type: str = "flat"  # the backend's kind (faiss: flat or ivf)
    index_params: dict[str, int] = {}
    trained_on: int = 0  # vectors the IVF lists were trained on; retrained at RETRAIN_GROWTH x
    vectors_sha256: str | None = None  # of vectors.faiss; None in indexes from before it existed


def current_generation(index_dir: Path) -> int | None:
    try:
        return int((index_dir / CURRENT).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def generation_dir(index_dir: Path, generation: int) -> Path:
    return index_dir / GENERATIONS / f"{generation:06d}"


def generations(index_dir: Path) -> list[int]:
    """Every generation folder present, published or not, oldest first."""
    root = index_dir / GENERATIONS
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []


def read_manifest(folder: Path) -> Manifest:
    try:
        manifest = Manifest.model_validate_json((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise IndexFormatError(f"{folder}: no {MANIFEST}; the index is damaged") from None
    except ValueError as exc:
        raise IndexFormatError(f"{folder / MANIFEST}: unreadable manifest ({exc})") from None
    if manifest.format_version != FORMAT_VERSION:
        raise IndexFormatError(
            f"{folder}: index format {manifest.format_version}, this heed reads "
            f"{FORMAT_VERSION}; rebuild it with `heed index --rebuild`"
        )
    return manifest


def live_manifest(index_dir: Path) -> Manifest | None:
    generation = current_generation(index_dir)
    return None if generation is None else read_manifest(generation_dir(index_dir, generation))


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(index_dir: Path, generation: int) -> None:
    """Make ``generation`` the live one: the one atomic step of every write."""
    tmp = index_dir / f"{CURRENT}.tmp"
    with tmp.open("w") as fh:
        fh.write(f"{generation}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / CURRENT)
    fsync(index_dir)

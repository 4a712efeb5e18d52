"""Where an index lives on disk, what its manifest says, and how a generation is published.

Layout::

    <index>/CURRENT                       name of the live generation, replaced atomically
    <index>/LOCK                          held by the one writer
    <index>/generations/<000042>/docs.db        SQLite, the source of truth (sqlite-utils)
    <index>/generations/<000042>/vectors.faiss  the vector index (its backend's file); ids = rowids
    <index>/generations/<000042>/manifest.json  format version, models, backend, counts, time
    <index>/generations/.staged-*/             a snapshot being restored (heed/snapshots.py)

A generation is immutable once ``CURRENT`` names it; :func:`publish` switches ``CURRENT`` with
one ``os.replace`` after the new files are durable.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from pydantic import BaseModel

from heed.errors import IndexBusy, IndexFormatError, IndexNotFound
from heed.keywords import FTS_TOKENIZER as FTS_TOKENIZER  # the manifest records it

FORMAT_VERSION = 1
CURRENT, LOCK, GENERATIONS = "CURRENT", "LOCK", "generations"
DB, VECTORS, MANIFEST = "docs.db", "vectors.faiss", "manifest.json"
GENERATION_FILES = (DB, VECTORS, MANIFEST)  # a generation is these files and nothing else


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
    # The corpus sampled at creation: share of words per script, and why this bi-encoder
    # (heed/scripts.py). Read-path defaults follow them; an older index reads as English.
    scripts: dict[str, float] = {}
    embed_reason: str = ""
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


def write_manifest(folder: Path, manifest: Manifest) -> None:
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2))


def lock_writer(index_dir: Path, wait_s: float = 0.0) -> IO[str]:
    """The one-writer lock of ``index_dir``; waits up to ``wait_s`` for it, then IndexBusy."""
    index_dir.mkdir(parents=True, exist_ok=True)
    handle = (index_dir / LOCK).open("w")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise IndexBusy(
                    f"{index_dir}: another heed process is writing this index"
                ) from None
            time.sleep(0.05)


def unlock(handle: IO[str]) -> None:
    """Release the writer lock; idempotent, and the handle is closed even if unlocking fails."""
    if not handle.closed:
        try:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            handle.close()


def remove_unpublished(index_dir: Path, live: int | None) -> None:
    """Generations above the live one were left by a writer that died before publishing."""
    for generation in generations(index_dir):
        if live is None or generation > live:
            shutil.rmtree(generation_dir(index_dir, generation), ignore_errors=True)


def prune(index_dir: Path, keep: int) -> None:
    for generation in generations(index_dir)[:-keep]:
        shutil.rmtree(generation_dir(index_dir, generation), ignore_errors=True)


def make_durable(folder: Path) -> None:
    for name in GENERATION_FILES:
        fsync(folder / name)
    fsync(folder)


@contextlib.contextmanager
def live_files(index_dir: Path) -> Iterator[tuple[int, dict[str, IO[bytes]]]]:
    """The live generation's files at one commit, for a copy taken while writers go on.

    Small writes change ``docs.db`` in place (WAL), so it is copied through SQLite's backup API
    (one snapshot) into a private folder, with the vector base that snapshot names
    (:func:`heed.store.delta.frozen_copy`). A writer may delete an old generation (pruning) or
    base; if that happens between reading ``CURRENT`` and copying, the next live one is taken.
    """
    from heed.store.delta import frozen_copy

    for _ in range(10):
        generation = current_generation(index_dir)
        if generation is None:
            raise IndexNotFound(f"no index in {index_dir}")
        folder = generation_dir(index_dir, generation)
        staged = staging_folder(index_dir)
        try:
            with frozen_copy(folder, staged) as files:
                yield generation, files
                return
        except (FileNotFoundError, sqlite3.OperationalError):
            if (folder / DB).exists():
                raise
            continue  # pruned under us: two newer generations were published meanwhile
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    raise IndexBusy(f"{index_dir}: generations change too fast to copy one; try again")


def staging_folder(index_dir: Path) -> Path:
    """A new private folder on the index's file system, where a generation is assembled outside
    a Writer (a snapshot being restored) before :func:`publish_folder` moves it in.
    Writers ignore it; whoever made it removes it."""
    root = index_dir / GENERATIONS
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staged-", dir=root))


def publish_folder(index_dir: Path, staged: Path, keep: int, wait_s: float = 60.0) -> int:
    """Publish a complete, already verified generation folder (a restored snapshot) as the next
    generation: moved into place under the writer lock, made durable, then ``CURRENT`` switched.

    ``staged`` must be on the index's file system (e.g. under ``<index>/generations``).
    """
    lock = lock_writer(index_dir, wait_s)
    try:
        live = current_generation(index_dir)
        remove_unpublished(index_dir, live)
        generation = max(generations(index_dir), default=0) + 1
        folder = generation_dir(index_dir, generation)
        staged.rename(folder)
        try:
            manifest = read_manifest(folder).model_copy(update={"generation": generation})
            write_manifest(folder, manifest)
            make_durable(folder)
            publish(index_dir, generation)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        prune(index_dir, keep)
        return generation
    finally:
        unlock(lock)

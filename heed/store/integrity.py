"""Is a generation's vector file what was written, and do its vectors match the exact ones?

The manifest holds the SHA-256 of the vector file: damage that still loads (random bytes over the
vectors) is caught when a generation is opened. `heed check` also compares vectors with their
exact copies in SQLite, which catches what a checksum cannot (indexes from before it existed).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from heed.errors import IndexFormatError
from heed.store.layout import MANIFEST, VECTORS, Manifest
from heed.store.schema import marks, unblob
from heed.store.vectors import AnnConfig, VectorIndex, backend

log = logging.getLogger(__name__)

VECTOR_SAMPLE = 1000  # passages `heed check` compares by default (`--full`: all)


class Queryable(Protocol):
    """A reader's sqlite3 connection or a writer's sqlite-utils Database: both can execute."""

    def execute(self, sql: str, parameters: Any = ...) -> Any: ...


SQL_CHUNK = 900  # ids per IN (...) list: under SQLite's oldest variable limit


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_checked(
    folder: Path, manifest: Manifest, config: AnnConfig | None = None
) -> tuple[VectorIndex | None, str | None]:
    """The generation's vector index (None if unreadable) and what is wrong with it, if anything.

    The full story (paths, the library's words) goes to the log; the returned problem names no
    path, so it can reach clients.
    """
    opener = backend(manifest.backend)  # an unknown backend is no damage: it raises
    try:
        index = opener.load(folder, manifest, config)
    except IndexFormatError as exc:
        log.error("%s: unreadable: %s", folder / VECTORS, exc)
        return None, f"{VECTORS} cannot be read"
    if manifest.vectors_sha256 and sha256(folder / VECTORS) != manifest.vectors_sha256:
        log.error("%s: sha256 differs from %s", folder / VECTORS, MANIFEST)
        return index, f"{VECTORS} checksum differs from the manifest"
    return index, None


def wrong_vectors(db: Queryable, index: VectorIndex, ids: Sequence[int]) -> list[int]:
    """Passages among ``ids`` whose indexed vector is not (the code of) their exact vector."""
    wrong: list[int] = []
    for start in range(0, len(ids), SQL_CHUNK):
        chunk = list(ids[start : start + SQL_CHUNK])
        rows = db.execute(f"SELECT id, v FROM vectors WHERE id IN ({marks(chunk)})", chunk)
        exact = {pid: unblob(v) for pid, v in rows}  # lacking ones: lacking_exact reports them
        if exact:
            found = np.array(list(exact), dtype=np.int64)
            wrong += index.mismatched(found, np.stack(list(exact.values())))
    return sorted(wrong)


def lacking_exact(db: Queryable) -> list[int]:
    """Passages without an exact vector in SQLite."""
    rows = db.execute(
        "SELECT p.id FROM passages p LEFT JOIN vectors v ON v.id = p.id WHERE v.id IS NULL"
    )
    return [r[0] for r in rows]

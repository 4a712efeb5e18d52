"""File-system refusals as HeedErrors: a full disk and a read-only index, named plainly.

The store calls :func:`storage_error` at its boundary (a writer's start, commit and exit), so
callers see :class:`~heed.errors.DiskFull` (507) or :class:`~heed.errors.ReadOnlyIndex` (503)
instead of a bare ``OSError`` or ``sqlite3.OperationalError``. SQLite names a short write
"database or disk is full", but a failed ``write()`` (EFBIG past ``RLIMIT_FSIZE``, for one) only
"disk I/O error", without the errno: then the file system itself is asked what is wrong.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import sqlite3
from pathlib import Path

from heed.errors import DiskFull, ReadOnlyIndex, StorageError

log = logging.getLogger(__name__)

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
FULL_WORDS = ("disk is full", "No space left", "File too large", "Disk quota")
READ_ONLY_WORDS = ("readonly database", "Read-only file system", "Permission denied")
LOW_SPACE = 1 << 20  # bytes free under which an unexplained I/O error counts as a full disk


def storage_error(exc: BaseException, index_dir: Path) -> StorageError | None:
    """The StorageError that ``exc`` (raised writing ``index_dir``) stands for, or None."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return disk_full(index_dir)
    if isinstance(exc, OSError) and exc.errno in READ_ONLY_ERRNOS:
        return read_only(index_dir)
    unexplained: tuple[str, ...]
    if isinstance(exc, sqlite3.Error):
        text = f"{getattr(exc, 'sqlite_errorname', '')} {exc}"
        unexplained = ("SQLITE_IOERR", "SQLITE_CANTOPEN", "disk I/O error", "unable to open")
    elif isinstance(exc, RuntimeError):  # FAISS's file writer puts strerror in its message
        text, unexplained = str(exc), ("for writing",)
    else:
        return None
    if "SQLITE_FULL" in text or any(w in text for w in FULL_WORDS):
        return disk_full(index_dir)
    if "SQLITE_READONLY" in text or any(w in text for w in READ_ONLY_WORDS):
        return read_only(index_dir)
    return _diagnose(index_dir) if any(w in text for w in unexplained) else None


def disk_full(index_dir: Path) -> DiskFull:
    return DiskFull(
        f"{index_dir}: disk full (no space left, or a file size limit reached); nothing was "
        "published, the live index is unchanged; free space and retry"
    )


def read_only(index_dir: Path) -> ReadOnlyIndex:
    return ReadOnlyIndex(
        f"{index_dir}: the index directory is read-only (a read-only mount, or no write "
        "permission); searches go on, writes need it writable"
    )


def _diagnose(index_dir: Path) -> StorageError | None:
    """Why a write failed with no errno: read-only, full, or a file size limit; else None."""
    try:
        fs = os.statvfs(index_dir)
    except OSError:
        return None
    if fs.f_flag & os.ST_RDONLY or not os.access(index_dir, os.W_OK):
        return read_only(index_dir)
    soft_limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if fs.f_bavail * fs.f_frsize < LOW_SPACE or soft_limit != resource.RLIM_INFINITY:
        return disk_full(index_dir)
    return None

"""Snapshots: the live index generation as one checksummed archive, and its verified restore.

An archive is an uncompressed tar, ``heed-<UTC time>-g<generation>.tar`` in the snapshot folder
(``Settings.snapshot_dir``), holding the generation's files (``docs.db``, ``vectors.faiss``,
``manifest.json``) and, last, ``snapshot.json``: the source generation, its manifest, and the
size and sha256 of every file, sealed by a sha256 of its own content.

Taking one needs no lock and stops nothing: the live generation is copied at one commit (SQLite's
backup API, its vector base merged with the small writes since: :func:`heed.layout.live_files`),
so the copy is of one consistent generation while the service keeps serving and writing. The
archive is written under a dot-name and renamed into place when complete, so a listed snapshot
is whole.

A restore checks everything before it touches the index: the tar structure, each file's size
and sha256, the seal, then the same consistency check as ``heed check`` on the extracted copy
and the bi-encoder it was built with. Only then is the copy published as a *new* generation,
atomically (:func:`heed.layout.publish_folder`); anything damaged refuses with
:class:`SnapshotDamaged` and leaves the index as it was.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ValidationError

from heed.errors import ModelMismatch, SnapshotDamaged, SnapshotNotFound
from heed.settings import Settings
from heed.store import layout
from heed.store.reader import Consistency, Reader

FORMAT_VERSION = 1
INDEX = "snapshot.json"
PREFIX, SUFFIX = "heed-", ".tar"
CHUNK = 1 << 20


class ArchivedFile(BaseModel):
    size: int
    sha256: str


class SnapshotIndex(BaseModel):
    """``snapshot.json``: what the archive holds and how to tell it is intact."""

    format_version: int = FORMAT_VERSION
    created_at: datetime
    generation: int
    manifest: layout.Manifest
    files: dict[str, ArchivedFile]
    seal: str = ""  # sha256 of this JSON with an empty seal: a damaged index is refused too

    def sealed(self) -> SnapshotIndex:
        return self.model_copy(update={"seal": self._digest()})

    def intact(self) -> bool:
        return self.seal == self._digest()

    def _digest(self) -> str:
        body = self.model_copy(update={"seal": ""}).model_dump_json()
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class SnapshotInfo:
    """One archive in the snapshot folder, as listed (its checksums are checked on restore)."""

    name: str
    path: Path
    size_bytes: int
    created_at: datetime | None = None
    generation: int | None = None
    documents: int | None = None
    passages: int | None = None
    embed_model: str | None = None
    error: str | None = None  # why the archive cannot be read; None when it looks whole

    @classmethod
    def of(cls, path: Path, index: SnapshotIndex) -> SnapshotInfo:
        return cls(
            name=path.name,
            path=path,
            size_bytes=path.stat().st_size,
            created_at=index.created_at,
            generation=index.generation,
            documents=index.manifest.documents,
            passages=index.manifest.passages,
            embed_model=index.manifest.embed_model,
        )


@dataclass
class Restored:
    generation: int  # the new live generation
    snapshot: SnapshotInfo
    check: Consistency  # the extracted copy, checked as `heed check` does


class _Hashing:
    """A file read through a sha256: tarfile copies from it, the digest comes for free."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        block = self.raw.read(size)
        self.digest.update(block)
        return block


# -- create ---------------------------------------------------------------------------------------
def create_snapshot(settings: Settings) -> SnapshotInfo:
    """Archive the live generation into the snapshot folder; safe while the service writes."""
    folder = settings.snapshot_dir
    folder.mkdir(parents=True, exist_ok=True)
    with layout.live_files(settings.index_dir) as (generation, files):
        manifest = layout.Manifest.model_validate_json(files[layout.MANIFEST].read())
        files[layout.MANIFEST].seek(0)
        now = datetime.now(UTC)
        path = folder / f"{PREFIX}{now:%Y%m%dT%H%M%S%f}Z-g{generation:06d}{SUFFIX}"
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        try:
            entries: dict[str, ArchivedFile] = {}
            with tmp.open("wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
                for name, handle in files.items():
                    size = os.fstat(handle.fileno()).st_size
                    hashing = _Hashing(handle)
                    tar.addfile(_member(name, size, now), hashing)
                    entries[name] = ArchivedFile(size=size, sha256=hashing.digest.hexdigest())
                index = SnapshotIndex(
                    created_at=now, generation=generation, manifest=manifest, files=entries
                ).sealed()
                body = index.model_dump_json(indent=2).encode()
                tar.addfile(_member(INDEX, len(body), now), io.BytesIO(body))
                tar.close()
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    layout.fsync(folder)
    return SnapshotInfo.of(path, index)


def _member(name: str, size: int, when: datetime) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(when.timestamp()), 0o644
    return info


# -- list -----------------------------------------------------------------------------------------
def list_snapshots(settings: Settings) -> list[SnapshotInfo]:
    """The archives in the snapshot folder, newest first; unreadable ones say why."""
    folder = settings.snapshot_dir
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"{PREFIX}*{SUFFIX}"), reverse=True):
        try:
            found.append(SnapshotInfo.of(path, _read_index(path)))
        except SnapshotDamaged as exc:
            found.append(SnapshotInfo(path.name, path, path.stat().st_size, error=str(exc)))
    return found


def _read_index(path: Path) -> SnapshotIndex:
    """``snapshot.json`` of an archive, sealed and readable, without reading the data files."""
    try:
        with tarfile.open(path, "r:") as tar:
            handle = tar.extractfile(tar.getmember(INDEX))
            assert handle is not None
            return _parse_index(path, handle.read())
    except KeyError:
        raise SnapshotDamaged(f"{path}: no {INDEX}; the archive is truncated or damaged") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _unreadable(path, exc) from None


def _parse_index(path: Path, data: bytes) -> SnapshotIndex:
    try:
        index = SnapshotIndex.model_validate_json(data)
    except ValidationError as exc:
        raise SnapshotDamaged(f"{path}: {INDEX} is unreadable ({exc.errors()[0]['msg']})") from None
    if index.format_version != FORMAT_VERSION:
        raise SnapshotDamaged(
            f"{path}: snapshot format {index.format_version}, this heed reads {FORMAT_VERSION}"
        )
    if not index.intact():
        raise SnapshotDamaged(f"{path}: {INDEX} does not match its seal; the archive is damaged")
    return index


def _unreadable(path: Path, exc: Exception) -> SnapshotDamaged:
    return SnapshotDamaged(f"{path}: truncated or damaged, not a readable snapshot archive ({exc})")


# -- restore --------------------------------------------------------------------------------------
def find_snapshot(settings: Settings, name: str) -> Path:
    """An archive by its name in the snapshot folder, or by its path."""
    for path in (settings.snapshot_dir / name, Path(name).expanduser()):
        if path.is_file():
            return path
    raise SnapshotNotFound(
        f"no snapshot {name!r} in {settings.snapshot_dir}; `heed snapshot list` shows them"
    )


def restore_snapshot(settings: Settings, name: str) -> Restored:
    """Verify an archive completely, then publish it as the next generation.

    The writer lock is held only for the final move and switch, so the service's writes wait
    a moment at most; writes made after the snapshot was taken are gone once it is restored.
    """
    path = find_snapshot(settings, name)
    staged = layout.staging_folder(settings.index_dir)
    try:
        index = _extract_verified(path, staged)
        if index.manifest.embed_model != settings.embed_model:
            raise ModelMismatch(
                f"{path.name} was built with {index.manifest.embed_model!r}, not the configured "
                f"{settings.embed_model!r}; set HEED_EMBED_MODEL to restore it"
            )
        reader = Reader(settings.index_dir, index.generation, folder=staged)
        try:
            check = reader.consistency()
        finally:
            reader.close()
        if not check.ok:
            raise SnapshotDamaged(
                f"{path}: the archived index is inconsistent ({len(check.missing_vectors)} "
                f"passages without a vector, {len(check.orphan_vectors)} orphan vectors, "
                f"manifest counts {check.manifest_counts}, actual {check.actual_counts})"
            )
        generation = layout.publish_folder(
            settings.index_dir, staged, keep=settings.keep_generations
        )
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return Restored(generation, SnapshotInfo.of(path, index), check)


def _extract_verified(path: Path, into: Path) -> SnapshotIndex:
    """Extract the generation's files into ``into``, checking each against ``snapshot.json``."""
    digests: dict[str, ArchivedFile] = {}
    index = None
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.name == INDEX and member.isfile():
                    source = tar.extractfile(member)
                    assert source is not None
                    index = _parse_index(path, source.read())
                    continue
                if member.name not in layout.GENERATION_FILES or not member.isfile():
                    raise SnapshotDamaged(f"{path}: unexpected member {member.name!r}")
                source = tar.extractfile(member)
                assert source is not None
                digests[member.name] = _copy(source, into / member.name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _unreadable(path, exc) from None
    if index is None:
        raise SnapshotDamaged(f"{path}: no {INDEX}; the archive is truncated or damaged")
    for name in layout.GENERATION_FILES:
        expected, got = index.files.get(name), digests.get(name)
        if expected is None or got is None:
            raise SnapshotDamaged(f"{path}: {name} is missing from the archive")
        if got != expected:
            raise SnapshotDamaged(
                f"{path}: {name} is damaged ({got.size} bytes, sha256 {got.sha256[:12]}…; "
                f"expected {expected.size} bytes, sha256 {expected.sha256[:12]}…)"
            )
    return index


def _copy(source: IO[bytes], target: Path) -> ArchivedFile:
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as out:
        while block := source.read(CHUNK):
            digest.update(block)
            size += len(block)
            out.write(block)
    return ArchivedFile(size=size, sha256=digest.hexdigest())

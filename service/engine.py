"""What a running service holds: models loaded once, a searcher that follows the live index, and
the one door to the write path (document writes and reindex jobs).

Each request leases the searcher; when ``CURRENT`` names a new generation (an indexer or a
reindex job published one), or a small write committed in place to the live one (its version
moved), the next request opens a new snapshot, so requests switch between snapshots, never during
one. Requests already running keep their old snapshot until they finish; the last
of them closes it (its SQLite file may already be deleted: an open one would keep its disk space).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from heed.errors import IndexNotFound, NoLedger, NothingToRollBack, ReadOnlyIndex
from heed.models.encoders import BiEncoder, Reranker, load_bi_encoder, set_threads
from heed.models.explain import Explainer
from heed.models.precision import describe_paths
from heed.records import Document
from heed.scripts import model_for_index, named_model
from heed.settings import Settings
from heed.store import Probe, Reader, live_counts, live_manifest
from heed.store.live import FolderLive, live_index
from heed.store.rollback import Rollback, rollback
from indexer.build import BuildStats, build_index, delete_documents
from indexer.jobs import JobRunner, JobState
from search.searcher import Models, Searcher, load_models, open_searcher

log = logging.getLogger(__name__)
T = TypeVar("T")


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.encoder: BiEncoder | None = None
        self.reranker: Reranker | None = None
        self.explainer: Explainer | None = None
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()  # opening a generation
        self._users: Counter[Searcher] = Counter()  # requests holding each searcher
        self._users_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._probe: Probe | None = None  # the live generation's latest version
        self._probe_lock = threading.Lock()
        self.jobs = JobRunner(settings)
        self.live = live_index(settings)  # the index folder, or Milvus for stateless replicas

    def _encoder_for(self, reader: Reader) -> BiEncoder:
        """The index's own bi-encoder unless the user named one; or the one a reindex job of
        this process switched to.

        The job embeds with a private instance, so the first search on a re-modelled
        generation loads the model here (a few seconds, under the lock); it waits, it never
        sees a mismatch.
        """
        built_with = reader.manifest.embed_model
        assert self.encoder is not None
        if built_with != self.encoder.name and (
            model_for_index(self.settings, built_with) == built_with
            or any(
                j.embed_model == built_with and j.state in (JobState.running, JobState.succeeded)
                for j in self.jobs.list()
            )
        ):
            self.encoder = load_bi_encoder(built_with, self.settings.model_runtime())
        return self.encoder

    def load_models(self) -> None:
        """Load and warm both models (the first call of each is slow), before serving."""
        set_threads(self.settings.threads)
        for line in describe_paths(self.settings):
            log.info("inference %s", line)
        manifest = self.live.manifest()
        models = load_models(self.settings, built_with=manifest.embed_model if manifest else None)
        assert models.encoder is not None  # dense searches are served: it is always loaded
        models.encoder.encode_queries(["warm up"])
        if models.reranker is not None:
            models.reranker.score("warm up", ["warm up"])
        self.encoder, self.reranker = models.encoder, models.reranker
        self.explainer = models.explainer

    @property
    def ready(self) -> bool:
        return self.encoder is not None and self.live.generation() is not None

    def _write(self, change: Callable[[], T]) -> T:
        """Run an index change; writes from this process queue here instead of failing busy.
        The searcher moves to the new snapshot at once, so the old one's read transaction (which
        holds the WAL from being checkpointed past it) ends with its last request."""
        if (
            self.settings.vector_backend == "milvus"
            and live_manifest(self.settings.index_dir) is None
        ):
            # A stateless replica: writing here would start a new index and switch Milvus to it.
            raise NoLedger(
                f"this replica reads Milvus but has no index ledger in {self.settings.index_dir}; "
                "send writes to the heed process whose HEED_INDEX_DIR holds it"
            )
        with self._write_lock:
            try:
                result = change()
            except ReadOnlyIndex:
                # A snapshot opened while the disk was read-only keeps SQLite's shared memory
                # read-only for every connection of this process: drop them, try once more.
                self._drop_snapshots()
                result = change()
        if self._searcher is not None:
            self.searcher()
        return result

    def upsert(self, documents: Sequence[Document]) -> BuildStats:
        """Insert or replace documents in place (one transaction), embedded with the loaded
        model; the live generation is copied only where its format predates in-place writes."""
        return self._write(
            lambda: build_index(documents, self.settings, encoder=self.encoder, in_place=True)
        )

    def delete(self, doc_ids: Sequence[str]) -> BuildStats:
        """Remove documents (passages, vectors, keyword rows) in place, in one transaction."""
        return self._write(
            lambda: delete_documents(doc_ids, self.settings, encoder=self.encoder, in_place=True)
        )

    def rollback(self, to: int | None = None) -> Rollback:
        """Make a kept generation live again (queued behind this process's writes); requests
        running on the old one finish there, the next ones are served from the new one."""
        settings = self.settings
        if not isinstance(self.live, FolderLive):
            raise NothingToRollBack(
                "this index lives in Milvus, written in place: it keeps no generations to roll "
                "back to (rollback needs HEED_VECTOR_BACKEND=faiss)"
            )
        done = self._write(
            lambda: rollback(settings.index_dir, to, model=named_model(settings), wait_s=5.0)
        )
        self.searcher()  # opened now, so the next request finds it ready
        return done

    def live_counts(self) -> tuple[int, int, int] | None:
        """(generation, documents, passages) of the live index, if any."""
        if self.settings.vector_backend != "milvus":  # small writes count in SQLite
            counts = live_counts(self.settings.index_dir)
            return (
                None if counts is None else (counts.generation, counts.documents, counts.passages)
            )
        manifest = self.live.manifest()
        return (
            None
            if manifest is None
            else (manifest.generation, manifest.documents, manifest.passages)
        )

    @contextmanager
    def lease(self) -> Iterator[Searcher]:
        """The live searcher for one request; a retired one closes when its last lease ends."""
        while True:
            searcher = self.searcher()
            with self._users_lock:
                if not searcher.reader.closed:  # else retired and closed meanwhile: look again
                    self._users[searcher] += 1
                    break
        try:
            yield searcher
        finally:
            with self._users_lock:
                self._users[searcher] -= 1
                if not self._users[searcher]:
                    del self._users[searcher]
                    if searcher is not self._searcher:
                        searcher.reader.close()

    def _retire(self, old: Searcher | None) -> None:
        with self._users_lock:
            if old is not None and not self._users[old]:
                old.reader.close()

    def searcher(self) -> Searcher:
        """The live searcher, unleased: use :meth:`lease` where a request may overlap a switch."""
        generation = self.live.generation()
        if generation is None:
            raise IndexNotFound(
                f"no index in {self.settings.index_dir} yet; "
                f"run `heed index PATH --index {self.settings.index_dir}`"
            )
        current = self._searcher
        if current is not None and current.generation == generation and self._fresh(current):
            return current
        with self._lock:
            current = self._searcher
            if current is None or current.generation != generation or not self._fresh(current):
                if self.encoder is None:
                    self.load_models()
                previous = current.reader if current is not None else None
                reader = self.live.open(generation, previous)
                encoder = self._encoder_for(reader)
                models = Models(encoder, self.reranker, self.explainer)
                current = open_searcher(self.settings, reader, models)
                old, self._searcher = self._searcher, current
                self._retire(old)
                version = getattr(reader, "version", 0)
                log.info("serving index generation %d version %d", generation, version)
            return current

    def _drop_snapshots(self) -> None:
        """Close the version probe and retire the searcher; the next request opens anew."""
        with self._lock:
            old, self._searcher = self._searcher, None
            self._retire(old)
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None

    def _fresh(self, searcher: Searcher) -> bool:
        """True while no write has committed since the searcher's snapshot was taken."""
        reader = searcher.reader
        if getattr(reader, "state", None) is None:  # immutable (or Milvus): only CURRENT moves
            return True
        with self._probe_lock:
            if self._probe is None or self._probe.folder != reader.folder:
                if self._probe is not None:
                    self._probe.close()
                self._probe = Probe(reader.folder)
            probe = self._probe
        return probe.version() == reader.version

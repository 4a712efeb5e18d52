"""What a running service holds: models loaded once, a searcher that follows the live index, and
the one door to the write path (document writes and reindex jobs).

Each request leases the searcher; when ``CURRENT`` names a new generation (an indexer or a
reindex job published one), the next request opens it, so requests switch between generations,
never during one. Requests already running keep their old snapshot until they finish; the last
of them closes it (its SQLite file may already be deleted: an open one would keep its disk space).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from heed.errors import IndexNotFound, NoLedger, NothingToRollBack
from heed.models.encoders import BiEncoder, Reranker, load_bi_encoder, set_threads
from heed.models.explain import Explainer
from heed.models.precision import describe_paths
from heed.records import Document
from heed.scripts import model_for_index, named_model
from heed.settings import Settings
from heed.store import Reader, live_manifest
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
        """Run an index change; writes from this process queue here instead of failing busy."""
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
            return change()

    def upsert(self, documents: Sequence[Document]) -> BuildStats:
        """Insert or replace documents as one new generation, embedded with the loaded model."""
        return self._write(lambda: build_index(documents, self.settings, encoder=self.encoder))

    def delete(self, doc_ids: Sequence[str]) -> BuildStats:
        """Remove documents (passages, vectors, keyword rows) as one new generation."""
        return self._write(lambda: delete_documents(doc_ids, self.settings, encoder=self.encoder))

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
        if current is not None and current.generation == generation:
            return current
        with self._lock:
            if self._searcher is None or self._searcher.generation != generation:
                if self.encoder is None:
                    self.load_models()
                reader = self.live.open(generation)
                encoder = self._encoder_for(reader)
                models = Models(encoder, self.reranker, self.explainer)
                old, self._searcher = self._searcher, open_searcher(self.settings, reader, models)
                self._retire(old)
                log.info("serving index generation %d", generation)
            return self._searcher

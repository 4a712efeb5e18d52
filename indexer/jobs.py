"""Background reindex jobs: rebuild an index beside the live one, then switch atomically.

A job runs in a worker thread (torch and FAISS release the GIL, so the server's event loop keeps
answering); searches are served from the live generation throughout and move to the new one
between requests. Cancelling or failing discards the half-built generation: the live index is
never touched. One reindex at a time per process; the index's writer lock guards the rest.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from heed.errors import HeedError, JobCancelled, JobConflict, JobNotFound, SourceError
from heed.models.encoders import new_bi_encoder
from heed.scripts import choose_embed_model, explicit, peek
from heed.settings import Settings
from indexer.build import BuildProgress, build_index, sample_texts
from indexer.progress import ProgressLog
from indexer.sources import read_documents

log = logging.getLogger(__name__)
KEEP_JOBS = 50
AUTO = "auto"  # a job's bi-encoder when the user named none: chosen by the source's scripts


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


@dataclass
class Job:
    id: str
    source: str
    embed_model: str
    state: JobState = JobState.queued
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    documents_done: int = 0
    passages_done: int = 0
    passages_total: int = 0
    passages_per_s: float | None = None
    eta_s: float | None = None
    generation: int | None = None
    allow_shrink: bool = False  # may drop most of the live documents (build_index's guard)
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def active(self) -> bool:
        return self.state in (JobState.queued, JobState.running)


def new_job(
    settings: Settings,
    source: Path | None = None,
    embed_model: str | None = None,
    allow_shrink: bool = False,
) -> Job:
    """A queued reindex job; defaults: the configured corpus, and the bi-encoder the user named
    or else ``auto`` (chosen by the source's scripts, heed/scripts.py)."""
    if embed_model is None:
        embed_model = settings.embed_model if explicit(settings, "embed_model") else AUTO
    return Job(
        id=uuid.uuid4().hex[:12],
        source=str(source or settings.corpus),
        embed_model=embed_model,
        allow_shrink=allow_shrink,
    )


def run_reindex(
    job: Job, settings: Settings, on_update: Callable[[Job], None] | None = None
) -> Job:
    """Rebuild the index from ``job.source`` with ``job.embed_model``; updates ``job`` in place."""
    job.state, job.started_at = JobState.running, datetime.now(UTC)
    progress_log = ProgressLog(f"job {job.id}", settings.progress_every_s)

    def on_progress(p: BuildProgress) -> None:
        if job.cancel_requested.is_set():
            raise JobCancelled(f"job {job.id} cancelled")
        job.documents_done, job.passages_done, job.passages_total = (
            p.documents,
            p.passages_done,
            p.passages_total,
        )
        progress_log(p)
        job.passages_per_s, job.eta_s = progress_log.rate.per_s, progress_log.rate.eta_s
        if on_update:
            on_update(job)

    try:
        docs = read_documents([Path(job.source)], limits=settings.document_limits())
        target = settings
        if job.embed_model == AUTO:  # build_index records the same choice and its reason
            sample, docs = peek(docs)
            job.embed_model = choose_embed_model(settings, sample_texts(sample)).model
        else:
            target = settings.model_copy(update={"embed_model": job.embed_model})
        # Its own model instance: the service's instance is locked per call (its tokenizer is
        # not thread-safe), and a job holding it for whole batches stalled searches for seconds.
        encoder = new_bi_encoder(job.embed_model, settings.model_runtime())
        stats = build_index(
            docs,
            target,
            rebuild=True,
            allow_shrink=job.allow_shrink,
            on_progress=on_progress,
            encoder=encoder,
        )
        job.generation, job.state = stats.generation, JobState.succeeded
    except JobCancelled:
        job.state = JobState.cancelled
    except HeedError as exc:  # a known refusal (shrink, disk full...): its message says it all
        job.state, job.error = JobState.failed, str(exc)
    except Exception as exc:  # a job reports every failure instead of dying silently
        log.exception("reindex job %s failed", job.id)
        job.state, job.error = JobState.failed, str(exc) or type(exc).__name__
    job.finished_at = datetime.now(UTC)
    log.info("job=%s state=%s generation=%s error=%s", job.id, job.state, job.generation, job.error)
    return job


class JobRunner:
    """Starts, tracks and cancels reindex jobs of one index, one at a time."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start_reindex(
        self,
        source: Path | None = None,
        embed_model: str | None = None,
        allow_shrink: bool = False,
    ) -> Job:
        """Starts a job; ``source`` must lie under the source roots (default: the corpus)."""
        source = self.settings.corpus if source is None else self.allowed_source(source)
        with self._lock:
            running = next((j for j in self._jobs.values() if j.active), None)
            if running:
                raise JobConflict(f"reindex job {running.id} is {running.state}; one at a time")
            job = new_job(self.settings, source, embed_model, allow_shrink)
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_JOBS:
                self._jobs.popitem(last=False)
        thread = threading.Thread(
            target=run_reindex, args=(job, self.settings), name=f"job-{job.id}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return job

    def allowed_source(self, source: Path) -> Path:
        """``source`` with symlinks resolved, if it exists under a source root.

        A missing path and a path outside the roots get the same answer, so a caller cannot
        probe which files the server has.
        """
        resolved = source.resolve()
        roots = self.settings.allowed_source_roots()
        if resolved.exists() and any(resolved.is_relative_to(root) for root in roots):
            return resolved
        raise SourceError(
            f"source {source} does not exist under the source roots this server may read "
            "(HEED_SOURCE_ROOTS)"
        )

    def get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFound(f"no job {job_id!r}") from None

    def list(self) -> list[Job]:
        return list(reversed(self._jobs.values()))

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.active:
            job.cancel_requested.set()
        return job

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel active jobs and wait for their threads (the live index is never touched)."""
        for job in self._jobs.values():
            if job.active:
                job.cancel_requested.set()
        for thread in self._threads:
            thread.join(timeout)

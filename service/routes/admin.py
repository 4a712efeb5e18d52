"""Admin: background reindex jobs (admin key). Search keeps being served while a job runs."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends

from heed.store.rollback import kept_generations
from indexer.jobs import Job
from service.auth import require_admin
from service.deps import EngineDep
from service.schemas import (
    GenerationList,
    GenerationResponse,
    JobCreated,
    JobList,
    JobResponse,
    ReindexRequest,
    RollbackRequest,
    RollbackResponse,
    error_responses,
)

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429)


def job_response(job: Job) -> JobResponse:
    return JobResponse.model_validate(job, from_attributes=True)


@router.post("/reindex", status_code=202, response_model=JobCreated, responses=ERRORS)
def reindex(engine: EngineDep, body: ReindexRequest | None = None) -> JobCreated:
    """Rebuild the index from a source (optionally with another bi-encoder), in the background."""
    body = body or ReindexRequest()
    source = Path(body.source) if body.source else None
    job = engine.jobs.start_reindex(source, body.embed_model, body.allow_shrink)
    return JobCreated(job_id=job.id)


@router.get("/jobs", response_model=JobList, responses=ERRORS)
def list_jobs(engine: EngineDep) -> JobList:
    """Recent jobs, newest first."""
    return JobList(jobs=[job_response(j) for j in engine.jobs.list()])


@router.get("/jobs/{job_id}", response_model=JobResponse, responses=ERRORS)
def get_job(job_id: str, engine: EngineDep) -> JobResponse:
    """State, progress (documents, passages, passages/s, ETA), timestamps and error."""
    return job_response(engine.jobs.get(job_id))


@router.delete("/jobs/{job_id}", response_model=JobResponse, responses=ERRORS)
def cancel_job(job_id: str, engine: EngineDep) -> JobResponse:
    """Cancel a queued or running job; the live index stays as it was."""
    return job_response(engine.jobs.cancel(job_id))


@router.get("/generations", response_model=GenerationList, responses=ERRORS)
def list_generations(engine: EngineDep) -> GenerationList:
    """The complete generations kept on disk, newest first: what a rollback can go back to."""
    live = engine.live_counts()
    return GenerationList(
        generations=[
            GenerationResponse(live=live is not None and m.generation == live[0], **m.model_dump())
            for m in reversed(kept_generations(engine.settings.index_dir))
        ]
    )


@router.post("/rollback", response_model=RollbackResponse, responses=ERRORS)
def rollback(engine: EngineDep, body: RollbackRequest | None = None) -> RollbackResponse:
    """Make a kept generation live again, atomically: searches running finish on the old one,
    the next ones are served from it. 404: no such kept generation; 409: nothing older is
    kept, or the target is live, or a writer holds the index."""
    done = engine.rollback((body or RollbackRequest()).to)
    m = done.manifest
    return RollbackResponse(
        generation=m.generation,
        previous=done.previous,
        documents=m.documents,
        passages=m.passages,
        embed_model=m.embed_model,
    )

"""Admin: background reindex jobs (admin key). Search keeps being served while a job runs."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends

from indexer.jobs import Job
from service.auth import require_admin
from service.deps import EngineDep
from service.schemas import JobCreated, JobList, JobResponse, ReindexRequest, error_responses

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

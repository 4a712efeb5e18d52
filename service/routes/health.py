"""Liveness and readiness, for people and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from heed.errors import HeedError
from heed.store import live_counts
from service.deps import EngineDep
from service.errors import error_response, without_paths
from service.schemas import HealthResponse, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
def healthz(engine: EngineDep) -> HealthResponse:
    """The process is alive; also says which index generation is live."""
    manifest = engine.live.manifest()
    if manifest is None:
        return HealthResponse(status="no_index")
    # small writes change the counts in place (SQLite); Milvus keeps them in its meta row
    counts = (
        None
        if engine.settings.vector_backend == "milvus"
        else live_counts(engine.settings.index_dir)
    )
    return HealthResponse(
        status="ok",
        generation=manifest.generation,
        version=counts.version if counts else None,
        documents=counts.documents if counts else manifest.documents,
        passages=counts.passages if counts else manifest.passages,
        embed_model=manifest.embed_model,
        rerank_model=engine.settings.rerank_model,
    )


@router.get("/readyz", response_model=HealthResponse, responses=error_responses(503))
def readyz(engine: EngineDep) -> HealthResponse | JSONResponse:
    """503 until models are warm and an index is live, and while it cannot serve every mode
    (a damaged vector index: `vectors_unavailable`, though keyword search goes on)."""
    if not engine.ready:
        return error_response(503, "not_ready", "models loading or no index yet")
    try:
        with engine.lease() as searcher:
            searcher.reader.ann_index()
    except HeedError as exc:
        return error_response(503, exc.code, without_paths(str(exc)))
    return healthz(engine)

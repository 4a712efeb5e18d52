"""Documents by their own ids: read (search access) and write (admin key).

A write builds and publishes a new index generation through the engine (which runs the indexer's
write path), so a search sees a document either wholly old or wholly new; unchanged content (same
hash) is not re-embedded.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from heed.records import Document
from search.similar import similar_documents
from service.auth import AdminDep, require_reader
from service.deps import EngineDep, SearcherDep
from service.routes.search import to_result
from service.schemas import (
    DocumentBody,
    DocumentResponse,
    DocumentsUpsert,
    SimilarResponse,
    WriteResponse,
    error_responses,
    parse_filters,
)

router = APIRouter(tags=["documents"])
ERRORS = error_responses(401, 403, 404, 422, 503)


# Declared before GET /documents/{doc_id}: a document id may itself contain slashes.
@router.get(
    "/documents/{doc_id:path}/similar",
    response_model=SimilarResponse,
    responses=ERRORS,
    dependencies=[Depends(require_reader)],
)
def similar(
    doc_id: str,
    searcher: SearcherDep,
    k: Annotated[int, Query(ge=1, le=100, description="documents to return")] = 10,
    filter: Annotated[
        list[str] | None,
        Query(description="metadata filter `field:value`, repeatable (all must hold)"),
    ] = None,
) -> SimilarResponse:
    """More like this: the documents nearest to this one, from its stored passage vectors."""
    started = time.perf_counter()
    found = similar_documents(searcher.reader, doc_id, k, parse_filters(filter or []))
    return SimilarResponse(
        doc_id=found.doc_id,
        title=found.title,
        results=[to_result(h) for h in found.hits],
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        generation=searcher.generation,
    )


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentResponse,
    responses=ERRORS,
    dependencies=[Depends(require_reader)],
)
def get_document(doc_id: str, searcher: SearcherDep) -> DocumentResponse:
    """A whole document, with the character spans of its passages."""
    return DocumentResponse.model_validate(searcher.reader.document(doc_id))


@router.post("/documents", response_model=WriteResponse, responses=ERRORS)
def upsert_documents(body: DocumentsUpsert, engine: EngineDep, _: AdminDep) -> WriteResponse:
    """Insert or replace documents (one new generation for the whole batch)."""
    docs = [
        Document(
            doc_id=d.id, title=d.title, text=d.text, metadata=d.metadata, source=f"request[{i}]"
        )
        for i, d in enumerate(body.documents)
    ]
    return _written(engine.upsert(docs))


@router.put("/documents/{doc_id:path}", response_model=WriteResponse, responses=ERRORS)
def put_document(doc_id: str, body: DocumentBody, engine: EngineDep, _: AdminDep) -> WriteResponse:
    """Create or replace one document."""
    doc = Document(
        doc_id=doc_id, title=body.title, text=body.text, metadata=body.metadata, source="request"
    )
    return _written(engine.upsert([doc]))


@router.delete("/documents/{doc_id:path}", response_model=WriteResponse, responses=ERRORS)
def delete_document(doc_id: str, engine: EngineDep, _: AdminDep) -> WriteResponse:
    """Remove a document; it can no longer be found, by keyword or by vector."""
    return _written(engine.delete([doc_id]))


def _written(stats: object) -> WriteResponse:  # indexer.build.BuildStats
    return WriteResponse.model_validate(stats, from_attributes=True)

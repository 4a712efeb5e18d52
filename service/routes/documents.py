"""Documents by their own ids: read (search access) and write (admin key).

A write builds and publishes a new index generation through the engine (which runs the indexer's
write path), so a search sees a document either wholly old or wholly new; unchanged content (same
hash) is not re-embedded.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from heed.records import Document
from service.auth import AdminDep, require_reader
from service.deps import EngineDep, SearcherDep
from service.schemas import (
    DocumentBody,
    DocumentResponse,
    DocumentsUpsert,
    WriteResponse,
    error_responses,
)

router = APIRouter(tags=["documents"])
ERRORS = error_responses(401, 403, 404, 409, 422, 503, 507)


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

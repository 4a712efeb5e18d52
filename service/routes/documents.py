"""Documents by their own ids: read (search access) and write (admin key).

A write builds and publishes a new index generation through the engine (which runs the indexer's
write path), so a search sees a document either wholly old or wholly new; unchanged content (same
hash) is not re-embedded.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from heed.errors import InvalidDocument
from heed.records import MAX_ID_CHARS, Document, check_document
from heed.settings import Settings
from search.similar import similar_documents
from service.auth import AdminDep, require_reader
from service.deps import EngineDep, SearcherDep
from service.routes.search import to_result
from service.schemas import (
    ID_RULE,
    DocId,
    DocumentBody,
    DocumentResponse,
    DocumentsUpsert,
    SimilarResponse,
    WriteResponse,
    error_responses,
    parse_filters,
)

router = APIRouter(tags=["documents"])
ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503, 507)
PathId = Annotated[DocId, Path(min_length=1, max_length=MAX_ID_CHARS, description=ID_RULE)]


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
        checked_document(d.id, d, f"documents[{i}]", engine.settings)
        for i, d in enumerate(body.documents)
    ]
    return _written(engine.upsert(docs))


@router.put("/documents/{doc_id:path}", response_model=WriteResponse, responses=ERRORS)
def put_document(
    doc_id: PathId, body: DocumentBody, engine: EngineDep, _: AdminDep
) -> WriteResponse:
    """Create or replace one document."""
    return _written(engine.upsert([checked_document(doc_id, body, "", engine.settings)]))


@router.delete("/documents/{doc_id:path}", response_model=WriteResponse, responses=ERRORS)
def delete_document(doc_id: str, engine: EngineDep, _: AdminDep) -> WriteResponse:
    """Remove a document; it can no longer be found, by keyword or by vector."""
    return _written(engine.delete([doc_id]))


def checked_document(doc_id: str, body: DocumentBody, where: str, settings: Settings) -> Document:
    """The document, if it meets the entry rules the indexer applies too; else a 422."""
    try:
        check_document(doc_id, body.title, body.text, body.metadata, settings.document_limits())
    except InvalidDocument as exc:
        raise InvalidDocument(f"{where}: {exc}" if where else str(exc)) from None
    source = f"request {where}".strip()
    return Document(
        doc_id=doc_id, title=body.title, text=body.text, metadata=body.metadata, source=source
    )


def _written(stats: object) -> WriteResponse:  # indexer.build.BuildStats
    return WriteResponse.model_validate(stats, from_attributes=True)

"""Reading documents by their own ids."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import SearcherDep
from service.schemas import DocumentResponse, ErrorResponse

router = APIRouter(tags=["documents"])


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentResponse,
    responses={404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
def get_document(doc_id: str, searcher: SearcherDep) -> DocumentResponse:
    """A whole document, with the character spans of its passages."""
    return DocumentResponse.model_validate(searcher.reader.document(doc_id))

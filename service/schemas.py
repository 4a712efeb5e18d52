"""The HTTP contract: every request and response body, as pydantic models."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, field_validator

from heed.errors import InvalidDocument, InvalidInput
from heed.records import MAX_ID_CHARS, check_doc_id, check_filters
from heed.settings import Mode

FilterValue = str | int | float | bool


def parse_filters(pairs: list[str]) -> dict[str, FilterValue]:
    """Metadata filters from a URL, ``field:value`` each; a JSON number or boolean is one."""
    filters: dict[str, FilterValue] = {}
    for pair in pairs:
        name, sep, raw = pair.partition(":")
        if not sep or not name:
            raise InvalidInput(f"filter {pair!r}: write it as field:value, e.g. kind:function")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        filters[name] = value if isinstance(value, bool | int | float) else raw
    return filters


QUERY_DESCRIPTION = (
    "a question, a few words, or a pasted text to find related documents (query by example); "
    "at most HEED_MAX_QUERY_CHARS characters (default 20,000)"
)


def as_value_error(check: Callable[..., Any]) -> Callable[..., Any]:
    """A core check as a pydantic validator: its message becomes a 422 ``invalid_request``."""

    def validate(value: Any) -> Any:
        try:
            check(value)
        except InvalidDocument as exc:
            raise ValueError(str(exc)) from None
        return value

    return validate


ID_RULE = f"1-{MAX_ID_CHARS} characters, not blank, no control characters"
# The one id rule for PUT /documents/{doc_id} and POST /documents (the indexer checks the same).
DocId = Annotated[str, AfterValidator(as_value_error(check_doc_id))]


class SearchRequest(BaseModel):
    query: str = Field(
        min_length=1, description=QUERY_DESCRIPTION, examples=["how do I read a csv file"]
    )
    k: int = Field(10, ge=1, le=100, description="results to return")
    candidates: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="first-stage hits the cross-encoder re-ranks; at most HEED_MAX_CANDIDATES "
        "(default 100)",
    )
    rerank: bool | None = Field(
        None, description="re-rank with the cross-encoder (default: HEED_RERANK, off)"
    )
    mode: Mode | None = Field(None, description="hybrid (default), dense or keyword")
    filters: Annotated[dict[str, FilterValue], AfterValidator(as_value_error(check_filters))] = (
        Field(default_factory=dict, description="metadata field -> required value")
    )
    collapse: bool = Field(True, description="one result (the best passage) per document")
    explain: bool = Field(
        False,
        description="add highlights: the passage words that mattered to the cross-encoder; "
        "k at most HEED_MAX_EXPLAIN_K (default 20)",
    )
    min_relevance: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="drop results whose `relevance` is below this (needs `heed tune`; 400 "
        "otherwise); fewer than k results, or none, may come back",
    )
    dense_weight: float | None = Field(
        None, ge=0.0, le=1.0, description="weighted fusion: dense share (default: the index's)"
    )
    rerank_weight: float | None = Field(
        None, ge=0.0, le=1.0, description="re-rank share of the final score (default: the index's)"
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query is empty or whitespace")
        return value


class Highlight(BaseModel):
    start: int = Field(description="character offset of the word in the result's text")
    end: int
    weight: float = Field(ge=0, le=1, description="1 for the word that mattered most")


class SearchResult(BaseModel):
    doc_id: str
    passage_id: int
    title: str
    text: str = Field(description="the passage text")
    start: int = Field(description="character offset of the passage in its document")
    end: int
    score: float = Field(description="final score (higher is better; comparable within a query)")
    dense_score: float | None = Field(None, description="cosine similarity to the query")
    keyword_score: float | None = Field(None, description="BM25, if keyword search found it")
    rerank_score: float | None = Field(None, description="cross-encoder score, if re-ranked")
    relevance: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="calibrated probability that the result is relevant, fitted per index by "
        "`heed tune`; never rises as `score` falls; null on an index not tuned",
    )
    metadata: dict[str, Any]
    highlights: list[Highlight] | None = Field(
        None, description="with explain: words of `text` that drove the cross-encoder's score"
    )
    explain_method: str | None = Field(
        None,
        description="with explain: attention or gradient (from the cross-encoder), or terms "
        "(query-term matches, for an index in scripts the English models cannot read)",
    )


class SearchResponse(BaseModel):
    results: list[SearchResult]
    took_ms: float
    mode: Mode
    reranked: bool
    timings_ms: dict[str, float] = Field(description="time per stage: embed, retrieve, rerank")
    generation: int = Field(description="index generation that answered")
    query_truncated: bool = Field(
        False, description="the query was longer than the models read: they used its start"
    )
    keyword_terms: list[str] | None = Field(
        None, description="a long query's most informative terms, which keyword search used"
    )


class SimilarResponse(BaseModel):
    doc_id: str = Field(description="the document the results are like")
    title: str
    results: list[SearchResult] = Field(
        description="other documents, nearest first, each with its passage closest to the "
        "document; score and dense_score are cosine similarities"
    )
    took_ms: float
    generation: int = Field(description="index generation that answered")


class PassageRef(BaseModel):
    passage_id: int
    ord: int
    start: int
    end: int


class DocumentResponse(BaseModel):
    doc_id: str
    title: str
    text: str
    metadata: dict[str, Any]
    updated_at: str
    passages: list[PassageRef]


class HealthResponse(BaseModel):
    status: str
    generation: int | None = None
    version: int | None = Field(None, description="of the live generation: +1 per write")
    documents: int | None = None
    passages: int | None = None
    embed_model: str | None = None
    rerank_model: str | None = None
    tuning: dict[str, Any] | None = Field(
        None, description="what `heed tune` chose for this index (null: global defaults)"
    )


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_MEANINGS = {
    400: "the body is not JSON",
    401: "no API key sent where one is needed",
    403: "wrong API key, or writes disabled (no HEED_ADMIN_KEY)",
    404: "no such document or job",
    409: "a reindex job is already running, the index was built by another model, another "
    "process is writing it (index_busy), or a reindex would drop most documents (shrink_refused)",
    413: "the body is over HEED_MAX_BODY_BYTES",
    422: "a field is missing, malformed or out of bounds",
    429: "rate limit (HEED_RATE_LIMIT) exceeded",
    503: "no index yet, overloaded (then with Retry-After), a read-only index directory "
    "(read_only), or damaged vectors for a dense search (vectors_unavailable)",
    507: "the index's disk is full (disk_full); nothing was written",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error statuses a route can return."""
    return {
        status: {"model": ErrorResponse, "description": ERROR_MEANINGS[status]}
        for status in statuses
    }


class DocumentBody(BaseModel):
    title: str = Field("", max_length=1000)
    text: str = Field(min_length=1, max_length=1_000_000)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="a JSON object: at most HEED_METADATA_MAX_DEPTH levels (8), "
        "HEED_METADATA_MAX_BYTES (65,536) and keys of HEED_METADATA_MAX_KEY_CHARS (256); "
        "numbers finite and integers 64-bit",
    )

    @field_validator("text")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty or whitespace")
        return value


class DocumentIn(DocumentBody):
    id: DocId = Field(description=ID_RULE)


class DocumentsUpsert(BaseModel):
    documents: list[DocumentIn] = Field(min_length=1, max_length=1000)


class WriteResponse(BaseModel):
    generation: int | None = Field(description="index generation now live")
    version: int | None = Field(
        None, description="the live generation's version after this write (none if unchanged)"
    )
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    passages_embedded: int = 0


class ReindexRequest(BaseModel):
    source: str | None = Field(None, description="file or folder on the server (default: corpus)")
    embed_model: str | None = Field(None, description="bi-encoder for the new index")
    allow_shrink: bool = Field(
        False, description="replace the index even if that drops most live documents"
    )


class JobCreated(BaseModel):
    job_id: str


class JobResponse(BaseModel):
    id: str
    state: str
    source: str
    embed_model: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    documents_done: int
    passages_done: int
    passages_total: int
    passages_per_s: float | None
    eta_s: float | None
    generation: int | None


class JobList(BaseModel):
    jobs: list[JobResponse]


class SnapshotResponse(BaseModel):
    name: str = Field(description="archive file name in the snapshot folder")
    size_bytes: int
    created_at: datetime | None
    generation: int | None = Field(description="the index generation it holds")
    documents: int | None
    passages: int | None
    embed_model: str | None
    error: str | None = Field(None, description="why the archive is unreadable; None if whole")


class SnapshotList(BaseModel):
    snapshots: list[SnapshotResponse] = Field(description="newest first")


class GenerationResponse(BaseModel):
    generation: int
    live: bool
    created_at: datetime
    documents: int
    passages: int
    embed_model: str


class GenerationList(BaseModel):
    generations: list[GenerationResponse] = Field(
        description="the complete generations kept on disk (HEED_KEEP_GENERATIONS), newest first"
    )


class RollbackRequest(BaseModel):
    to: int | None = Field(
        None, ge=1, description="a kept generation (default: the newest one older than the live)"
    )


class RollbackResponse(BaseModel):
    generation: int = Field(description="the generation now live")
    previous: int = Field(description="the generation that was live")
    documents: int
    passages: int
    embed_model: str

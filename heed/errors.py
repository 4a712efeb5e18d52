"""heed's exceptions: one tree, each class carrying its stable code and HTTP status.

``str(exc)`` is shown to the user verbatim (CLI and HTTP), so messages say what, where and what
to do. Two places render them: ``service/errors.py`` and ``cli:main``.
"""


class HeedError(Exception):
    """Base class of every error heed raises on purpose."""

    code, status = "error", 500


class InvalidInput(HeedError):
    """Input data (a file, a record, a request field) is malformed."""

    code, status = "invalid_input", 422


class ExplainUnavailable(InvalidInput):
    """Explanations need heed's own cross-encoder, and none is loaded."""

    code = "explain_unavailable"


class InvalidDocument(InvalidInput):
    """A document breaks heed's entry rules (id, text or metadata); nothing was stored."""

    code = "invalid_document"


class SourceError(InvalidInput):
    """A document source cannot be read or parsed; the message names file and line."""

    code = "invalid_source"


class IndexNotFound(HeedError):
    """No index generation exists yet in the index directory."""

    code, status = "index_not_found", 503


class IndexBusy(HeedError):
    """Another process holds the index's writer lock."""

    code, status = "index_busy", 409


class IndexFormatError(HeedError):
    """The index on disk is of another format version, or damaged."""

    code, status = "index_format", 500


class ModelMismatch(HeedError):
    """A query or update would use another bi-encoder than the one that built the index."""

    code, status = "model_mismatch", 409


class ModelNotFound(HeedError):
    """A configured model is neither an installed package, a local folder nor reachable."""

    code, status = "model_not_found", 500


class ModelExportError(HeedError):
    """A model cannot be exported to ONNX, quantised, or its cached export cannot be loaded."""

    code, status = "model_export", 500


class Overloaded(HeedError):
    """Too many searches wait for the cross-encoder; the client should retry later."""

    code, status = "overloaded", 503

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after  # seconds, sent as Retry-After


class DocumentNotFound(HeedError):
    """No document with that id."""

    code, status = "document_not_found", 404


class UnknownFilterField(InvalidInput):
    """A search filter names a metadata field that no document has."""

    code = "unknown_filter_field"


class Unauthorized(HeedError):
    """No API key was sent where one is required."""

    code, status = "unauthorized", 401


class Forbidden(HeedError):
    """The API key is wrong, or the action is disabled by configuration."""

    code, status = "forbidden", 403


class JobNotFound(HeedError):
    """No job with that id (jobs are kept in memory, the most recent ones only)."""

    code, status = "job_not_found", 404


class JobConflict(HeedError):
    """A reindex job is already queued or running; one at a time."""

    code, status = "job_running", 409


class JobCancelled(HeedError):
    """Raised inside a job when it is cancelled; the new generation is discarded."""

    code, status = "job_cancelled", 409


class SnapshotNotFound(HeedError):
    """No snapshot archive by that name in the snapshot folder, nor at that path."""

    code, status = "snapshot_not_found", 404


class SnapshotDamaged(HeedError):
    """A snapshot archive is truncated, altered or inconsistent; nothing was restored."""

    code, status = "snapshot_damaged", 422


class StorageError(HeedError):
    """The file system refused a write to the index; nothing was published."""

    code, status = "storage_error", 503


class DiskFull(StorageError):
    """No space left (or a file size limit reached) while writing the index."""

    code, status = "disk_full", 507


class ReadOnlyIndex(StorageError):
    """The index directory is on a read-only file system, or not writable by this process."""

    code, status = "read_only", 503


class VectorsUnavailable(HeedError):
    """The live generation's vector index is damaged; keyword search still works."""

    code, status = "vectors_unavailable", 503


class NoLedger(HeedError):
    """A write reached a search replica that reads Milvus but holds no index ledger."""

    code, status = "no_ledger", 409


class ShrinkRefused(HeedError):
    """A reindex or prune would drop most of the live documents and was not forced."""

    code, status = "shrink_refused", 409


class GenerationNotFound(HeedError):
    """No kept, complete index generation with that number (older ones are pruned)."""

    code, status = "generation_not_found", 404


class NothingToRollBack(HeedError):
    """A rollback found no kept generation older than the live one (or the target is live)."""

    code, status = "nothing_to_roll_back", 409


class ClicksDisabled(Forbidden):
    """Clicks are recorded only when HEED_CLICKS is on (off by default)."""

    code = "clicks_disabled"

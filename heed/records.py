"""Records both paths share: what a document and a passage are, their content hashes, and the
entry rules a document must meet before it is stored (the API and the indexer check the same).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from heed.errors import InvalidDocument

MAX_ID_CHARS = 512
INT64 = range(-(2**63), 2**63)  # what SQLite (and so a filter) can hold
# C0/C1 control characters break logs and URLs; a lone surrogate cannot be encoded as UTF-8.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SURROGATE = re.compile(r"[\ud800-\udfff]")


class Document(BaseModel):
    """A document as read from a source or sent over HTTP; ``doc_id`` is the user's own id."""

    doc_id: str = Field(min_length=1)
    title: str = ""
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None  # "path:line", for messages

    def content_hash(self) -> str:
        """Changes whenever anything a search can see changes (text, title or metadata)."""
        payload = json.dumps([self.title, self.text, self.metadata], sort_keys=True, default=str)
        return text_hash(payload)


@dataclass(frozen=True)
class DocumentLimits:
    """How much metadata a document may carry (``HEED_METADATA_*`` settings override these)."""

    max_depth: int = 8  # levels of objects and lists; the metadata object itself is level 1
    max_bytes: int = 65_536  # the metadata as UTF-8 JSON
    max_key_chars: int = 256


def check_doc_id(doc_id: str) -> str:
    """The one id rule: 1-512 characters, not blank, no control characters or lone surrogates."""
    if not doc_id.strip():
        raise InvalidDocument("id is empty; give each document a non-blank id")
    if len(doc_id) > MAX_ID_CHARS:
        raise InvalidDocument(
            f"id is {len(doc_id):,} characters long; ids have at most {MAX_ID_CHARS} characters"
        )
    if bad := CONTROL.search(doc_id) or SURROGATE.search(doc_id):
        raise InvalidDocument(f"id contains {_char(bad.group())}; ids are printable text")
    return doc_id


def check_document(
    doc_id: str, title: str, text: str, metadata: Any, limits: DocumentLimits
) -> None:
    """Raises :class:`InvalidDocument` unless a document can be stored and served back as JSON.

    Metadata must be a JSON object of at most ``max_depth`` levels and ``max_bytes`` bytes whose
    keys are 1 to ``max_key_chars`` characters and whose values are strings, 64-bit integers,
    finite numbers, booleans, null, lists or objects. Without these bounds one stored document
    could fail every later response that includes it (a 500-level object exceeds the JSON
    encoder's depth; NaN is not JSON and breaks SQLite's JSON functions on the whole table).
    """
    check_doc_id(doc_id)
    for name, value in (("title", title), ("text", text)):
        if bad := SURROGATE.search(value):
            raise InvalidDocument(f"{name} contains {_char(bad.group())}")
    if not isinstance(metadata, dict):
        raise InvalidDocument("metadata must be a JSON object")
    _check_value(metadata, "metadata", 1, limits)
    size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    if size > limits.max_bytes:
        raise InvalidDocument(
            f"metadata is {size:,} bytes as JSON; at most {limits.max_bytes:,} bytes are kept "
            "per document (HEED_METADATA_MAX_BYTES)"
        )


def check_filters(filters: dict[str, Any]) -> None:
    """Search filters: field names without lone surrogates, values JSON scalars SQLite can hold."""
    for key, value in filters.items():
        if bad := SURROGATE.search(key):
            raise InvalidDocument(f"filter field {_key(key)} contains {_char(bad.group())}")
        _check_scalar(value, f"filters.{_key(key)}")


def _check_value(value: Any, where: str, depth: int, limits: DocumentLimits) -> None:
    if isinstance(value, dict | list):
        if depth > limits.max_depth:
            raise InvalidDocument(
                f"{where}: metadata is nested more than {limits.max_depth} levels deep "
                "(HEED_METADATA_MAX_DEPTH)"
            )
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check_value(item, f"{where}[{i}]", depth + 1, limits)
            return
        for key, item in value.items():
            _check_key(key, where, limits)
            _check_value(item, f"{where}.{_key(key)}", depth + 1, limits)
        return
    _check_scalar(value, where)


def _check_key(key: Any, where: str, limits: DocumentLimits) -> None:
    if not isinstance(key, str):
        raise InvalidDocument(f"{where}: key {key!r} is not a string")
    if not 1 <= len(key) <= limits.max_key_chars:
        raise InvalidDocument(
            f"{where}: key {_key(key)} is {len(key):,} characters long; keys have 1 to "
            f"{limits.max_key_chars} characters (HEED_METADATA_MAX_KEY_CHARS)"
        )
    if bad := SURROGATE.search(key):
        raise InvalidDocument(f"{where}: key {_key(key)} contains {_char(bad.group())}")


def _check_scalar(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if bad := SURROGATE.search(value):
            raise InvalidDocument(f"{where}: the text contains {_char(bad.group())}")
    elif isinstance(value, int):
        if value not in INT64:
            raise InvalidDocument(f"{where}: {value} does not fit in a 64-bit integer")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidDocument(f"{where}: {value} is not a finite number")
    else:
        raise InvalidDocument(f"{where}: a {type(value).__name__} is not a JSON value")


def _key(key: str) -> str:
    """A key as messages show it: quoted, escaped (a lone surrogate cannot be sent) and short."""
    return json.dumps(key if len(key) <= 40 else key[:40] + "…")


def _char(char: str) -> str:
    kind = "a lone surrogate" if SURROGATE.match(char) else "a control character"
    return f"{kind} (U+{ord(char):04X})"


class Passage(BaseModel):
    """A span of a document's text, measured in bi-encoder tokens; offsets index ``text``."""

    ord: int
    start: int
    end: int
    text: str


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def embed_text(title: str, passage: str) -> str:
    """What the bi-encoder sees for a passage: the title gives short passages their context."""
    return f"{title}\n{passage}" if title else passage

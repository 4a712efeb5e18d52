"""Records both paths share: what a document and a passage are, and their content hashes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field


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

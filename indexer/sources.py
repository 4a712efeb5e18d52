"""Reading documents from files: JSONL, CSV, plain text, Markdown and HTML, or folders of them.

Every record becomes a :class:`~heed.records.Document` whose ``source`` says where it came from
(``path:line``), so any later complaint can point at the exact place. A bad record raises
:class:`~heed.errors.SourceError`, or, with ``on_error``, is reported and skipped.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heed.errors import InvalidDocument, SourceError
from heed.records import Document, DocumentLimits, check_document

log = logging.getLogger(__name__)

RECORD_SUFFIXES = {".jsonl", ".ndjson", ".csv"}
TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".html", ".htm"}
SKIP_HINT = "fix it, or rerun with --skip-errors to skip bad records"
ErrorFn = Callable[[SourceError], None]


@dataclass(frozen=True)
class Fields:
    """Which record fields hold the id, title and text; the rest become metadata."""

    id: str = "id"
    title: str = "title"
    text: str = "text"


def read_documents(
    paths: Sequence[Path],
    fields: Fields = Fields(),
    on_error: ErrorFn | None = None,
    limits: DocumentLimits = DocumentLimits(),
) -> Iterator[Document]:
    """Documents from files and folders (recursively, in sorted order, so ids are stable).

    Each one meets the entry rules the HTTP API applies (``check_document``), or is an error.
    """
    for root in paths:
        if not root.exists():
            _fail(SourceError(f"{root}: no such file or folder"), on_error)
            continue
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            suffix = path.suffix.lower()
            if suffix not in RECORD_SUFFIXES | TEXT_SUFFIXES:
                if root.is_dir():
                    log.debug("skipping %s: not a supported format", path)
                    continue
                _fail(SourceError(f"{path}: unsupported format {suffix!r}"), on_error)
                continue
            name = path.relative_to(root).as_posix() if root.is_dir() else path.name
            try:
                yield from _read_file(path, name, fields, on_error, limits)
            except OSError as exc:
                _fail(SourceError(f"{path}: cannot read ({exc.strerror or exc})"), on_error)
            except UnicodeDecodeError as exc:
                _fail(SourceError(f"{path}: not UTF-8 text ({exc.reason}); {SKIP_HINT}"), on_error)


def _fail(error: SourceError, on_error: ErrorFn | None) -> None:
    if on_error is None:
        raise error
    on_error(error)


def _read_file(
    path: Path, name: str, fields: Fields, on_error: ErrorFn | None, limits: DocumentLimits
) -> Iterator[Document]:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        rows: Iterator[tuple[int, Any]] = _jsonl_rows(path, on_error)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        try:
            doc = _checked(_text_document(path, name), str(path), limits)
        except SourceError as exc:
            _fail(exc, on_error)
            return
        yield doc
        return
    for lineno, row in rows:
        where = f"{path}:{lineno}"
        try:
            doc = _checked(_record(row, where, f"{name}:{lineno}", fields), where, limits)
        except SourceError as exc:
            _fail(exc, on_error)
            continue
        yield doc


def _checked(doc: Document, where: str, limits: DocumentLimits) -> Document:
    try:
        check_document(doc.doc_id, doc.title, doc.text, doc.metadata, limits)
    except InvalidDocument as exc:
        raise SourceError(f"{where}: {exc}; {SKIP_HINT}") from None
    return doc


def _jsonl_rows(path: Path, on_error: ErrorFn | None) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                _fail(
                    SourceError(f"{path}:{lineno}: invalid JSON ({exc.msg}); {SKIP_HINT}"), on_error
                )


def _csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield reader.line_num, row


def _record(row: Any, where: str, default_id: str, fields: Fields) -> Document:
    if not isinstance(row, dict):
        raise SourceError(f"{where}: expected an object with a {fields.text!r} field; {SKIP_HINT}")
    if None in row:  # csv: more values than header columns
        raise SourceError(f"{where}: more values than header columns; {SKIP_HINT}")
    text = row.get(fields.text)
    if not isinstance(text, str):
        raise SourceError(f"{where}: no {fields.text!r} text field; {SKIP_HINT}")
    if not text.strip():
        raise SourceError(f"{where}: empty {fields.text!r}; {SKIP_HINT}")
    raw_id = row.get(fields.id)
    doc_id = (str(raw_id).strip() if raw_id is not None else "") or default_id
    title = row.get(fields.title) or ""
    metadata = {k: v for k, v in row.items() if k not in {fields.id, fields.title, fields.text}}
    return Document(doc_id=doc_id, title=str(title), text=text, metadata=metadata, source=where)


def _text_document(path: Path, name: str) -> Document:
    raw = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in {".md", ".markdown"}:
        title, text = _markdown(raw)
    elif suffix in {".html", ".htm"}:
        title, text = _html(raw)
    else:
        title, text = "", raw
    text = _tidy(text)
    if not text:
        raise SourceError(f"{path}: empty text; {SKIP_HINT}")
    return Document(
        doc_id=name,
        title=title or path.stem.replace("_", " ").replace("-", " "),
        text=text,
        metadata={"path": name, "format": suffix.lstrip(".")},
        source=str(path),
    )


def _markdown(raw: str) -> tuple[str, str]:
    from markdown_it import MarkdownIt

    heading = re.search(r"^#\s+(.+?)\s*#*\s*$", raw, re.MULTILINE)
    _, text = _html(MarkdownIt("commonmark").render(raw))
    return (heading.group(1).strip() if heading else ""), text


def _html(raw: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(["script", "style", "nav", "noscript", "template"]):
        tag.decompose()
    title_tag = soup.title or soup.find("h1")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    if soup.title:
        soup.title.decompose()
    return title, soup.get_text("\n")


def _tidy(text: str) -> str:
    """Collapse runs of spaces and blank lines; keep paragraph breaks."""
    text = re.sub(r"[ \t\f\v\r]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()

"""Judged queries made from an index's own documents: relevance measured without labels.

Each query is a piece of one sampled document: its title, a heading in its text, or one of its
sentences (inverse cloze). The relevant document is the one it came from, *with that piece
removed*: :attr:`Collection.held_out` holds those shortened documents, and a self-evaluation
runs on a copy of the index where they replace the originals (``indexer.held_out``), so neither
keyword search (the words are gone from FTS) nor dense search (the passage is re-embedded
without them) can find the query's own text. Judgements are per document, like BEIR's.

Sampling is seeded: the same index and seed give the same queries. Documents too short to lose
a sentence are skipped; a query text is used once (boilerplate sentences repeat across
documents, and a query found in two documents judges only one of them).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from heed.keywords import CJK_RANGES
from heed.records import Document
from heed.store import Reader
from search.evaluation import Collection

MIN_SENTENCES = 3  # the document keeps at least two when one becomes a query
MIN_QUERY_WORDS, MAX_QUERY_WORDS = 4, 40
MIN_TITLE_WORDS = 2
TITLE_SHARE = 0.3  # of the documents that have a usable title or heading

# Latin sentence ends need a space and a capital after them; CJK ones (。！？) need neither.
_SENTENCE = re.compile(
    r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|(?<=\s[.!?])\s+|\n\s*\n|(?<=[。！？])\s*"
)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
# A CJK character counts as a word (no spaces to count by), as in heed.scripts; unlike there,
# digits count too (query lengths were always counted that way), so the two stay separate.
_WORD = re.compile(rf"[{CJK_RANGES}]|(?:(?![{CJK_RANGES}])\w)+", re.UNICODE)


@dataclass(frozen=True)
class Piece:
    """One query cut from a document: its kind and the text left without it."""

    kind: str  # title | heading | sentence
    query: str
    title: str
    text: str


def self_eval_collection(reader: Reader, *, queries: int = 200, seed: int = 0) -> Collection:
    """``queries`` judged queries from ``reader``'s documents, the same for the same seed.

    Evaluate it on ``indexer.held_out.held_out_copy(reader, collection.held_out, ...)``, never
    on the index itself: there every query's words are still in its document.
    """
    rng = random.Random(seed)
    doc_ids = reader.doc_ids()
    rng.shuffle(doc_ids)
    found: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    held_out: list[Document] = []
    seen: set[str] = set()
    for doc_id in doc_ids:
        if len(found) >= queries:
            break
        doc = reader.document(doc_id)
        piece = cut(doc["title"], doc["text"], rng)
        if piece is None:
            continue
        key = " ".join(_WORD.findall(piece.query.lower()))
        if key in seen:
            continue
        seen.add(key)
        qid = f"self-{len(found)}-{piece.kind}"
        found[qid] = piece.query
        qrels[qid] = {doc_id: 1}
        held_out.append(
            Document(doc_id=doc_id, title=piece.title, text=piece.text, metadata=doc["metadata"])
        )
    return Collection(
        name=f"self:{reader.index_dir.name}@{reader.generation}",
        corpus=reader.folder,
        queries=found,
        qrels=qrels,
        held_out=held_out,
    )


def cut(title: str, text: str, rng: random.Random) -> Piece | None:
    """A query from one document and the document without it; None when it is too short."""
    sentences = [s for s in _SENTENCE.split(text) if s and s.strip()]
    if len(sentences) < MIN_SENTENCES:
        return None
    headings = [h for h in _HEADING.findall(text) if _words(h) >= MIN_TITLE_WORDS]
    titled = _words(title) >= MIN_TITLE_WORDS
    if (titled or headings) and rng.random() < TITLE_SHARE:
        if titled and (not headings or rng.random() < 0.5):
            return Piece("title", title.strip(), "", text)
        heading = rng.choice(headings)
        line = re.compile(rf"^#{{1,6}}[ \t]+{re.escape(heading)}.*$\n?", re.MULTILINE)
        return Piece("heading", heading, title, line.sub("", text, count=1))
    usable = [
        i
        for i, s in enumerate(sentences)
        if MIN_QUERY_WORDS <= _words(s) <= MAX_QUERY_WORDS and not s.lstrip().startswith("#")
    ]
    if not usable:
        return None
    i = rng.choice(usable)
    query = " ".join(sentences[i].split())
    start = text.find(sentences[i])
    rest = (text[:start] + text[start + len(sentences[i]) :]).strip()
    return Piece("sentence", query, title, rest)


def _words(text: str) -> int:
    return len(_WORD.findall(text))

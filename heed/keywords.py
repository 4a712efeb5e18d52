"""Keyword search text: how passages are tokenised for FTS5, and how queries become safe MATCHes.

SQLite's unicode61 tokenizer splits on spaces and punctuation, which Chinese and Japanese text
lacks; giving each CJK character its own token and querying adjacent pairs as phrases is a
segmenter-free bigram match. User queries never reach FTS5 syntax unquoted.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

# Query words too common to help BM25 rank (a short list: long documents keep their own).
STOPWORDS = (
    "a an and are as at be by can do does for from has have how i in is it its of on or that the "
    "this to was were what when where which who why with"
)
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"  # the index's FTS5 tokenizer
CJK_RANGES = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"([{CJK_RANGES}])")
_WORD = re.compile(rf"[{CJK_RANGES}]+|[^\W_]+", re.UNICODE)
_STOPWORDS = frozenset(STOPWORDS.split())


def is_stopword(word: str) -> bool:
    return word.lower() in _STOPWORDS


def keyword_form(text: str) -> str:
    """Text as FTS5 indexes it: each CJK character its own token (no spaces to split on)."""
    return _CJK_CHAR.sub(r" \1 ", text)


def query_terms(query: str) -> Counter[str]:
    """The query's FTS5 terms, quoted, with how often each occurs, in order of first occurrence.

    Operators (NEAR, AND, *, -, parentheses, quotes) lose their meaning; a CJK run becomes
    phrases of adjacent character pairs, so 柏林人口 matches 柏林 ... 人口 without a segmenter.
    """
    terms: Counter[str] = Counter()
    for word in _WORD.findall(query.lower()):
        if _CJK_CHAR.match(word):
            chars = list(word)
            terms.update([f'"{a} {b}"' for a, b in itertools.pairwise(chars)] or [f'"{word}"'])
        elif word not in _STOPWORDS:
            terms[f'"{word}"'] += 1
    return terms


def match_expression(terms: Iterable[str]) -> str | None:
    """An FTS5 MATCH of any of ``terms`` (quoted, as :func:`query_terms` gives them)."""
    return " OR ".join(terms) or None


def fts_query(query: str) -> str | None:
    """An FTS5 MATCH expression that user input cannot break: every term quoted, OR-ed."""
    return match_expression(query_terms(query))


def most_informative(
    terms: Counter[str], document_frequency: Mapping[str, int], rows: int, keep: int
) -> list[str]:
    """The ``keep`` terms that say most about what a long query is about, in query order.

    Weight: BM25's IDF (rarer terms say more) times ``1 + ln(count)`` (a term the example
    repeats is what it is about). A pasted paragraph ORs hundreds of terms otherwise, and
    its common words swamp BM25 with weak matches.
    """

    def weight(term: str) -> float:
        df = document_frequency.get(term, 0)
        idf = math.log(1 + (rows - df + 0.5) / (df + 0.5))
        return idf * (1 + math.log(terms[term]))

    order = {term: i for i, term in enumerate(terms)}
    found = [t for t in terms if document_frequency.get(t, 0)]  # the rest cannot match
    best = sorted(found, key=lambda t: (-weight(t), order[t]))[:keep]
    return sorted(best, key=order.__getitem__)


def match_spans(query: str, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
    """Where the query's keyword terms occur in each text: (start, end) character spans.

    Matched as the index matches them (same tokenizer, stemming and MATCH expression), by
    FTS5's ``highlight()`` over a throw-away in-memory table, so "parsing" in a passage counts
    for a query "parse" exactly when keyword search would have counted it.
    """
    spans: list[list[tuple[int, int]]] = [[] for _ in texts]
    match = fts_query(query)
    if match is None or not texts:
        return spans
    forms = [keyword_form(t.replace(_OPEN, " ").replace(_CLOSE, " ")) for t in texts]
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, tokenize='{FTS_TOKENIZER}')")
        db.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", enumerate(forms))
        rows = db.execute(
            "SELECT rowid, highlight(t, 0, ?, ?) FROM t WHERE t MATCH ?", [_OPEN, _CLOSE, match]
        ).fetchall()
    for row, marked in rows:
        origin = _origins(texts[row])
        spans[row] = [(origin[a], origin[b - 1] + 1) for a, b in _marked_spans(marked)]
    return spans


_OPEN, _CLOSE = "\x02", "\x03"


def _marked_spans(marked: str) -> list[tuple[int, int]]:
    """Spans between the markers, in the coordinates of the text without them."""
    spans, start, removed = [], 0, 0
    for i, ch in enumerate(marked):
        if ch == _OPEN:
            start = i - removed
            removed += 1
        elif ch == _CLOSE:
            spans.append((start, i - removed))
            removed += 1
    return [(a, b) for a, b in spans if b > a]


def _origins(text: str) -> list[int]:
    """For each character of ``keyword_form(text)``, its index in ``text``."""
    out: list[int] = []
    for i, ch in enumerate(text):
        out += [i, i, i] if _CJK_CHAR.match(ch) else [i]
    return out

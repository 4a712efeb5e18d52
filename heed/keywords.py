"""Keyword search text: how passages are tokenised for FTS5, and how queries become safe MATCHes.

SQLite's unicode61 tokenizer splits on spaces and punctuation, which Chinese and Japanese text
lacks; giving each CJK character its own token and querying adjacent pairs as phrases is a
segmenter-free bigram match. User queries never reach FTS5 syntax unquoted.
"""

from __future__ import annotations

import itertools
import re

# Query words too common to help BM25 rank (a short list: long documents keep their own).
STOPWORDS = (
    "a an and are as at be by can do does for from has have how i in is it its of on or that the "
    "this to was were what when where which who why with"
)
CJK_RANGES = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"([{CJK_RANGES}])")
_WORD = re.compile(rf"[{CJK_RANGES}]+|[^\W_]+", re.UNICODE)
_STOPWORDS = frozenset(STOPWORDS.split())


def is_stopword(word: str) -> bool:
    return word.lower() in _STOPWORDS


def keyword_form(text: str) -> str:
    """Text as FTS5 indexes it: each CJK character its own token (no spaces to split on)."""
    return _CJK_CHAR.sub(r" \1 ", text)


def fts_query(query: str) -> str | None:
    """An FTS5 MATCH expression that user input cannot break: every term quoted, OR-ed.

    Operators (NEAR, AND, *, -, parentheses, quotes) lose their meaning; a CJK run becomes
    phrases of adjacent character pairs, so 柏林人口 matches 柏林 ... 人口 without a segmenter.
    """
    terms: list[str] = []
    for word in _WORD.findall(query.lower()):
        if _CJK_CHAR.match(word):
            chars = list(word)
            terms += [f'"{a} {b}"' for a, b in itertools.pairwise(chars)] or [f'"{word}"']
        elif word not in _STOPWORDS:
            terms.append(f'"{word}"')
    return " OR ".join(dict.fromkeys(terms)) or None

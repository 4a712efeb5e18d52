"""Keyword search text: how passages are tokenised for FTS5, and how queries become safe MATCHes.

SQLite's unicode61 tokenizer splits on spaces and punctuation, which Chinese and Japanese text
lacks; giving each CJK character its own token and querying adjacent pairs as phrases is a
segmenter-free bigram match. User queries never reach FTS5 syntax unquoted.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping

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

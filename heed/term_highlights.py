"""Highlights from the query's own terms, for text heed's English cross-encoder cannot read.

Attention from an English model over Chinese text marks single characters that say little (the
README's Explanations). Where the index is in such a script, a result shows instead where the
query's words occur in it: runs of two or more CJK characters that the query also has (the
character pairs keyword search matches), and whole words elsewhere. A longer shared run weighs
more; a run of function characters only (的是) is not marked. Offsets are characters of ``text``.
"""

from __future__ import annotations

import itertools
import re

from heed.highlights import MAX_WORDS, Span, is_stop
from heed.keywords import CJK_RANGES

METHOD = "terms"
MAX_SPANS = MAX_WORDS * 2  # runs are short: a few more of them still leave the passage readable

_CJK_RUN = re.compile(f"[{CJK_RANGES}]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def term_spans(query: str, text: str) -> list[Span]:
    """Spans of ``text`` that repeat the query's terms, weight 1 for the longest, in text order."""
    pairs = {a + b for run in _CJK_RUN.findall(query) for a, b in itertools.pairwise(run)}
    singles = {run for run in _CJK_RUN.findall(query) if len(run) == 1}
    words = {w.lower() for w in _WORD.findall(_CJK_RUN.sub(" ", query)) if not is_stop(w.lower())}
    marked = [False] * len(text)
    for i in range(len(text)):
        if text[i : i + 2] in pairs:
            marked[i] = marked[i + 1] = True
        elif text[i] in singles and not is_stop(text[i]):
            marked[i] = True
    # (start, end, length): a CJK run counts its characters, a word as much as a character pair
    spans = [(s, e, e - s) for s, e in _runs(marked) if not all(is_stop(c) for c in text[s:e])]
    spans += [(*m.span(), 2) for m in _WORD.finditer(text) if m.group().lower() in words]
    if not spans:
        return []
    longest = max(n for _, _, n in spans)
    kept = sorted(spans, key=lambda span: -span[2])[:MAX_SPANS]
    return [Span(s, e, round(n / longest, 3)) for s, e, n in sorted(kept)]


def _runs(marked: list[bool]) -> list[tuple[int, int]]:
    """(start, end) of each run of marked characters."""
    out, i = [], 0
    for value, group in itertools.groupby(marked):
        n = sum(1 for _ in group)
        if value:
            out.append((i, i + n))
        i += n
    return out

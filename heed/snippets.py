"""The part of a passage worth showing in a short space: a window around its best-matching words.

Given weighted spans (explanation highlights, or where the query's terms occur), the window is
placed where the most weight falls, widened to word boundaries and never cut inside inline code
(a backtick span), and whitespace runs are folded to one space so a line of a terminal table
shows words, not indentation. Spans come back in the snippet's own coordinates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 240  # characters shown per result
LEAD = 60  # context kept before the first matched word
WORD_REACH = 30  # an edge moves at most this far to a word boundary
ELLIPSIS = "…"
_CODE = re.compile(r"`[^`\n]{1,200}`")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Mark:
    start: int
    end: int
    weight: float = 1.0


@dataclass(frozen=True)
class Snippet:
    text: str
    marks: list[Mark]


def snippet(text: str, marks: Sequence[Mark], width: int = WIDTH) -> Snippet:
    """The window of ``text`` (about ``width`` characters) holding the most mark weight."""
    start = _best_start(marks, width)
    start, end = _widen(text, start, min(len(text), start + width))
    return _fold(text, start, end, [m for m in marks if m.start >= start and m.end <= end])


def _best_start(marks: Sequence[Mark], width: int) -> int:
    best, best_weight, lead = 0, 0.0, min(LEAD, width // 4)
    for anchor in sorted(marks, key=lambda m: m.start):
        start = max(0, anchor.start - lead)
        weight = sum(m.weight for m in marks if m.start >= start and m.end <= start + width)
        if weight > best_weight:
            best, best_weight = start, weight
    return best


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """Move the edges out of words and inline code, so neither is cut in half."""
    for code in _CODE.finditer(text):
        if code.start() < start < code.end():
            start = code.start()
        if code.start() < end < code.end():
            end = code.end()
    left = start
    while left > 0 and start - left < WORD_REACH and not _SPACE.match(text[left - 1]):
        left -= 1
    right = end
    while right < len(text) and right - end < WORD_REACH and not _SPACE.match(text[right]):
        right += 1
    # text without spaces (Chinese, a long URL): cut where the window said
    return (left if left == 0 or _SPACE.match(text[left - 1]) else start), (
        right if right == len(text) or _SPACE.match(text[right]) else end
    )


def _fold(text: str, start: int, end: int, marks: Sequence[Mark]) -> Snippet:
    """``text[start:end]`` with whitespace runs as one space; marks moved along."""
    out: list[str] = []
    where = {}  # index in text -> index in the snippet
    for i in range(start, end):
        where[i] = len(out)
        ch = text[i]
        if _SPACE.match(ch):
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(ch)
    where[end] = len(out)
    head = ELLIPSIS if start > 0 else ""
    tail = ELLIPSIS if end < len(text) else ""
    shift = len(head)  # a leading space is never kept: `out` starts with a word
    moved = [Mark(where[m.start] + shift, where[m.end] + shift, m.weight) for m in marks]
    return Snippet(head + "".join(out).rstrip() + tail, [m for m in moved if m.end > m.start])

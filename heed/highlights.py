"""What a highlight is, and which words never get one: shared by every way heed marks words.

Kept apart from ``heed.models.explain`` (which imports torch), so that highlights made without a
model (query-term matches) and the HTTP layer cost no model import.
"""

from __future__ import annotations

from dataclasses import dataclass

from heed.keywords import is_stopword

MAX_WORDS = 8  # highlights compete for attention: a page of marks would show nothing
CJK_STOP = frozenset("的了是和在与及或也而之其")  # function characters, the CJK stop-words


@dataclass(frozen=True)
class Span:
    """A highlighted word: ``text[start:end]``, weight 1 for the word that mattered most."""

    start: int
    end: int
    weight: float


def is_stop(word: str) -> bool:
    """Never highlighted: a stop-word, or a CJK function character."""
    return word in CJK_STOP or is_stopword(word)

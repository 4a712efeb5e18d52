"""Example queries for the start page that fit the loaded corpus.

A fixed list cannot fit every corpus (a Chinese example over English Python docs helps nobody).
``HEED_EXAMPLE_QUERIES`` sets them; otherwise they come from the corpus's own titles: the
description after a dash (``csv — CSV File Reading and Writing``) when titles have one, else
titles that read like a phrase, a few words long, picked evenly through the index.
"""

from __future__ import annotations

import re

from heed.keywords import CJK_RANGES
from heed.store import Reader

TITLES_READ = 2000  # titles looked at; enough to pick from, cheap on any index
_DASH = re.compile(r"\s+[\u2014\u2013-]\s+")  # em dash, en dash, hyphen
_PHRASE = re.compile(rf"^[\w\s,'\u2019()&/-]+$|^[{CJK_RANGES}]{{2,12}}$")


def _as_query(title: str) -> str | None:
    parts = _DASH.split(title.strip().rstrip(" ."), maxsplit=1)
    text = parts[-1].strip()
    words = len(text.split())
    if not _PHRASE.match(text) or "_" in text or len(text) > 80:
        return None  # identifiers (json.dumps()), markup, long sentences
    if words >= 2 or re.match(f"^[{CJK_RANGES}]", text):
        return text if words <= 10 else None
    return None


def example_queries(reader: Reader, n: int = 3) -> list[str]:
    """``n`` queries made from the corpus's titles, spread over it; fewer if few titles fit."""
    titles = reader.titles(TITLES_READ)
    described = [t for t in titles if _DASH.search(t)]
    candidates = list(dict.fromkeys(q for t in described or titles if (q := _as_query(t))))
    if len(candidates) <= n:
        return candidates
    step = len(candidates) / n
    return [candidates[int(step * i + step / 2)] for i in range(n)]

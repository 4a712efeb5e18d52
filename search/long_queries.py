"""Long queries (query by example): what the models read and which terms keyword search uses.

A reader may paste a paragraph or an abstract to find related documents. The bi-encoder and the
cross-encoder read only a window of tokens, so the query is cut to what they read (and the
response says so); keyword search would OR every word of it, so it keeps the terms that say most
about the example instead (IDF from the FTS5 index, see :func:`heed.keywords.most_informative`).
A short query passes through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from heed.keywords import most_informative, query_terms
from heed.models.encoders import BiEncoder
from heed.store import Reader


@dataclass
class LongQuery:
    model_text: str  # the start of the query that the models read (a short query: all of it)
    tokens: int  # the whole query's length in bi-encoder tokens
    terms: list[str] | None  # quoted keyword terms, when the query had too many; None: all


def fit_long_query(query: str, encoder: BiEncoder | None, reader: Reader, keep: int) -> LongQuery:
    """Without a bi-encoder (keyword search loads none) the models' cut is not measured."""
    text, tokens = encoder.fit_query(query) if encoder is not None else (query, 0)
    counts = query_terms(query)
    terms = None
    if len(counts) > keep:
        frequencies = reader.document_frequencies(counts)
        terms = most_informative(counts, frequencies, reader.manifest.passages, keep)
    return LongQuery(text, tokens, terms)


def unquoted(terms: list[str] | None) -> list[str] | None:
    """Terms as a reader writes them: ``"csv"`` -> ``csv``."""
    return None if terms is None else [t[1:-1] for t in terms]

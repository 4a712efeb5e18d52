"""Readers' clicks as judgements: a document opened for a query is relevant to it."""

from __future__ import annotations

from pathlib import Path

from heed.errors import InvalidInput
from heed.store.clicks import click_judgements, clicks_path
from search.evaluation import Collection


def clicks_collection(index_dir: Path, min_clicks: int = 1) -> Collection:
    """The recorded clicks as a judged collection: one query per normalised query text, each
    document opened for it at least ``min_clicks`` times relevant (grade 1)."""
    judged = click_judgements(index_dir, min_clicks)
    if not judged.qrels:
        raise InvalidInput(
            f"{clicks_path(index_dir)}: no query with a document opened at least {min_clicks} "
            f"time(s) ({judged.clicks} clicks recorded); clicks are recorded with HEED_CLICKS=true"
        )
    return Collection("clicks", clicks_path(index_dir), judged.queries, judged.qrels)

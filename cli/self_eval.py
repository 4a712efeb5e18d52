"""`heed eval --self` and `heed tune`: relevance measured and tuned on the index's own documents.

The composition the library layers cannot do themselves (search may not import indexer): a
self-evaluation collection (search.self_eval), the held-out copy of the index it runs on
(indexer.held_out), and a searcher over that copy with the models already loaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.app import IndexOpt, out, progress_bar, settings_with
from heed.errors import InvalidInput
from heed.settings import Settings

if TYPE_CHECKING:  # heavy: `heed --help` must not import the models
    from heed.store import Reader
    from search.evaluation import Collection
    from search.searcher import Models, Searcher

QueriesOpt = Annotated[
    int, typer.Option("--queries", min=10, help="self-evaluation queries to generate")
]
SeedOpt = Annotated[int, typer.Option(help="sampling seed (the same seed, the same queries)")]


@contextlib.contextmanager
def held_out_searcher(
    settings: Settings, reader: Reader, collection: Collection, models: Models
) -> Iterator[Searcher]:
    """A searcher over a copy of ``reader``'s generation in which ``collection``'s documents
    have their queries cut out (see search.self_eval)."""
    from indexer.held_out import held_out_copy
    from search.searcher import Searcher

    if settings.vector_backend != "faiss":
        raise InvalidInput(
            "self-evaluation and `heed tune` copy the index folder: the faiss backend only, "
            f"not {settings.vector_backend}"
        )
    if models.encoder is None:
        raise ValueError("a self-evaluation needs the bi-encoder")
    with held_out_copy(reader, collection.held_out, settings, models.encoder) as copy:
        yield Searcher(copy, models.encoder, models.reranker, settings)


def tune(
    index_dir: IndexOpt = None,
    queries: QueriesOpt = 200,
    seed: SeedOpt = 0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="measure and show, store nothing")
    ] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="forget the index's tuning (global defaults again)")
    ] = False,
) -> None:
    """Choose this index's fusion weight (and re-rank weight) and fit its `relevance` on
    self-evaluation queries; stored in the manifest, served as the index's default."""
    from heed.store.live import open_live
    from heed.store.tuned import publish_tuning
    from search.searcher import load_models
    from search.self_eval import self_eval_collection
    from search.tuning import tune as run_tune

    settings = settings_with(index_dir=index_dir)
    reader = open_live(settings)
    if reset:
        generation = publish_tuning(
            settings.index_dir, reader.generation, None, settings.keep_generations
        )
        out.print(f"tuning removed: generation {generation} serves the global defaults")
        return
    collection = self_eval_collection(reader, queries=queries, seed=seed)
    models = load_models(settings, explain=False, built_with=reader.manifest.embed_model)
    with held_out_searcher(settings, reader, collection, models) as searcher, progress_bar() as bar:
        task = bar.add_task("tuning", total=None)
        tuning = run_tune(
            searcher, collection, seed=seed, on_step=lambda s: bar.update(task, description=s)
        )
    out.print(tuning.describe())
    for key, value in tuning.measured.items():
        out.print(f"  {key}: {value}")
    if dry_run:
        return
    generation = publish_tuning(
        settings.index_dir, reader.generation, tuning, settings.keep_generations
    )
    out.print(f"stored in generation {generation} (now live)")


def self_eval(
    settings: Settings, names: list[str], queries: int, seed: int, json_out: Path | None
) -> None:
    """`heed eval --self`: the report of `heed eval`, on the index's own documents."""
    from cli.searching import print_report
    from heed.store.live import open_live
    from search.evaluation import evaluate, report
    from search.modes import EVAL_MODES
    from search.searcher import load_models
    from search.self_eval import self_eval_collection

    reader = open_live(settings)
    collection = self_eval_collection(reader, queries=queries, seed=seed)
    needs_rerank = any(EVAL_MODES[n].rerank for n in names)
    models = load_models(
        settings, rerank=needs_rerank, explain=False, built_with=reader.manifest.embed_model
    )
    with held_out_searcher(settings, reader, collection, models) as searcher, progress_bar() as bar:
        task = bar.add_task("queries", total=len(collection.queries) * len(names))
        results = evaluate(searcher, collection, names, on_query=lambda _: bar.advance(task))
        doc = report(collection, results, searcher)
    print_report(doc, json_out)

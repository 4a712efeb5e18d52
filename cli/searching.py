"""`heed search` and `heed eval`: the read path from the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.app import IndexOpt, out, progress_bar, settings_with
from cli.indexing import run_index
from cli.self_eval import QueriesOpt, SeedOpt, self_eval
from heed.errors import InvalidInput
from search.modes import EVAL_MODES, MODES

if TYPE_CHECKING:
    from heed.settings import Settings
    from search.evaluation import Collection

MODE_HELP = ", ".join(MODES)
EVAL_HELP = "comma-separated: " + ",".join(EVAL_MODES)


def search(
    query: Annotated[str, typer.Argument(help="what to look for, in plain language")],
    index_dir: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="results")] = 5,
    mode: Annotated[str | None, typer.Option(help=MODE_HELP)] = None,
    rerank: Annotated[bool | None, typer.Option(help="re-rank with the cross-encoder")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="mark the words that mattered to the cross-encoder")
    ] = False,
    url: Annotated[
        str | None, typer.Option(help="search a running service there (default: HEED_URL)")
    ] = None,
) -> None:
    """Search from the terminal: the local index, or a running service (--url / HEED_URL)."""
    from cli.search_table import results_table, search_at, search_here

    settings = settings_with(index_dir=index_dir, mode=mode, url=url)
    if settings.url:
        results = search_at(settings, settings.url, query, k, mode, rerank, explain)
        where = settings.url
    else:
        results = search_here(settings, query, k, rerank, explain)
        where = str(settings.index_dir)
    out.print(results_table(query, results, where))


def eval_(
    collection_dir: Annotated[
        Path | None,
        typer.Argument(
            help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/ (not with --self or --clicks)"
        ),
    ] = None,
    index_dir: IndexOpt = None,
    modes: Annotated[str | None, typer.Option(help=EVAL_HELP)] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
    split: Annotated[str, typer.Option(help="qrels split")] = "test",
    candidates: Annotated[int | None, typer.Option(help="re-rank depth")] = None,
    rerank_weight: Annotated[float | None, typer.Option(help="re-rank share of the score")] = None,
    fusion: Annotated[str | None, typer.Option(help="rrf or weighted")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="only the first N judged queries (qrels order)")
    ] = None,
    skip: Annotated[int, typer.Option(min=0, help="skip the first N judged queries")] = 0,
    self_: Annotated[
        bool,
        typer.Option(
            "--self",
            help="judged queries made from the index's own documents (titles, headings, "
            "sentences), no labels needed",
        ),
    ] = False,
    queries: QueriesOpt = 200,
    seed: SeedOpt = 0,
    clicks: Annotated[
        bool, typer.Option("--clicks", help="judge by the readers' clicks on the index instead")
    ] = False,
    min_clicks: Annotated[
        int, typer.Option(min=1, help="--clicks: opens that make a document relevant")
    ] = 1,
) -> None:
    """nDCG@10, Recall@100, MRR@10 and latency per retrieval mode on a BEIR collection, with
    --self on queries made from the index's own documents, or with --clicks on the queries
    readers clicked a result for."""
    import tempfile

    from indexer.sources import Fields
    from search.evaluation import load_collection
    from search.modes import parse_modes

    names = parse_modes(modes)
    if self_ or clicks or collection_dir is None:
        if self_ + clicks != 1 or collection_dir is not None:
            raise InvalidInput("give a BEIR collection folder, --self or --clicks, one of them")
        overrides = {"candidates": candidates, "rerank_weight": rerank_weight, "fusion": fusion}
        settings = settings_with(index_dir=index_dir, **overrides)
        if self_:
            return self_eval(settings, names, queries, seed, json_out)
        from search.clicks import clicks_collection

        collection = clicks_collection(settings.index_dir, min_clicks).subset(skip, limit)
        return run_eval(settings, collection, names, json_out)
    collection = load_collection(collection_dir, split).subset(skip, limit)
    with tempfile.TemporaryDirectory(prefix="heed-eval-") as tmp:
        settings = settings_with(
            index_dir=index_dir or Path(tmp) / "index",
            candidates=candidates,
            rerank_weight=rerank_weight,
            fusion=fusion,
        )
        if index_dir is None:  # a throwaway index: never in the live index's Milvus collections
            settings = settings.model_copy(
                update={"milvus_prefix": f"{settings.milvus_prefix}_eval"}
            )
        # A collection may hold empty records (Cranfield has two): report them, index the rest.
        run_index([collection.corpus], settings, fields=Fields(id="_id"), skip_errors=True)
        run_eval(settings, collection, names, json_out)


def run_eval(
    settings: Settings, collection: Collection, names: list[str], json_out: Path | None
) -> None:
    """Evaluate the live index of ``settings`` on ``collection``; the table, and the JSON."""
    from heed.store.live import open_live
    from search.evaluation import evaluate, report
    from search.searcher import open_searcher

    needs_rerank = any(EVAL_MODES[n].rerank for n in names)
    searcher = open_searcher(settings, open_live(settings), rerank=needs_rerank, explain=False)
    with progress_bar() as bar:
        task = bar.add_task("queries", total=len(collection.queries) * len(names))
        results = evaluate(searcher, collection, names, on_query=lambda _: bar.advance(task))
    print_report(report(collection, results, searcher), json_out)


def print_report(doc: dict, json_out: Path | None) -> None:
    """The eval table on stdout, and the JSON report where asked."""
    import json

    table = Table(
        title=f"{doc['collection']}: {doc['queries']} queries, {doc['index']['passages']} passages"
    )
    for col in ("mode", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for name, row in doc["modes"].items():
        marker = " *" if name == doc["default_mode"] else ""
        table.add_row(
            name + marker,
            f"{row['ndcg@10']:.3f}",
            f"{row['recall@100']:.3f}",
            f"{row['mrr@10']:.3f}",
            f"{row['latency_ms_p50']:.0f}",
            f"{row['latency_ms_p95']:.0f}",
        )
    out.print(table)
    out.print(f"* default mode of POST /search; settings {doc['settings']}")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(doc, indent=2) + "\n")

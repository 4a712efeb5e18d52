"""`heed search` and `heed eval`: the read path from the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.app import IndexOpt, out, progress_bar, settings_with
from cli.indexing import run_index
from search.modes import EVAL_MODES, MODES

MODE_HELP = ", ".join(MODES)
EVAL_HELP = "comma-separated: " + ",".join(EVAL_MODES)


def search(
    query: Annotated[str, typer.Argument(help="what to look for, in plain language")],
    index_dir: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="results")] = 5,
    mode: Annotated[str | None, typer.Option(help=MODE_HELP)] = None,
    rerank: Annotated[bool | None, typer.Option(help="re-rank with the cross-encoder")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="show whole passages, words that mattered marked")
    ] = False,
) -> None:
    """Search from the terminal (no server needed)."""
    from rich.text import Text

    from heed.store import open_reader
    from search.searcher import open_searcher

    settings = settings_with(index_dir=index_dir, mode=mode)
    wants_rerank = settings.rerank if rerank is None else rerank
    searcher = open_searcher(
        settings, open_reader(settings.index_dir), rerank=wants_rerank, explain=explain
    )
    outcome = searcher.search(query, k, rerank=wants_rerank, explain=explain)
    table = Table(title=f"{query!r} ({outcome.mode}{', re-ranked' if outcome.reranked else ''})")
    for col in ("#", "score", "doc_id", "title", "passage"):
        table.add_column(col, overflow="fold")
    for i, h in enumerate(outcome.hits, 1):
        if h.highlights is None:
            passage = Text(" ".join(h.passage.text.split())[:160])
        else:
            passage = Text(h.passage.text.replace("\n", " "))  # same length: spans still fit
            for span in h.highlights:
                passage.stylize("bold black on yellow", span.start, span.end)
        table.add_row(str(i), f"{h.score:.3f}", h.passage.doc_id, h.passage.title, passage)
    out.print(table)


def eval_(
    collection_dir: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    ],
    index_dir: IndexOpt = None,
    modes: Annotated[str | None, typer.Option(help=EVAL_HELP)] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
    split: Annotated[str, typer.Option(help="qrels split")] = "test",
    candidates: Annotated[int | None, typer.Option(help="re-rank depth")] = None,
    rerank_weight: Annotated[float | None, typer.Option(help="re-rank share of the score")] = None,
    fusion: Annotated[str | None, typer.Option(help="rrf or weighted")] = None,
) -> None:
    """nDCG@10, Recall@100, MRR@10 and latency per retrieval mode on a BEIR collection."""
    import json
    import tempfile

    from heed.store import open_reader
    from indexer.sources import Fields
    from search.evaluation import evaluate, load_collection, report
    from search.modes import parse_modes
    from search.searcher import open_searcher

    names = parse_modes(modes)
    collection = load_collection(collection_dir, split)
    with tempfile.TemporaryDirectory(prefix="heed-eval-") as tmp:
        settings = settings_with(
            index_dir=index_dir or Path(tmp) / "index",
            candidates=candidates,
            rerank_weight=rerank_weight,
            fusion=fusion,
        )
        # A collection may hold empty records (Cranfield has two): report them, index the rest.
        run_index([collection.corpus], settings, fields=Fields(id="_id"), skip_errors=True)
        needs_rerank = any(EVAL_MODES[n].rerank for n in names)
        searcher = open_searcher(
            settings, open_reader(settings.index_dir), rerank=needs_rerank, explain=False
        )
        with progress_bar() as bar:
            task = bar.add_task("queries", total=len(collection.queries) * len(names))
            results = evaluate(searcher, collection, names, on_query=lambda _: bar.advance(task))
        doc = report(collection, results, searcher)
    table = Table(
        title=f"{collection.name}: {doc['queries']} queries, {doc['index']['passages']} passages"
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

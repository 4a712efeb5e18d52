"""`heed compare` and `heed rollback`: two generations side by side, and going back to one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.app import IndexOpt, out, progress_bar, settings_with
from cli.searching import EVAL_HELP

if TYPE_CHECKING:
    from heed.settings import Settings
    from search.evaluation import Collection
    from search.searcher import Models, Searcher


def open_generation(
    settings: Settings, generation: int, loaded: dict[str, Models], rerank: bool
) -> Searcher:
    """A searcher over a kept generation; generations built with one bi-encoder share it."""
    from heed.errors import GenerationNotFound
    from heed.store import Reader
    from heed.store.rollback import kept_generations
    from search.searcher import load_models, open_searcher

    kept = {m.generation: m for m in kept_generations(settings.index_dir)}
    if generation not in kept:
        raise GenerationNotFound(
            f"{settings.index_dir}: no complete generation {generation} "
            f"(kept: {sorted(kept) or 'none'})"
        )
    built_with = kept[generation].embed_model
    if built_with not in loaded:
        loaded[built_with] = load_models(
            settings, rerank=rerank, explain=False, built_with=built_with
        )
    return open_searcher(settings, Reader(settings.index_dir, generation), loaded[built_with])


def signed(delta: float) -> str:
    colour = "green" if delta > 0 else "red" if delta < 0 else "dim"
    return f"[{colour}]{delta:+.3f}[/]"


def print_comparison(doc: dict[str, Any], focus: str) -> None:
    a, b = doc["a"]["generation"], doc["b"]["generation"]
    for found in doc["sets"]:
        table = Table(title=f"{found['name']}: {found['queries']} queries, generation {a} -> {b}")
        table.add_column("mode")
        for col in ("nDCG@10 A→B", "Δ", "Recall@100", "Δ", "MRR@10", "Δ"):
            table.add_column(col, justify="right")
        for name, row in found["modes"].items():
            cells = []
            for metric in ("ndcg@10", "recall@100", "mrr@10"):
                cells += [f"{row['a'][metric]:.3f}→{row['b'][metric]:.3f}"]
                cells += [signed(row["delta"][metric])]
            table.add_row(name + (" *" if name == doc["default_mode"] else ""), *cells)
        out.print(table)
        moved = found["modes"][focus]
        if moved["gained"] or moved["lost"]:
            queries = Table(
                title=f"{found['name']}, {focus}: nDCG@10 rose for {moved['queries_gained']} "
                f"queries and fell for {moved['queries_lost']}; those that moved most"
            )
            for col in ("", "query", "A", "B", "Δ"):
                queries.add_column(col, justify="left" if col in ("", "query") else "right")
            for label, rows in (("gained", moved["gained"]), ("lost", moved["lost"])):
                for r in rows:
                    queries.add_row(
                        label,
                        escape(r["query"]),
                        f"{r['a']:.3f}",
                        f"{r['b']:.3f}",
                        signed(r["delta"]),
                    )
                    label = ""
            out.print(queries)
    out.print("* default mode of POST /search")


def compare(
    a: Annotated[int, typer.Argument(help="generation A (the baseline)")],
    b: Annotated[int, typer.Argument(help="generation B (compared with A)")],
    index_dir: IndexOpt = None,
    collection_dir: Annotated[
        Path | None,
        typer.Option("--collection", help="BEIR folder judged on this index's document ids"),
    ] = None,
    clicks: Annotated[
        bool, typer.Option("--clicks", help="also the readers' clicks as judgements")
    ] = False,
    self_eval: Annotated[
        bool,
        typer.Option(
            "--self/--no-self", help="also self-evaluation queries (see heed eval --self)"
        ),
    ] = True,
    queries: Annotated[int, typer.Option(min=1, help="self-evaluation queries")] = 200,
    seed: Annotated[int, typer.Option(help="self-evaluation sample")] = 0,
    modes: Annotated[str | None, typer.Option(help=EVAL_HELP)] = None,
    top: Annotated[int, typer.Option(min=0, help="queries listed as gained and lost")] = 5,
    split: Annotated[str, typer.Option(help="qrels split of --collection")] = "test",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
) -> None:
    """Two generations of one index on the same judged queries: per-mode deltas of nDCG@10,
    Recall@100 and MRR@10, and the queries that gained and lost most."""
    import contextlib
    import json

    from cli.self_eval import held_out_searcher
    from heed.errors import InvalidInput
    from search.clicks import clicks_collection
    from search.compare import compare_on, comparison
    from search.evaluation import load_collection
    from search.modes import EVAL_MODES, eval_name, parse_modes
    from search.self_eval import self_eval_collection

    settings = settings_with(index_dir=index_dir)
    names = parse_modes(modes)
    rerank = any(EVAL_MODES[n].rerank for n in names)
    loaded: dict[str, Models] = {}
    searchers = (
        open_generation(settings, a, loaded, rerank),
        open_generation(settings, b, loaded, rerank),
    )
    # Each query set with the pair of searchers it runs on: self-evaluation queries are cut from
    # generation A's documents and run on held-out copies of both generations (never on the
    # index itself, where each query's words are still in its document).
    sets: list[tuple[Collection, Searcher, Searcher]] = []
    with contextlib.ExitStack() as stack:
        if self_eval:
            made = self_eval_collection(searchers[0].reader, queries=queries, seed=seed)
            held_a, held_b = (
                stack.enter_context(
                    held_out_searcher(
                        settings, s.reader, made, loaded[s.reader.manifest.embed_model]
                    )
                )
                for s in searchers
            )
            sets.append((made, held_a, held_b))
        if collection_dir is not None:
            sets.append((load_collection(collection_dir, split), *searchers))
        if clicks:
            sets.append((clicks_collection(settings.index_dir), *searchers))
        if not sets:
            raise InvalidInput(
                "nothing to compare on: drop --no-self, or give --collection DIR (judged on this "
                "index's document ids) or --clicks"
            )
        total = 2 * len(names) * sum(len(c.qrels) for c, _, _ in sets)
        with progress_bar() as bar:
            task = bar.add_task("queries", total=total)
            found = [
                compare_on(c, a_, b_, names, top=top, on_query=lambda _: bar.advance(task))
                for c, a_, b_ in sets
            ]
    doc = comparison(*searchers, found)
    doc["index"] = str(settings.index_dir)
    # The queries that moved are listed for the default mode, or its first stage if not run.
    shown = [doc["default_mode"], eval_name(settings.mode, False)]
    print_comparison(doc, next((n for n in shown if n in names), names[0]))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(doc, indent=2) + "\n")


def rollback(
    index_dir: IndexOpt = None,
    to: Annotated[
        int | None, typer.Option("--to", help="generation (default: the newest older one kept)")
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="show the kept generations, change nothing")
    ] = False,
) -> None:
    """Make a kept generation live again, atomically (a running service switches between
    requests); only the HEED_KEEP_GENERATIONS newest generations are kept."""
    from heed.scripts import named_model
    from heed.store import current_generation
    from heed.store.rollback import kept_generations
    from heed.store.rollback import rollback as roll_back

    settings = settings_with(index_dir=index_dir)
    if list_:
        live = current_generation(settings.index_dir)
        table = Table(title=f"generations kept in {settings.index_dir}")
        for col in ("generation", "created", "documents", "passages", "bi-encoder"):
            table.add_column(col, justify="right" if col in ("documents", "passages") else "left")
        for m in reversed(kept_generations(settings.index_dir)):
            mark = " (live)" if m.generation == live else ""
            table.add_row(
                f"{m.generation}{mark}",
                m.created_at.isoformat(timespec="seconds"),
                f"{m.documents:,}",
                f"{m.passages:,}",
                m.embed_model,
            )
        out.print(table)
        return
    done = roll_back(settings.index_dir, to, model=named_model(settings))
    m = done.manifest
    out.print(
        f"generation {m.generation} is live (was {done.previous}): {m.documents:,} documents, "
        f"{m.passages:,} passages, {m.embed_model}"
    )

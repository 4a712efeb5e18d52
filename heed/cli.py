"""The `heed` command: a thin typer layer over functions the tests call directly.

Heavy imports (torch, faiss, the service) happen inside commands, so `heed --help` stays fast.
Progress goes to stderr, results to stdout; a HeedError becomes a red one-line message and exit 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from heed.errors import HeedError
from heed.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="heed: semantic search.")
err = Console(stderr=True)
out = Console()

IndexOpt = Annotated[
    Path | None, typer.Option("--index", help="index directory (default: HEED_INDEX_DIR)")
]


def settings_with(**overrides: Any) -> Settings:
    """Settings from env/heed.toml, with the options the user actually gave on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="cyan")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def run_index(
    paths: list[Path],
    settings: Settings,
    *,
    fields: Any = None,
    prune: bool = False,
    rebuild: bool = False,
    skip_errors: bool = False,
    force: bool = False,
) -> Any:
    """Index with progress bars; shared by `index`, `serve` (first start) and `eval`."""
    from indexer.build import BuildProgress, build_index
    from indexer.sources import Fields, read_documents

    skipped: list[str] = []

    def on_error(exc: HeedError) -> None:
        skipped.append(str(exc))
        err.print(f"[yellow]skipped:[/] {exc}")

    with progress_bar() as bar:
        docs_task = bar.add_task("documents", total=None)
        emb_task = bar.add_task("passages ", total=None, start=False)

        def on_progress(p: BuildProgress) -> None:
            bar.update(docs_task, completed=p.documents)
            if p.stage == "embedding":
                bar.update(docs_task, total=p.documents)
                bar.start_task(emb_task)
                bar.update(emb_task, completed=p.passages_done, total=p.passages_total)

        docs = read_documents(paths, fields or Fields(), on_error if skip_errors else None)
        stats = build_index(
            docs,
            settings,
            prune=prune,
            rebuild=rebuild,
            allow_shrink=force,
            on_progress=on_progress,
        )
        bar.update(docs_task, completed=stats.documents, total=stats.documents)
    if skipped:
        err.print(f"[yellow]{len(skipped)} record(s) skipped[/]")
    return stats


@app.command()
def index(
    paths: Annotated[
        list[Path], typer.Argument(help="files or folders (jsonl, csv, txt, md, html)")
    ],
    index_dir: IndexOpt = None,
    id_field: Annotated[str, typer.Option(help="record field holding the document id")] = "id",
    title_field: Annotated[str, typer.Option(help="record field holding the title")] = "title",
    text_field: Annotated[str, typer.Option(help="record field holding the text")] = "text",
    prune: Annotated[bool, typer.Option(help="remove documents missing from PATHS")] = False,
    rebuild: Annotated[bool, typer.Option(help="start from an empty index (new model)")] = False,
    skip_errors: Annotated[bool, typer.Option(help="report bad records and go on")] = False,
    force: Annotated[bool, typer.Option(help="prune/rebuild even if most documents go")] = False,
) -> None:
    """Embed new and changed documents; the live index switches only when all succeed."""
    from indexer.sources import Fields

    settings = settings_with(index_dir=index_dir)
    stats = run_index(
        paths,
        settings,
        fields=Fields(id=id_field, title=title_field, text=text_field),
        prune=prune,
        rebuild=rebuild,
        skip_errors=skip_errors,
        force=force,
    )
    state = f"generation {stats.generation}" if stats.published else "unchanged, nothing published"
    out.print(
        f"{stats.documents} documents: {stats.added} added, {stats.updated} updated, "
        f"{stats.unchanged} unchanged, {stats.removed} removed; "
        f"{stats.passages_embedded} passages embedded in {stats.seconds:.1f}s ({state})"
    )


@app.command()
def serve(
    index_dir: IndexOpt = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
) -> None:
    """Serve the HTTP API; with no index yet, index the shipped corpus (data/) first."""
    import uvicorn

    from heed.log import configure_logging
    from heed.store import current_generation
    from service.app import create_app

    settings = settings_with(index_dir=index_dir, host=host, port=port)
    if current_generation(settings.index_dir) is None:
        data = settings.corpus
        if not data.exists():  # started outside the checkout: the corpus shipped with heed
            from heed.encoders import PROJECT_ROOT

            data = PROJECT_ROOT / settings.corpus
        err.print(f"no index in {settings.index_dir}: indexing {data} first")
        run_index([data], settings)
    err.print(f"serving http://{settings.host}:{settings.port}  (API docs: /docs)")
    configure_logging("INFO")  # heed.access writes one line per request (route, status, ms)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
    )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for, in plain language")],
    index_dir: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="results")] = 5,
    mode: Annotated[str | None, typer.Option(help="hybrid, dense or keyword")] = None,
    rerank: Annotated[bool | None, typer.Option(help="re-rank with the cross-encoder")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="show whole passages, words that mattered marked")
    ] = False,
) -> None:
    """Search from the terminal (no server needed)."""
    from rich.text import Text

    from heed.encoders import load_bi_encoder, load_reranker
    from heed.explain import explainer_for
    from heed.store import open_reader
    from service.search import Searcher

    settings = settings_with(index_dir=index_dir, mode=mode)
    reader = open_reader(settings.index_dir)
    wants_rerank = settings.rerank if rerank is None else rerank
    reranker = (
        load_reranker(settings.rerank_model, settings.model_runtime())
        if settings.rerank_model and (wants_rerank or explain)
        else None
    )
    searcher = Searcher(
        reader,
        load_bi_encoder(settings.embed_model, settings.model_runtime()),
        reranker,
        settings,
        explainer_for(reranker, settings.explain_method),
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


@app.command()
def reindex(
    source: Annotated[
        Path | None, typer.Argument(help="file or folder (default: HEED_CORPUS)")
    ] = None,
    index_dir: IndexOpt = None,
    embed_model: Annotated[str | None, typer.Option(help="bi-encoder for the new index")] = None,
    force: Annotated[bool, typer.Option(help="switch even if most documents go")] = False,
) -> None:
    """Rebuild the index beside the live one and switch to it (the admin job, from the CLI)."""
    from indexer.jobs import JobState, new_job, run_reindex

    settings = settings_with(index_dir=index_dir)
    job = new_job(settings, source, embed_model, allow_shrink=force)
    with progress_bar() as bar:
        task = bar.add_task("passages", total=None)
        run_reindex(
            job,
            settings,
            on_update=lambda j: bar.update(
                task, completed=j.passages_done, total=j.passages_total or None
            ),
        )
    if job.state != JobState.succeeded:
        raise HeedError(f"reindex {job.state}: {job.error}")
    out.print(f"reindexed {job.documents_done} documents into generation {job.generation}")


@app.command()
def jobs(
    url: Annotated[str | None, typer.Option(help="service URL (default: from settings)")] = None,
) -> None:
    """List the running service's recent jobs (needs HEED_ADMIN_KEY)."""
    import httpx

    settings = Settings()
    url = url or f"http://{settings.host}:{settings.port}"
    if settings.admin_key is None:
        raise HeedError("set HEED_ADMIN_KEY to the service's admin key")
    headers = {"Authorization": f"Bearer {settings.admin_key.get_secret_value()}"}
    try:
        r = httpx.get(f"{url}/admin/jobs", headers=headers, timeout=10)
    except httpx.TransportError as exc:
        raise HeedError(f"no heed service at {url} ({exc})") from None
    if r.status_code != 200:
        raise HeedError(f"{url}: {r.json().get('error', {}).get('message', r.text)}")
    table = Table(title=f"jobs at {url}")
    for col in ("id", "state", "passages", "passages/s", "eta s", "started", "error"):
        table.add_column(col)
    for j in r.json()["jobs"]:
        table.add_row(
            j["id"],
            j["state"],
            f"{j['passages_done']}/{j['passages_total']}",
            str(j["passages_per_s"] or ""),
            str(j["eta_s"] or ""),
            str(j["started_at"] or ""),
            j["error"] or "",
        )
    out.print(table)


@app.command()
def check(
    index_dir: IndexOpt = None,
    repair: Annotated[bool, typer.Option(help="fix differences in a new generation")] = False,
    full: Annotated[bool, typer.Option(help="compare every vector, not a sample")] = False,
) -> None:
    """Compare SQLite passages with FAISS (ids, checksum, vector contents) and the manifest;
    exit 1 on any difference."""
    from heed.store import VECTOR_SAMPLE, open_reader

    settings = settings_with(index_dir=index_dir)
    report = open_reader(settings.index_dir).consistency(None if full else VECTOR_SAMPLE)
    out.print(
        f"generation {report.generation} ({report.index}): {report.passages} passages, "
        f"{report.vectors} vectors; "
        f"{len(report.missing_vectors)} passages without a vector, "
        f"{len(report.orphan_vectors)} orphan vectors; manifest counts {report.manifest_counts}, "
        f"actual {report.actual_counts}"
    )
    if report.vectors_problem:
        out.print(f"[red]{report.vectors_problem}[/]")
    checked = f"of all {report.vectors_checked}" if full else f"of {report.vectors_checked} sampled"
    out.print(
        f"{len(report.wrong_vectors)} {checked} vectors differ from the exact vectors in SQLite; "
        f"{len(report.missing_exact)} passages without an exact vector"
    )
    if report.ok:
        out.print("[green]consistent[/]")
        return
    if not repair:
        raise HeedError("index is inconsistent; run `heed check --repair` to fix it")
    from indexer.build import repair_index

    stats = repair_index(settings)
    fixed = open_reader(settings.index_dir).consistency()
    out.print(
        f"repaired into generation {stats.generation}: vector index rebuilt from "
        f"{stats.vectors_rebuilt} exact vectors ({stats.vectors_restored} restored), "
        f"{stats.passages_embedded} passages re-embedded, {stats.removed} orphan vectors removed; "
        + ("[green]consistent[/]" if fixed.ok else "[red]still inconsistent[/]")
    )


@app.command("eval")
def eval_(
    collection_dir: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    ],
    index_dir: IndexOpt = None,
    modes: Annotated[
        str | None,
        typer.Option(help="comma-separated: bm25,dense,hybrid,dense+rerank,hybrid+rerank"),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
    split: Annotated[str, typer.Option(help="qrels split")] = "test",
    candidates: Annotated[int | None, typer.Option(help="re-rank depth")] = None,
    rerank_weight: Annotated[float | None, typer.Option(help="re-rank share of the score")] = None,
    fusion: Annotated[str | None, typer.Option(help="rrf or weighted")] = None,
) -> None:
    """nDCG@10, Recall@100, MRR@10 and latency per retrieval mode on a BEIR collection."""
    import json
    import tempfile

    from heed.encoders import load_bi_encoder, load_reranker
    from heed.store import open_reader
    from indexer.sources import Fields
    from service.evaluation import evaluate, load_collection, parse_modes, report
    from service.search import Searcher

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
        needs_rerank = any("rerank" in n for n in names)
        reranker = (
            load_reranker(settings.rerank_model, settings.model_runtime())
            if needs_rerank and settings.rerank_model
            else None
        )
        searcher = Searcher(
            open_reader(settings.index_dir),
            load_bi_encoder(settings.embed_model, settings.model_runtime()),
            reranker,
            settings,
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


@app.command("train-reranker")
def train_reranker(
    data: Annotated[Path, typer.Option(help="SQuAD pairs folder")] = Path(
        "../shared/train/squad-v1.1"
    ),
    out_dir: Annotated[Path, typer.Option("--out", help="model folder to write")] = Path(
        "models/heed-reranker-minilm"
    ),
    steps: Annotated[int, typer.Option(min=1, help="optimiser steps of the schedule")] = 1000,
    time_budget: Annotated[
        float | None, typer.Option(help="minutes before this run stops (resume later)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoint.pt")] = False,
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
    limit: Annotated[int | None, typer.Option(help="train on the first N questions only")] = None,
    dev_questions: Annotated[int, typer.Option(help="held-out SQuAD dev questions")] = 200,
    dev_every: Annotated[int, typer.Option(help="steps between dev checks")] = 150,
) -> None:
    """Fine-tune heed's cross-encoder on CPU, checkpointing so a run can resume."""
    from heed.encoders import resolve_model, set_threads
    from heed.training import Progress as TrainProgress
    from heed.training import TrainConfig, train

    settings = Settings()
    set_threads(settings.threads)
    cfg = TrainConfig(
        data_dir=data,
        out_dir=out_dir,
        base_model=Path(resolve_model(settings.embed_model)),
        steps=steps,
        time_budget_s=time_budget * 60 if time_budget else None,
        seed=seed,
        limit_questions=limit,
        dev_questions=dev_questions,
        dev_every=dev_every,
        command="heed " + " ".join(sys.argv[1:]),
    )
    with progress_bar() as bar:
        task = bar.add_task("training", total=steps)

        def on_progress(p: TrainProgress) -> None:
            bar.update(
                task,
                completed=p.step,
                description=f"loss {p.loss:.3f} | {p.pairs_per_s:.1f} pairs/s",
            )

        state = train(cfg, resume=resume, on_progress=on_progress)
    last = state.history[-1]
    out.print(
        f"step {state.step}/{steps}; dev acc@1 {last['dev_acc@1']:.3f}, MRR {last['dev_mrr']:.3f}; "
        f"model in {out_dir}"
    )


def main() -> None:
    """Entry point of the `heed` script."""
    from heed.log import configure_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Idle OpenMP threads sleep instead of spinning: a spinning pool (torch's, faiss's) starves
    # the other one and any concurrent request; measured 370 ms -> 10 ms per query on 2 cores.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    configure_logging(os.environ.get("HEED_LOG_LEVEL", "WARNING"))
    try:
        app()
    except HeedError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None

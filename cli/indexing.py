"""`heed index`, `heed reindex`, `heed check`: the write path from the terminal."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.app import IndexOpt, err, out, progress_bar, settings_with
from heed.errors import HeedError
from heed.settings import Settings


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
    from indexer.progress import ProgressLog, show_progress_lines
    from indexer.sources import Fields, read_documents

    skipped: list[str] = []

    def on_error(exc: HeedError) -> None:
        skipped.append(str(exc))
        err.print(f"[yellow]skipped:[/] {exc}")

    docs = read_documents(
        paths, fields or Fields(), on_error if skip_errors else None, settings.document_limits()
    )
    build = functools.partial(
        build_index, docs, settings, prune=prune, rebuild=rebuild, allow_shrink=force
    )
    if err.is_terminal:
        with progress_bar() as bar:
            docs_task = bar.add_task("documents", total=None)
            emb_task = bar.add_task("passages ", total=None, start=False)

            def on_progress(p: BuildProgress) -> None:
                bar.update(docs_task, completed=p.documents)
                if p.stage == "embedding":
                    bar.update(docs_task, total=p.documents)
                    bar.start_task(emb_task)
                    bar.update(emb_task, completed=p.passages_done, total=p.passages_total)

            stats = build(on_progress=on_progress)
            bar.update(docs_task, completed=stats.documents, total=stats.documents)
    else:  # a log file or a pipe: a plain line every few seconds, not a bar redrawn in place
        show_progress_lines()
        stats = build(on_progress=ProgressLog("indexing", settings.progress_every_s))
    if stats.embed_reason:  # this run created the index: say which bi-encoder, and why
        err.print(f"bi-encoder [bold]{stats.embed_model}[/]: {stats.embed_reason}")
    if skipped:
        err.print(f"[yellow]{len(skipped)} record(s) skipped[/]")
    return stats


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
    from indexer.progress import show_progress_lines

    settings = settings_with(index_dir=index_dir)
    job = new_job(settings, source, embed_model, allow_shrink=force)
    if not err.is_terminal:  # run_reindex logs progress lines itself
        show_progress_lines()
        run_reindex(job, settings)
    else:
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


def check(
    index_dir: IndexOpt = None,
    repair: Annotated[bool, typer.Option(help="fix differences in a new generation")] = False,
    full: Annotated[bool, typer.Option(help="compare every vector, not a sample")] = False,
) -> None:
    """Compare SQLite passages with FAISS (ids, checksum, vector contents) and the manifest;
    exit 1 on any difference."""
    from heed.models.precision import describe_paths
    from heed.scripts import describe
    from heed.store import VECTOR_SAMPLE, open_reader

    settings = settings_with(index_dir=index_dir)
    reader = open_reader(settings.index_dir)
    report = reader.consistency(None if full else VECTOR_SAMPLE)
    manifest = reader.manifest
    out.print(
        f"bi-encoder {manifest.embed_model}"
        + (f": {manifest.embed_reason}" if manifest.embed_reason else "")
        + (f"; sampled scripts: {describe(manifest.scripts)}" if manifest.scripts else "")
    )
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
    for line in describe_paths(settings):
        out.print(f"inference {line}")
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

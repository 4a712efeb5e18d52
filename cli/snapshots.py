"""`heed snapshot create|list|restore`: archives of the live index (heed/snapshots.py)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cli.app import IndexOpt, out, settings_with

snapshot_app = typer.Typer(
    no_args_is_help=True, help="Checksummed archives of the live index, and their restore."
)


def snapshot_row(info: Any) -> list[str]:
    return [
        info.name,
        str(info.generation or ""),
        f"{info.documents}/{info.passages}" if info.error is None else "",
        f"{info.size_bytes / 1e6:,.1f}",
        info.created_at.isoformat(timespec="seconds") if info.created_at else "",
        info.error or "",
    ]


@snapshot_app.command("create")
def snapshot_create(index_dir: IndexOpt = None) -> None:
    """Archive the live generation (sha256 per file); safe while the service serves and writes."""
    from heed.snapshots import create_snapshot

    info = create_snapshot(settings_with(index_dir=index_dir))
    out.print(
        Text(
            f"snapshot {info.name}: generation {info.generation}, {info.documents} documents, "
            f"{info.passages} passages, {info.size_bytes / 1e6:,.1f} MB in {info.path.parent}"
        )
    )


@snapshot_app.command("list")
def snapshot_list(index_dir: IndexOpt = None) -> None:
    """The archives in the snapshot folder (HEED_SNAPSHOT_DIR), newest first."""
    from heed.snapshots import list_snapshots

    settings = settings_with(index_dir=index_dir)
    table = Table(title=f"snapshots in {settings.snapshot_dir}")
    table.add_column("name", no_wrap=True)
    for col in ("generation", "documents/passages", "MB", "created", "error"):
        table.add_column(col, overflow="fold")
    for info in list_snapshots(settings):
        table.add_row(*(Text(cell) for cell in snapshot_row(info)))
    out.print(table)


@snapshot_app.command("restore")
def snapshot_restore(
    name: Annotated[str, typer.Argument(help="archive name (from `heed snapshot list`) or path")],
    index_dir: IndexOpt = None,
) -> None:
    """Verify an archive (checksums, then `heed check`) and publish it as a new generation."""
    from heed.snapshots import restore_snapshot

    restored = restore_snapshot(settings_with(index_dir=index_dir), name)
    out.print(
        Text(
            f"restored {restored.snapshot.name} (generation {restored.snapshot.generation}: "
            f"{restored.check.actual_counts[0]} documents, {restored.check.passages} passages, "
            f"checksums and consistency verified) as generation {restored.generation}"
        )
    )

"""`heed serve` and `heed jobs`: the HTTP service and its job list."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.app import IndexOpt, err, out, settings_with
from cli.indexing import run_index
from heed.errors import HeedError
from heed.settings import Settings


def serve(
    index_dir: IndexOpt = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
) -> None:
    """Serve the HTTP API; with no index yet, index the shipped corpus (data/) first."""
    import uvicorn

    from heed.log import configure_logging
    from heed.store import live_manifest
    from heed.store.live import live_index
    from service.app import create_app

    settings = settings_with(index_dir=index_dir, host=host, port=port)
    if live_index(settings).generation() is None:
        local = live_manifest(settings.index_dir)
        if local is not None and local.backend != settings.vector_backend:
            raise HeedError(
                f"{settings.index_dir} keeps its vectors in {local.backend}, and "
                f"{settings.vector_backend} holds no heed index yet: run `heed migrate --to "
                f"{settings.vector_backend}` first"
            )
        data = settings.corpus
        if not data.exists():  # started outside the checkout: the corpus shipped with heed
            from heed.models.encoders import PROJECT_ROOT

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


def jobs(
    url: Annotated[
        str | None, typer.Option(help="service URL (default: HEED_URL, or host:port)")
    ] = None,
) -> None:
    """List the running service's recent jobs (needs HEED_ADMIN_KEY)."""
    import httpx

    settings = Settings()
    url = url or settings.url or f"http://{settings.host}:{settings.port}"
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

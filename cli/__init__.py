"""The `heed` command, the composition root: it imports every package and nothing imports it.

Commands live by topic (``indexing``, ``serving``, ``searching``, ``training``) and are registered
here, in the order `heed --help` lists them.
"""

from cli.abtest import compare, rollback
from cli.app import app, main
from cli.indexing import check, index, reindex
from cli.migrate import migrate
from cli.searching import eval_, search
from cli.self_eval import tune
from cli.serving import jobs, serve
from cli.snapshots import snapshot_app
from cli.training import train_reranker

app.command()(index)
app.command()(serve)
app.command()(search)
app.command()(reindex)
app.command()(jobs)
app.command()(check)
app.command()(migrate)
app.command("eval")(eval_)
app.command()(tune)
app.command()(compare)
app.command()(rollback)
app.command("train-reranker")(train_reranker)
app.add_typer(snapshot_app, name="snapshot")

__all__ = ["app", "main"]

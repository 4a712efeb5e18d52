"""Where a search spends its time: pyinstrument over in-process searches (no HTTP).

Loads the models and the index the way `heed serve` does (``service.engine.Engine``), runs each
benchmark query once with one configuration of ``bench.query_load`` and prints the call tree.
Writes the full tree to var/bench/profile-<config>.txt.

    python -m bench.profile_search [--config hybrid+rerank@20] [--index DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pyinstrument import Profiler

from bench.common import VAR, build_shipped_index
from bench.queries import QUERIES
from bench.query_load import CONFIGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=list(CONFIGS), default="hybrid+rerank@20")
    parser.add_argument(
        "--index", type=Path, help="an existing index (default: build the shipped one)"
    )
    args = parser.parse_args()
    from heed.settings import Settings
    from service.engine import Engine

    VAR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="heed-prof-", dir=VAR) as tmp:
        index_dir = args.index
        if index_dir is None:
            index_dir = Path(tmp) / "index"
            build_shipped_index(index_dir)
        engine = Engine(Settings(index_dir=index_dir))
        engine.load_models()
        searcher = engine.searcher()
        body = CONFIGS[args.config]
        searcher.search("warm up", **body)
        profiler = Profiler(interval=0.001)
        with profiler:
            for query in QUERIES:
                searcher.search(query, 10, **body)
    out = VAR / f"profile-{args.config}.txt"
    out.write_text(profiler.output_text(color=False, show_all=False))
    print(profiler.output_text(color=False, show_all=False))
    print(f"{len(QUERIES)} searches; full tree in {out}")


if __name__ == "__main__":
    main()

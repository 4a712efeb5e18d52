"""torch vs ONNX Runtime (fp32, int8): query embedding, passage encoding and re-ranking, one run.

All variants run in this one process, one after another, on the same inputs: passages of the
shipped corpus as heed chunks them (~200 tokens), the questions of ``bench/queries.py``, and 20
candidates per re-rank (the default ``candidates``). Each model is warmed first; exporting and
quantising (once per cache) is reported as load time, not mixed into the latencies.

    python -m bench.onnx_backends [--passages 256] [--rerank-max-tokens 128]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.queries import QUERIES
from heed.models.encoders import BiEncoder, Reranker
from heed.models.onnx_models import available_cores
from heed.settings import ModelRuntime, Settings
from indexer.build import chunker_for
from indexer.sources import read_documents

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "python-docs.jsonl"
RESULTS = ROOT / "bench" / "results"
CANDIDATES = 20


def variants(base: ModelRuntime, rerank_max_tokens: int | None) -> dict[str, ModelRuntime]:
    """torch fp32 at the model's own pair length, the ONNX variants, and heed's default."""
    fp32 = {"embed_precision": "fp32", "rerank_precision": "fp32"}
    torch = dataclasses.replace(base, backend="torch", rerank_max_tokens=None, **fp32)
    out = {
        "torch fp32": torch,
        "onnx fp32": dataclasses.replace(torch, backend="onnx"),
        "onnx int8": dataclasses.replace(
            torch, backend="onnx", embed_precision="int8", rerank_precision="int8"
        ),
    }
    if rerank_max_tokens:
        out[f"onnx int8, pairs ≤{rerank_max_tokens}"] = dataclasses.replace(
            out["onnx int8"], rerank_max_tokens=rerank_max_tokens
        )
    out[f"default ({base.variant}, pairs ≤{base.rerank_max_tokens or 256})"] = base
    return out


def passages(settings: Settings, encoder: BiEncoder, limit: int) -> list[str]:
    """Passage texts in corpus order, as heed's chunker cuts them."""
    chunker = chunker_for(encoder, settings)
    texts: list[str] = []
    for doc in read_documents([CORPUS]):
        texts += [p.text for p in chunker.split(doc.text)]
        if len(texts) >= limit:
            break
    return texts[:limit]


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
    }


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def measure(
    name: str, runtime: ModelRuntime, settings: Settings, texts: list[str], repeat: int
) -> dict:
    started = time.perf_counter()
    encoder = BiEncoder(settings.embed_model, runtime)
    reranker = Reranker(settings.rerank_model, runtime)
    load_s = time.perf_counter() - started
    encoder.encode_queries(["warm up"])
    reranker.score("warm up", texts[:CANDIDATES])
    query_s = [timed(encoder.encode_queries, [q]) for q in QUERIES * repeat]
    encode_s = timed(encoder.encode_passages, texts, settings.batch_size)
    pick = random.Random(7)
    pools = [(q, pick.sample(texts, CANDIDATES)) for q in QUERIES[:20]]
    rerank_s = [timed(reranker.score, q, pool) for q, pool in pools * repeat]
    return {
        "variant": name,
        "backend": runtime.backend,
        "precision": [runtime.embed_precision, runtime.rerank_precision],
        "rerank_max_tokens": runtime.rerank_max_tokens,
        "load_s": round(load_s, 2),
        "query_embed": percentiles(query_s),
        "passages_per_s": round(len(texts) / encode_s, 1),
        f"rerank@{CANDIDATES}": percentiles(rerank_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=256, help="passages to encode")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the queries")
    parser.add_argument(
        "--rerank-max-tokens", type=int, default=None, help="also: int8 with shorter pairs"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "onnx_backends.json")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings()
    runs = variants(settings.model_runtime(), args.rerank_max_tokens)
    texts = passages(settings, BiEncoder(settings.embed_model, runs["onnx fp32"]), args.passages)
    rows = [measure(name, rt, settings, texts, args.repeat) for name, rt in runs.items()]

    base = rows[0]
    key = f"rerank@{CANDIDATES}"
    for row in rows:
        row["speedup_vs_torch"] = {
            "query_embed_p50": round(
                base["query_embed"]["p50_ms"] / row["query_embed"]["p50_ms"], 2
            ),
            "passages_per_s": round(row["passages_per_s"] / base["passages_per_s"], 2),
            f"{key}_p50": round(base[key]["p50_ms"] / row[key]["p50_ms"], 2),
        }
    table = Table(
        title=f"{len(texts)} passages, {len(QUERIES)} queries x {args.repeat}, "
        f"{CANDIDATES} candidates per re-rank, {available_cores()} cores"
    )
    for col in (
        "variant",
        "query ms p50/p95",
        "passages/s",
        "rerank ms p50/p95",
        "x torch q/enc/rr",
    ):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for row in rows:
        s = row["speedup_vs_torch"]
        table.add_row(
            row["variant"],
            f"{row['query_embed']['p50_ms']:.1f} / {row['query_embed']['p95_ms']:.1f}",
            f"{row['passages_per_s']:.1f}",
            f"{row[key]['p50_ms']:.0f} / {row[key]['p95_ms']:.0f}",
            f"{s['query_embed_p50']:.1f} / {s['passages_per_s']:.1f} / {s[f'{key}_p50']:.1f}",
        )
    Console().print(table)
    doc = {
        "command": "python -m bench.onnx_backends "
        + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out" and v
        ),
        "cores": available_cores(),
        "threads": settings.threads,
        "passages": len(texts),
        "variants": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

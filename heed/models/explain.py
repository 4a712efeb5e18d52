"""Which passage words mattered to the cross-encoder: word-level highlights with weights 0-1.

The re-ranker reads query and passage together, so it can say which passage words drove its
score. Two readings of that, both from heed's own cross-encoder:

- ``gradient`` (gradient x input): how much each passage token's embedding pushes the score up,
  the first-order effect of removing it. Positive contributions only: a word that lowers the
  score is not a reason the passage ranked.
- ``attention``: how much the query tokens attend to each passage token, averaged over heads and
  the last layers. Cheaper (no backward pass), but attention is where the model looks, not
  necessarily what changes its decision.

The default is the one that passes the deletion check better (``bench/explain_faithfulness.py``:
deleting the top-weighted words must lower the score more than deleting random words).

Word pieces are merged back into words by character offsets; a CJK character is a word of its
own (no spaces to split on); stop-words and punctuation never get highlighted.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast, get_args

import numpy as np
import torch

from heed.keywords import CJK_RANGES, is_stopword
from heed.models.encoders import Reranker
from heed.models.gated_cross_encoder import GatedCrossEncoder
from heed.records import embed_text
from heed.settings import ExplainMethod as Method
from heed.settings import default

METHODS: tuple[Method, ...] = get_args(Method)
ATTENTION_LAYERS = 3  # the last layers: where query and passage have been read together
MIN_WEIGHT = 0.25  # lighter words are not worth a reader's glance
MAX_WORDS = 8  # highlights compete for attention: a page of marks would show nothing
CJK_STOP = frozenset("的了是和在与及或也而之其")  # function characters, the CJK stop-words

_WORD = re.compile(rf"[{CJK_RANGES}]|[^\W_]+(?:['\u2019][^\W_]+)*", re.UNICODE)


@dataclass(frozen=True)
class Span:
    """A highlighted word: ``text[start:end]``, weight 1 for the word that mattered most."""

    start: int
    end: int
    weight: float


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the words in ``text``: letter/digit runs, or one CJK character."""
    return [m.span() for m in _WORD.finditer(text)]


def words_from_tokens(
    text: str,
    offsets: Sequence[tuple[int, int]],
    weights: Sequence[float],
    min_weight: float = MIN_WEIGHT,
    max_words: int | None = MAX_WORDS,
) -> list[Span]:
    """Token weights summed into the words they overlap, stop-words dropped, scaled to 0-1.

    ``offsets`` are character spans of the tokens in ``text``; tokens with an empty span (special
    tokens) or outside ``text`` carry no word. Only the ``max_words`` heaviest words of weight
    ``min_weight`` or more are kept, in text order.
    """
    words = word_spans(text)
    starts = [s for s, _ in words]
    totals = np.zeros(len(words))
    for (start, end), weight in zip(offsets, weights, strict=True):
        if end <= start or weight <= 0:
            continue
        i = bisect.bisect_right(starts, start) - 1
        while 0 <= i < len(words) and words[i][0] < end:
            if words[i][1] > start:
                totals[i] += weight
            i += 1
    for i, (s, e) in enumerate(words):
        if is_stop(text[s:e]):
            totals[i] = 0.0
    top = totals.max(initial=0.0)
    if top <= 0:
        return []
    keep = np.flatnonzero((totals > 0) & (totals / top >= min_weight))
    if max_words is not None:
        keep = np.sort(keep[np.argsort(-totals[keep], kind="stable")][:max_words])
    return [Span(*words[i], round(float(totals[i] / top), 3)) for i in keep]


def is_stop(word: str) -> bool:
    """Never highlighted: a stop-word, or a CJK function character."""
    return word in CJK_STOP or is_stopword(word)


class Explainer:
    """Highlights for (query, passage) pairs from heed's gated cross-encoder (torch)."""

    def __init__(self, reranker: Reranker, method: Method | None = None):
        self.reranker = reranker
        self.method: Method = method or default("explain_method")
        self._lock = threading.Lock()  # one explanation at a time keeps the cores for searches

    @property
    def model(self) -> GatedCrossEncoder:
        """The torch re-ranker, loaded by the first explanation, not at start-up: search may
        run on an ONNX export, and many processes (``heed search``, a service nobody asks
        for explanations) never need it."""
        with self._lock:
            return cast(GatedCrossEncoder, self.reranker.torch_model())

    def explain(
        self,
        query: str,
        passages: Sequence[tuple[str, str]],
        method: Method | None = None,
        min_weight: float = MIN_WEIGHT,
        max_words: int | None = MAX_WORDS,
    ) -> list[list[Span]]:
        """One span list per ``(title, text)`` passage, in the coordinates of ``text``."""
        if not passages:
            return []
        method = method or self.method
        model = self.model
        texts = [embed_text(title, text) for title, text in passages]
        batch, offsets = model.encode_pairs_with_offsets([query] * len(texts), texts)
        with self._lock:
            weights = (
                _gradient(model, batch) if method == "gradient" else _attention(model, batch)
            ).numpy()
        out = []
        for row, (_, text) in enumerate(passages):
            base = len(texts[row]) - len(text)  # the passage follows the title and a newline
            shifted = [(s - base, e - base) if s >= base else (0, 0) for s, e in offsets[row]]
            passage_cols = np.flatnonzero(batch["segments"][row].numpy() == 1)
            weights_row = weights[row, passage_cols].tolist()
            out.append(words_from_tokens(text, shifted, weights_row, min_weight, max_words))
        return out


def _gradient(model: GatedCrossEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Gradient x input at the word embeddings, summed over dimensions: (batch, tokens)."""
    with torch.no_grad():
        embeds = model.bert.embeddings.word_embeddings(batch["input_ids"])
    embeds.requires_grad_(True)
    with torch.enable_grad():
        scores = model({**batch, "inputs_embeds": embeds})
        (grad,) = torch.autograd.grad(scores.sum(), embeds)
    weights: torch.Tensor = (grad * embeds).sum(-1).clamp(min=0).detach()
    return weights


@torch.inference_mode()
def _attention(model: GatedCrossEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Attention from query tokens to each token, mean over heads and the last layers."""
    _, attentions = model.hidden_states(batch, output_attentions=True)
    seg = batch["segments"]
    from_query = (seg == 0).to(torch.float32)  # (b, s)
    total = torch.zeros(seg.shape, dtype=torch.float32)
    for weights in attentions[-ATTENTION_LAYERS:]:
        per_head = weights.float().mean(1)  # (b, s, s)
        total += (from_query[:, :, None] * per_head).sum(1)
    return total * (seg == 1)


def explainer_for(reranker: Reranker | None, method: Method) -> Explainer | None:
    """An explainer over ``reranker`` when it is heed's own cross-encoder (others can't say)."""
    return Explainer(reranker, method) if reranker is not None and reranker.is_heed else None

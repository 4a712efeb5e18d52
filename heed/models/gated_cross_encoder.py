"""heed's cross-encoder: one transformer reads query and passage together, through gated attention.

Why this shape and not a [CLS] classifier: a fresh classification head on 2 CPU cores never learns
enough to beat dense retrieval (see models/heed-reranker-minilm/README.md). Here the pair runs as
``[CLS] q [SEP] [CLS] p [SEP]`` through the bi-encoder's own layers, and every attention head has a
learned gate, an additive bias on the logits from query tokens to passage tokens and back. At a
closed gate (-inf) the model *is* the bi-encoder (each segment mean-pooled, cosine); training on
question/passage pairs opens the gates where reading the two together pays. Step 0 therefore
ranks like dense retrieval, and fine-tuning only has to improve on it.

The folder format: the transformer as a plain BERT folder (config.json, model.safetensors,
tokenizer files) plus ``heed_reranker.json`` holding the gates, scale and bias.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from heed.models.batching import length_sorted_batches

HEAD_FILE = "heed_reranker.json"
QUERY_MAX_TOKENS = 64


class GatedCrossEncoder(nn.Module):
    """BERT over a (query, passage) pair; score = scale * cos(mean(query), mean(passage)) + bias."""

    def __init__(self, bert: Any, tokenizer: Any, gate_init: float = -6.0, scale: float = 20.0):
        super().__init__()
        self.bert = bert
        self.tokenizer = tokenizer
        cfg = bert.config
        self.gates = nn.Parameter(
            torch.full((cfg.num_hidden_layers, cfg.num_attention_heads), gate_init)
        )
        self.scale = nn.Parameter(torch.tensor(scale))
        self.bias = nn.Parameter(torch.tensor(0.0))
        self.max_length = 256

    # -- inputs ----------------------------------------------------------------------------------
    def encode_pairs(
        self, queries: Sequence[str], passages: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """Token ids, positions (restarting at the passage's own [CLS]) and segment ids, padded."""
        return encode_pairs(self.tokenizer, queries, passages, self.max_length)

    def encode_pairs_with_offsets(
        self, queries: Sequence[str], passages: Sequence[str]
    ) -> tuple[dict[str, torch.Tensor], list[list[tuple[int, int]]]]:
        """:meth:`encode_pairs`, plus each passage token's character span (explanations)."""
        return encode_pairs_with_offsets(self.tokenizer, queries, passages, self.max_length)

    # -- forward ---------------------------------------------------------------------------------
    def layer_masks(self, segments: torch.Tensor, dtype: torch.dtype) -> list[torch.Tensor]:
        """Additive attention masks, one per layer: padding closed, cross-segment gated per head."""
        neg = torch.finfo(dtype).min
        pad = (segments < 0)[:, None, None, :].to(dtype) * neg  # (b, 1, 1, s)
        cross = (segments[:, :, None] != segments[:, None, :])[:, None, :, :].to(dtype)
        return [pad + cross * gate[None, :, None, None].to(dtype) for gate in self.gates]

    def hidden_states(
        self, batch: dict[str, torch.Tensor], output_attentions: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Last hidden states, and per-layer attention weights when asked (for explanations)."""
        seg = batch["segments"]
        embeds = batch.get("inputs_embeds")  # given by gradient explanations, to differentiate
        hidden = self.bert.embeddings(
            input_ids=batch["input_ids"] if embeds is None else None,
            inputs_embeds=embeds,
            position_ids=batch["position_ids"],
            token_type_ids=torch.zeros_like(batch["input_ids"]),
        )
        attentions = []
        for layer, mask in zip(
            self.bert.encoder.layer, self.layer_masks(seg, hidden.dtype), strict=True
        ):
            if output_attentions:
                attn = layer.attention.self
                # Same computation as the layer's own attention, kept to return the weights.
                out, weights = _attention_with_weights(attn, hidden, mask)
                attention_output = layer.attention.output(out, hidden)
                hidden = layer.feed_forward_chunk(attention_output)
                attentions.append(weights)
            else:
                hidden = layer(hidden, mask)
        return hidden, attentions

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden, _ = self.hidden_states(batch)
        seg = batch["segments"]
        q = _masked_mean(hidden, seg == 0)
        p = _masked_mean(hidden, seg == 1)
        cos = nn.functional.cosine_similarity(q, p, dim=-1)
        return self.scale * cos + self.bias

    # -- inference -------------------------------------------------------------------------------
    @torch.inference_mode()
    def score(
        self, query: str | Sequence[str], passages: Sequence[str], batch_size: int = 32
    ) -> NDArray[np.float32]:
        """Scores for (query, passage) pairs; batches are length-sorted so padding stays small."""
        return score_pairs(
            lambda batch: self.forward(batch).float().numpy(),
            self.tokenizer,
            query,
            passages,
            self.max_length,
            batch_size,
        )

    # -- folder format ---------------------------------------------------------------------------
    def save(self, folder: Path, fp16: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        bert = self.bert
        if fp16:
            bert = _half_copy(bert)
        bert.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        head = {
            "architecture": "heed-gated-cross-encoder",
            "gates": self.gates.detach().tolist(),
            "scale": self.scale.item(),
            "bias": self.bias.item(),
            "max_length": self.max_length,
            "query_max_tokens": QUERY_MAX_TOKENS,
        }
        (folder / HEAD_FILE).write_text(json.dumps(head, indent=1))

    @classmethod
    def from_bert_folder(cls, folder: Path, gate_init: float = -6.0) -> GatedCrossEncoder:
        """A fresh model from a bi-encoder folder (the training starting point)."""
        from transformers import AutoModel, AutoTokenizer

        bert = AutoModel.from_pretrained(
            str(folder), dtype=torch.float32, attn_implementation="sdpa"
        )
        tok = AutoTokenizer.from_pretrained(str(folder))
        return cls(bert, tok, gate_init=gate_init)

    @classmethod
    def load(cls, folder: Path) -> GatedCrossEncoder:
        """A trained model saved by :meth:`save` (weights may be fp16 on disk; runs in fp32)."""
        head = json.loads((folder / HEAD_FILE).read_text())
        model = cls.from_bert_folder(folder)
        with torch.no_grad():
            model.gates.copy_(torch.tensor(head["gates"]))
            model.scale.fill_(head["scale"])
            model.bias.fill_(head["bias"])
        model.max_length = int(head.get("max_length", 256))
        return model.eval()


def encode_pairs(
    tokenizer: Any, queries: Sequence[str], passages: Sequence[str], max_length: int
) -> dict[str, torch.Tensor]:
    """The model's inputs for (query, passage) pairs, each pair cut to ``max_length`` tokens.

    The query keeps up to QUERY_MAX_TOKENS; the passage gets the rest of the budget, so a long
    passage loses its tail, never the question.
    """
    return encode_pairs_with_offsets(tokenizer, queries, passages, max_length)[0]


def encode_pairs_with_offsets(
    tokenizer: Any, queries: Sequence[str], passages: Sequence[str], max_length: int
) -> tuple[dict[str, torch.Tensor], list[list[tuple[int, int]]]]:
    """:func:`encode_pairs`, plus the character span of each passage token in its passage."""
    q_ids = tokenizer(list(queries), truncation=True, max_length=QUERY_MAX_TOKENS)["input_ids"]
    rows, offsets = [], []
    for q, passage in zip(q_ids, passages, strict=True):
        budget = max(8, max_length - len(q))
        enc = tokenizer(passage, truncation=True, max_length=budget, return_offsets_mapping=True)
        rows.append((q, enc["input_ids"]))
        offsets.append([tuple(o) for o in enc["offset_mapping"]])
    width = max(len(q) + len(p) for q, p in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    pos = torch.zeros_like(ids)
    seg = torch.full_like(ids, -1)
    for i, (q, p) in enumerate(rows):
        n = len(q) + len(p)
        ids[i, :n] = torch.tensor(q + p)
        pos[i, : len(q)] = torch.arange(len(q))
        pos[i, len(q) : n] = torch.arange(len(p))
        seg[i, : len(q)] = 0
        seg[i, len(q) : n] = 1
    return {"input_ids": ids, "position_ids": pos, "segments": seg}, offsets


def score_pairs(
    run: Callable[[dict[str, torch.Tensor]], NDArray[np.float32]],
    tokenizer: Any,
    query: str | Sequence[str],
    passages: Sequence[str],
    max_length: int,
    batch_size: int = 32,
) -> NDArray[np.float32]:
    """Scores from ``run`` (torch or ONNX Runtime) over length-sorted batches, in input order."""
    queries = [query] * len(passages) if isinstance(query, str) else list(query)
    out = np.zeros(len(passages), dtype=np.float32)
    for idx in length_sorted_batches(passages, batch_size):
        batch = encode_pairs(
            tokenizer, [queries[i] for i in idx], [passages[i] for i in idx], max_length
        )
        out[idx] = run(batch)
    return out


def is_gated_cross_encoder(folder: Path) -> bool:
    return (folder / HEAD_FILE).is_file()


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def _attention_with_weights(
    attn: Any, hidden: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    b, s, _ = hidden.shape
    shape = (b, s, -1, attn.attention_head_size)
    q = attn.query(hidden).view(shape).transpose(1, 2)
    k = attn.key(hidden).view(shape).transpose(1, 2)
    v = attn.value(hidden).view(shape).transpose(1, 2)
    logits = q @ k.transpose(2, 3) * attn.scaling + mask
    weights = logits.softmax(-1)
    out = (weights @ v).transpose(1, 2).reshape(b, s, -1)
    return out, weights


def _half_copy(bert: Any) -> Any:
    import copy

    return copy.deepcopy(bert).half()

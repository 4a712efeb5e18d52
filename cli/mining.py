"""Hard negatives for training pairs, mined with heed's own hybrid search.

For each source family (``medquad``, ``scitldr-a``, ...) the passages of its training pairs
(positives and given negatives) become one real heed index; each query's hybrid results, minus
its positive, near-duplicates of it and any other positive of the same query, are its mined
negatives: passages that heed's first stage ranks high but that do not answer the query, which is
what a re-ranker must learn to push down. The index is built once per pool (cached by content in
``work_dir``), so a resumed run does not pay for it again.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from heed.models.training_data import SQUAD, TrainPair, is_near_duplicate
from heed.records import Document
from heed.settings import Settings
from heed.store import open_reader
from indexer.build import build_index
from search.searcher import open_searcher

log = logging.getLogger(__name__)


def family(source: str) -> str:
    """The pool a pair's negatives come from: its source up to the first slash."""
    return source.split("/", 1)[0]


def mine_hard_negatives(
    pairs: list[TrainPair],
    settings: Settings,
    work_dir: Path,
    count: int,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> list[TrainPair]:
    """``pairs`` with ``count`` mined negatives first, then their given ones, for every pair
    outside SQuAD (whose file already holds same-article BM25 and random-article negatives)."""
    groups: dict[str, list[TrainPair]] = defaultdict(list)
    for pair in pairs:
        if pair.source != SQUAD:
            groups[family(pair.source)].append(pair)
    for name, members in groups.items():
        _mine_family(name, members, settings, work_dir, count, on_progress)
    return pairs


def _mine_family(
    name: str,
    pairs: list[TrainPair],
    settings: Settings,
    work_dir: Path,
    count: int,
    on_progress: Callable[[str, int, int], None] | None,
) -> None:
    pool = list(dict.fromkeys(t for p in pairs for t in (p.positive, *p.negatives)))
    digest = hashlib.sha1("\x00".join(pool).encode()).hexdigest()[:12]
    index_dir = work_dir / f"mining-{name}-{digest}"
    local = settings.model_copy(update={"index_dir": index_dir})
    if not (index_dir / "DONE").is_file():
        docs = (Document(doc_id=f"p{i}", text=text) for i, text in enumerate(pool))
        build_index(docs, local, rebuild=True)
        (index_dir / "DONE").write_text(f"{len(pool)} passages\n")
    searcher = open_searcher(local, open_reader(index_dir), rerank=False, explain=False)
    positives: dict[str, set[str]] = defaultdict(set)
    for p in pairs:
        positives[p.query].add(p.positive)
    for n, pair in enumerate(pairs, 1):
        hits = searcher.search(pair.query, k=count * 2 + 5, mode="hybrid", rerank=False).hits
        mined: list[str] = []
        for hit in hits:
            text = pool[int(hit.passage.doc_id[1:])]
            if text in positives[pair.query] or is_near_duplicate(text, pair.positive):
                continue
            if text not in mined:
                mined.append(text)
            if len(mined) == count:
                break
        given = [t for t in pair.negatives if t not in mined and t not in positives[pair.query]]
        pair.negatives = mined + given
        if on_progress and (n % 50 == 0 or n == len(pairs)):
            on_progress(name, n, len(pairs))
    log.info("mined negatives for %d %s pairs over %d passages", len(pairs), name, len(pool))

"""Are the highlighted words the ones that mattered? A deletion check, each method beside random.

For ~50 (query, relevant passage) pairs of a BEIR collection, each explain method weights the
passage words; deleting its top ``n`` words should lower the cross-encoder's score more than
deleting ``n`` random content words (the baseline, averaged over several draws). The method with
the larger mean drop is the more faithful one and becomes the default. Also times each method
for 10 passages, the cost of ``"explain": true`` on a page of results.

    python -m bench.explain_faithfulness [--collection ../shared/eval/cranfield] [--pairs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS, ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_pairs(collection: Path, count: int) -> list[tuple[str, str, str]]:
    """(query, title, text) for the first ``count`` judged queries and their best document."""
    from search.evaluation import load_collection

    col = load_collection(collection)
    wanted: dict[str, list[str]] = {}
    for qid in sorted(col.qrels, key=lambda q: int(q) if q.isdigit() else q)[:count]:
        doc_id = max(col.qrels[qid], key=lambda d: col.qrels[qid][d])
        wanted.setdefault(doc_id, []).append(qid)
    pairs = []
    with col.corpus.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for qid in wanted.get(str(row["_id"]), []):
                pairs.append((col.queries[qid], row.get("title", ""), row["text"]))
    return pairs


def deletion_drop(model: Any, query: str, text: str, spans: Sequence[tuple[int, int]]) -> float:
    """How much the cross-encoder's score falls when the words at ``spans`` leave ``text``."""
    kept, last = [], 0
    for start, end in sorted(spans):
        kept.append(text[last:start])
        last = end
    kept.append(text[last:])
    before, after = model.score(query, [text, "".join(kept)])
    return float(before - after)


def top_spans(spans: Sequence[Any], n: int) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in sorted(spans, key=lambda s: -s.weight)[:n]]


def content_words(text: str) -> np.ndarray:
    """Indices of the words a highlight could pick (not stop-words): the random baseline's pool."""
    from heed.models.explain import is_stop, word_spans

    return np.array([i for i, (s, e) in enumerate(word_spans(text)) if not is_stop(text[s:e])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collection", type=Path, default=ROOT.parent / "shared/eval/cranfield")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--delete", type=int, default=5, help="words deleted per passage")
    parser.add_argument("--draws", type=int, default=5, help="random deletions per passage")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from heed.models.encoders import load_reranker
    from heed.models.explain import METHODS, Explainer, word_spans
    from heed.settings import Settings

    settings = Settings()
    reranker = load_reranker(settings.rerank_model, settings.model_runtime())
    explainer = Explainer(reranker)
    model = explainer.model
    pairs = load_pairs(args.collection, args.pairs)
    rng = np.random.default_rng(0)
    drops: dict[str, list[float]] = {m: [] for m in (*METHODS, "random")}
    for query, title, text in pairs:
        text = text[:1500]  # more than the re-ranker reads of it (128 tokens)
        for method in METHODS:
            spans = explainer.explain(
                query, [(title, text)], method=method, min_weight=0.0, max_words=None
            )[0]
            drops[method].append(deletion_drop(model, query, text, top_spans(spans, args.delete)))
        pool, words = content_words(text), word_spans(text)
        draws = []
        for _ in range(args.draws):
            pick = rng.choice(pool, size=min(args.delete, len(pool)), replace=False)
            draws.append(deletion_drop(model, query, text, [words[i] for i in pick]))
        drops["random"].append(float(np.mean(draws)))

    timing = {}
    page = [(title, text[:1200]) for _, title, text in pairs[:10]]
    for method in METHODS:
        explainer.explain(pairs[0][0], page[:2], method=method)  # warm up
        started = time.perf_counter()
        for query, _, _ in pairs[:5]:
            explainer.explain(query, page, method=method)
        timing[method] = (time.perf_counter() - started) / 5 * 1000

    rows = {
        name: {
            "mean_drop": round(float(np.mean(values)), 4),
            "vs_random": round(float(np.mean(values) / np.mean(drops["random"])), 2),
            "beats_random_share": round(
                float(np.mean(np.array(values) > np.array(drops["random"]))), 3
            ),
            "ms_per_10_passages": round(timing.get(name, 0.0), 1),
        }
        for name, values in drops.items()
    }
    table = Table(title=f"deletion check: {len(pairs)} pairs, top {args.delete} words deleted")
    for col in (
        "method",
        "mean score drop",
        "x random",
        "pairs beating random",
        "ms / 10 passages",
    ):
        table.add_column(col, justify="right")
    for name, row in rows.items():
        table.add_row(
            name,
            f"{row['mean_drop']:.3f}",
            f"{row['vs_random']:.2f}",
            f"{row['beats_random_share']:.0%}" if name != "random" else "-",
            f"{row['ms_per_10_passages']:.0f}" if name != "random" else "-",
        )
    Console().print(table)
    out = {
        "collection": args.collection.name,
        "pairs": len(pairs),
        "deleted_words": args.delete,
        "random_draws": args.draws,
        "methods": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "explain_faithfulness.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

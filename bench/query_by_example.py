"""Query by example on Cranfield: a judged abstract as query, the other judged ones as answers.

Cranfield's own queries are short (27 keyword terms at most), so they never reach the long-query
path. Here each query with two or more judged documents becomes a long query: the text of its
best-judged document; the other judged documents, with their grades, are what should come back
(the source document itself is in the index and counts as not relevant: the same for every
variant). Each mode runs twice: keyword search over every term of the example (what heed did
before) and over its ``HEED_KEYWORD_TERMS`` most informative terms (IDF). Same index, same
process, same queries.

    python -m bench.query_by_example ../shared/eval/cranfield --index var/bench/cranfield-idx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import write_results
from heed.settings import Settings
from heed.store import open_reader
from indexer.build import build_index
from indexer.sources import Fields, read_documents
from search.evaluation import Collection, evaluate, load_collection
from search.modes import EVAL_MODES, parse_modes
from search.searcher import load_models, open_searcher

ALL_TERMS = 1_000_000  # keyword_terms above any query's term count: every term is kept


def examples(collection: Collection, corpus: dict[str, str]) -> Collection:
    """Each judged query with 2+ documents, as its best document's text; answers: the rest."""
    queries, qrels = {}, {}
    for qid, judged in collection.qrels.items():
        ranked = sorted(judged, key=lambda d: (-judged[d], int(d) if d.isdigit() else d))
        source = next((d for d in ranked if corpus.get(d)), None)
        others = {d: g for d, g in judged.items() if d != source}
        if source and others:
            queries[qid], qrels[qid] = corpus[source], others
    return Collection(f"{collection.name}-by-example", collection.corpus, queries, qrels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collection", type=Path)
    parser.add_argument("--index", type=Path, default=Path("var/bench/cranfield-idx"))
    parser.add_argument("--modes", default=",".join(EVAL_MODES))
    args = parser.parse_args()

    collection = load_collection(args.collection)
    corpus = {}
    with collection.corpus.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            corpus[str(row["_id"])] = row.get("text", "")
    by_example = examples(collection, corpus)
    settings = Settings(index_dir=args.index)
    build_index(read_documents([collection.corpus], Fields(id="_id"), lambda _: None), settings)
    models = load_models(settings, explain=False)
    names = parse_modes(args.modes)
    lengths = sorted(len(q) for q in by_example.queries.values())
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for variant, keep in (("all terms", ALL_TERMS), ("informative", settings.keyword_terms)):
        tuned = settings.model_copy(update={"keyword_terms": keep})
        searcher = open_searcher(tuned, open_reader(settings.index_dir), models)
        results = evaluate(searcher, by_example, names)
        rows[variant] = {name: r.summary() for name, r in results.items()}

    table = Table(
        title=f"{by_example.name}: {len(by_example.queries)} queries, "
        f"{lengths[len(lengths) // 2]} characters median, {lengths[-1]} max"
    )
    for col in ("mode", "keyword terms", "nDCG@10", "Recall@100", "MRR@10", "p50 ms"):
        table.add_column(col)
    for name in names:
        for variant in rows:
            r = rows[variant][name]
            table.add_row(
                name,
                variant,
                f"{r['ndcg@10']:.3f}",
                f"{r['recall@100']:.3f}",
                f"{r['mrr@10']:.3f}",
                f"{r['latency_ms_p50']:.0f}",
            )
    Console().print(table)
    out = write_results(
        "query_by_example",
        {
            "collection": by_example.name,
            "queries": len(by_example.queries),
            "query_chars": {"median": lengths[len(lengths) // 2], "max": lengths[-1]},
            "keyword_terms": settings.keyword_terms,
            "variants": rows,
        },
    )
    Console().print(f"written {out}")


if __name__ == "__main__":
    main()

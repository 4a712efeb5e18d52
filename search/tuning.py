"""`heed tune`: an index's fusion weight (and re-rank weight, when re-ranking is on) chosen on
its own self-evaluation queries, and its ``relevance`` calibrations fitted on them.

Against over-fitting a few hundred generated queries, a weight replaces the global default
only when it wins clearly: a mean nDCG@10 gain of at least :data:`MIN_GAIN`, and more than
zero at the lower end of a paired bootstrap (:data:`CONFIDENCE`) over the queries. Otherwise
the default stays, and the measurements say why.

The fusion weight is chosen on the fused list itself (hybrid, not re-ranked): the re-ranker
only re-orders its head and keeps part of the fused score, so a better fused list is the lever,
and sweeping it costs no cross-encoder time. The re-rank weight is then swept over the
re-ranked list, whose cross-encoder scores are computed once and remembered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from heed.scripts import read_defaults
from heed.tuning import Calibration, Tuning
from search.evaluation import Collection, evaluate
from search.modes import EVAL_MODES
from search.relevance import features, fit
from search.searcher import Searcher

DENSE_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
RERANK_WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
MIN_GAIN = 0.01
CONFIDENCE = 0.95
RESAMPLES = 2000
CALIBRATION_DEPTH = 10  # results per query the calibration sees (those a page shows)


class CachedReranker:
    """The re-ranker with its scores remembered per (query, passage): a sweep over weights
    re-ranks the same pairs again and again."""

    def __init__(self, reranker: Any):
        self.inner = reranker
        self.cache: dict[tuple[str, str], float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def score(self, query: str, texts: list[str]) -> NDArray[np.float32]:
        todo = list(dict.fromkeys(t for t in texts if (query, t) not in self.cache))
        if todo:
            for t, s in zip(todo, self.inner.score(query, todo), strict=True):
                self.cache[(query, t)] = float(s)
        return np.array([self.cache[(query, t)] for t in texts], dtype=np.float32)


def tune(
    searcher: Searcher,
    collection: Collection,
    *,
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
    calibrate_modes: list[str] | None = None,
) -> Tuning:
    """Weights and calibrations for the index ``searcher`` reads (a held-out copy: see
    search.self_eval), measured on ``collection``; ``calibrate_modes`` (eval names) default
    to every mode the searcher's models can run."""
    if searcher.reranker is not None and not isinstance(searcher.reranker, CachedReranker):
        searcher.reranker = CachedReranker(searcher.reranker)  # type: ignore[assignment]
    report = on_step or (lambda _: None)
    s = searcher.settings
    base = read_defaults(searcher.reader.manifest.scripts, s)  # what serves without tuning
    rerank = base.rerank and searcher.reranker is not None
    rng = np.random.default_rng(seed)
    measured: dict[str, float] = {}

    def ndcg(mode_name: str, **options: Any) -> NDArray[np.float64]:
        result = evaluate(searcher, collection, [mode_name], **options)[mode_name]
        per_query = result.per_query["ndcg@10"]
        return np.array([per_query[q] for q in collection.queries])

    by_weight = {}
    for w in DENSE_WEIGHTS:
        report(f"hybrid: dense_weight {w:g}")
        by_weight[w] = ndcg("hybrid", dense_weight=w)
    dense_weight = _choose(by_weight, base.dense_weight, rng, measured, "dense_weight")

    rerank_weight = None
    if rerank:
        by_rerank = {}
        for w in RERANK_WEIGHTS:
            report(f"hybrid+rerank: rerank_weight {w:g}")
            by_rerank[w] = ndcg("hybrid+rerank", dense_weight=dense_weight, rerank_weight=w)
        chosen = _choose(by_rerank, base.rerank_weight, rng, measured, "rerank_weight")
        rerank_weight = None if chosen == base.rerank_weight else chosen

    calibration = {}
    weights = {"dense_weight": dense_weight, "rerank_weight": rerank_weight or base.rerank_weight}
    for name, spec in EVAL_MODES.items():
        if (spec.rerank and searcher.reranker is None) or name not in (
            calibrate_modes or EVAL_MODES
        ):
            continue
        report(f"calibrating {name}")
        calibration[name] = calibrate(searcher, collection, spec.mode, spec.rerank, **weights)
    return Tuning(
        dense_weight=dense_weight,
        rerank_weight=rerank_weight,
        fusion=s.fusion,
        queries=len(collection.queries),
        seed=seed,
        measured=measured,
        calibration=calibration,
        tuned_at=datetime.now(UTC),
    )


def _choose(
    runs: dict[float, NDArray[np.float64]],
    default: float,
    rng: np.random.Generator,
    measured: dict[str, float],
    knob: str,
) -> float:
    """The best value if it beats ``default`` clearly on these queries, else ``default``."""
    if default not in runs:
        runs = {**runs}
        nearest = min(runs, key=lambda v: abs(v - default))
        runs[default] = runs[nearest]
    best = max(runs, key=lambda v: (runs[v].mean(), -abs(v - default)))
    gain = runs[best] - runs[default]
    low = _bootstrap_low(gain, rng)
    adopted = gain.mean() >= MIN_GAIN and low > 0
    measured.update(
        {
            f"{knob}_default": default,
            f"{knob}_best": best,
            f"{knob}_default_ndcg@10": round(float(runs[default].mean()), 4),
            f"{knob}_best_ndcg@10": round(float(runs[best].mean()), 4),
            f"{knob}_gain_low": round(low, 4),
        }
    )
    return best if adopted else default


def _bootstrap_low(gain: NDArray[np.float64], rng: np.random.Generator) -> float:
    """The lower end of the paired bootstrap interval of the mean gain."""
    if not gain.any():
        return 0.0
    picks = rng.integers(0, len(gain), size=(RESAMPLES, len(gain)))
    means = gain[picks].mean(axis=1)
    return float(np.quantile(means, 1 - CONFIDENCE))


def calibration_data(
    searcher: Searcher, collection: Collection, mode: Any, rerank: bool, **options: Any
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Features and labels (relevant or not) of the top results of every judged query."""
    xs, ys = [], []
    for qid, text in collection.queries.items():
        hits = searcher.search(text, CALIBRATION_DEPTH, mode=mode, rerank=rerank, **options).hits
        xs.append(features(hits))
        ys += [float(collection.qrels[qid].get(h.passage.doc_id, 0) > 0) for h in hits]
    return np.vstack(xs), np.array(ys)


def calibrate(
    searcher: Searcher, collection: Collection, mode: Any, rerank: bool, **options: Any
) -> Calibration:
    x, y = calibration_data(searcher, collection, mode, rerank, **options)
    return fit(x, y)

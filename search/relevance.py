"""``relevance``: a result's final score turned into a probability of relevance, per index.

The model (heed.tuning.Calibration) is fitted by `heed tune` on self-evaluation queries, one per
eval mode (``hybrid+rerank``...), and stored with the index's tuning. Its features are the
result's final score and two signals of the whole query, read from the top result: its dense
cosine and its cross-encoder score. A fused score says how a result compares with the others
of *its* list (the best one of any list scores about 1); the query signals say whether the
list is any good, so a query about nothing in the index gets low relevance everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from heed.settings import Fusion, Mode
from heed.tuning import Calibration, Tuning
from search.hits import Hit
from search.modes import MODES, eval_name

RIDGE = 1e-3  # keeps the fit finite when the classes separate


def calibration_for(
    tuning: Tuning | None, mode: Mode, reranked: bool, fusion: Fusion
) -> Calibration | None:
    """The calibration of this kind of search, if `heed tune` fitted one."""
    if tuning is None or (MODES[mode].dense and MODES[mode].keyword and fusion != tuning.fusion):
        return None
    return tuning.calibration.get(eval_name(mode, reranked))


def features(hits: Sequence[Hit]) -> NDArray[np.float64]:
    """One row per hit: (final score, top hit's dense cosine, top hit's re-rank score)."""
    if not hits:
        return np.zeros((0, 3))
    top_dense = hits[0].dense_score or 0.0
    top_rerank = hits[0].rerank_score or 0.0
    return np.array([[h.score, top_dense, top_rerank] for h in hits], dtype=np.float64)


def set_relevance(hits: Sequence[Hit], calibration: Calibration) -> None:
    for h, row in zip(hits, features(hits), strict=True):
        h.relevance = round(calibration.probability(*row), 4)


def fit(x: NDArray[np.float64], y: NDArray[np.float64], iterations: int = 50) -> Calibration:
    """Logistic regression by Newton's method (a tiny ridge), the score's weight kept >= 0.

    Features are standardised for the fit and the weights mapped back, so the stored model
    takes raw scores.
    """
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-9] = 1.0  # a constant feature (no re-rank score) adds nothing
    z = (x - mean) / std
    weights = _newton(z, y, iterations)
    if weights[1] < 0:  # relevance must not fall as the score rises: drop the score instead
        weights = _newton(np.delete(z, 0, axis=1), y, iterations)
        weights = np.insert(weights, 1, 0.0)
    w = weights[1:] / std
    return Calibration(
        weights=[float(v) for v in w],
        intercept=float(weights[0] - (w * mean).sum()),
        fitted_on=len(y),
    )


def _newton(z: NDArray[np.float64], y: NDArray[np.float64], iterations: int) -> NDArray[np.float64]:
    design = np.hstack([np.ones((len(z), 1)), z])
    beta = np.zeros(design.shape[1])
    penalty = RIDGE * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -60, 60)))
        gradient = design.T @ (p - y) + penalty @ beta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta

"""An index's own read defaults and score calibration, chosen by `heed tune` (search.tuning)
on self-evaluation queries and kept in the manifest.

A :class:`Calibration` turns a result's final score into ``relevance``, a probability that the
result is relevant: a logistic model of the score plus two signals of the whole query (the top
result's dense cosine and cross-encoder score). Within one result list only the score varies
and its weight is never negative, so ``relevance`` never rises as the score falls.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

FEATURES = ("score", "top_dense", "top_rerank")


class Calibration(BaseModel):
    """``sigmoid(intercept + sum(w * feature))`` over :data:`FEATURES`; ``w[0] >= 0``."""

    weights: list[float] = Field(min_length=len(FEATURES), max_length=len(FEATURES))
    intercept: float
    fitted_on: int = 0  # results (query, hit) it was fitted on

    def probability(self, score: float, top_dense: float | None, top_rerank: float | None) -> float:
        z = self.intercept + sum(
            w * (x or 0.0)
            for w, x in zip(self.weights, (score, top_dense, top_rerank), strict=True)
        )
        z = max(-60.0, min(60.0, z))
        return 1.0 / (1.0 + math.exp(-z))


class Tuning(BaseModel):
    """What `heed tune` chose for one index, and the measurements behind the choice."""

    dense_weight: float = Field(ge=0.0, le=1.0)
    rerank_weight: float | None = Field(None, ge=0.0, le=1.0)  # None: the setting's
    fusion: str = "weighted"  # the fusion the weights and calibrations belong to
    queries: int = 0  # self-evaluation queries
    seed: int = 0
    # ndcg@10 on the self-evaluation queries: default and chosen, per tuned knob
    measured: dict[str, float] = {}
    calibration: dict[str, Calibration] = {}  # eval mode name (hybrid+rerank...) -> model
    tuned_at: datetime | None = None

    def summary(self) -> dict[str, Any]:
        """What /healthz shows: the choices, the measurements, the calibrated modes."""
        doc = self.model_dump(mode="json", exclude={"calibration"})
        return {**doc, "calibrated_modes": sorted(self.calibration)}

    def describe(self) -> str:
        """One line for `heed check` and logs."""
        parts = [f"dense_weight {self.dense_weight:g}"]
        if self.rerank_weight is not None:
            parts.append(f"rerank_weight {self.rerank_weight:g}")
        parts.append(f"relevance calibrated for {', '.join(self.calibration) or 'no mode'}")
        return f"tuned on {self.queries} self-evaluation queries: " + "; ".join(parts)

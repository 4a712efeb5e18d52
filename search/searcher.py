"""Retrieve -> fuse -> re-rank -> collapse. Plain Python over a store snapshot: no HTTP here.

The stages live in their own modules (``modes``, ``fusion``, ``rerank``, ``collapse``); a
:class:`Searcher` runs them for one index generation with one set of models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from heed.errors import ExplainUnavailable, InvalidInput, ModelMismatch
from heed.models.encoders import BiEncoder, Reranker
from heed.scripts import model_for_index, read_defaults
from heed.settings import Fusion, Mode, Settings, default
from heed.store import Reader
from heed.term_highlights import METHOD as TERMS
from heed.term_highlights import term_spans
from search.collapse import best_per_document
from search.hits import Hit, Outcome
from search.long_queries import fit_long_query
from search.modes import MODES, FusionParams, eval_name
from search.relevance import calibration_for, set_relevance
from search.rerank import rerank as rerank_hits

if TYPE_CHECKING:  # heed.models.explain imports torch: a keyword or ONNX search must not pay for it
    from heed.models.explain import Explainer

MAX_DEPTH = 1000
log = logging.getLogger(__name__)


class Searcher:
    """Answers queries against one index generation with one pair of models."""

    def __init__(
        self,
        reader: Reader,
        encoder: BiEncoder | None,
        reranker: Reranker | None,
        settings: Settings,
        explainer: Explainer | None = None,
    ):
        """``encoder`` None: keyword searches only (``heed search --mode keyword`` loads none)."""
        built_with = reader.manifest.embed_model
        if encoder is not None and encoder.name != built_with:
            raise ModelMismatch(
                f"the index was built with {built_with!r} but queries would be embedded with "
                f"{encoder.name!r}; set HEED_EMBED_MODEL={built_with} or rebuild the index"
            )
        self.reader = reader
        self.encoder = encoder
        self.reranker = reranker
        self.settings = settings
        self.explainer = explainer
        # Per index: a corpus the English models cannot read gets the measured defaults.
        self.defaults = read_defaults(reader.manifest.scripts, settings, reader.manifest.tuning)

    @property
    def can_explain(self) -> bool:
        return self.explainer is not None or self.defaults.term_highlights

    @property
    def generation(self) -> int:
        return self.reader.generation

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: Mode | None = None,
        rerank: bool | None = None,
        candidates: int | None = None,
        filters: dict[str, Any] | None = None,
        collapse: bool = True,
        fusion: Fusion | None = None,
        rerank_weight: float | None = None,
        explain: bool = False,
        dense_weight: float | None = None,
        min_relevance: float | None = None,
    ) -> Outcome:
        """The best ``k`` results (one passage per document when ``collapse``).

        ``explain`` adds highlights from the cross-encoder to each result, re-ranked or not.
        ``min_relevance`` drops results whose calibrated ``relevance`` is below it (an index
        `heed tune` has not calibrated for this mode refuses it).
        """
        query = query.strip()
        if not query:
            raise InvalidInput("query is empty")
        if len(query) > self.settings.max_query_chars:
            raise InvalidInput(
                f"the query is {len(query):,} characters long; the limit is "
                f"{self.settings.max_query_chars:,} (HEED_MAX_QUERY_CHARS)"
            )
        if explain and not self.can_explain:
            raise ExplainUnavailable(
                "explain needs heed's cross-encoder; set HEED_RERANK_MODEL to a heed re-ranker "
                f"folder (the default is {default('rerank_model')})"
            )
        s = self.settings
        mode = mode or s.mode
        if mode == "hybrid" and not self.reader.vectors_ok:
            # Keyword results beat none; the response's mode says which answered, /readyz fails.
            log.warning("generation %d: vectors unavailable, hybrid -> keyword", self.generation)
            mode = "keyword"
        rerank = self.defaults.rerank if rerank is None else rerank
        if rerank and self.reranker is None:
            rerank = False
        candidates = candidates or s.candidates
        timings: dict[str, float] = {}
        depth = min(MAX_DEPTH, max(k, candidates if rerank else 0) * 2)
        long_query = fit_long_query(query, self.encoder, self.reader, s.keyword_terms)
        model_query = long_query.model_text  # what the models read: query by example is long
        truncated = (
            MODES[mode].dense
            and self.encoder is not None
            and long_query.tokens > self.encoder.max_tokens - 2
        )
        query_vec = None
        if MODES[mode].dense:
            if self.encoder is None:
                raise InvalidInput(f"{mode} search needs the bi-encoder, and none is loaded")
            t = time.perf_counter()
            query_vec = self.encoder.encode_queries([model_query])[0]
            timings["embed"] = _ms(t)
        while True:
            t = time.perf_counter()
            hits = self.first_stage(
                query,
                query_vec,
                mode,
                depth,
                filters,
                fusion or s.fusion,
                long_query.terms,
                dense_weight,
            )
            timings["retrieve"] = timings.get("retrieve", 0.0) + _ms(t)
            if not collapse or depth >= MAX_DEPTH or len(hits) < depth:
                break
            if len({h.passage.doc_id for h in hits}) >= max(k, candidates if rerank else 0):
                break
            depth = min(MAX_DEPTH, depth * 2)  # many passages of the same documents: dig deeper
        if rerank and hits:
            t = time.perf_counter()
            assert self.reranker is not None
            weight = self.defaults.rerank_weight if rerank_weight is None else rerank_weight
            hits = rerank_hits(self.reranker, model_query, hits, candidates, weight)
            timings["rerank"] = _ms(t)
            cap = self.reranker.query_max_tokens
            truncated = truncated or (cap is not None and long_query.tokens > cap - 2)
        if collapse:
            hits = best_per_document(hits)
        hits = hits[:k]
        if query_vec is not None:
            self._fill_dense_scores(hits, query_vec)
        calibration = calibration_for(self.reader.manifest.tuning, mode, rerank, fusion or s.fusion)
        if calibration is None and min_relevance is not None:
            raise InvalidInput(
                f"min_relevance needs calibrated relevance; this index has none for "
                f"{eval_name(mode, rerank)} search: run `heed tune` on it"
            )
        if calibration is not None:
            set_relevance(hits, calibration)
            if min_relevance is not None:
                hits = [h for h in hits if h.relevance is not None and h.relevance >= min_relevance]
        method = None
        if explain and hits:
            t = time.perf_counter()
            method = self._explain(model_query, hits)
            timings["explain"] = _ms(t)
        return Outcome(
            hits=hits,
            mode=mode,
            reranked=rerank,
            timings_ms=timings,
            explain_method=method,
            query_truncated=truncated,
            keyword_terms=long_query.terms if MODES[mode].keyword else None,
        )

    # -- stages ----------------------------------------------------------------------------------
    def first_stage(
        self,
        query: str,
        query_vec: NDArray[np.float32] | None,
        mode: Mode,
        depth: int,
        filters: dict[str, Any] | None,
        fusion: Fusion,
        keyword_terms: list[str] | None = None,
        dense_weight: float | None = None,
    ) -> list[Hit]:
        """Passage hits before re-ranking, best first (not collapsed)."""
        spec = MODES[mode]
        dense = self.reader.dense(query_vec, depth, filters) if query_vec is not None else []
        keyword = self.reader.keyword(query, depth, filters, keyword_terms) if spec.keyword else []
        weight = self.defaults.dense_weight if dense_weight is None else dense_weight
        params = FusionParams(fusion, self.settings.rrf_k, weight)
        scored = spec.rank(dense, keyword, params)
        rows = self.reader.passages(pid for pid, _ in scored)
        dense_of, keyword_of = dict(dense), dict(keyword)
        return [
            Hit(
                rows[pid],
                s,
                s,
                dense_of.get(pid),
                keyword_of.get(pid),
                retrieved_by=tuple(
                    n for n, of in (("dense", dense_of), ("keyword", keyword_of)) if pid in of
                ),
            )
            for pid, s in scored
            if pid in rows
        ]

    def _explain(self, query: str, hits: Sequence[Hit]) -> str:
        if self.defaults.term_highlights:  # attention from an English model says nothing here
            for h in hits:
                h.highlights = term_spans(query, h.passage.text)
            return TERMS
        assert self.explainer is not None
        passages = [(h.passage.title, h.passage.text) for h in hits]
        for h, spans in zip(hits, self.explainer.explain(query, passages), strict=True):
            h.highlights = spans
        return self.explainer.method

    def _fill_dense_scores(self, hits: Sequence[Hit], query_vec: NDArray[np.float32]) -> None:
        missing = [h for h in hits if h.dense_score is None]
        if missing:
            vecs = self.reader.vectors([h.passage.passage_id for h in missing])
            for h, v in zip(missing, vecs @ query_vec, strict=True):
                h.dense_score = float(v)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


@dataclass
class Models:
    """The models a searcher uses; a service loads them once and keeps them across generations."""

    encoder: BiEncoder | None  # None: keyword searches only
    reranker: Reranker | None = None
    explainer: Explainer | None = None


def load_models(
    settings: Settings,
    *,
    rerank: bool = True,
    explain: bool = True,
    dense: bool = True,
    built_with: str | None = None,
) -> Models:
    """The bi-encoder (the one the index was ``built_with``, unless settings name one) unless
    no ``dense`` search will be asked for, plus the re-ranker when ``rerank`` or ``explain``
    wants it and settings name one, plus an explainer when ``explain`` and the re-ranker is
    heed's own. Nothing more: a one-query process (``heed search``) pays for each model it
    loads, and ``heed.models.explain`` imports torch."""
    from heed.models.encoders import load_bi_encoder, load_reranker

    runtime = settings.model_runtime()
    encoder = load_bi_encoder(model_for_index(settings, built_with), runtime) if dense else None
    reranker = None
    if settings.rerank_model and (rerank or explain):
        reranker = load_reranker(settings.rerank_model, runtime)
    explainer = None
    if explain:
        from heed.models.explain import explainer_for

        explainer = explainer_for(reranker, settings.explain_method)
    return Models(encoder, reranker, explainer)


def open_searcher(
    settings: Settings,
    reader: Reader,
    models: Models | None = None,
    *,
    rerank: bool = True,
    explain: bool = True,
    dense: bool = True,
) -> Searcher:
    """The one way to assemble a :class:`Searcher`: over ``reader``, with ``models`` or with
    those :func:`load_models` loads for ``settings`` (``rerank`` / ``explain`` / ``dense`` as
    there)."""
    models = models or load_models(
        settings,
        rerank=rerank,
        explain=explain,
        dense=dense,
        built_with=reader.manifest.embed_model,
    )
    return Searcher(reader, models.encoder, models.reranker, settings, models.explainer)

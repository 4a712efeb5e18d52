"""`heed tune`: weights and relevance calibration chosen on self-evaluation queries, stored in
the manifest, served as the index's default, overridable per request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli import app as cli_app
from cli.self_eval import held_out_searcher
from heed.settings import Settings
from heed.store import open_reader, read_manifest
from heed.store.layout import generation_dir
from heed.store.tuned import publish_tuning
from heed.tuning import FEATURES, Tuning
from search.hits import Hit
from search.relevance import fit, set_relevance
from search.searcher import Models
from search.self_eval import self_eval_collection
from search.tuning import tune
from service.app import create_app

from .conftest import writable_copy

runner = CliRunner()


@pytest.fixture(scope="module")
def tuning(settings: Settings, encoder) -> Tuning:
    """A real `heed tune` run on the test index (bi-encoder only: the re-ranker is slow)."""
    reader = open_reader(settings.index_dir)
    collection = self_eval_collection(reader, queries=15, seed=0)
    with held_out_searcher(settings, reader, collection, Models(encoder)) as searcher:
        return tune(searcher, collection, seed=0)


@pytest.fixture
def tuned(settings: Settings, tuning: Tuning, tmp_path: Path) -> Settings:
    """A copy of the test index with the tuning published, fusion weight forced to 1.0 so
    the served default visibly differs from the global 0.5."""
    copy = writable_copy(settings, tmp_path)
    live = open_reader(copy.index_dir).generation
    publish_tuning(copy.index_dir, live, tuning.model_copy(update={"dense_weight": 1.0}), 2)
    return copy.model_copy(update={"rerank": False})


def test_tune_measures_every_weight_and_calibrates_every_mode(tuning: Tuning) -> None:
    assert tuning.queries == 15
    assert {"dense_weight_default_ndcg@10", "dense_weight_best_ndcg@10"} <= set(tuning.measured)
    assert set(tuning.calibration) == {"bm25", "dense", "hybrid"}  # no re-ranker loaded
    assert tuning.rerank_weight is None
    # the guard: a weight other than the default is adopted only with a clear gain
    if tuning.dense_weight != 0.5:
        gain = tuning.measured["dense_weight_best_ndcg@10"]
        assert gain - tuning.measured["dense_weight_default_ndcg@10"] >= 0.01


def test_tuning_is_stored_in_a_new_generation_and_shown_by_check(tuned: Settings) -> None:
    reader = open_reader(tuned.index_dir)
    manifest = read_manifest(generation_dir(tuned.index_dir, reader.generation))
    assert manifest.tuning is not None and manifest.tuning.dense_weight == 1.0
    result = runner.invoke(cli_app, ["check", "--index", str(tuned.index_dir)])
    assert result.exit_code == 0, result.output
    assert "tuned on 15 self-evaluation queries: dense_weight 1" in result.output


def test_tuned_weight_is_the_served_default_and_a_request_overrides_it(tuned: Settings) -> None:
    with TestClient(create_app(tuned)) as client:
        health = client.get("/healthz").json()
        assert health["tuning"]["dense_weight"] == 1.0
        assert health["tuning"]["calibrated_modes"] == ["bm25", "dense", "hybrid"]
        query = {"query": "read rows from a csv file", "k": 8, "rerank": False}

        def order(**extra) -> list[str]:
            body = client.post("/search", json={**query, **extra}).json()
            return [r["doc_id"] for r in body["results"]]

        served, dense_only = order(), order(mode="dense")
        assert served == dense_only  # weight 1.0: the hybrid list is ordered by dense alone
        assert order(dense_weight=0.0) != served  # the request's own weight wins
        assert order(dense_weight=0.0) == order(dense_weight=0.0)


def test_relevance_is_a_probability_never_rising_as_the_score_falls(tuned: Settings) -> None:
    with TestClient(create_app(tuned)) as client:
        for mode in ("hybrid", "dense", "keyword"):
            body = client.post(
                "/search", json={"query": "parse json text", "k": 20, "mode": mode}
            ).json()
            results = body["results"]
            assert results
            relevance = [r["relevance"] for r in results]
            assert all(0.0 <= p <= 1.0 for p in relevance)
            scores = [r["score"] for r in results]
            assert scores == sorted(scores, reverse=True)
            assert relevance == sorted(relevance, reverse=True)


def test_min_relevance_drops_results_below_it(tuned: Settings) -> None:
    with TestClient(create_app(tuned)) as client:
        query = {"query": "how to compile a regular expression", "k": 20, "mode": "hybrid"}
        everything = client.post("/search", json=query).json()["results"]
        relevance = sorted(r["relevance"] for r in everything)
        cut = relevance[len(relevance) // 2]  # a threshold inside this list
        kept = client.post("/search", json={**query, "min_relevance": cut}).json()["results"]
        assert kept and len(kept) < len(everything)
        assert all(r["relevance"] >= cut for r in kept)
        assert [r["doc_id"] for r in kept] == [r["doc_id"] for r in everything[: len(kept)]]
        got = client.get("/search", params={"q": query["query"], "min_relevance": 1.0})
        assert got.status_code == 200 and got.json()["results"] == []


def test_min_relevance_on_an_index_not_tuned_is_a_clear_error(client: TestClient) -> None:
    response = client.post("/search", json={"query": "csv", "min_relevance": 0.5})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and "heed tune" in error["message"]
    results = client.post("/search", json={"query": "csv"}).json()["results"]
    assert results and all(r["relevance"] is None for r in results)


def test_calibration_weight_on_the_score_is_never_negative() -> None:
    rng = np.random.default_rng(0)
    score = rng.random(400)
    x = np.column_stack([score, rng.random(400), np.zeros(400)])
    falling = (rng.random(400) > score).astype(float)  # relevant more often at LOW scores
    calibration = fit(x, falling)
    assert len(calibration.weights) == len(FEATURES) and calibration.weights[0] >= 0.0
    rising = (rng.random(400) < score).astype(float)
    assert fit(x, rising).weights[0] > 0.0


def test_relevance_is_monotone_in_the_fused_score_for_any_fitted_model() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.random(300), rng.random(300), rng.normal(size=300)])
    y = (rng.random(300) < x[:, 0] * x[:, 1]).astype(float)
    calibration = fit(x, y)
    hits = [Hit(passage=None, score=float(s), first_stage=float(s)) for s in sorted(x[:, 0])[::-1]]
    hits[0].dense_score, hits[0].rerank_score = 0.7, 2.0
    set_relevance(hits, calibration)
    relevance = [h.relevance for h in hits]
    assert all(0.0 <= p <= 1.0 for p in relevance)
    assert relevance == sorted(relevance, reverse=True)


def test_tuning_refuses_to_publish_over_a_newer_generation(
    writable_settings: Settings, tuning: Tuning
) -> None:
    from heed.errors import IndexBusy

    live = open_reader(writable_settings.index_dir).generation
    with pytest.raises(IndexBusy, match="went live"):
        publish_tuning(writable_settings.index_dir, live - 1, tuning, 2)
    assert open_reader(writable_settings.index_dir).generation == live


def test_an_update_keeps_the_tuning_and_a_reset_removes_it(tuned: Settings, encoder) -> None:
    from heed.records import Document
    from indexer.build import build_index

    doc = Document(doc_id="new:doc", title="A new page", text="Something new to index.")
    build_index([doc], tuned, encoder=encoder)
    assert open_reader(tuned.index_dir).manifest.tuning is not None
    result = runner.invoke(cli_app, ["tune", "--reset", "--index", str(tuned.index_dir)])
    assert result.exit_code == 0, result.output
    assert open_reader(tuned.index_dir).manifest.tuning is None

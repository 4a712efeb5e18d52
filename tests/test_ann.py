"""The index kind follows the size: IVF-SQ8 search, deletions, filters, recall and retraining."""

import json
import sqlite3
from itertools import islice

import numpy as np
import pytest

from heed.store import current_generation, generation_dir, open_reader
from heed.store import faiss_index as ann
from indexer.build import build_index, delete_documents
from indexer.sources import read_documents

from .conftest import MINI, make_settings, writable_copy
from .test_cli import heed

QUERIES = [
    "parse a csv file",
    "turn a python object into json text",
    "replace text matching a pattern",
    "run a shell command",
    "cache function results",
    "random numbers",
    "hash a password",
    "temporary directory",
    "heap priority queue",
    "catch an exception",
]


def top_docs(reader, encoder, query: str, k: int = 10, filters=None) -> list[str]:
    hits = reader.dense(encoder.encode_queries([query])[0], k, filters)
    rows = reader.passages(pid for pid, _ in hits)
    return [rows[pid].doc_id for pid, _ in hits]


def test_a_large_index_is_ivf_trained_at_build(ann_settings):
    reader = open_reader(ann_settings.index_dir)
    manifest = reader.manifest
    assert manifest.index_type == "ivf" and ann.kind_of(reader.index) == "ivf"
    assert manifest.trained_on == manifest.passages == reader.index.ntotal
    assert manifest.index_params == {
        "nlist": ann.nlist_for(manifest.passages),
        "nprobe": ann_settings.ivf_nprobe,
    }
    assert open_reader(ann_settings.index_dir).consistency().ok


def test_a_small_index_stays_flat(settings):
    assert open_reader(settings.index_dir).manifest.index_type == "flat"


def test_ivf_search_finds_the_expected_document(ann_settings, encoder):
    reader = open_reader(ann_settings.index_dir)
    assert top_docs(reader, encoder, "serialize an object to json", 3)[0].startswith(
        ("func:json", "module:json")
    )


def test_ivf_recall_against_exact_search(settings, ann_settings, encoder):
    flat, ivf = open_reader(settings.index_dir), open_reader(ann_settings.index_dir)
    hits = total = 0
    for query in QUERIES:
        vec = encoder.encode_queries([query])[0]
        exact = {ps.text for ps in flat.passages(p for p, _ in flat.dense(vec, 10)).values()}
        found = {ps.text for ps in ivf.passages(p for p, _ in ivf.dense(vec, 10)).values()}
        hits, total = hits + len(exact & found), total + len(exact)
    assert hits / total >= 0.95


def test_ivf_filters_return_only_matching_documents(ann_settings, encoder):
    reader = open_reader(ann_settings.index_dir)
    docs = top_docs(reader, encoder, "serialize an object", 10, {"module": "json"})
    assert docs and all(d.endswith("json") or d.startswith("func:json") for d in docs)
    assert len(docs) == len(reader.passage_ids({"module": "json"})[:10])


def test_exact_vectors_are_served_not_the_lossy_codes(ann_settings):
    reader = open_reader(ann_settings.index_dir)
    ids = ann.vector_ids(reader.index)[:5].tolist()
    vectors = reader.vectors(ids)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["settings", "ann_settings"])
def test_deleted_documents_never_come_back(request, kind, tmp_path, encoder):
    settings = writable_copy(request.getfixturevalue(kind), tmp_path)
    before = open_reader(settings.index_dir)
    gone = before.passage_ids({"module": "json"}).tolist()
    own_vectors = before.vectors(gone)
    delete_documents(["module:json", "func:json.dumps", "func:json.loads"], settings, encoder)
    reader = open_reader(settings.index_dir)
    assert reader.manifest.index_type == before.manifest.index_type
    assert not set(gone) & set(ann.vector_ids(reader.index).tolist())
    for vec in own_vectors:  # a deleted passage's own vector is the best possible query for it
        assert not {pid for pid, _ in reader.dense(vec, 20)} & set(gone)
    assert top_docs(reader, encoder, "json encoder and decoder", 20, {"module": "json"}) == []
    assert reader.consistency().ok


def test_crossing_the_threshold_on_an_incremental_write_trains_ivf(tmp_path, encoder):
    small = make_settings(tmp_path / "idx", ann_threshold=10**6)
    build_index(islice(read_documents([MINI]), 8), small, encoder=encoder)
    n = open_reader(small.index_dir).manifest.passages
    grown = small.model_copy(update={"ann_threshold": n})
    build_index(read_documents([MINI]), grown, encoder=encoder)
    manifest = open_reader(grown.index_dir).manifest
    assert manifest.index_type == "ivf" and manifest.trained_on == manifest.passages > n
    assert top_docs(open_reader(grown.index_dir), encoder, "parse a csv file", 3)


def test_an_ivf_index_is_retrained_when_it_has_grown_a_lot(tmp_path, encoder):
    settings = make_settings(tmp_path / "idx", ann_threshold=1)
    build_index(islice(read_documents([MINI]), 4), settings, encoder=encoder)
    first = open_reader(settings.index_dir).manifest
    assert first.index_type == "ivf" and first.trained_on == first.passages
    build_index(islice(read_documents([MINI]), 5), settings, encoder=encoder)
    second = open_reader(settings.index_dir).manifest
    assert second.passages > first.passages and second.trained_on == first.trained_on
    build_index(read_documents([MINI]), settings, encoder=encoder)
    third = open_reader(settings.index_dir).manifest
    assert third.passages > ann.RETRAIN_GROWTH * first.trained_on
    assert third.trained_on == third.passages
    assert open_reader(settings.index_dir).consistency().ok


def test_heed_check_is_consistent_on_ivf(ann_settings):
    result = heed("check", "--index", str(ann_settings.index_dir))
    assert result.returncode == 0, result.stderr
    assert "(ivf-sq8 nlist=" in result.stdout and "consistent" in result.stdout


def test_an_index_from_before_the_vectors_table_is_read_and_upgraded(settings, tmp_path, encoder):
    old = writable_copy(settings, tmp_path)
    folder = generation_dir(old.index_dir, current_generation(old.index_dir))
    with sqlite3.connect(folder / "docs.db") as db:
        db.execute("DROP TABLE vectors")
    manifest = json.loads((folder / "manifest.json").read_text())
    for field in ("index_type", "index_params", "trained_on"):
        del manifest[field]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    reader = open_reader(old.index_dir)
    assert reader.vectors([1]).shape == (1, 384) and reader.dense(reader.vectors([1])[0], 1)
    delete_documents(["topic:lambda"], old, encoder)
    upgraded = open_reader(old.index_dir)
    passages = upgraded.passage_ids({})
    assert len(upgraded.vectors(passages.tolist())) == len(passages)
    assert upgraded.consistency().ok


def test_setting_the_index_type_to_flat_rebuilds_an_ivf_index_exactly(
    ann_settings, tmp_path, encoder
):
    settings = writable_copy(ann_settings, tmp_path).model_copy(update={"index_type": "flat"})
    delete_documents(["topic:lambda"], settings, encoder)
    reader = open_reader(settings.index_dir)
    assert reader.manifest.index_type == "flat" and reader.manifest.trained_on == 0
    ids = ann.vector_ids(reader.index)[:3].tolist()
    assert np.array_equal(reader.vectors(ids), reader.index.reconstruct_batch(ids))
    assert reader.consistency().ok

"""A damaged vectors.faiss is found, never served silently, and rebuilt from SQLite's exact vectors.

SQLite is the source of truth and holds every passage's exact float32 vector, so neither check
nor repair needs the bi-encoder: repair builds a new ANN index from those vectors.
"""

import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from heed.store import VECTORS, current_generation, generation_dir, open_reader
from indexer.build import build_index
from indexer.sources import read_documents
from service.app import create_app

from .conftest import FIXTURES, writable_copy
from .test_cli import heed

QUERIES = ["how do I read a csv file", "parse json", "regular expressions", "dates and times"]


def vectors_file(index_dir):
    return generation_dir(index_dir, current_generation(index_dir)) / VECTORS


def scribble(path, seed=0) -> None:
    """Random float32 over the middle third of the file: it still loads, with wrong vectors."""
    data = bytearray(path.read_bytes())
    start, stop = len(data) // 3, 2 * len(data) // 3
    noise = np.random.default_rng(seed).standard_normal((stop - start) // 4).astype("<f4")
    data[start : start + noise.nbytes] = noise.tobytes()
    path.write_bytes(bytes(data))


def truncate(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def bad_header(path) -> None:
    path.write_bytes(b"garbage!" + path.read_bytes()[8:])


def dense_top(index_dir, encoder) -> list[list[int]]:
    reader = open_reader(index_dir)
    vectors = encoder.encode_queries(QUERIES)
    return [[pid for pid, _ in reader.dense(v, 5)] for v in vectors]


@pytest.fixture(params=["flat", "ivf"])
def ann_kind(request) -> str:
    return request.param


@pytest.fixture
def damaged_settings(ann_kind, settings, ann_settings, tmp_path):
    return writable_copy(settings if ann_kind == "flat" else ann_settings, tmp_path)


def test_check_finds_random_floats_and_repair_restores_dense_search(
    damaged_settings, ann_kind, encoder
):
    index_dir = damaged_settings.index_dir
    expected = dense_top(index_dir, encoder)
    scribble(vectors_file(index_dir))

    found = heed("check", "--index", str(index_dir))
    assert found.returncode == 1, found.stdout
    if ann_kind == "flat":  # IVF: the noise may hit list sizes, and then the file cannot load
        assert "checksum differs from the manifest" in found.stdout
        wrong = re.search(r"(\d+) of (\d+) sampled vectors differ from the exact", found.stdout)
        assert wrong and int(wrong[1]) > 0, found.stdout
        full = heed("check", "--full", "--index", str(index_dir))
        assert full.returncode == 1 and re.search(r"[1-9]\d* of all \d+ vectors", full.stdout)
    else:
        assert re.search("checksum differs from the manifest|cannot be read", found.stdout)

    fixed = heed("check", "--repair", "--index", str(index_dir))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "rebuilt from" in fixed.stdout and "0 passages re-embedded" in fixed.stdout
    assert heed("check", "--full", "--index", str(index_dir)).returncode == 0
    restored = dense_top(index_dir, encoder)
    if ann_kind == "flat":
        assert restored == expected
    else:  # IVF-SQ8 is retrained on the exact vectors: near-ties may swap, the top 5 stay
        assert [sorted(top) for top in restored] == [sorted(top) for top in expected]


def test_a_write_after_damage_does_not_copy_it_forward(damaged_settings, encoder):
    index_dir = damaged_settings.index_dir
    expected = dense_top(index_dir, encoder)
    scribble(vectors_file(index_dir))
    stats = build_index(read_documents([FIXTURES / "formats"]), damaged_settings, encoder=encoder)
    assert stats.published
    assert open_reader(index_dir).consistency(sample=None).ok
    assert [top[0] for top in dense_top(index_dir, encoder)] == [top[0] for top in expected]


@pytest.mark.parametrize("damage", [truncate, bad_header, scribble])
def test_broken_vectors_keep_keyword_search_and_readyz_says_so(writable_settings, damage):
    index_dir = writable_settings.index_dir
    damage(vectors_file(index_dir))
    with TestClient(create_app(writable_settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "vectors_unavailable"
        keyword = client.post("/search", json={"query": "csv files", "mode": "keyword"})
        assert keyword.status_code == 200 and keyword.json()["results"]
        dense = client.post("/search", json={"query": "csv files", "mode": "dense"})
        assert dense.status_code == 503, dense.text
        error = dense.json()["error"]
        assert error["code"] == "vectors_unavailable" and "keyword" in error["message"]
        assert "/" not in error["message"]  # no server paths: they go to the log
        hybrid = client.post("/search", json={"query": "csv files"})
        assert hybrid.status_code == 200 and hybrid.json()["mode"] == "keyword"
        assert client.get("/documents/module:csv").status_code == 200

        fixed = heed("check", "--repair", "--index", str(index_dir))
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert client.get("/readyz").status_code == 200
        dense = client.post("/search", json={"query": "csv files", "mode": "dense"})
        assert dense.status_code == 200 and dense.json()["mode"] == "dense"

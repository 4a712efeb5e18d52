"""`heed check` finds FAISS/SQLite/manifest differences and `--repair` fixes them."""

import contextlib
import sqlite3

import faiss
import numpy as np

from heed.store import DB, VECTORS, current_generation, generation_dir, open_reader

from .test_cli import heed


def damage_vectors(index_dir) -> list[int]:
    path = generation_dir(index_dir, current_generation(index_dir)) / VECTORS
    index = faiss.read_index(str(path))
    ids = faiss.vector_to_array(index.id_map)[:2].tolist()
    index.remove_ids(np.array(ids, dtype=np.int64))
    index.add_with_ids(np.ones((1, index.d), dtype=np.float32), np.array([999_999]))
    faiss.write_index(index, str(path))
    return ids


def test_a_built_index_is_consistent(settings):
    result = heed("check", "--index", str(settings.index_dir))
    assert result.returncode == 0, result.stderr
    assert "consistent" in result.stdout
    assert "inference bi-encoder: passages " in result.stdout  # which path runs, and why
    assert "inference CPU: " in result.stdout


def test_check_reports_differences_and_repair_fixes_them(writable_settings):
    index_dir = writable_settings.index_dir
    lost = damage_vectors(index_dir)
    report = open_reader(index_dir).consistency()
    assert report.missing_vectors == sorted(lost) and report.orphan_vectors == [999_999]
    found = heed("check", "--index", str(index_dir))
    assert found.returncode == 1
    assert "2 passages without a vector, 1 orphan vectors" in found.stdout
    assert "--repair" in found.stderr
    fixed = heed("check", "--index", str(index_dir), "--repair")
    assert fixed.returncode == 0, fixed.stderr
    # The two lost vectors come back from SQLite's exact copies: nothing needs embedding.
    assert "(2 restored), 0 passages re-embedded, 1 orphan vectors removed" in fixed.stdout
    assert open_reader(index_dir).consistency().ok
    assert heed("check", "--index", str(index_dir)).returncode == 0


def test_repair_embeds_only_passages_without_an_exact_vector(writable_settings):
    index_dir = writable_settings.index_dir
    db = generation_dir(index_dir, current_generation(index_dir)) / DB
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("DELETE FROM vectors WHERE id = (SELECT min(id) FROM vectors)")
        conn.commit()
    found = heed("check", "--index", str(index_dir))
    assert found.returncode == 1 and "1 passages without an exact vector" in found.stdout
    fixed = heed("check", "--index", str(index_dir), "--repair")
    assert fixed.returncode == 0, fixed.stderr
    assert "1 passages re-embedded, 0 orphan vectors removed" in fixed.stdout
    assert open_reader(index_dir).consistency(sample=None).ok

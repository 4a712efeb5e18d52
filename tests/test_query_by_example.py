"""Query by example: a pasted text is a query; models read its start, keywords its best terms."""

from collections import Counter

from heed.keywords import most_informative, query_terms

CSV_EXAMPLE = (
    "I have a spreadsheet exported as comma separated values. Each row holds a customer, the "
    "columns are name, street, city and the amount they paid. I want to go through the rows "
    "one by one, skip the header line, convert the amounts to numbers and write the rows with "
    "a delimiter of my choice back to a new file. Quoting of fields that contain the "
    "delimiter matters, and so do the different dialects that spreadsheet programs produce. "
)


def test_a_pasted_paragraph_finds_related_documents_and_says_it_was_cut(client):
    query = CSV_EXAMPLE * 12  # ~4,600 characters: far more than the models read
    assert len(query) > 1000  # the old cap refused this
    body = client.post("/search", json={"query": query, "k": 3}).json()
    assert body["results"][0]["doc_id"] in ("module:csv", "func:csv.reader"), body["results"]
    assert body["query_truncated"] is True
    terms = body["keyword_terms"]
    assert terms and len(terms) <= 32 and "csv" not in terms  # the example never says csv
    assert "delimiter" in terms and "the" not in terms
    assert "spreadsheet" not in terms  # in no passage: it could not match


def test_a_long_querys_keyword_search_keeps_its_rare_terms(settings, encoder):
    from heed.store import open_reader
    from search.searcher import Searcher

    few = settings.model_copy(update={"keyword_terms": 8})
    searcher = Searcher(open_reader(settings.index_dir), encoder, None, few)
    outcome = searcher.search(CSV_EXAMPLE, 3, mode="keyword")
    kept = [t.strip('"') for t in outcome.keyword_terms]
    assert len(kept) == 8 and {"comma", "header", "exported"} <= set(kept)
    assert not {"one", "name", "values", "file"} & set(kept)  # in many passages: say little
    assert outcome.hits[0].passage.doc_id in ("module:csv", "func:csv.reader")


def test_a_short_query_is_neither_cut_nor_thinned(client):
    body = client.post("/search", json={"query": "read a csv file", "k": 3}).json()
    assert body["query_truncated"] is False and body["keyword_terms"] is None


def test_a_query_longer_than_the_rerankers_window_is_reported_cut(client):
    query = "how do I read the rows of a comma separated values file " * 8  # ~90 tokens
    reranked = client.post("/search", json={"query": query, "k": 1, "rerank": True}).json()
    assert reranked["query_truncated"] is True  # the cross-encoder keeps 64 tokens of it
    dense = client.post("/search", json={"query": query, "k": 1, "rerank": False}).json()
    assert dense["query_truncated"] is False  # the bi-encoder reads 254


def test_queries_over_the_setting_are_refused_with_the_limit(client):
    r = client.get("/search", params={"q": "x" * 20_001})
    assert r.status_code == 422
    assert "the limit is 20,000" in r.json()["error"]["message"]


def test_most_informative_terms_are_the_rare_and_repeated_ones_in_query_order():
    terms = query_terms("zebra common common rare zebra common nowhere")
    df = {'"zebra"': 2, '"common"': 90, '"rare"': 2, '"nowhere"': 0}
    kept = most_informative(terms, df, rows=100, keep=2)
    assert kept == ['"zebra"', '"rare"']  # zebra twice beats rare; nowhere cannot match
    assert isinstance(terms, Counter) and terms['"common"'] == 3


def test_keyword_terms_come_from_the_index_statistics(settings):
    from heed.store import open_reader

    reader = open_reader(settings.index_dir)
    df = reader.document_frequencies(['"csv"', '"json"', '"zzqxjv"'])
    assert df['"zzqxjv"'] == 0 and df['"csv"'] > 0 and df['"json"'] > 0

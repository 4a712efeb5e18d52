"""Highlights: word pieces merged into words at the right characters, and the API serving them."""

import pytest
from fastapi.testclient import TestClient

from heed.models.encoders import load_reranker
from heed.models.explain import METHODS, Explainer, Span, word_spans, words_from_tokens
from heed.settings import Settings
from service.app import create_app


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    settings = Settings()
    return Explainer(load_reranker(settings.rerank_model, settings.model_runtime()))


def words(text: str, spans: list[Span]) -> list[str]:
    return [text[s.start : s.end] for s in spans]


def test_word_spans_split_latin_words_and_single_cjk_characters():
    text = "naïve café, l'été! 柏林人口 3.5 million"
    assert [text[s:e] for s, e in word_spans(text)] == [
        "naïve", "café", "l'été", "柏", "林", "人", "口", "3", "5", "million"
    ]  # fmt: skip


def test_word_pieces_add_up_into_their_word_and_weights_scale_to_one():
    text = "tokenization matters"
    # "token" "##ization" "matters", as a WordPiece tokenizer splits it; [CLS]/[SEP] have (0, 0).
    offsets = [(0, 0), (0, 5), (5, 12), (13, 20), (0, 0)]
    spans = words_from_tokens(text, offsets, [9.0, 0.3, 0.2, 0.15, 9.0])
    assert spans == [Span(0, 12, 1.0), Span(13, 20, 0.3)]


def test_stop_words_punctuation_and_light_words_are_not_highlighted():
    text = "the cat, of course"
    offsets = [(0, 3), (4, 7), (7, 8), (9, 11), (12, 18)]
    spans = words_from_tokens(text, offsets, [5.0, 1.0, 5.0, 5.0, 0.05])
    assert words(text, spans) == ["cat"]


def test_only_the_heaviest_words_are_kept_in_text_order():
    text = " ".join(f"w{i}" for i in range(20))
    spans = word_spans(text)
    weights = [float(i) for i in range(20)]
    kept = words_from_tokens(text, spans, weights, min_weight=0.0, max_words=3)
    assert words(text, kept) == ["w17", "w18", "w19"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Crème brûlée, naïvely", ["Crème", "brûlée", "naïvely"]),
        ("Ünïcödé tokenization", ["Ünïcödé", "tokenization"]),
        ("柏林的人口", ["柏", "林", "人", "口"]),
    ],
)
def test_real_tokenizer_pieces_map_back_to_whole_words(explainer, text, expected):
    enc = explainer.model.tokenizer(text, return_offsets_mapping=True)
    assert len(enc["input_ids"]) > len(expected)  # split into pieces (plus [CLS]/[SEP])
    spans = words_from_tokens(text, enc["offset_mapping"], [1.0] * len(enc["input_ids"]))
    assert words(text, spans) == expected


def test_highlights_are_in_passage_coordinates_never_in_the_title(explainer):
    title = "csv module"
    text = "Read rows from a CSV file with csv.reader."
    (spans,) = explainer.explain("read a csv file", [(title, text)])
    assert spans and all((s.start, s.end) in word_spans(text) for s in spans)
    assert "CSV" in words(text, spans) or "csv" in words(text, spans)


def test_chinese_highlights_are_single_characters_of_the_passage(explainer):
    text = "柏林是德国的首都和最大的城市，约有三百七十万居民。"
    (spans,) = explainer.explain("柏林有多少人口", [("柏林", text)])
    assert spans and all(s.end - s.start == 1 for s in spans)
    assert "的" not in words(text, spans)  # a function character, like a stop-word


JSON_TEXT = (
    "The weather today is mild. To parse a JSON document in Python, call json.loads on the "
    "string; it returns dictionaries and lists. The garden needs watering."
)


def test_the_default_method_weights_the_words_that_answer_the_query(explainer):
    (spans,) = explainer.explain("how do I parse json", [("", JSON_TEXT)])
    top = words(JSON_TEXT, sorted(spans, key=lambda s: -s.weight)[:5])
    assert top[0] in {"JSON", "json", "parse", "loads"}, top


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_word_spans_weighted_up_to_one(explainer, method):
    (spans,) = explainer.explain("how do I parse json", [("", JSON_TEXT)], method=method)
    assert spans and all((s.start, s.end) in word_spans(JSON_TEXT) for s in spans)
    assert all(0.0 < s.weight <= 1.0 for s in spans) and max(s.weight for s in spans) == 1.0


def test_search_api_adds_highlights_only_when_asked(client):
    plain = client.post("/search", json={"query": "how do I read a csv file", "k": 3}).json()
    assert all(r["highlights"] is None and r["explain_method"] is None for r in plain["results"])
    body = client.post(
        "/search", json={"query": "how do I read a csv file", "k": 3, "explain": True}
    ).json()
    assert "explain" in body["timings_ms"]
    for result in body["results"]:
        assert result["explain_method"] == "attention"
        assert result["highlights"], result["doc_id"]
        for h in result["highlights"]:
            word = result["text"][h["start"] : h["end"]]
            assert word.strip() == word and word.isalnum(), word
            assert 0 < h["weight"] <= 1
    top = body["results"][0]
    assert any(top["text"][h["start"] : h["end"]].lower() == "csv" for h in top["highlights"])


def test_explain_without_heeds_cross_encoder_is_a_clear_422(settings):
    with TestClient(create_app(settings.model_copy(update={"rerank_model": None}))) as c:
        r = c.get("/search", params={"q": "csv", "explain": "true"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "explain_unavailable"

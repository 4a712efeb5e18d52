import itertools
import json
from pathlib import Path

import pytest

from heed.errors import InvalidInput
from indexer.chunking import Chunker

MINI = Path(__file__).parent / "fixtures" / "mini.jsonl"


@pytest.fixture(scope="module")
def tokenizer(encoder):
    return encoder.tokenizer


def long_text() -> str:
    return max((json.loads(line)["text"] for line in MINI.open()), key=len)


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_passages_fit_the_token_budget_and_offsets_point_into_the_text(tokenizer):
    text = long_text()
    passages = Chunker(tokenizer, max_tokens=64, overlap=8).split(text)
    assert len(passages) > 5
    for p in passages:
        assert text[p.start : p.end] == p.text
        assert n_tokens(tokenizer, p.text) <= 64
    assert [p.ord for p in passages] == list(range(len(passages)))
    assert passages[0].start == 0 and passages[-1].end == len(text.rstrip())


def test_neighbours_overlap_and_cover_the_whole_text(tokenizer):
    text = long_text()
    passages = Chunker(tokenizer, max_tokens=64, overlap=8).split(text)
    for a, b in itertools.pairwise(passages):
        assert a.start < b.start < a.end  # a small overlap, no gap


def test_no_cut_inside_a_word(tokenizer):
    text = "internationalisation " * 300
    for p in Chunker(tokenizer, max_tokens=50, overlap=5).split(text):
        assert p.text.split() and all(w == "internationalisation" for w in p.text.split())


def test_prefers_to_end_at_a_sentence(tokenizer):
    sentence = "The quick brown fox jumps over the lazy dog near the river bank. "
    passages = Chunker(tokenizer, max_tokens=40, overlap=4).split(sentence * 20)
    assert all(p.text.endswith(".") for p in passages[:-1])


def test_chinese_text_splits_at_full_stops_with_character_offsets(tokenizer):
    text = "柏林是德国的首都，也是最大的城市。" * 30
    passages = Chunker(tokenizer, max_tokens=48, overlap=4).split(text)
    assert len(passages) > 3
    for p in passages[:-1]:
        assert p.text.endswith("。")
        assert text[p.start : p.end] == p.text


def test_short_and_empty_texts(tokenizer):
    chunker = Chunker(tokenizer, max_tokens=64, overlap=8)
    assert chunker.split("") == []
    (only,) = chunker.split("One short sentence.")
    assert (only.start, only.end, only.text) == (0, 19, "One short sentence.")


def test_overlap_must_be_small(tokenizer):
    with pytest.raises(InvalidInput):
        Chunker(tokenizer, max_tokens=32, overlap=20)

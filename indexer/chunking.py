"""Splitting documents into passages measured in the bi-encoder's own tokens.

A passage must fit the model (or its tail is silently ignored by the encoder), should end at a
sentence where one is near, never inside a word, and shares a few tokens with its neighbour so a
sentence cut in two is still found. Offsets are character positions in the document's text, so
the read path can show a passage in context.
"""

from __future__ import annotations

from typing import Any

from heed.errors import InvalidInput
from heed.records import Passage

SENTENCE_END = frozenset(".!?;。！？；…")


class Chunker:
    def __init__(self, tokenizer: Any, max_tokens: int, overlap: int):
        if overlap >= max_tokens // 2:
            raise InvalidInput(f"chunk overlap {overlap} must be under half of {max_tokens} tokens")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap = overlap

    def split(self, text: str) -> list[Passage]:
        enc = self.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        offsets: list[tuple[int, int]] = enc["offset_mapping"]
        words: list[int | None] = enc.word_ids()
        n = len(offsets)
        if n == 0:
            return []
        # Token i may start a passage or follow its end only where a new word begins.
        boundary = [True] + [words[i] != words[i - 1] for i in range(1, n)] + [True]
        passages: list[Passage] = []
        start = 0
        while start < n:
            end = self._end(text, offsets, boundary, start, n)
            passages.append(
                Passage(
                    ord=len(passages),
                    start=offsets[start][0],
                    end=offsets[end - 1][1],
                    text=text[offsets[start][0] : offsets[end - 1][1]],
                )
            )
            if end >= n:
                break
            start = self._next_start(boundary, start, end)
        return passages

    def _end(self, text: str, offsets: list, boundary: list[bool], start: int, n: int) -> int:
        """Exclusive end token: the last sentence end in the window's second half, else a word."""
        end = min(start + self.max_tokens, n)
        if end == n:
            return n
        for i in range(end, start + self.max_tokens // 2, -1):
            if boundary[i] and text[offsets[i - 1][1] - 1] in SENTENCE_END:
                return i
        for i in range(end, start, -1):
            if boundary[i]:
                return i
        return end  # one word longer than a passage: cut it, there is no better place

    def _next_start(self, boundary: list[bool], start: int, end: int) -> int:
        nxt = max(end - self.overlap, start + 1)
        while nxt < end and not boundary[nxt]:
            nxt += 1
        return nxt

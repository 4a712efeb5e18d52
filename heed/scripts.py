"""Which writing systems a corpus is in, and what follows for its index.

heed's English models (the MiniLM bi-encoder, the re-ranker and its explanations) cannot read
Chinese, Japanese, Korean, Cyrillic, Arabic, Thai or any other non-Latin script. When an index is
created, a sample of its documents is counted word by word (a CJK character counts as a word:
there are no spaces to split on); if a real share is in such scripts, the index gets the
multilingual bi-encoder, unless the user named a model. The counts are kept in the manifest, and
the read path takes its per-index defaults (re-rank, fusion weight, highlights) from them.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from heed.keywords import CJK_RANGES
from heed.tuning import Tuning

MULTILINGUAL = "use-multilingual"
# Share of sampled words in non-Latin scripts from which the multilingual encoder is chosen:
# where USE's dense nDCG@10 overtakes MiniLM's on Cranfield with growing parts of cmrc2018
# (python -m bench.mixed_scripts; README, "Other languages"): MiniLM 0.365 vs 0.327 at 36%,
# 0.356 vs 0.358 at 46%.
AUTO_SHARE = 0.45
SAMPLE_DOCUMENTS = 500  # the first documents of a source are the sample
SAMPLE_CHARS = 300_000

_WORD = re.compile(rf"[{CJK_RANGES}]|[^\W\d_]+", re.UNICODE)
_CJK = re.compile(f"[{CJK_RANGES}]")
T = TypeVar("T")


def script_of(word: str) -> str:
    """``cjk`` for Han, kana and hangul; else the Unicode script name, lower case (latin...)."""
    if _CJK.match(word):
        return "cjk"
    try:
        return unicodedata.name(word[0]).split()[0].lower()
    except ValueError:
        return "other"


def script_shares(texts: Iterable[str], max_chars: int = SAMPLE_CHARS) -> dict[str, float]:
    """Share of words per script in ``texts`` (up to ``max_chars``), largest first, rounded."""
    counts: Counter[str] = Counter()
    seen = 0
    for text in texts:
        counts.update(script_of(w) for w in _WORD.findall(text[: max_chars - seen]))
        seen += len(text)
        if seen >= max_chars:
            break
    total = sum(counts.values())
    return {s: round(n / total, 4) for s, n in counts.most_common()} if total else {}


def non_latin_share(shares: dict[str, float]) -> float:
    """Share of words the English models cannot read (every script but Latin)."""
    return round(sum(v for s, v in shares.items() if s != "latin"), 4) if shares else 0.0


def reads_english(shares: dict[str, float]) -> bool:
    """Whether heed's English models can read this corpus (an old manifest has no counts: yes)."""
    return non_latin_share(shares) < AUTO_SHARE


def describe(shares: dict[str, float]) -> str:
    """``cjk 83%, latin 17%``: the scripts of a sample, for messages."""
    return ", ".join(f"{s} {v:.0%}" for s, v in shares.items() if v >= 0.01) or "no words"


def explicit(settings: Any, field: str) -> bool:
    """Whether the user set ``field`` (environment, heed.toml or an option), not a default."""
    return field in settings.model_fields_set


@dataclass(frozen=True)
class ModelChoice:
    """The bi-encoder of a new index, and why: what the manifest records."""

    model: str
    reason: str
    scripts: dict[str, float]


def choose_embed_model(settings: Any, sample: Iterable[str]) -> ModelChoice:
    """The configured bi-encoder if the user named one, else by the sample's scripts."""
    shares = script_shares(sample)
    share = non_latin_share(shares)
    if explicit(settings, "embed_model"):
        return ModelChoice(settings.embed_model, "named in the settings", shares)
    if share >= AUTO_SHARE:
        reason = (
            f"chosen automatically: {share:.0%} of the sampled words are in scripts "
            f"{settings.embed_model} cannot read ({describe(shares)})"
        )
        return ModelChoice(MULTILINGUAL, reason, shares)
    reason = f"the default: {share:.0%} of the sampled words are in non-Latin scripts"
    return ModelChoice(settings.embed_model, reason, shares)


# Read-path defaults for an index the English models cannot read, measured on held-out cmrc2018
# queries (README, "Other languages"): the English re-ranker does not help there, and keyword
# search (character pairs) is the stronger side of the fusion.
FOREIGN_RERANK = False
FOREIGN_DENSE_WEIGHT = 0.3


@dataclass(frozen=True)
class ReadDefaults:
    """What a search of one index does when the request does not say."""

    rerank: bool
    dense_weight: float
    term_highlights: bool  # highlights from query-term matches, not from the English model
    rerank_weight: float = 0.4


def read_defaults(
    scripts: dict[str, float], settings: Any, tuning: Tuning | None = None
) -> ReadDefaults:
    """The settings' defaults, or for a non-Latin index the measured ones, or what `heed tune`
    chose for this index (a setting the user gave still wins)."""
    english = reads_english(scripts)
    dense_weight = settings.dense_weight if english else FOREIGN_DENSE_WEIGHT
    rerank_weight = settings.rerank_weight
    if tuning is not None:
        dense_weight = tuning.dense_weight
        rerank_weight = tuning.rerank_weight if tuning.rerank_weight is not None else rerank_weight
    return ReadDefaults(
        rerank=settings.rerank if english or explicit(settings, "rerank") else FOREIGN_RERANK,
        dense_weight=settings.dense_weight if explicit(settings, "dense_weight") else dense_weight,
        term_highlights=not english,
        rerank_weight=(
            settings.rerank_weight if explicit(settings, "rerank_weight") else rerank_weight
        ),
    )


def model_for_index(settings: Any, built_with: str | None) -> str:
    """The bi-encoder for an existing index: the one it was built with, unless the user named
    one (then a different one is refused, as before)."""
    if built_with is None or explicit(settings, "embed_model"):
        return str(settings.embed_model)
    return built_with


def named_model(settings: Any) -> str | None:
    """The bi-encoder the user named, if any (else each index uses the one it was built with)."""
    return str(settings.embed_model) if explicit(settings, "embed_model") else None


def peek(items: Iterable[T], n: int = SAMPLE_DOCUMENTS) -> tuple[list[T], Iterator[T]]:
    """The first ``n`` items, and an iterator over all of them (the sample is not consumed)."""
    it = iter(items)
    head = list(itertools.islice(it, n))
    return head, itertools.chain(head, it)

"""The batch write path: documents in, a new index generation out, published only when complete.

Incremental by content hash: an unchanged document costs nothing, a changed one re-embeds only
its own new passage text, and a run with nothing to do publishes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

from heed.errors import InvalidInput, ShrinkRefused, SourceError
from heed.models.encoders import BiEncoder, load_bi_encoder, set_threads
from heed.records import Document
from heed.scripts import ModelChoice, choose_embed_model, model_for_index, peek
from heed.settings import Settings
from heed.store import Writer, live_manifest, open_reader
from heed.store.live_writer import LiveWriter, supports_in_place
from heed.store.vectors import ann_config
from indexer.chunking import Chunker

log = logging.getLogger(__name__)


@dataclass
class BuildProgress:
    stage: str  # "reading" | "embedding"
    documents: int
    passages_done: int
    passages_total: int


@dataclass
class BuildStats:
    documents: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    passages_embedded: int = 0
    passages_reused: int = 0
    vectors_rebuilt: int = 0  # repair: vectors the new ANN index was built from (no embedding)
    vectors_restored: int = 0  # repair: of those, missing from the damaged index
    generation: int | None = None
    version: int | None = None  # of the live generation's state, after this write
    published: bool = False
    seconds: float = 0.0
    embed_model: str = ""
    embed_reason: str = ""  # set when this run created the index and chose its bi-encoder

    def as_dict(self) -> dict:
        return asdict(self)


ProgressFn = Callable[[BuildProgress], None]


def chunker_for(encoder: BiEncoder, settings: Settings) -> Chunker:
    room = encoder.max_tokens - 2  # [CLS] and [SEP]
    if settings.chunk_tokens > room:
        raise InvalidInput(
            f"chunk_tokens {settings.chunk_tokens} exceeds what {encoder.name} reads ({room})"
        )
    return Chunker(encoder.tokenizer, settings.chunk_tokens, settings.chunk_overlap)


def sample_texts(documents: Iterable[Document]) -> Iterator[str]:
    """What the script count reads of each sampled document."""
    return (f"{d.title}\n{d.text}" for d in documents)


def index_encoder(settings: Settings) -> BiEncoder:
    """The bi-encoder of the index in ``settings.index_dir``: the one it was built with, unless
    the user named another (which the writer then refuses)."""
    manifest = live_manifest(settings.index_dir)
    name = model_for_index(settings, manifest.embed_model if manifest else None)
    return load_bi_encoder(name, settings.model_runtime())


def open_writer(
    settings: Settings,
    encoder: BiEncoder,
    rebuild: bool = False,
    choice: ModelChoice | None = None,
    in_place: bool = False,
) -> Writer:
    """The next generation of ``settings.index_dir``, for vectors from ``encoder``; with
    ``in_place``, a writer of the live generation itself where its format allows (a small
    write: heed/store/delta.py), else the next generation."""
    small = in_place and not rebuild and supports_in_place(settings.index_dir)
    writer = (LiveWriter if small else Writer)(
        settings.index_dir,
        embed_model=encoder.name,
        dimension=encoder.dim,
        chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap,
        rebuild=rebuild,
        keep=settings.keep_generations,
        ann_config=ann_config(settings),
        scripts=choice.scripts if choice else None,
        embed_reason=choice.reason if choice else "",
    )
    if isinstance(writer, LiveWriter):
        writer.merge_after = settings.merge_after
    return writer


def build_index(
    documents: Iterable[Document],
    settings: Settings,
    *,
    prune: bool = False,
    rebuild: bool = False,
    allow_shrink: bool = False,
    on_progress: ProgressFn | None = None,
    encoder: BiEncoder | None = None,
    in_place: bool = False,
) -> BuildStats:
    """Apply ``documents`` to the index in ``settings.index_dir`` as one new generation.

    ``prune`` removes documents absent from the input; ``rebuild`` starts from an empty index
    (needed to change the bi-encoder). Either refuses (ShrinkRefused) to drop more than
    ``settings.max_shrink`` of the live documents unless ``allow_shrink``: an empty or wrong
    source folder must not wipe the index. Any exception leaves the live generation as it was.
    ``in_place``: a small write (the API's), one transaction in the live generation.
    """
    started = time.monotonic()
    set_threads(settings.threads)
    stats = BuildStats()
    choice = None
    if rebuild or live_manifest(settings.index_dir) is None:
        # A new index: its documents' scripts choose the bi-encoder (heed/scripts.py).
        sample, documents = peek(documents)
        choice = choose_embed_model(settings, sample_texts(sample))
        if encoder is not None and encoder.name != choice.model:
            choice = ModelChoice(encoder.name, "given by the caller", choice.scripts)
        encoder = encoder or load_bi_encoder(choice.model, settings.model_runtime())
        stats.embed_reason = choice.reason
        log.info("bi-encoder %s for %s: %s", choice.model, settings.index_dir, choice.reason)
    encoder = encoder or index_encoder(settings)
    stats.embed_model = encoder.name
    chunker = chunker_for(encoder, settings)
    report = on_progress or (lambda _: None)
    with open_writer(settings, encoder, rebuild, choice, in_place) as writer:
        known = writer.hashes()
        seen: dict[str, str | None] = {}
        pending: list[tuple[int, str]] = []
        for doc in documents:
            if doc.doc_id in seen:
                raise SourceError(
                    f"{doc.source}: duplicate id {doc.doc_id!r} (first at {seen[doc.doc_id]})"
                )
            seen[doc.doc_id] = doc.source
            stats.documents += 1
            old = known.get(doc.doc_id)
            if old == doc.content_hash():
                stats.unchanged += 1
            else:
                passages = chunker.split(doc.text)
                if not passages:
                    raise SourceError(f"{doc.source}: no text to index")
                new = writer.put(doc, passages)
                stats.passages_reused += len(passages) - len(new)
                pending += new
                stats.added += old is None
                stats.updated += old is not None
            if stats.documents % 200 == 0:
                report(BuildProgress("reading", stats.documents, 0, len(pending)))
        if prune:
            for doc_id in known.keys() - seen.keys():
                writer.delete(doc_id)
                stats.removed += 1
        if (prune or rebuild) and not allow_shrink:
            check_shrink(writer.base_documents, writer.count()[0], settings.max_shrink)
        report(BuildProgress("embedding", stats.documents, 0, len(pending)))
        _embed(writer, encoder, pending, settings.batch_size, stats, report)
        if stats.added or stats.updated or stats.removed or rebuild or writer.base is None:
            manifest = writer.commit(rerank_model=settings.rerank_model)
            stats.generation, stats.published = manifest.generation, True
            stats.version = writer.version
        else:
            writer.abort()  # nothing changed: keep serving the same generation
            stats.generation, stats.version = writer.base, writer.version
    stats.seconds = time.monotonic() - started
    log.info("index built: %s", stats.as_dict())
    return stats


def check_shrink(live: int, after: int, max_shrink: float) -> None:
    """ShrinkRefused if going from ``live`` to ``after`` documents drops more than allowed."""
    if live and (live - after) / live > max_shrink:
        raise ShrinkRefused(
            f"refusing to replace the index: it would keep {after} of its {live} documents, "
            f"dropping more than {max_shrink:.0%} (HEED_MAX_SHRINK); check the source, or force "
            "it with `allow_shrink: true` (API) or `--force` (CLI)"
        )


def delete_documents(
    doc_ids: Iterable[str],
    settings: Settings,
    encoder: BiEncoder | None = None,
    in_place: bool = False,
) -> BuildStats:
    """Remove documents (their passages, vectors and keyword rows) as one new generation, or
    ``in_place`` as one transaction in the live one."""
    started = time.monotonic()
    encoder = encoder or index_encoder(settings)
    stats = BuildStats()
    with open_writer(settings, encoder, in_place=in_place) as writer:
        for doc_id in doc_ids:
            writer.delete(doc_id)  # DocumentNotFound aborts the whole batch
            stats.removed += 1
        manifest = writer.commit(rerank_model=settings.rerank_model)
    stats.generation, stats.published, stats.version = manifest.generation, True, writer.version
    stats.seconds = time.monotonic() - started
    return stats


def repair_index(settings: Settings, encoder: BiEncoder | None = None) -> BuildStats:
    """Make the vector index agree with SQLite (the source of truth) in a new generation.

    The ANN index is built afresh from the exact vectors in SQLite, so damaged, missing or
    orphan FAISS vectors cost no embedding; only passages without an exact vector are embedded
    again, and exact vectors without a passage are dropped. The manifest gets the true counts.
    """
    started = time.monotonic()
    encoder = encoder or index_encoder(settings)
    stats = BuildStats()
    found = open_reader(settings.index_dir)  # the damage as found, for the report
    before = found.consistency(sample=0)
    found.close()
    with open_writer(settings, encoder) as writer:
        lacking, extra = writer.exact_vector_diff()
        if extra:
            writer.remove_vectors(extra)
        stats.vectors_rebuilt = writer.rebuild_vectors()
        stats.vectors_restored = len(set(before.missing_vectors) - set(lacking))
        stats.removed = len(set(before.orphan_vectors) | set(extra))
        _embed(
            writer,
            encoder,
            writer.embed_inputs(lacking) if lacking else [],
            settings.batch_size,
            stats,
            lambda _: None,
        )
        manifest = writer.commit(rerank_model=settings.rerank_model)
    stats.generation, stats.published = manifest.generation, True
    stats.seconds = time.monotonic() - started
    return stats


def _embed(
    writer: Writer,
    encoder: BiEncoder,
    pending: list[tuple[int, str]],
    batch_size: int,
    stats: BuildStats,
    report: ProgressFn,
) -> None:
    # Sort once over the whole run so each batch holds passages of similar length. One encoder
    # batch per call: progress, and so a job's cancel, is noticed after every batch.
    pending = sorted(pending, key=lambda p: len(p[1]), reverse=True)
    for start in range(0, len(pending), batch_size):
        chunk = pending[start : start + batch_size]
        vectors = encoder.encode_passages([t for _, t in chunk], batch_size=batch_size)
        writer.add_vectors([pid for pid, _ in chunk], vectors)
        stats.passages_embedded += len(chunk)
        report(BuildProgress("embedding", stats.documents, stats.passages_embedded, len(pending)))

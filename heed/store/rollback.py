"""Rollback: make a kept, complete generation live again, with the same atomic switch a write uses.

The newest ``keep_generations`` complete generations stay on disk, so
going back is one ``os.replace`` of ``CURRENT`` under the writer lock: readers switch between
requests, exactly as after a reindex. The generations newer than the target stay on disk (a
second rollback can go forward to them) until the next full write: a :class:`Writer` builds on
the live generation and removes those above it (:func:`heed.store.layout.remove_unpublished`).
Small writes change the live generation in place, so after a rollback they land in the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from heed.errors import GenerationNotFound, HeedError, ModelMismatch, NothingToRollBack
from heed.store.layout import (
    GENERATION_FILES,
    Manifest,
    current_generation,
    generation_dir,
    generations,
    lock_writer,
    publish,
    read_manifest,
    unlock,
)


@dataclass(frozen=True)
class Rollback:
    previous: int  # the generation that was live
    manifest: Manifest  # of the generation now live


def kept_generations(index_dir: Path) -> list[Manifest]:
    """The complete generations on disk (all files, a readable manifest), oldest first."""
    kept = []
    for generation in generations(index_dir):
        folder = generation_dir(index_dir, generation)
        if not all((folder / name).is_file() for name in GENERATION_FILES):
            continue
        try:
            manifest = read_manifest(folder)
        except HeedError:
            continue
        if manifest.generation == generation:
            kept.append(manifest)
    return kept


def rollback(
    index_dir: Path, to: int | None = None, *, model: str | None = None, wait_s: float = 10.0
) -> Rollback:
    """Make generation ``to`` (default: the newest kept one older than the live one) live.

    ``model``: the bi-encoder the caller is configured with, if it names one; a generation built
    with another is refused (its searches would be refused). Waits up to ``wait_s`` for a
    running writer (then IndexBusy).
    """
    lock = lock_writer(index_dir, wait_s)
    try:
        live = current_generation(index_dir)
        kept = {m.generation: m for m in kept_generations(index_dir)}
        if live is None:
            raise NothingToRollBack(f"no index in {index_dir} yet: nothing to roll back")
        if to is None:
            older = [g for g in kept if g < live]
            if not older:
                raise NothingToRollBack(
                    f"{index_dir}: generation {live} is live and no older generation is kept "
                    f"(kept: {sorted(kept) or 'none'}; HEED_KEEP_GENERATIONS sets how many)"
                )
            to = max(older)
        if to not in kept:
            raise GenerationNotFound(
                f"{index_dir}: no complete generation {to} on disk (kept: {sorted(kept)}); "
                "older generations are pruned, see HEED_KEEP_GENERATIONS"
            )
        if to == live:
            raise NothingToRollBack(f"{index_dir}: generation {to} is already live")
        manifest = kept[to]
        if model is not None and manifest.embed_model != model:
            raise ModelMismatch(
                f"generation {to} was built with {manifest.embed_model!r}, but HEED_EMBED_MODEL "
                f"names {model!r}; unset it (the index's own model is then used) to roll back"
            )
        publish(index_dir, to)
        return Rollback(previous=live, manifest=manifest)
    finally:
        unlock(lock)

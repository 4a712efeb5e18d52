"""A private copy of an index generation with some documents replaced: where a
self-evaluation (search.self_eval) runs, so a query's own words are gone from its document.

The copy starts from hard links to the generation's files (a published generation never
changes; the writer builds the copy's next generation from a backup of it), then the replaced
documents are applied as an ordinary update: only their passages are re-embedded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from heed.models.encoders import BiEncoder
from heed.records import Document
from heed.settings import Settings
from heed.store import Reader, open_reader
from heed.store.layout import CURRENT, GENERATION_FILES, generation_dir
from indexer.build import build_index


@contextlib.contextmanager
def held_out_copy(
    reader: Reader,
    documents: Sequence[Document],
    settings: Settings,
    encoder: BiEncoder,
    workdir: Path | None = None,
) -> Iterator[Reader]:
    """A reader of ``reader``'s generation with ``documents`` put in (in a temporary folder,
    removed on exit); the original index is never touched."""
    with tempfile.TemporaryDirectory(prefix="heed-held-out-", dir=workdir) as tmp:
        index_dir = Path(tmp) / "index"
        folder = generation_dir(index_dir, 1)
        folder.mkdir(parents=True)
        for name in GENERATION_FILES:
            _link_or_copy(reader.folder / name, folder / name)
        (index_dir / CURRENT).write_text("1\n")
        copy_settings = settings.model_copy(update={"index_dir": index_dir, "keep_generations": 1})
        build_index(documents, copy_settings, encoder=encoder)
        copy = open_reader(index_dir)
        try:
            yield copy
        finally:
            copy.close()


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)

"""Publishing an index's tuning (heed.tuning) as a new generation that differs from the live one
only in its manifest: the data files are hard links (a published generation never changes),
and a service switches to it like to any other new generation.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from heed.errors import IndexBusy
from heed.store.layout import (
    MANIFEST,
    current_generation,
    generation_dir,
    publish_folder,
    read_manifest,
    staging_folder,
    write_manifest,
)
from heed.tuning import Tuning


def publish_tuning(index_dir: Path, base: int, tuning: Tuning | None, keep: int) -> int:
    """Generation ``base`` again with ``tuning`` in its manifest, published; its number.

    Refuses (IndexBusy) when another generation went live since ``base`` was measured."""
    live = current_generation(index_dir)
    if live != base:  # checked again under the writer lock, when it is published
        raise IndexBusy(
            f"{index_dir}: generation {live} went live while generation {base} was in use; "
            "try again"
        )
    source, staged = generation_dir(index_dir, base), staging_folder(index_dir)
    try:
        for path in source.iterdir():
            if path.is_file() and path.name != MANIFEST:
                try:
                    os.link(path, staged / path.name)
                except OSError:  # another file system, or links not allowed
                    shutil.copy2(path, staged / path.name)
        write_manifest(staged, read_manifest(source).model_copy(update={"tuning": tuning}))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return publish_folder(index_dir, staged, keep, expect_live=base)

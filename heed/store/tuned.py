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
    generations,
    lock_writer,
    make_durable,
    prune,
    publish,
    read_manifest,
    remove_unpublished,
    unlock,
    write_manifest,
)
from heed.tuning import Tuning


def publish_tuning(index_dir: Path, base: int, tuning: Tuning | None, keep: int) -> int:
    """Generation ``base`` again with ``tuning`` in its manifest, published; its number.

    Refuses (IndexBusy) when another generation went live since ``base`` was measured."""
    index_dir = Path(index_dir)
    lock = lock_writer(index_dir, wait_s=60.0)
    try:
        live = current_generation(index_dir)
        if live != base:
            raise IndexBusy(
                f"{index_dir}: generation {live} went live while generation {base} was being "
                "tuned; run `heed tune` again"
            )
        remove_unpublished(index_dir, live)
        generation = max(generations(index_dir), default=0) + 1
        source, folder = generation_dir(index_dir, base), generation_dir(index_dir, generation)
        folder.mkdir(parents=True)
        try:
            for path in source.iterdir():
                if path.is_file() and path.name != MANIFEST:
                    try:
                        os.link(path, folder / path.name)
                    except OSError:  # another file system, or links not allowed
                        shutil.copy2(path, folder / path.name)
            manifest = read_manifest(source).model_copy(
                update={"generation": generation, "tuning": tuning}
            )
            write_manifest(folder, manifest)
            make_durable(folder)
            publish(index_dir, generation)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        prune(index_dir, keep)
        return generation
    finally:
        unlock(lock)

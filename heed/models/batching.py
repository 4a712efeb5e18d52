"""Length-sorted batching, shared by passage embedding and re-ranking.

A batch is padded to its longest member, so mixing a 10-token and a 250-token text costs as much
as two 250-token texts; sorting by length first keeps similar lengths together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import NDArray


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[NDArray[np.intp]]:
    """Index batches, longest texts first (characters stand in for tokens); stable for ties."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]

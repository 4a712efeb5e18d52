"""How far an indexing run is: passages/s and ETA, and log lines for output that is no terminal.

A rich progress bar redraws one line in place, so a log file, ``docker logs`` or a CI log shows
nothing for the minutes a first index takes. :class:`ProgressLog` writes a plain line every few
seconds instead (documents, passages, passages/s, ETA), plus the first and the last. The CLI uses
it when stderr is not a terminal; reindex jobs always do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from indexer.build import BuildProgress

log = logging.getLogger(__name__)
Clock = Callable[[], float]


def show_progress_lines() -> None:
    """Log progress lines even when the CLI's log level is WARNING (its default)."""
    log.setLevel(logging.INFO)


class EmbedRate:
    """Passages per second and seconds left, measured from the first embedding report."""

    def __init__(self, clock: Clock = time.monotonic):
        self._clock = clock
        self._started: float | None = None
        self.per_s: float | None = None
        self.eta_s: float | None = None

    def update(self, p: BuildProgress) -> None:
        if p.stage != "embedding":
            return
        now = self._clock()
        if self._started is None:
            self._started = now
        elapsed = now - self._started
        if p.passages_done and elapsed > 0:
            self.per_s = round(p.passages_done / elapsed, 1)
            self.eta_s = round((p.passages_total - p.passages_done) / self.per_s, 1)


def duration(seconds: float | None) -> str:
    """``3m05s``, ``42s`` or ``?`` (no rate yet)."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressLog:
    """A BuildProgress callback that logs at most one line per ``every_s`` seconds.

    The first report and the end of embedding are always logged, so even a short run says
    what it did.
    """

    def __init__(
        self, label: str = "indexing", every_s: float = 5.0, clock: Clock = time.monotonic
    ):
        self.label = label
        self.every_s = every_s
        self._clock = clock
        self.rate = EmbedRate(clock)
        self._last: float | None = None

    def __call__(self, p: BuildProgress) -> None:
        self.rate.update(p)
        now = self._clock()
        finished = p.stage == "embedding" and p.passages_done >= p.passages_total
        if self._last is not None and now - self._last < self.every_s and not finished:
            return
        self._last = now
        log.info("%s", self.line(p))

    def line(self, p: BuildProgress) -> str:
        if p.stage != "embedding":
            return (
                f"{self.label}: reading, {p.documents:,} documents, "
                f"{p.passages_total:,} passages to embed"
            )
        per_s = "?" if self.rate.per_s is None else f"{self.rate.per_s:,.1f}"
        return (
            f"{self.label}: {p.documents:,} documents, passages {p.passages_done:,}/"
            f"{p.passages_total:,} embedded, {per_s} passages/s, ETA {duration(self.rate.eta_s)}"
        )

"""Indexing progress as log lines when output is not a terminal (a log file, docker logs, CI)."""

import logging

from indexer.build import BuildProgress
from indexer.progress import ProgressLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_come_every_few_seconds_with_rate_and_eta(caplog):
    clock = Clock()
    report = ProgressLog("indexing", every_s=5.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="indexer.progress"):
        report(BuildProgress("reading", 200, 0, 800))  # first report: always
        report(BuildProgress("embedding", 400, 0, 1000))  # 0 s later: held back
        for second in range(1, 21):  # 50 passages/s for 20 s
            clock.now = second
            report(BuildProgress("embedding", 400, 50 * second, 1000))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "indexing: reading, 200 documents, 800 passages to embed"
    assert len(lines) == 1 + 20 // 5  # one line per 5 s (the end is one of them)
    assert lines[1] == (
        "indexing: 400 documents, passages 250/1,000 embedded, 50.0 passages/s, ETA 15s"
    )
    assert lines[-1].endswith("passages 1,000/1,000 embedded, 50.0 passages/s, ETA 0s")


def test_the_end_of_a_short_run_is_always_logged(caplog):
    clock = Clock()
    report = ProgressLog("job abc", every_s=60.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="indexer.progress"):
        report(BuildProgress("embedding", 7, 0, 90))
        clock.now = 2.0
        report(BuildProgress("embedding", 7, 60, 90))  # within 60 s: held back
        clock.now = 3.0
        report(BuildProgress("embedding", 7, 90, 90))  # done: logged
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "job abc: 7 documents, passages 0/90 embedded, ? passages/s, ETA ?",
        "job abc: 7 documents, passages 90/90 embedded, 30.0 passages/s, ETA 0s",
    ]

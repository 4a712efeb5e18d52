"""Prometheus metrics and one structured log line per request.

Route labels use the route template (``/documents/{doc_id}``), never the raw path, so a crawler
cannot blow up the metric cardinality.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("heed.access")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per app, so several apps (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "heed_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "heed_request_seconds",
            "HTTP request latency",
            ["route", "method", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.stage = Histogram(
            "heed_search_stage_seconds",
            "search latency by stage (embed, retrieve, rerank)",
            ["stage"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.documents = Gauge(
            "heed_index_documents", "documents in the live index", registry=self.registry
        )
        self.passages = Gauge(
            "heed_index_passages", "passages in the live index", registry=self.registry
        )
        self.job_passages = Gauge(
            "heed_job_passages",
            "passages of the newest reindex job",
            ["kind"],
            registry=self.registry,
        )
        self.job_running = Gauge(
            "heed_job_running", "1 while a reindex job runs", registry=self.registry
        )
        self.generation = Gauge(
            "heed_index_generation", "live index generation", registry=self.registry
        )

    def observe_search(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stage.labels(stage).observe(ms / 1000)


class RequestMetrics:
    """Counts, times and logs every HTTP request, as plain ASGI: a ``@app.middleware("http")``
    (BaseHTTPMiddleware) runs the rest of the app in a task of its own behind memory streams,
    which cost a dense search about as much as its retrieval."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception becomes ServerErrorMiddleware's 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - started
            name = getattr(scope.get("route"), "path", "unmatched")  # the router sets it
            method = scope["method"]
            self.metrics.requests.labels(name, method, str(status)).inc()
            self.metrics.latency.labels(name, method, str(status)).observe(seconds)
            log.info(
                "request method=%s route=%s status=%d duration_ms=%.1f",
                method,
                name,
                status,
                seconds * 1000,
            )


def install_metrics(app: FastAPI, metrics: Metrics) -> None:
    app.add_middleware(RequestMetrics, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus(request: Request) -> Response:
        engine = request.app.state.engine
        counts = engine.live_counts()
        if counts:
            metrics.generation.set(counts[0])
            metrics.documents.set(counts[1])
            metrics.passages.set(counts[2])
        jobs = engine.jobs.list()
        if jobs:
            metrics.job_passages.labels("done").set(jobs[0].passages_done)
            metrics.job_passages.labels("total").set(jobs[0].passages_total)
            metrics.job_running.set(1 if jobs[0].active else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

"""Prometheus metrics of the service (`GET /metrics` at the root) and a request size limit."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.db.models import Run
from backend.db.session import session_factory
from backend.errors import error_body
from backend.settings import Settings


class ServiceMetrics:
    """One registry per app, so tests (many apps in one process) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "unisd_http_requests",
            "HTTP requests served, by method, route and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "unisd_http_request_duration_seconds",
            "Time to serve a request, by route.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.runs = Gauge(
            "unisd_runs", "Runs by status (not deleted).", ["status"], registry=self.registry
        )


def install_observability(app: FastAPI, settings: Settings) -> None:
    metrics = ServiceMetrics()
    app.state.service_metrics = metrics

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.latency.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        session = session_factory(settings.resolved_database_url)()
        try:
            counts = dict(
                session.execute(
                    select(Run.status, func.count(Run.id))
                    .where(Run.deleted_at.is_(None))
                    .group_by(Run.status)
                ).all()
            )
        finally:
            session.close()
        for status in ("queued", "running", "succeeded", "failed", "cancelled"):
            metrics.runs.labels(status).set(counts.get(status, 0))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


class BodySizeLimit:
    """Refuse bodies over `max_bytes` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send)
                    return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not refused:
                        refused = True
                        await self._refuse(send)
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the 413 is out; whatever the app answers after it is dropped
                await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        import json

        body = json.dumps(
            error_body("payload_too_large", f"request body is larger than {self.max_bytes} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass

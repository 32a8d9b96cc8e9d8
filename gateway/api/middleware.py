"""Pure ASGI middleware (cheap on the hot path): request id, access log, metrics, body limit.

The access log names the route template, never the query string or body (postcodes, names and
phone numbers must not reach logs).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.resilience import request_deadline

log = structlog.get_logger("gateway.access")
REQUESTS = Counter("gateway_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram(
    "gateway_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _metrics(route: str, method: str, status: int, elapsed: float) -> None:
    """Count and time a request; label children are looked up once per combination."""
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        pair = _children[key] = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
    pair[0].inc()
    pair[1].observe(elapsed)


class RequestContext:
    def __init__(self, app: ASGIApp, max_body_bytes: int, budget_seconds: float = 25.0) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.budget = budget_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=rid)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _too_large(send, self.max_body)
            structlog.contextvars.clear_contextvars()
            return
        seen = 0
        too_large = False

        async def limited_receive() -> Message:
            # A chunked body without Content-Length: count as it arrives; past the limit the
            # app is told the client left, and the 413 below is the answer.
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        status = 500
        start = time.perf_counter()
        request_deadline.set(time.monotonic() + self.budget)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if too_large:
                return  # the app's answer to a cut-off body is replaced by the 413
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid.encode("latin-1")),
                ]
            await send(message)

        try:
            try:
                await self.app(scope, limited_receive, send_wrapper)
            except Exception:
                if not too_large:
                    raise
            if too_large:
                await _too_large(send, self.max_body)
                status = 413
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            _metrics(route, scope["method"], status, elapsed)
            log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()


async def _too_large(send: Send, limit: int) -> None:
    body: dict[str, Any] = {
        "type": "https://repairs-gateway.dev/problems/http-413",
        "title": "Request too large",
        "status": 413,
        "detail": f"request bodies are limited to {limit} bytes",
    }
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class CouncilCors:
    """CORS configured per council (``cors_origins`` in its YAML), closed by default.
    Dispatches to one Starlette CORSMiddleware per council that allows any origin."""

    def __init__(self, app: ASGIApp, origins: dict[str, list[str]]) -> None:
        from starlette.middleware.cors import CORSMiddleware

        self.app = app
        self.per_council = {
            council: CORSMiddleware(
                app,
                allow_origins=allowed,
                allow_methods=["GET", "POST", "PATCH"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
                expose_headers=["X-Request-ID", "Retry-After"],
                max_age=600,
            )
            for council, allowed in origins.items()
            if allowed
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.per_council:
            parts = scope["path"].split("/", 4)
            if len(parts) > 3 and parts[1] == "v1" and parts[2] == "councils":
                handler = self.per_council.get(parts[3])
                if handler is not None:
                    await handler(scope, receive, send)
                    return
        await self.app(scope, receive, send)

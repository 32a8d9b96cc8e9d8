"""Pure ASGI middleware (cheap on the hot path): request id, access log, metrics, body limit.

The access log names the route template, never the query string or body (postcodes, names and
phone numbers must not reach logs).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.problems import PROBLEM, unhandled_log_fields
from gateway.problemdetails import invalid, problem_details
from gateway.ratelimit import current_allowance
from gateway.resilience import request_deadline
from gateway.text import describe, first_unsafe, query_suspect

log = structlog.get_logger("gateway.access")
REQUESTS = Counter("gateway_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram(
    "gateway_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
# Label values come from closed sets only: a method the API does not know is "other" (a
# caller inventing methods must not grow /metrics for ever); routes are templates or
# "unmatched"; statuses are three-digit codes the gateway itself chose.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A caller's X-Request-ID is kept only when it looks like an id (a UUID, a hex or base64url
# token); anything else (a name, an email, a forged log line) is replaced by a fresh one.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")


def request_id(presented: bytes | None) -> str:
    if presented:
        rid = presented.decode("latin-1")
        if REQUEST_ID.fullmatch(rid):
            return rid
    return uuid.uuid4().hex


def _metrics(route: str, method: str, status: int, elapsed: float) -> None:
    """Count and time a request; label children are looked up once per combination."""
    if method not in METHODS:
        method = "other"
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        pair = _children[key] = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
    pair[0].inc()
    pair[1].observe(elapsed)


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        budget_seconds: float = 25.0,
        large_bodies: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.budget = budget_seconds
        # (path pattern, limit): the few routes allowed a larger body (HRO photo uploads)
        self.large_bodies = tuple(large_bodies)

    def _body_limit(self, scope: Scope) -> int:
        if self.large_bodies and scope.get("method") == "POST":
            path = scope.get("path", "")
            for pattern, limit in self.large_bodies:
                if pattern.match(path):
                    return limit
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = request_id(headers.get(b"x-request-id"))
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        structlog.contextvars.bind_contextvars(request_id=rid)
        max_body = self._body_limit(scope)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            await _too_large(send, max_body, rid_header)
            structlog.contextvars.clear_contextvars()
            return
        refusal = unsafe_url(scope)
        if refusal is not None:
            await _send_problem(send, 422, refusal, rid_header)
            structlog.contextvars.clear_contextvars()
            return
        api = scope["path"].startswith("/v1/")
        if api and scope["method"] in BODY_METHODS and _has_body(headers):
            media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
            if media != b"application/json" and not media.endswith(b"+json"):
                await _send_problem(send, 415, _UNSUPPORTED, rid_header)
                structlog.contextvars.clear_contextvars()
                return
        allowance: list[tuple[int, int, int]] = []
        current_allowance.set(allowance)
        seen = 0
        too_large = False

        async def limited_receive() -> Message:
            # A chunked body without Content-Length: count as it arrives; past the limit the
            # app is told the client left, and the 413 below is the answer.
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_body:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        status = 500
        started = False
        start = time.perf_counter()
        request_deadline.set(time.monotonic() + self.budget)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if too_large:
                return  # the app's answer to a cut-off body is replaced by the 413
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                extra = [rid_header]
                if api:
                    # answers can hold addresses and repairs: never kept by a cache
                    extra.append((b"cache-control", b"no-store"))
                if allowance:
                    limit, left, reset = allowance[-1]
                    extra.append((b"ratelimit-policy", b'"per-key";q=%d;w=60' % limit))
                    extra.append((b"ratelimit", b'"per-key";r=%d;t=%d' % (left, reset)))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            try:
                await self.app(scope, limited_receive, send_wrapper)
            except Exception as exc:
                if too_large:
                    pass
                elif started:
                    raise  # half an answer is out: nothing better can be sent now
                else:
                    # Answered here, inside the request's context, so the 500 carries the
                    # request id and the log line names it (type and place only: exception
                    # messages can carry submitted values).
                    log.error("request.unhandled", **unhandled_log_fields(exc))
                    await _send_problem(send, 500, _INTERNAL, rid_header)
            if too_large:
                await _too_large(send, max_body, rid_header)
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


BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})
_UNSUPPORTED = problem_details(
    415, "unsupported-media-type", "Unsupported media type", "send the body as application/json"
)


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers


_INTERNAL = problem_details(
    500,
    "internal-error",
    "Internal error",
    "the gateway failed unexpectedly; nothing you submitted was lost",
)


def unsafe_url(scope: Scope) -> dict[str, Any] | None:
    """A problem body when the path or the query string holds a control character (NUL, a
    newline...) or a query parameter is given twice; None when the URL is fine. The raw query
    is scanned first, so a clean one costs one regular-expression search."""
    path: str = scope.get("path", "")
    at = first_unsafe(path, in_url=True)
    if at is not None:
        return invalid("path", f"the path {describe(path, at)}")
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return None
    pairs = None
    if query_suspect(raw):
        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        for name, value in pairs:
            for part, what in ((name, "its name"), (value, "its value")):
                at = first_unsafe(part, in_url=True)
                if at is not None:
                    field = name if what == "its value" and first_unsafe(name) is None else "query"
                    return invalid(field, f"query parameter: {what} {describe(part, at)}")
    if b"&" in raw:  # repeated parameters are refused, not silently "last one wins"
        if pairs is None:
            pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                return invalid(name, f"query parameter {name!r} is given more than once")
            seen.add(name)
    return None


async def _send_problem(
    send: Send, status: int, body: dict[str, Any], *extra: tuple[bytes, bytes]
) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(data)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _too_large(send: Send, limit: int, *extra: tuple[bytes, bytes]) -> None:
    body = problem_details(
        413, "http-413", "Request too large", f"request bodies are limited to {limit} bytes"
    )
    await _send_problem(send, 413, body, *extra)


class CouncilCors:
    """CORS configured per council (``cors_origins`` in its YAML), closed by default.
    Dispatches to one Starlette CORSMiddleware per council that allows any origin."""

    def __init__(
        self,
        app: ASGIApp,
        origins: dict[str, list[str]],
        reload_hooks: list[Callable[[dict[str, list[str]]], None]] | None = None,
    ) -> None:
        self.app = app
        self.configure(origins)
        if reload_hooks is not None:  # a configuration reload brings new origins
            reload_hooks.append(self.configure)

    def configure(self, origins: dict[str, list[str]]) -> None:
        from starlette.middleware.cors import CORSMiddleware

        app = self.app
        self.per_council = {
            council: CORSMiddleware(
                app,
                allow_origins=allowed,
                allow_methods=["GET", "POST", "PATCH"],
                allow_headers=[
                    "Authorization",
                    "X-API-Key",
                    "Content-Type",
                    "Idempotency-Key",
                    "X-Request-ID",
                ],
                expose_headers=[
                    "X-Request-ID",
                    "Retry-After",
                    "Location",
                    "RateLimit",
                    "RateLimit-Policy",
                ],
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

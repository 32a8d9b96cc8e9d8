"""The gateway's one pure ASGI middleware (cheap on the hot path): request id, body limit and
edge checks, reload's request count, CORS, error counts, audit, headers, metrics, access log.

The access log names the route template, never the query string or body (postcodes, names and
phone numbers must not reach logs).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Container, Sequence
from typing import Any
from urllib.parse import unquote

import structlog
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.problems import PROBLEM, unhandled_log_fields
from gateway.audit import WRITE_METHODS, AuditMiddleware
from gateway.logging import access_line
from gateway.problemdetails import invalid, problem_details
from gateway.ratelimit import current_allowance
from gateway.reload import RequestsInFlight
from gateway.resilience import request_deadline
from gateway.status.errors import council_of, count_error
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
    return new_request_id()


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """``uuid.uuid4().hex`` (random, version 4, RFC 4122 variant) without the UUID object.
    A request id only ties log lines together (it is no secret and grants nothing), so its
    bits come from ``random`` (seeded from the OS, reseeded in a forked child) rather than a
    system call per request."""
    return f"{_random_bits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


_random_bits = random.getrandbits


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


class Edge:
    """The gateway's one ASGI middleware: each concern a step of one call, in the order the
    separate layers used to run (request id, body limit, URL and media-type checks, the
    deadline; reload's request count; CORS per council; error counts for the status page;
    the audit trail of writes; the RateLimit and cache headers; metrics and the access log).

    The hot routes (``hot_routes``: GET addresses and appointments) are answered here
    by their endpoint, skipping FastAPI's router, dependency and exception layers: the
    endpoint is the same function FastAPI would call, the route object is the one FastAPI
    matches (metrics, logs and audit name its template), and an exception is answered by the
    application's own handler for it, as FastAPI's exception layer does. Everything else,
    and any request the fast path does not recognise exactly, goes through FastAPI."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        budget_seconds: float = 25.0,
        large_bodies: Sequence[tuple[re.Pattern[str], int]] = (),
        *,
        requests: RequestsInFlight | None = None,
        councils: Container[str] = (),
        cors_origins: dict[str, list[str]] | None = None,
        cors_reload_hooks: list[Callable[[dict[str, list[str]]], None]] | None = None,
        database_of: Callable[[], Any] | None = None,
        hot_routes: Sequence[Any] = (),
        direct_posts: Sequence[tuple[Any, Callable[..., Any], Callable[..., Any]]] = (),
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.budget = budget_seconds
        # (path pattern, limit): the few routes allowed a larger body (HRO photo uploads)
        self.large_bodies = tuple(large_bodies)
        self.requests = requests or RequestsInFlight()  # reload waits for older requests
        self.councils = councils  # the live councils dict: a reload updates it in place
        # writes are audited (gateway/audit.py); reads never are
        self.audit = AuditMiddleware(app, database_of) if database_of is not None else app
        self.cors = CouncilCors(self._after_cors, cors_origins or {}, cors_reload_hooks)
        # last path segment -> the APIRoute of /v1/councils/{council}/<segment> (GET)
        self.hot = {route.path.rsplit("/", 1)[1]: route for route in hot_routes}
        # last path segment -> (the APIRoute of POST /v1/councils/{council}/<segment>, the
        # reader of its request, the call of its endpoint): see ``_direct_post``
        self.posts = {route.path.rsplit("/", 1)[1]: (route, *fns) for route, *fns in direct_posts}
        self.audited_posts = (
            AuditMiddleware(self._direct_post, database_of) if database_of is not None else None
        )
        self._handlers: dict[Any, Any] | None = None

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
        # the first of a repeated header, as Starlette's ``Request.headers`` reads it
        headers = dict(reversed(scope.get("headers") or []))
        rid = request_id(headers.get(b"x-request-id"))
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        bound = structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            refused = await self._refuse_early(scope, headers, send, rid_header)
        except BaseException:
            structlog.contextvars.reset_contextvars(**bound)
            raise
        if refused:
            structlog.contextvars.reset_contextvars(**bound)
            return
        max_body = self._body_limit(scope)
        path: str = scope["path"]
        method: str = scope["method"]
        api = path.startswith("/v1/")
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

        # errors the application answers for a council served count on its status page
        # (not the edge's own refusals, nor a CORS preflight, as when each was a layer)
        council = council_of(path)
        counted = council if council is not None and council in self.councils else None
        cors = self.cors.handler_for(path) if self.cors.per_council else None
        if (
            cors is not None
            and method == "OPTIONS"
            and b"origin" in headers
            and b"access-control-request-method" in headers
        ):
            counted = None
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
                if counted is not None and status >= 400:
                    count_error(counted, int(status))
                extra = [rid_header]
                if api:
                    # answers can hold addresses and repairs: never kept by a cache
                    extra.append(_NO_STORE)
                if allowance:
                    limit, left, reset = allowance[-1]
                    extra.append((b"ratelimit-policy", b'"per-key";q=%d;w=60' % limit))
                    extra.append((b"ratelimit", b'"per-key";r=%d;t=%d' % (left, reset)))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        generation = self.requests.enter()  # replaced adaptors close once these are done
        try:
            try:
                if cors is not None:
                    await cors(scope, limited_receive, send_wrapper)
                else:
                    await self._after_cors(scope, limited_receive, send_wrapper)
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
            self.requests.leave(generation)
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            _metrics(route, method, status, elapsed)
            access_line(method, route, status, round(elapsed * 1000, 2), rid)
            structlog.contextvars.reset_contextvars(**bound)

    async def _refuse_early(
        self, scope: Scope, headers: dict[bytes, bytes], send: Send, rid: tuple[bytes, bytes]
    ) -> bool:
        """Answer what must not reach the application: a body over the limit (by its
        Content-Length), a URL holding control characters or repeated parameters, a /v1
        body that is not JSON. True when answered."""
        length = headers.get(b"content-length")
        if length is not None and length.isdigit():
            max_body = self._body_limit(scope)
            if int(length) > max_body:
                await _too_large(send, max_body, rid)
                return True
        refusal = unsafe_url(scope)
        if refusal is not None:
            await _send_problem(send, 422, refusal, rid)
            return True
        if (
            scope["method"] in BODY_METHODS
            and scope["path"].startswith("/v1/")
            and _has_body(headers)
        ):
            media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
            if media != b"application/json" and not media.endswith(b"+json"):
                await _send_problem(send, 415, _UNSUPPORTED, rid)
                return True
        return False

    async def _after_cors(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if (method == "GET" or method == "POST") and not scope.get("root_path"):
            parts = scope["path"].split("/")
            # /v1/councils/{council}/<hot> exactly, as the router would match it
            if len(parts) == 5 and parts[1] == "v1" and parts[2] == "councils" and parts[3]:
                if method == "GET" and parts[4] in self.hot:
                    await self._hot(self.hot[parts[4]], parts[3], scope, receive, send)
                    return
                if method == "POST" and parts[4] in self.posts and self.audited_posts:
                    await self.audited_posts(scope, receive, send)
                    return
        if method in WRITE_METHODS:
            await self.audit(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _direct_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A POST route answered by its endpoint, as ``_hot`` answers a GET, once its whole
        body is in and its reader has found it well formed; anything else (a body cut off
        or refused, a request the reader declines) goes to FastAPI with the body as read,
        and FastAPI answers it as ever (its errors are the route's errors)."""
        route, read, call = self.posts[scope["path"].rsplit("/", 1)[1]]
        chunks: list[bytes] = []
        last: Message | None = None  # a message other than the body's: given on after it
        while True:
            message = await receive()
            if message["type"] != "http.request":
                last = message
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        given = False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": last is not None}
            if last is not None:
                return last
            return await receive()

        args = read(scope, body) if last is None else None
        if args is None:
            await self.app(scope, replay, send)
            return
        await self._answer(route, args[0], call, args, scope, replay, send)

    async def _hot(
        self, route: Any, council: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        await self._answer(route, council, route.endpoint, (), scope, receive, send)

    async def _answer(
        self,
        route: Any,
        council: str,
        call: Callable[..., Any],
        args: tuple[Any, ...],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """``call(request, *args)`` answers for ``route``, matched as FastAPI would have
        matched it (route, endpoint and path in the scope: metrics, logs and audit name its
        template); an exception is answered by the application's own handler for it."""
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {"council": council}
        request = Request(scope, receive, send)
        try:
            response = await call(request, *args)
        except Exception as exc:
            handler = self._handler_for(scope, exc)
            if handler is None:
                raise  # unexpected: answered 500 by the edge, as for every route
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, scope: Scope, exc: Exception) -> Any:
        """The application's handler for ``exc``, looked up as Starlette's exception layer
        does (status-code handlers of HTTP errors first, then by class along the MRO); the
        catch-all ``Exception`` handler is not one of them (it is the server error layer's)."""
        if self._handlers is None:
            handlers = getattr(scope.get("app"), "exception_handlers", {})
            self._handlers = {k: v for k, v in handlers.items() if k not in (500, Exception)}
        if isinstance(exc, StarletteHTTPException) and exc.status_code in self._handlers:
            return self._handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self._handlers:
                return self._handlers[cls]
        return None


_NO_STORE = (b"cache-control", b"no-store")
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


def query_pairs(query: str) -> list[tuple[str, str]]:
    """``urllib.parse.parse_qsl(query, keep_blank_values=True)`` (Starlette's parsing of a
    query string), written for the common case: a few ``name=value`` pairs, most of them
    needing no unquoting. A test holds it to ``parse_qsl``."""
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote(name.replace("+", " ")), unquote(value.replace("+", " "))
        pairs.append((name, value))
    return pairs


# where unsafe_url leaves the query's (name, value) pairs when it had to parse them (an
# ASCII query, so the same pairs as Starlette's parsing): the hot routes read them there
QUERY_PAIRS = "gateway.query_pairs"


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
        pairs = query_pairs(raw.decode("utf-8", "replace"))
        if raw.isascii():  # then decoded as Starlette would decode it: parsed once
            scope[QUERY_PAIRS] = pairs
        for name, value in pairs:
            for part, what in ((name, "its name"), (value, "its value")):
                at = first_unsafe(part, in_url=True)
                if at is not None:
                    field = name if what == "its value" and first_unsafe(name) is None else "query"
                    return invalid(field, f"query parameter: {what} {describe(part, at)}")
    if b"&" in raw:  # repeated parameters are refused, not silently "last one wins"
        if pairs is None:
            pairs = query_pairs(raw.decode("utf-8", "replace"))
            if raw.isascii():
                scope[QUERY_PAIRS] = pairs
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

    def handler_for(self, path: str) -> Any:
        """The CORS layer of the council of a /v1/councils/{council}/... path, if it has one."""
        parts = path.split("/", 4)
        if len(parts) > 3 and parts[1] == "v1" and parts[2] == "councils":
            return self.per_council.get(parts[3])
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handler_for(scope["path"]) if scope["type"] == "http" else None
        if handler is not None:
            await handler(scope, receive, send)
            return
        await self.app(scope, receive, send)

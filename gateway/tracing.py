"""OpenTelemetry traces of requests, adaptor calls and database work, exported over OTLP/HTTP.

Off unless an endpoint is configured: ``GATEWAY_OTLP_ENDPOINT`` (a collector's base URL, e.g.
``http://otel-collector:4318``; ``/v1/traces`` is added) or the standard
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` (with the standard
``OTEL_EXPORTER_OTLP_HEADERS`` etc.). ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``
turn it off whatever else is set. When off, nothing is installed: the request middleware is
not added (gateway/api/app.py), adaptor calls are wrapped without a span (gateway/resilience.py
decides once per wrapped method) and the database has no listener.

Spans:

- one per HTTP request (``TraceRequests``): named ``METHOD /route/{template}``; a caller's W3C
  ``traceparent`` (and ``tracestate``) makes it a child of the caller's span. Attributes: the
  method, the route *template*, the status code, the council id. Never the raw path, the
  query string, a body, a header, the client's address or the request id a caller chose.
- one per adaptor call (``adaptor_span``): council, adaptor name and type, capability,
  operation (the method) and outcome (``ok`` or the gateway's error slug / exception type).
  No arguments or results (they hold postcodes, names, phone numbers).
- one per SQL statement run inside a request or adaptor span (``instrument_engine``): the
  statement text as SQLAlchemy sends it, with its placeholders; never the parameters.
  Statements outside any span (the outbox worker polling) are not traced: they would be
  noise.

Exception messages are never recorded (they can carry submitted values): a failed span has
status ERROR and an ``error.type`` of the exception's class name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from gateway.settings import Settings

ENABLED = False  # the one cheap check
_tracer: Tracer | None = None
_provider: TracerProvider | None = None
MAX_STATEMENT = 2000
_FALSE = ("", "0", "false", "no", "off")


def endpoint(settings: Settings | None = None) -> str | None:
    """The OTLP/HTTP traces URL configured, or None (tracing off)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() not in _FALSE:
        return None
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    mine = settings.otlp_endpoint if settings is not None else None
    mine = mine or os.environ.get("GATEWAY_OTLP_ENDPOINT")
    if mine:
        return _traces_url(mine)
    full = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if full:
        return full
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return _traces_url(base) if base else None


def _traces_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def configure(settings: Settings | None = None, *, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on when an endpoint is configured (or ``exporter`` is given: tests pass
    an in-memory one, exported synchronously). True when tracing is on. The gateway's own
    provider is used (the global one is left alone)."""
    global ENABLED, _tracer, _provider
    if exporter is None:
        url = endpoint(settings)
        if url is None:
            return ENABLED
        if ENABLED:
            return True  # one exporter per process
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise RuntimeError(
                "an OTLP endpoint is configured but OpenTelemetry is not installed: install "
                "repairs-gateway[tracing] (the container image has it)"
            ) from None

        processor: Any = BatchSpanProcessor(OTLPSpanExporter(endpoint=url))
    else:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        processor = SimpleSpanProcessor(exporter)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from gateway import __version__

    if _provider is not None:
        _provider.shutdown()
    _provider = TracerProvider(
        resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "repairs-gateway"}
            | {"service.version": __version__}
        )
    )
    _provider.add_span_processor(processor)
    _tracer = _provider.get_tracer("gateway", __version__)
    ENABLED = True
    return True


def disable() -> None:
    """Tracing off again (tests); spans already exported stay exported."""
    global ENABLED, _tracer, _provider
    ENABLED = False
    if _provider is not None:
        _provider.shutdown()
    _provider, _tracer = None, None


def shutdown() -> None:
    """Export what is buffered (the process is stopping)."""
    if _provider is not None:
        _provider.force_flush(5000)


def tracer() -> Tracer:
    if _tracer is not None:
        return _tracer
    from opentelemetry import trace

    return trace.get_tracer("gateway")  # the API's no-op tracer


# -- requests ---------------------------------------------------------------------------------
class TraceRequests:
    """ASGI middleware: one server span per HTTP request (installed only when tracing is on;
    the flag is checked again so that turning it off costs one test)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not ENABLED or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier: dict[str, str] = {}
        for k, v in scope.get("headers") or ():
            if k in (b"traceparent", b"tracestate"):
                carrier[k.decode("latin-1")] = v.decode("latin-1")
        parent = TraceContextTextMapPropagator().extract(carrier) if carrier else None
        method = str(scope.get("method", "GET"))
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with tracer().start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
            attributes={"http.request.method": method, "url.scheme": scope.get("scheme", "http")},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__name__)
                raise
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                council = (scope.get("path_params") or {}).get("council")
                if isinstance(council, str) and route != "unmatched":
                    span.set_attribute("gateway.council", council[:64])
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


# -- adaptor calls ----------------------------------------------------------------------------
@contextmanager
def adaptor_span(
    council: str, adaptor: str, adaptor_type: str, capability: str, operation: str
) -> Iterator[Span]:
    """A client span around one adaptor call; the caller sets ``gateway.outcome``."""
    from opentelemetry.trace import SpanKind

    with tracer().start_as_current_span(
        f"adaptor {capability}.{operation}",
        kind=SpanKind.CLIENT,
        record_exception=False,
        set_status_on_exception=False,
        attributes={
            "gateway.council": council,
            "gateway.adaptor": adaptor,
            "gateway.adaptor.type": adaptor_type,
            "gateway.capability": capability,
            "gateway.operation": operation,
        },
    ) as span:
        yield span


def failed(span: Span, outcome: str, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("gateway.outcome", outcome)
    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR))


# -- the database ------------------------------------------------------------------------------
def instrument_engine(engine: Any) -> None:
    """Spans for the SQL statements an (async) SQLAlchemy engine runs inside a traced request
    or call: statement text with placeholders, never the parameters. Nothing when off."""
    if not ENABLED:
        return
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from sqlalchemy import event

    sync_engine = getattr(engine, "sync_engine", engine)
    if getattr(sync_engine, "_gateway_traced", False):
        return
    sync_engine._gateway_traced = True
    system = sync_engine.dialect.name

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if not ENABLED or context is None or not trace.get_current_span().is_recording():
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = tracer().start_span(
            f"db {operation}",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": system,
                "db.operation": operation,
                "db.statement": statement[:MAX_STATEMENT],
            },
        )
        context._gateway_span = span

    def after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        span = getattr(context, "_gateway_span", None)
        if span is not None:
            context._gateway_span = None
            span.end()

    def error(exception_context: Any) -> None:
        context = exception_context.execution_context
        span = getattr(context, "_gateway_span", None)
        if span is not None:
            context._gateway_span = None
            span.set_attribute("error.type", type(exception_context.original_exception).__name__)
            span.set_status(Status(StatusCode.ERROR))
            span.end()

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", error)

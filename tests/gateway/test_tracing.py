"""OpenTelemetry traces (gateway/tracing.py): a span per request, per adaptor call and per SQL
statement, with the right parents; a caller's `traceparent` is the parent; no personal data in
any span (route templates, never raw paths, queries, bodies, references, postcodes, names);
nothing installed when tracing is off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway import tracing
from gateway.settings import Settings
from tests.gatewaykit import demo_council, running_gateway

BASE = "/v1/councils/demo"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
NAME, PHONE, EMAIL = "Ada Lovelace", "07700 900123", "ada.lovelace@example.org"
DESCRIPTION = "Water pouring through the kitchen ceiling onto the cooker"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.disable()


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _every_value(finished: tuple[ReadableSpan, ...]) -> list[str]:
    values = []
    for span in finished:
        values.append(span.name)
        values.extend(str(v) for v in _attributes(span).values())
        values.extend(str(v) for e in span.events for v in (e.attributes or {}).values())
        values.extend(str(v) for v in span.resource.attributes.values())
    return values


async def test_spans_have_the_right_parents_and_no_personal_data(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get(f"{BASE}/addresses", params={"postcode": "ln1 1aa"})
        assert r.status_code == 200
        r = await gw.client.get(
            f"{BASE}/appointments",
            params={"property_id": "00012345", "sor_code": "N631111", "page_size": 1},
        )
        assert r.status_code == 200, r.text
        token = r.json()["slots"][0]["slot_token"]
        spans.clear()
        r = await gw.client.post(
            f"{BASE}/repairs",
            json={
                "property_id": "00012345",
                "sor_code": "N631111",
                "description": DESCRIPTION,
                "contact": {"name": NAME, "phone": PHONE, "email": EMAIL},
                "slot_token": token,
            },
            headers={
                "Idempotency-Key": "trace-1",
                "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
            },
        )
        assert r.status_code == 201, r.text
        reference = r.json()["reference"]
        r = await gw.client.get(f"{BASE}/repairs/{reference}")
        assert r.status_code == 200
        await gw.drain_outbox()
    finished = spans.get_finished_spans()

    booking = [s for s in finished if s.name == "POST /v1/councils/{council}/repairs"]
    assert len(booking) == 1
    server = booking[0]
    # the caller's traceparent is the parent
    assert server.context.trace_id == int(TRACE_ID, 16)
    assert server.parent is not None and server.parent.span_id == int(CALLER_SPAN, 16)
    assert server.parent.is_remote
    attrs = _attributes(server)
    assert attrs["http.route"] == "/v1/councils/{council}/repairs"
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.response.status_code"] == 201
    assert attrs["gateway.council"] == "demo"

    # the scheduler call is a child of the request; its SQL is a child of the call
    calls = [
        s
        for s in finished
        if s.name.startswith("adaptor ") and s.parent and s.parent.span_id == server.context.span_id
    ]
    book = next(s for s in calls if _attributes(s)["gateway.operation"] == "book")
    assert _attributes(book)["gateway.adaptor.type"] == "csv_fallback"
    assert _attributes(book)["gateway.adaptor"] == "demo_csv"
    assert _attributes(book)["gateway.outcome"] == "ok"
    under_book = [s for s in finished if s.parent and s.parent.span_id == book.context.span_id]
    assert any(s.name.startswith("db ") for s in under_book)
    # the gateway's own SQL (repair row, idempotency record, outbox) under the request
    own_sql = [
        s
        for s in finished
        if s.name.startswith("db ") and s.parent and s.parent.span_id == server.context.span_id
    ]
    assert own_sql
    for s in own_sql:
        a = _attributes(s)
        assert a["db.system"] == "sqlite" and a["db.statement"].split()[0].upper() in (
            a["db.operation"],
        )
    assert any("?" in _attributes(s)["db.statement"] for s in own_sql)  # placeholders only

    # a request span per request, each named by its route template
    names = {s.name for s in finished if s.kind.name == "SERVER"}
    assert "GET /v1/councils/{council}/repairs/{reference}" in names

    # no personal data anywhere: not in names, attributes, events or the resource
    values = _every_value(finished)
    forbidden = [
        NAME,
        "Lovelace",
        PHONE,
        "07700900123",
        "+447700900123",
        EMAIL,
        DESCRIPTION,
        "kitchen ceiling",
        reference,
        "LN1 1AA",
        "ln1 1aa",
        "LN11AA",
        "00012345",
        token[:20],
        "/v1/councils/demo/",  # raw paths: only templates
        "postcode=",
        "Bearer",
        "rgw_",
    ]
    for value in values:
        for word in forbidden:
            assert word.lower() not in value.lower(), (word, value)


async def test_a_request_without_traceparent_starts_a_trace(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get(f"{BASE}/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 200
        r = await gw.client.get("/no/such/path?postcode=LN1+1AA")
        assert r.status_code == 404
    finished = spans.get_finished_spans()
    server = next(s for s in finished if s.name == "GET /v1/councils/{council}/addresses")
    assert server.parent is None
    call = next(s for s in finished if s.name == "adaptor addresses.addresses")
    assert call.parent is not None and call.parent.span_id == server.context.span_id
    unmatched = next(s for s in finished if s.name == "GET unmatched")
    assert _attributes(unmatched)["http.route"] == "unmatched"
    assert "gateway.council" not in _attributes(unmatched)
    for value in _every_value(finished):
        assert "no/such" not in value and "LN1" not in value


async def test_nothing_is_installed_when_tracing_is_off(tmp_path: Path) -> None:
    assert not tracing.ENABLED
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        assert not any(m.cls is tracing.TraceRequests for m in gw.app.user_middleware)
        r = await gw.client.get(f"{BASE}/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 200
        guard = gw.runtime.councils["demo"].guards["demo_csv"]
        assert guard.addresses.__name__ == "call"  # the plain wrapper: no span around it
        engine = gw.runtime.database.engine.sync_engine
        assert not getattr(engine, "_gateway_traced", False)


def test_the_endpoint_comes_from_settings_or_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in (
        "GATEWAY_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ):
        monkeypatch.delenv(var, raising=False)
    assert tracing.endpoint(Settings()) is None  # off by default
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")
    assert tracing.endpoint(Settings()) == "http://127.0.0.1:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/x")
    assert tracing.endpoint(Settings()) == "http://127.0.0.1:4318/x"
    s = Settings(otlp_endpoint="http://127.0.0.1:9999")
    assert tracing.endpoint(s) == "http://127.0.0.1:9999/v1/traces"
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.endpoint(s) is None

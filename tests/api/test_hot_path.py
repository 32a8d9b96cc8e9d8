"""The hot routes' fast path (gateway/api/middleware.py ``Edge``) answers exactly as the
routes do through FastAPI, and its shortcuts write what the general code writes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adaptors.csv_fallback.calendar import Calendar, slot_key
from adaptors.csv_fallback.config import CalendarConfig
from gateway.api.middleware import Edge
from gateway.api.routes import slot_page_json
from gateway.api.schemas import Slot, SlotPage
from gateway.service import AppointmentPage, OfferedSlot
from gateway.storage.models import AuditEvent
from gateway.tokens import SlotClaim, TokenCodec, compact_json
from repairs_gateway_sdk.model import VendorSlot
from repairs_gateway_sdk.timeutil import LONDON, london
from tests.gatewaykit import demo_council, running_gateway

REQUESTS = [
    "/v1/councils/demo/addresses?postcode=LN1%201AA",
    "/v1/councils/demo/addresses?postcode=ln11aa",
    "/v1/councils/demo/addresses?postcode=LN1%201A",
    "/v1/councils/demo/addresses",
    "/v1/councils/demo/addresses?postcode=LN1%201AA&x=1",
    "/v1/councils/demo/addresses?postcode=LN1%201AA&postcode=LN1%201AA",
    "/v1/councils/nowhere/addresses?postcode=LN1%201AA",
    "/v1/councils/Bad!/addresses?postcode=LN1%201AA",
    "/v1/councils/demo/addresses/",
    "/v1/councils/demo/appointments?property_id=00012345&sor_code=N631111",
    "/v1/councils/demo/appointments?property_id=00012345&trade=plumbing&size=small&page_size=3",
    "/v1/councils/demo/appointments?property_id=00012345&sor_code=N631111&page_size=0",
    "/v1/councils/demo/appointments?property_id=00012345&sor_code=N631111&cursor=abc",
    "/v1/councils/demo/appointments?property_id=00012345&sor_code=N631111&from=2026-13-01",
    "/v1/councils/demo/appointments?property_id=00012345&trade=plumbing",
    "/v1/councils/demo/appointments?property_id=nope&sor_code=N631111",
    "/v1/councils/demo/appointments?property_id=00012345&sor_code=NOPE",
    "/v1/councils/demo/appointments?reference=NOPE",
    "/v1/councils/demo/appointments",
]


def _edge(app: Any) -> Edge:
    layer = app.middleware_stack
    while not isinstance(layer, Edge):
        layer = layer.app
    return layer


async def test_the_fast_path_answers_as_fastapi_would(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        gw.runtime.gateway.codec.clock = lambda: 1_900_000_000.0  # tokens alike in both
        other = await gw.create_key(["elsewhere"])
        callers = [gw.client, gw.client_for(None), gw.client_for(other), gw.client_for("rgw_x_y")]
        await gw.client.get("/health")
        edge = _edge(gw.app)
        assert set(edge.hot) == {"addresses", "appointments"}

        async def answers() -> list[tuple[int, list[tuple[str, str]], bytes]]:
            out = []
            for caller in callers:
                for path in REQUESTS:
                    r = await caller.get(path)
                    headers = [
                        (k, v)
                        for k, v in r.headers.items()
                        if k not in ("x-request-id", "ratelimit")
                    ]
                    out.append((r.status_code, headers, r.content))
            return out

        fast = await answers()
        hot, edge.hot = edge.hot, {}  # every request through FastAPI's router
        try:
            routed = await answers()
        finally:
            edge.hot = hot
        assert [a[0] for a in fast].count(200) >= 4
        assert fast == routed


def _page(slots: list[VendorSlot], cursor: str | None) -> AppointmentPage:
    return AppointmentPage(
        [
            OfferedSlot(s, f"2.tok{i}.sig", london(s.start).isoformat(), london(s.end).isoformat())
            for i, s in enumerate(slots)
        ],
        cursor,
        "demo_csv",
    )


@pytest.mark.parametrize("cursor", [None, "2.abc.def"])
def test_the_page_json_is_the_models_json(cursor: str | None) -> None:
    summer = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # +01:00 in London
    slots = [
        VendorSlot(start=summer, end=summer + timedelta(hours=4), label="morning", best=True),
        VendorSlot(
            start=datetime(2026, 12, 3, 8, tzinfo=LONDON),
            end=datetime(2026, 12, 3, 12, tzinfo=LONDON),
            label='après-midi "late" \\ \u2028 \x01',
        ),
    ]
    page = _page(slots, cursor)
    model = SlotPage(
        council="demo",
        property_id="0001 é",
        next_cursor=cursor,
        slots=[
            Slot(
                start=london(o.slot.start),
                end=london(o.slot.end),
                label=o.slot.label,
                best=o.slot.best,
                slot_token=o.token,
            )
            for o in page.slots
        ],
    )
    assert slot_page_json("demo", "0001 é", page) == model.model_dump_json().encode()
    # an OfferedSlot without its texts is written from its times
    bare = AppointmentPage([OfferedSlot(s, "t") for s in slots], cursor, "x")
    assert json.loads(slot_page_json("demo", "p", bare))["slots"][0]["start"] == (
        "2026-07-01T08:00:00+01:00"
    )


def test_a_page_of_tokens_is_the_tokens_of_its_slots() -> None:
    codec = TokenCodec("secret-for-tokens", clock=lambda: 1_800_000_000.5)
    job = ["N631111", "plumbing", "small", 30, "normal"]
    start = datetime(2026, 12, 3, 8, tzinfo=LONDON)
    slots = [
        (start, start + timedelta(hours=4), "morning", {"key": "k1"}),
        (start.astimezone(UTC), start, 'é "q" \n', {"a": [1, 2.5, None, True], "b": {"ü": "\x00"}}),
        (start, start, "", {}),
    ]
    page = codec.slot_tokens(
        "demo",
        "demo_csv",
        "00012345",
        job,
        [(s.isoformat(), e.isoformat(), lab, v) for s, e, lab, v in slots],
    )
    one_by_one = [
        codec.slot_token(SlotClaim("demo", "demo_csv", "00012345", job, s, e, lab, v))
        for s, e, lab, v in slots
    ]
    assert page == one_by_one
    assert codec.read_slot_token(page[1]).vendor == slots[1][3]


async def test_the_service_writes_each_token_as_json_would(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        gateway = gw.runtime.gateway
        demo = gateway.council("demo")
        job = gateway.resolve_job(demo, sor_code="N631111", trade=None, size=None, priority=None)
        page = await gateway.appointments(demo, "00012345", job, None, None, 3)
        assert page.slots and page.next_cursor
        for offered in page.slots:
            assert offered.token_json == compact_json(offered.token)
            assert gateway.codec.read_slot_token(offered.token).vendor == offered.slot.vendor


@pytest.mark.parametrize("council", ["d", "de", "dem", "démo"])  # every length mod 3
def test_a_page_of_tokens_is_the_tokens_of_its_slots_whatever_their_shared_part(
    council: str,
) -> None:
    codec = TokenCodec("secret-for-tokens", clock=lambda: 1_800_000_000.5)
    job = ["N631111", "plumbing", "small", 30, "normal"]
    start = datetime(2026, 12, 3, 8, tzinfo=LONDON)
    slots = [(start + timedelta(hours=i), "x" * i, {"key": "k" * i}) for i in range(4)]
    page = codec.slot_tokens(
        council, "csv", "0001", job, [(s.isoformat(), s.isoformat(), la, v) for s, la, v in slots]
    )
    assert page == [
        codec.slot_token(SlotClaim(council, "csv", "0001", job, s, s, la, v)) for s, la, v in slots
    ]


@pytest.mark.parametrize("secret", ["secret-for-tokens", "é" * 100])
def test_a_token_is_its_payload_signed_with_hmac_sha256(secret: str) -> None:
    """The format of ADR 0003, computed here with the standard library alone: tokens issued
    before a change of how they are signed still verify, and the other way round."""
    import base64
    import hashlib
    import hmac

    from gateway.tokens import _hmac_pads, _mac

    codec = TokenCodec(secret, clock=lambda: 1_800_000_000.5)
    start = datetime(2026, 12, 3, 8, tzinfo=LONDON)
    claim = SlotClaim(
        "demo",
        "csv",
        "0001",
        ["N1", "gas", "small", 30, "normal"],
        start,
        start,
        "am",
        {"key": "k"},
    )
    token = codec.slot_token(claim)
    version, body, signature = token.split(".")
    key = hmac.new(secret.encode(), b"repairs-gateway:slot-token", hashlib.sha256).digest()
    mac = hmac.new(key, f"{version}.{body}".encode(), hashlib.sha256).digest()[:16]
    assert signature == base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == {
        **claim._wire(),
        "x": 1_800_000_000 + codec.lifetime,
    }
    assert codec.read_slot_token(token) == claim
    for length in (0, 1, 32, 64, 65, 200):  # keys shorter and longer than SHA-256's block
        k, m = bytes(i % 251 for i in range(length)), b"message"
        expected = hmac.new(k, m, hashlib.sha256).digest()[:16]
        assert _mac(*_hmac_pads(k), m) == base64.urlsafe_b64encode(expected).rstrip(b"=")


def test_the_diary_works_each_day_out_once() -> None:
    cal = Calendar(
        CalendarConfig(
            working_days=["mon", "tue", "wed", "thu", "fri"],
            slots=[{"start": "08:00", "end": "12:00"}, {"start": "08:00", "end": "16:00"}],
            bank_holidays="england",
        )
    )
    first, last = date(2026, 12, 21), date(2026, 12, 29)  # Christmas and Boxing Day off
    once = list(cal.keyed_slots(first, last, 60))
    assert once == list(cal.keyed_slots(first, last, 60))
    assert [(s, e, lab) for s, e, lab, _ in once] == list(cal.slots(first, last, 60))
    assert all(key == slot_key(s, e) for s, e, _, key in once)
    assert {s.date() for s, *_ in once} == {date(2026, 12, d) for d in (21, 22, 23, 24, 29)}
    assert [lab for s, e, lab in cal.slots(first, first, 300)] == [once[1][2]]


@pytest.mark.parametrize(
    "value",
    [
        {"key": "2026-12-03T08:00:00+00:00/2026-12-03T12:00:00+00:00"},
        {"a": [1, 2.5, None, True, False, -0.0, 1e300, 10**30], "b": {"ü": '\x00\u2028"\\/'}},
        [],
        {},
        "é\n",
        3,
        None,
        {1: "int key", False: "b", None: "n", 2.5: "f"},
        {"a": "1", "b": "é\u2028\x7f", "c": ""},
        {"a": "1", "b": 2},
        {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"},
        {"ключ": "значение"},
    ],
)
def test_compact_json_is_json_dumps(value: Any) -> None:
    assert compact_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_compact_json_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        compact_json({"when": date(2026, 1, 1)})


def test_the_access_line_is_the_line_structlog_writes() -> None:
    import io

    import structlog

    from gateway.logging import access_line, configure

    stream = io.StringIO()
    configure("info", stream=stream)
    try:
        for method, route, status, ms, rid in [
            ("GET", "/v1/councils/{council}/addresses", 200, 0.51, "a" * 32),
            ('FOO\u00e9"', "unmatched", 404, 12.0, "req-1234abcd"),
            ("POST", "/v1/councils/{council}/repairs", 500, 100000.25, "x1234567"),
        ]:
            bound = structlog.contextvars.bind_contextvars(request_id=rid)
            structlog.get_logger("gateway.access").info(
                "request", method=method, route=route, status=status, duration_ms=ms
            )
            access_line(method, route, status, ms, rid)
            structlog.contextvars.reset_contextvars(**bound)
        configure("warning", stream=stream)
        access_line("GET", "/x", 200, 1.0, "quiet-1234")  # below the level: not written
    finally:
        configure("info")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6
    for theirs, ours in zip(lines[::2], lines[1::2], strict=True):
        a, b = json.loads(theirs), json.loads(ours)
        assert list(a) == list(b) and {**a, "timestamp": ""} == {**b, "timestamp": ""}
        assert theirs.split('"timestamp"')[0] == ours.split('"timestamp"')[0]
        assert len(a["timestamp"]) == len(b["timestamp"]) and b["timestamp"].endswith("Z")


def test_times_are_written_as_isoformat_writes_them() -> None:
    from datetime import timezone

    from gateway.service import _iso

    bst = datetime(2026, 10, 25, 1, 30, tzinfo=LONDON)  # the hour that happens twice
    gmt = datetime(2026, 10, 25, 1, 30, tzinfo=LONDON, fold=1)
    times = [
        bst,
        gmt,
        datetime(2026, 12, 3, 8, tzinfo=UTC),
        datetime(2026, 12, 3, 8, tzinfo=LONDON),  # equal to the one before
        datetime(2026, 12, 3, 8),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1), "A")),
    ]
    for _ in range(2):
        assert [_iso(t) for t in times] == [t.isoformat() for t in times]


def test_a_fresh_request_id_is_a_uuid4() -> None:
    import uuid

    from gateway.api.middleware import new_request_id

    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for rid in ids:
        u = uuid.UUID(hex=rid)
        assert (u.hex, u.version, u.variant) == (rid, 4, uuid.RFC_4122)


@pytest.mark.parametrize(
    "query",
    [
        "a=1&b=2",
        "postcode=LN1%201AA",
        "a",
        "a=&=b",
        "&&a=1&",
        "x=a+b%2B",
        "%zz=1",
        "a=%E2%82%AC",
        "a==b",
        "a=1;b=2",
        "+=+",
        "n%3D1=v%3D2",
        "%C3%28=x",
        "a=%",
        "=",
        "",
    ],
)
def test_query_pairs_are_the_pairs_starlette_parses(query: str) -> None:
    from urllib.parse import parse_qsl

    from gateway.api.middleware import query_pairs

    assert query_pairs(query) == parse_qsl(query, keep_blank_values=True)


def test_access_lines_in_a_loop_come_at_its_next_turn_all_of_them_in_order() -> None:
    import asyncio
    import io

    from gateway.logging import access_line, configure

    stream = io.StringIO()
    configure("info", stream=stream)
    ids = [f"req-{i:08d}" for i in range(5)]

    async def answer_five() -> list[str]:
        for rid in ids:
            access_line("GET", "/v1/councils/{council}/addresses", 200, 0.5, rid)
        before = stream.getvalue()
        await asyncio.sleep(0)
        assert before == ""  # written together, at the loop's next turn
        return stream.getvalue().splitlines()

    try:
        lines = asyncio.run(answer_five())
    finally:
        configure("info")
    assert [json.loads(line)["request_id"] for line in lines] == ids


def test_access_lines_left_by_a_loop_that_stopped_first_are_written_not_lost() -> None:
    """A loop stopped within the turn that answered a request never reaches the turn that
    would write its line: the line comes out before the next one written (in another loop,
    or none), in order, and the lines after it are not held back for ever."""
    import asyncio
    import io

    from gateway.logging import access_line, configure

    stream = io.StringIO()
    configure("info", stream=stream)
    route = "/v1/councils/{council}/addresses"
    try:
        loop = asyncio.new_event_loop()

        def answer_and_stop() -> None:
            access_line("GET", route, 200, 0.5, "req-a")
            loop.stop()  # this turn is the loop's last

        loop.call_soon(answer_and_stop)
        loop.run_forever()
        loop.close()
        assert stream.getvalue() == ""

        async def answer() -> None:
            access_line("GET", route, 200, 0.5, "req-b")
            await asyncio.sleep(0)

        asyncio.run(answer())
        access_line("GET", route, 200, 0.5, "req-c")  # outside any loop: at once
    finally:
        configure("info")
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["req-a", "req-b", "req-c"]


@pytest.mark.parametrize("t", [1764700000.0, 1764700000.5, 1764700000.000001, 1764700000.999999])
def test_the_access_lines_time_is_written_as_structlog_writes_it(
    t: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from gateway import logging as gateway_logging

    monkeypatch.setattr(gateway_logging.time, "time", lambda: t)
    ours = gateway_logging._AccessLog(True, None)._now()
    theirs = datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
    assert ours == theirs


JSON = ("Content-Type", "application/json")


def _post_cases(token: str) -> list[tuple[str, list[tuple[str, str]], bytes]]:
    """(path, headers, body) of POST .../repairs: well formed, and each way FastAPI refuses
    one (the edge hands those to it); the body is sent as JSON unless a case says otherwise."""
    good = {
        "property_id": "00012345",
        "sor_code": "N631111",
        "description": "Kitchen tap drips all night",
        "contact": {"name": "A Resident", "phone": "07700 900123"},
        "slot_token": token,
    }
    path = "/v1/councils/demo/repairs"
    cases: list[tuple[str, dict[str, str], Any]] = [
        (path, {"Idempotency-Key": "k-1"}, good),
        (path, {"Idempotency-Key": "k-1"}, good),  # a retry: the first answer again
        (path, {"Idempotency-Key": "k-1"}, {**good, "description": "Something else here"}),
        (path, {}, good),  # no Idempotency-Key
        (path, {"Idempotency-Key": ""}, good),
        (path, {"Idempotency-Key": "k" * 256}, good),
        (path + "?x=1", {"Idempotency-Key": "k-2"}, good),
        (path, {"Idempotency-Key": "k-3"}, {**good, "description": "no"}),
        (path, {"Idempotency-Key": "k-4"}, {**good, "colour": "red"}),
        (path, {"Idempotency-Key": "k-5"}, [good]),
        (path, {"Idempotency-Key": "k-6"}, b'{"property_id": '),
        (path, {"Idempotency-Key": "k-7"}, b""),
        (path, {"Idempotency-Key": "k-8"}, {**good, "slot_token": "2.abc.def"}),
        (path, {"Idempotency-Key": "k-9"}, {**good, "property_id": "nope"}),
        ("/v1/councils/Bad!/repairs", {"Idempotency-Key": "k-10"}, good),
        ("/v1/councils/nowhere/repairs", {"Idempotency-Key": "k-11"}, good),
        (path, {"Idempotency-Key": "k-12"}, b"[" * 5000 + b"]" * 5000),  # too deep for json
    ]
    out = [
        (p, [*h.items(), JSON], b if isinstance(b, bytes) else json.dumps(b).encode())
        for p, h, b in cases
    ]
    body = json.dumps(good).encode()
    for n, media in enumerate(
        [
            [("Content-Type", "text/x+json")],  # not application/: FastAPI does not decode it
            [("Content-Type", "text/plain"), JSON],  # the first one counts
            [("Content-Type", "application/merge-patch+json")],
            [("Content-Type", "Application/JSON; charset=utf-8")],
        ]
    ):
        out.append((path, [("Idempotency-Key", f"m-{n}"), *media], body))
    return out


async def test_a_booking_answered_at_the_edge_is_answered_as_fastapi_would(
    tmp_path: Path,
) -> None:
    """POST .../repairs is answered by its endpoint at the edge when well formed, and by
    FastAPI otherwise: either way each answer, status, headers and audit row are what FastAPI
    alone gives (references and times aside: each booking is a new repair)."""
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        await gw.client.get("/health")  # the middleware stack is built by the first request
        edge = _edge(gw.app)
        assert set(edge.posts) == {"repairs"}
        route, read, call = edge.posts["repairs"]
        called: list[int] = []

        async def counted(*args: Any) -> Any:
            called.append(1)
            return await call(*args)

        edge.posts = {"repairs": (route, read, counted)}
        callers = [gw.client, gw.client_for(None), gw.client_for("rgw_x_y")]

        async def answers(run: str) -> list[tuple[int, list[tuple[str, str]], Any]]:
            page = await gw.client.get(
                "/v1/councils/demo/appointments?property_id=00012345&sor_code=N631111"
            )
            first = page.json()["slots"][0]
            token = first["slot_token"]
            out = []
            for caller in callers:
                for path, headers, body in _post_cases(token):
                    # a key of its own in each run
                    sent = [
                        (k, f"{run}-{v}" if k == "Idempotency-Key" and v else v) for k, v in headers
                    ]
                    r = await caller.post(path, content=body, headers=sent)
                    answer = r.json()
                    reference = answer.get("reference") if r.status_code == 201 else None
                    kept = [
                        (k, v.replace(reference, "REF") if reference else v)
                        for k, v in r.headers.items()
                        if k not in ("x-request-id", "ratelimit", "content-length")
                    ]
                    if r.status_code == 201:  # a new repair each time: its own reference
                        # the slot of its run's page (the diary fills up between runs)
                        assert answer["appointment"]["start"] == first["start"]
                        for name in ("reference", "created_at", "updated_at", "appointment"):
                            answer[name] = "-"
                    out.append((r.status_code, kept, answer))
            return out

        async def audit_rows() -> list[tuple[str, str]]:
            async with gw.runtime.database.session() as s:
                q = select(AuditEvent.action, AuditEvent.outcome).order_by(AuditEvent.id)
                return [(r[0], r[1]) for r in (await s.execute(q)).all()]

        before = len(await audit_rows())
        direct = await answers("a")
        after_direct = await audit_rows()
        posts, edge.posts = edge.posts, {}  # every POST through FastAPI's router
        try:
            routed = await answers("b")
        finally:
            edge.posts = posts
        after_routed = await audit_rows()
        # well formed, so answered directly: the booking, its retry, the key reused, a forged
        # token, an unknown property, an unknown council, JSON with a charset (seven), by each
        # of three callers
        assert len(called) == 7 * 3
        assert [a[0] for a in direct].count(201) >= 2
        assert direct == routed
        assert after_direct[before:] == after_routed[len(after_direct) :]
        # every answer audited but the edge's own refusals (415: a media type but JSON first)
        assert len(after_direct) - before == len([a for a in direct if a[0] != 415]) > 0

"""Failures stay where they start: hostile input is refused at the edge naming the field,
requests a vendor can never accept never open a breaker, an open breaker writes nothing,
each capability has its own breaker, and logs and metrics cannot be grown or forged."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.councils import Council
from gateway.outbox import OutboxWorker, enqueue
from gateway.resilience import CallStats, CircuitBreaker, Guarded
from gateway.storage.models import OutboxItem, Repair
from gateway.tokens import SlotClaim, TokenCodec
from repairs_gateway_sdk.errors import BackendCannotAccept, BackendUnavailable, NotAttempted
from tests.gatewaykit import demo_council, running_gateway

HOSTILE_TEXT = {
    "NUL": "Tap\x00 drips",
    "vertical tab": "Tap\x0b drips",
    "escape": "Tap \x1b[31m drips",
    "C1 control": "Tap \x85 drips",
    "non-character": "Tap \ufffe drips",
    "lone surrogate": "Tap \ud800 drips",
}


async def _first_slot(client: Any) -> str:
    r = await client.get(
        "/v1/councils/demo/appointments",
        params={"property_id": "00012345", "sor_code": "N631111", "page_size": 1},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["slots"][0]["slot_token"])


def _repair(slot_token: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "property_id": "00012345",
        "sor_code": "N631111",
        "description": "Tap drips",
        "contact": {"phone": "07700900111", "name": "Ann", "email": "ann@example.org"},
        "slot_token": slot_token,
    }
    body.update(changes)
    return body


def _raw_json(body: dict[str, Any]) -> bytes:
    # json.dumps escapes a lone surrogate as \ud800, as a browser would send it
    return json.dumps(body).encode()


@pytest.mark.parametrize("what", sorted(HOSTILE_TEXT))
async def test_control_characters_in_free_text_are_refused_naming_the_field(
    tmp_path: Path, database_url: str, what: str
) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files, database_url=database_url) as gw:
        token = await _first_slot(gw.client)
        bad = HOSTILE_TEXT[what]
        cases = {
            "description": _repair(token, description=bad),
            "contact.name": _repair(token, contact={"phone": "07700900111", "name": bad}),
            "property_id": _repair(token, property_id=bad),
            "sor_code": _repair(token, sor_code=bad),
        }
        for n, (field, body) in enumerate(cases.items()):
            r = await gw.client.post(
                "/v1/councils/demo/repairs",
                content=_raw_json(body),
                headers={"Idempotency-Key": f"k-{n}", "Content-Type": "application/json"},
            )
            assert r.status_code == 422, (field, r.status_code, r.text)
            problem = r.json()
            assert problem["errors"][0]["field"] == field
            message = problem["errors"][0]["message"]
            # a lone surrogate is refused already by the JSON parser, in its own words
            assert "control or non-text character" in message or "unicode" in message
        async with gw.database.session() as s:
            assert (await s.execute(select(func.count()).select_from(Repair))).scalar() == 0
        # line breaks and tabs are text: kept as the resident typed them
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            json=_repair(token, description="Tap drips.\r\n\tSince Monday."),
            headers={"Idempotency-Key": "fine"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["description"] == "Tap drips.\r\n\tSince Monday."


async def test_control_characters_in_paths_and_queries_are_refused(
    tmp_path: Path, database_url: str
) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files, database_url=database_url) as gw:
        c = gw.client
        r = await c.get("/v1/councils/demo/addresses?postcode=LN1%001AA")
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "postcode"
        r = await c.get("/v1/councils/demo/repairs/ABCD%00-1234")
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "path"
        r = await c.get("/v1/councils/demo/appointments?property_id=0001%0A2345&sor_code=N631111")
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "property_id"
        r = await c.get("/v1/councils/demo/repairs/ABCD-1234", params={"x\x00": "1"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "query"
        r = await c.post(
            "/v1/councils/demo/repairs/ABCD-1234/cancel", json={"reason": "moved\x00 out"}
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "reason"
        # the refusal carries the request id like every other answer
        assert len(r.headers["x-request-id"]) >= 8


async def test_a_repeated_query_parameter_is_refused_not_last_one_wins(tmp_path: Path) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        r = await gw.client.get("/v1/councils/demo/addresses?postcode=LN1+1AA&postcode=ZZ1+1ZZ")
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "postcode"
        assert "more than once" in r.json()["errors"][0]["message"]
        r = await gw.client.get("/v1/councils/demo/addresses?postcode=LN1+1AA")
        assert r.status_code == 200


class _Flaky:
    """An adaptor whose works orders are down while its address look-ups are fine."""

    def __init__(self) -> None:
        self.calls = 0

    async def addresses(self, postcode: str) -> list[Any]:
        return []

    async def raise_works_order(self, order: Any) -> str:
        self.calls += 1
        raise BackendUnavailable("down")

    async def book(self, order: Any) -> Any:
        self.calls += 1
        raise BackendCannotAccept("cannot carry that character")


def _council_with_breakers() -> Council:
    c = Council.__new__(Council)
    c.id, c.breakers, c.breaker_threshold, c.breaker_cooldown = "c", {}, 3, 60.0
    return c


async def test_an_outage_of_works_orders_does_not_close_address_lookups() -> None:
    council = _council_with_breakers()
    flaky = _Flaky()
    guarded = Guarded("c", "uh", flaky, lambda cap: council.breaker("uh", cap), CallStats())
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            await guarded.raise_works_order(object())
    assert council.breaker("uh", "works_orders").state == "open"
    with pytest.raises(NotAttempted):
        await guarded.raise_works_order(object())
    assert flaky.calls == 3  # the open circuit stopped calling the failing capability
    assert await guarded.addresses("LN1 1AA") == []  # the same system's look-ups still run
    assert council.breaker("uh", "addresses").state == "closed"


async def test_requests_a_vendor_can_never_accept_never_open_the_breaker() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=60)
    flaky = _Flaky()
    guarded = Guarded("c", "drs", flaky, breaker, CallStats())
    for _ in range(10):
        with pytest.raises(BackendCannotAccept):
            await guarded.book(object())
    assert breaker.state == "closed" and flaky.calls == 10


async def test_an_open_breaker_answers_before_anything_is_written(tmp_path: Path) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        token = await _first_slot(gw.client)
        council = gw.runtime.councils["demo"]
        breaker = council.breaker("demo_csv", "bookings")
        for _ in range(breaker.threshold):
            breaker.failure()
        for n in range(5):  # a resident retrying during the outage
            r = await gw.client.post(
                "/v1/councils/demo/repairs",
                json=_repair(token),
                headers={"Idempotency-Key": "same-key"},
            )
            assert r.status_code == 503, (n, r.text)
            assert int(r.headers["retry-after"]) >= 1
        async with gw.database.session() as s:
            assert (await s.execute(select(func.count()).select_from(Repair))).scalar() == 0
            assert (await s.execute(select(func.count()).select_from(OutboxItem))).scalar() == 0
        breaker.success()
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            json=_repair(token),
            headers={"Idempotency-Key": "same-key"},
        )
        assert r.status_code == 201, r.text


async def test_a_scheduler_never_called_gets_no_compensation(tmp_path: Path) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        token = await _first_slot(gw.client)
        council = gw.runtime.councils["demo"]
        breaker = council.breaker("demo_csv", "bookings")
        real_check = breaker.check
        checks = 0

        def opens_after_the_first_check() -> None:
            # the circuit opens between the gateway's check and the call (another request)
            nonlocal checks
            checks += 1
            if checks == 2:
                for _ in range(breaker.threshold):
                    breaker.failure()
            real_check()

        breaker.check = opens_after_the_first_check  # type: ignore[method-assign]
        r = await gw.client.post(
            "/v1/councils/demo/repairs", json=_repair(token), headers={"Idempotency-Key": "k"}
        )
        assert r.status_code == 503, r.text
        async with gw.database.session() as s:
            kinds = [k for (k,) in await s.execute(select(OutboxItem.kind))]
            statuses = [st for (st,) in await s.execute(select(Repair.status))]
        assert statuses == ["failed"]
        assert "booking.compensate" not in kinds


async def test_an_outbox_item_the_vendor_can_never_accept_goes_dead_at_once(
    tmp_path: Path,
) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        worker = OutboxWorker(gw.database, max_attempts=12)

        async def refuse(item: OutboxItem) -> None:
            raise BackendCannotAccept("Civica UH cannot accept the characters in this request")

        worker.register("test.refuse", refuse)
        async with gw.database.transaction() as s:
            enqueue(s, "demo", "test.refuse", {"reference": "X"})
        await worker.run_once()
        async with gw.database.session() as s:
            item = (await s.execute(select(OutboxItem))).scalar_one()
        assert item.state == "dead" and item.attempts == 1
        assert "cannot accept the characters" in (item.last_error or "")


async def test_request_ids_are_kept_only_when_they_look_like_ids(tmp_path: Path) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        ok = "3f6c1d2e-9a4b-4c1d-8e2f-0a1b2c3d4e5f"
        r = await gw.client.get("/health", headers={"X-Request-ID": ok})
        assert r.headers["x-request-id"] == ok
        for forged in ("ann@example.org", "07700 900123", 'x" level=error', "a" * 65, "ab"):
            r = await gw.client.get("/health", headers={"X-Request-ID": forged})
            assert r.headers["x-request-id"] != forged
            assert len(r.headers["x-request-id"]) == 32


async def test_a_500_and_a_413_carry_the_request_id_and_the_log_names_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("Ann Resident 07700900111")  # a message carrying personal data

        gw.runtime.gateway.addresses = broken  # type: ignore[method-assign]
        rid = "req-500-abcdef"
        with caplog.at_level(logging.INFO):
            r = await gw.client.get(
                "/v1/councils/demo/addresses",
                params={"postcode": "LN1 1AA"},
                headers={"X-Request-ID": rid},
            )
        assert r.status_code == 500
        assert r.headers["x-request-id"] == rid
        assert r.headers["content-type"] == "application/problem+json"
        out = capsys.readouterr().out + caplog.text
        lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        unhandled = [x for x in lines if x.get("event") == "request.unhandled"]
        assert unhandled and unhandled[0]["request_id"] == rid
        assert unhandled[0]["error_type"] == "RuntimeError"
        assert "07700900111" not in out
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            content=b"x" * (1024 * 1024),
            headers={"X-Request-ID": "req-413-abcdef", "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        assert r.headers["x-request-id"] == "req-413-abcdef"


async def test_invented_methods_do_not_grow_the_metrics(tmp_path: Path) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        for i in range(50):
            await gw.client.request(f"BREW{i}", "/v1/councils/demo/addresses")
        body = (await gw.client.get("/metrics")).text
        assert "BREW" not in body
        assert 'method="other"' in body


def _codec(**kw: Any) -> TokenCodec:
    return TokenCodec("new-secret", **kw)


def _claim(**changes: Any) -> SlotClaim:
    from datetime import UTC, datetime

    base = SlotClaim(
        "demo",
        "demo_csv",
        "00012345",
        ["N631111", "plumbing", "small", 60, "normal"],
        datetime(2030, 1, 7, 8, tzinfo=UTC),
        datetime(2030, 1, 7, 12, tzinfo=UTC),
        "morning",
        {"key": "k"},
    )
    return SlotClaim(**{**base.__dict__, **changes})


def test_tokens_verify_under_a_rotated_secret_and_expire() -> None:
    from repairs_gateway_sdk.errors import InvalidInput

    now = [1_000_000.0]
    old = TokenCodec("old-secret", clock=lambda: now[0])
    token = old.slot_token(_claim())
    rotated = TokenCodec("new-secret", ["old-secret"], clock=lambda: now[0])
    assert rotated.read_slot_token(token) == _claim()  # still valid after the rotation
    fresh = rotated.slot_token(_claim())
    with pytest.raises(InvalidInput):  # new tokens use the newest secret only
        old.read_slot_token(fresh)
    with pytest.raises(InvalidInput, match="not one this gateway issued"):
        TokenCodec("new-secret", clock=lambda: now[0]).read_slot_token(token)
    now[0] += rotated.lifetime + 1
    with pytest.raises(InvalidInput, match="expired") as exc:
        rotated.read_slot_token(fresh)
    assert exc.value.field == "slot_token"


def test_signed_but_malformed_tokens_are_422_not_500() -> None:
    from gateway.tokens import _Signer
    from repairs_gateway_sdk.errors import InvalidInput

    codec = _codec()
    signer = _Signer(["new-secret"], "slot-token")
    good = codec._slots.loads(codec.slot_token(_claim()))
    for broken in (
        {k: v for k, v in good.items() if k != "s"},  # a field missing
        {**good, "s": "not a time"},
        {**good, "s": "2030-01-07T08:00:00"},  # a time without its offset
        {**good, "v": ["not", "a", "mapping"]},
        {**good, "c": 7},
        {**good, "x": "tomorrow"},
    ):
        with pytest.raises(InvalidInput, match="malformed") as exc:
            codec.read_slot_token(signer.dumps(broken))
        assert exc.value.field == "slot_token"


async def test_the_csv_fallback_books_only_slots_its_calendar_offers(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    from adaptors.csv_fallback.adaptor import slot_key
    from repairs_gateway_sdk.model import JobSpec
    from repairs_gateway_sdk.timeutil import LONDON

    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        good = gw.runtime.codec.read_slot_token(await _first_slot(gw.client))
        day = good.start.astimezone(LONDON).date()
        # a validly signed token for a 3am slot the calendar never offered
        start = datetime(day.year, day.month, day.day, 3, tzinfo=LONDON)
        end = start + timedelta(hours=2)
        forged = SlotClaim(
            good.council,
            good.adaptor,
            good.property_id,
            good.job,
            start,
            end,
            "night",
            {"key": slot_key(start, end)},
        )
        assert JobSpec.from_compact(forged.job).trade
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            json=_repair(gw.runtime.codec.slot_token(forged)),
            headers={"Idempotency-Key": "forged"},
        )
        assert r.status_code == 409, r.text
        assert r.json()["type"].endswith("/slot-unavailable")
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            json=_repair(gw.runtime.codec.slot_token(good)),
            headers={"Idempotency-Key": "good"},
        )
        assert r.status_code == 201, r.text


def test_the_guard_fails_closed_on_a_capability_method_it_does_not_know() -> None:
    from abc import abstractmethod

    from repairs_gateway_sdk import adaptor as base

    class Teleporter(base.Scheduler):  # a new capability method, not in the table
        @abstractmethod
        async def teleport(self) -> None: ...

    class Vendor(Teleporter):
        async def availability(self, query: Any) -> Any: ...
        async def book(self, order: Any) -> Any: ...
        async def reschedule(self, handle: Any, slot: Any) -> Any: ...
        async def cancel(self, handle: Any, reason: str) -> None: ...
        async def status(self, handle: Any) -> Any: ...
        async def teleport(self) -> None: ...

    assert base.unguarded_methods(Vendor) == ["teleport"]
    with pytest.raises(TypeError, match="teleport"):
        Guarded("c", "v", Vendor.__new__(Vendor), CircuitBreaker(), CallStats())
    for name in ("availability", "book", "attach", "raise_works_order", "get_property"):
        assert name in base.METHOD_CAPABILITY  # every capability method is guarded

"""Messages that stop chasing calls: a confirmation and a reminder the day before, built from
the event's own snapshot, in GOV.UK style (English or Welsh), with the council's sender id and
reply-to address, and GOV.UK Notify's delivery receipts shown on the repair. Against a fake
Notify on loopback, over real HTTP, checking the client's signed JWT as Notify does."""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import uvicorn
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.messages import appointment_text, clock, day, personalisation, snapshot
from gateway.storage.models import OutboxItem
from repairs_gateway_sdk.timeutil import LONDON, london, now, today_london
from tests.gatewaykit import GatewayHandle, demo_council, running_gateway

SERVICE_ID = str(uuid.uuid4())
SECRET = str(uuid.uuid4())
API_KEY = f"gateway_test-{SERVICE_ID}-{SECRET}"
T = {name: str(uuid.uuid4()) for name in ("sb", "sr", "sc", "sm", "eb", "em", "ec", "wsb", "wsm")}
SENDER, REPLY_TO = str(uuid.uuid4()), str(uuid.uuid4())
CALLBACK_TOKEN = "callback-token-for-tests-0123456789"
PHONE, EMAIL = "07700900123", "resident@example.org"
RECEIPTS = "/v1/councils/demo/notifications/receipts"


class FakeNotify:
    """GOV.UK Notify's send endpoints: JWT checked, 201 with an id, or the 400 Notify gives
    for a number it cannot text."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.refuse_sms = False
        self.next_ids: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/v2/notifications/sms", self.handle, methods=["POST"]),
                Route("/v2/notifications/email", self.handle, methods=["POST"]),
            ]
        )

    async def handle(self, request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            return JSONResponse({"errors": [{"error": "AuthError"}]}, status_code=403)
        if claims["iss"] != SERVICE_ID:
            return JSONResponse({"errors": [{"error": "AuthError"}]}, status_code=403)
        channel = request.url.path.rsplit("/", 1)[1]
        body = await request.json()
        if channel == "sms" and self.refuse_sms:
            return JSONResponse(
                {
                    "status_code": 400,
                    "errors": [
                        {
                            "error": "ValidationError",
                            "message": f"phone_number {body['phone_number']} Not a UK mobile "
                            "number",
                        }
                    ],
                },
                status_code=400,
            )
        notification_id = self.next_ids.pop(0) if self.next_ids else str(uuid.uuid4())
        self.sent.append({"channel": channel, "id": notification_id, **body})
        return JSONResponse(
            {"id": notification_id, "reference": body.get("reference"), "content": {}},
            status_code=201,
        )

    def receipt(self, message: dict[str, Any], status: str) -> dict[str, Any]:
        """The callback body Notify posts for ``message``."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "id": message["id"],
            "reference": message.get("reference"),
            "to": message.get("phone_number") or message.get("email_address"),
            "status": status,
            "created_at": stamp,
            "completed_at": stamp,
            "sent_at": stamp,
            "notification_type": message["channel"],
            "template_id": message["template_id"],
            "template_version": 1,
        }


@pytest.fixture
def notify() -> Iterator[tuple[FakeNotify, str]]:
    fake = FakeNotify()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def settings(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": API_KEY,
        "base_url": url,
        "sms_templates": {"booked": T["sb"], "rescheduled": T["sr"], "cancelled": T["sc"]}
        | {"reminder": T["sm"]},
        "email_templates": {"booked": T["eb"], "reminder": T["em"], "cancelled": T["ec"]},
        "sms_sender_id": SENDER,
        "email_reply_to_id": REPLY_TO,
        "callback_bearer_token": CALLBACK_TOKEN,
        **extra,
    }


@asynccontextmanager
async def gateway(tmp_path: Path, url: str, **extra: Any) -> AsyncIterator[GatewayHandle]:
    council, files = demo_council(notifications=settings(url, **extra))
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        yield gw


async def slots(gw: GatewayHandle, **params: Any) -> list[dict[str, Any]]:
    """Slots from three days ahead, so that the day-before reminder is still to come."""
    query = {"property_id": "00012345", "sor_code": "N631111", "page_size": 20}
    query["from"] = (today_london() + timedelta(days=3)).isoformat()
    query = {k: v for k, v in {**query, **params}.items() if v is not None}
    answer = await gw.client.get("/v1/councils/demo/appointments", params=query)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["slots"]
    return found


async def book(gw: GatewayHandle, slot: dict[str, Any], **contact: Any) -> str:
    r = await gw.client.post(
        "/v1/councils/demo/repairs",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "property_id": "00012345",
            "sor_code": "N631111",
            "description": "Tap drips",
            "contact": contact or {"phone": PHONE, "email": EMAIL},
            "slot_token": slot["slot_token"],
        },
    )
    assert r.status_code == 201, r.text
    reference: str = r.json()["reference"]
    return reference


async def outbox(gw: GatewayHandle, event: str | None = None) -> list[OutboxItem]:
    async with gw.database.session() as s:
        items = (
            await s.execute(select(OutboxItem).where(OutboxItem.kind == "notification.send"))
        ).scalars()
        return [i for i in items if event is None or i.payload["event"] == event]


async def make_due(gw: GatewayHandle) -> None:
    """Bring every delayed item forward (the reminder's day has come)."""
    async with gw.database.transaction() as s:
        await s.execute(
            update(OutboxItem).where(OutboxItem.state == "pending").values(next_attempt_at=now())
        )


def expected(slot: dict[str, Any], language: str = "en") -> str:
    start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
    return appointment_text(start, end, language)  # type: ignore[arg-type]


def day_before_at_ten(slot: dict[str, Any]) -> datetime:
    start = london(datetime.fromisoformat(slot["start"]))
    return datetime.combine(start.date() - timedelta(days=1), datetime.min.time(), LONDON).replace(
        hour=10
    )


async def test_confirmation_then_reminder_then_receipts_on_the_repair(
    tmp_path: Path, notify: tuple[FakeNotify, str]
) -> None:
    fake, url = notify
    async with gateway(tmp_path, url) as gw:
        slot = (await slots(gw))[0]
        ref = await book(gw, slot)
        [reminder] = await outbox(gw, "reminder")
        assert reminder.state == "pending"
        assert reminder.next_attempt_at == day_before_at_ten(slot)
        await gw.drain_outbox()
        assert {m["template_id"] for m in fake.sent} == {T["sb"], T["eb"]}
        sms = next(m for m in fake.sent if m["channel"] == "sms")
        email = next(m for m in fake.sent if m["channel"] == "email")
        assert sms["sms_sender_id"] == SENDER and email["email_reply_to_id"] == REPLY_TO
        assert sms["phone_number"] == PHONE and email["email_address"] == EMAIL
        values = sms["personalisation"]
        assert values["reference"] == ref and values["appointment"] == expected(slot)
        assert re.fullmatch(r"[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+", values["date"])
        assert "12pm" not in values["time"] and "12am" not in values["time"]
        assert (await outbox(gw, "reminder"))[0].state == "pending"  # not yet its day

        await make_due(gw)
        await gw.drain_outbox()
        reminders = [m for m in fake.sent if m["template_id"] in (T["sm"], T["em"])]
        assert len(reminders) == 2
        assert all(m["personalisation"]["appointment"] == expected(slot) for m in reminders)

        # Notify's receipts: the bearer token is checked, then the repair shows them
        sms_reminder = next(m for m in reminders if m["channel"] == "sms")
        email_reminder = next(m for m in reminders if m["channel"] == "email")
        callback = gw.client_for(None)
        async with callback:
            refused = await callback.post(
                RECEIPTS,
                json=fake.receipt(sms, "delivered"),
                headers={"Authorization": "Bearer wrong"},
            )
            assert refused.status_code == 401
            auth = {"Authorization": f"Bearer {CALLBACK_TOKEN}"}
            for message, status in (
                (sms, "delivered"),
                (email, "delivered"),
                (sms_reminder, "delivered"),
                (email_reminder, "permanent-failure"),
            ):
                answer = await callback.post(
                    RECEIPTS, json=fake.receipt(message, status), headers=auth
                )
                assert answer.status_code == 204, answer.text
            unknown = fake.receipt({**sms, "id": str(uuid.uuid4())}, "delivered")
            assert (await callback.post(RECEIPTS, json=unknown, headers=auth)).status_code == 204
        shown = (await gw.client.get(f"/v1/councils/demo/repairs/{ref}")).json()["notifications"]
        assert [(n["event"], n["channel"], n["status"]) for n in shown] == [
            ("booked", "sms", "delivered"),
            ("booked", "email", "delivered"),
            ("reminder", "sms", "delivered"),
            ("reminder", "email", "failed"),
        ]
        admin = await gw.client.get(f"/v1/councils/demo/admin/repairs/{ref}/notifications")
        assert admin.status_code == 200
        failed = admin.json()["messages"][3]
        assert (
            failed["notify_status"] == "permanent-failure" and "does not exist" in failed["reason"]
        )
        assert PHONE not in admin.text and EMAIL not in admin.text


async def test_a_notify_400_goes_to_dead_with_its_reason(
    tmp_path: Path, notify: tuple[FakeNotify, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = notify
    fake.refuse_sms = True
    async with gateway(tmp_path, url) as gw:
        slot = (await slots(gw))[0]
        ref = await book(gw, slot)
        await gw.drain_outbox()
        [booked] = await outbox(gw, "booked")
        assert booked.state == "dead"  # at once: Notify's 400 can never succeed
        assert "Not a UK mobile number" in (booked.last_error or "")
        assert PHONE not in (booked.last_error or "")
        assert [m["channel"] for m in fake.sent] == ["email"]  # the other channel still went
        shown = (await gw.client.get(f"/v1/councils/demo/repairs/{ref}")).json()["notifications"]
        assert [(n["channel"], n["status"]) for n in shown] == [
            ("sms", "failed"),
            ("email", "sent"),
        ]
        admin = (await gw.client.get(f"/v1/councils/demo/admin/repairs/{ref}/notifications")).json()
        assert "Not a UK mobile number" in admin["messages"][0]["reason"]
        assert admin["queued"][0]["state"] == "dead"
        # replayed once the number is fixed: only the channel that failed is sent again
        fake.refuse_sms = False
        from gateway.outbox import replay

        assert await replay(gw.database, [booked.id]) == 1
        await gw.drain_outbox()
        assert [m["channel"] for m in fake.sent] == ["email", "sms"]
    output = capsys.readouterr()
    assert PHONE not in output.out + output.err and EMAIL not in output.out + output.err


async def test_email_only_residents_get_email_only(
    tmp_path: Path, notify: tuple[FakeNotify, str]
) -> None:
    fake, url = notify
    async with gateway(tmp_path, url) as gw:
        slot = (await slots(gw))[0]
        await book(gw, slot, email=EMAIL)
        await gw.drain_outbox()
        await make_due(gw)
        await gw.drain_outbox()
        assert [(m["channel"], m["template_id"]) for m in fake.sent] == [
            ("email", T["eb"]),
            ("email", T["em"]),
        ]


async def test_a_move_moves_the_reminder_and_says_the_new_time(
    tmp_path: Path, notify: tuple[FakeNotify, str]
) -> None:
    fake, url = notify
    async with gateway(tmp_path, url) as gw:
        first = (await slots(gw))[0]
        ref = await book(gw, first, phone=PHONE)
        await gw.drain_outbox()
        offered = await slots(gw, reference=ref, property_id=None, sor_code=None)
        later = next(s for s in offered if s["start"][:10] > first["start"][:10])
        moved = await gw.client.patch(
            f"/v1/councils/demo/repairs/{ref}", json={"slot_token": later["slot_token"]}
        )
        assert moved.status_code == 200, moved.text
        pending = [i for i in await outbox(gw, "reminder") if i.state == "pending"]
        assert [i.next_attempt_at for i in pending] == [day_before_at_ten(later)]
        await gw.drain_outbox()
        [rescheduled] = [m for m in fake.sent if m["template_id"] == T["sr"]]
        assert rescheduled["personalisation"]["appointment"] == expected(later)
        assert rescheduled["personalisation"]["status"] == "moved"
        await make_due(gw)
        await gw.drain_outbox()
        [reminder] = [m for m in fake.sent if m["template_id"] == T["sm"]]
        assert reminder["personalisation"]["appointment"] == expected(later)


async def test_a_cancel_before_the_reminder_takes_it_away(
    tmp_path: Path, notify: tuple[FakeNotify, str]
) -> None:
    fake, url = notify
    async with gateway(tmp_path, url) as gw:
        slot = (await slots(gw))[0]
        ref = await book(gw, slot, phone=PHONE)
        # cancelled before the worker ran: the "booked" message still names what was booked
        assert (await gw.client.post(f"/v1/councils/demo/repairs/{ref}/cancel")).status_code == 200
        assert await outbox(gw, "reminder") == []
        await make_due(gw)
        await gw.drain_outbox()
        assert [m["template_id"] for m in fake.sent] == [T["sb"], T["sc"]]
        booked, cancelled = fake.sent
        assert booked["personalisation"]["appointment"] == expected(slot)
        assert cancelled["personalisation"]["appointment"] == expected(slot)
        assert cancelled["personalisation"]["status"] == "cancelled"


async def test_a_reminder_in_flight_for_a_cancelled_booking_is_not_sent(
    tmp_path: Path, notify: tuple[FakeNotify, str]
) -> None:
    fake, url = notify
    async with gateway(tmp_path, url) as gw:
        slot = (await slots(gw))[0]
        ref = await book(gw, slot, phone=PHONE)
        await gw.drain_outbox()
        [reminder] = await outbox(gw, "reminder")
        async with gw.database.transaction() as s:  # claimed by a worker just before the cancel
            await s.execute(
                update(OutboxItem)
                .where(OutboxItem.id == reminder.id)
                .values(locked_until=now() + timedelta(seconds=1))
            )
        assert (await gw.client.post(f"/v1/councils/demo/repairs/{ref}/cancel")).status_code == 200
        async with gw.database.transaction() as s:
            await s.execute(
                update(OutboxItem)
                .where(OutboxItem.id == reminder.id)
                .values(locked_until=None, next_attempt_at=now())
            )
        await gw.drain_outbox()
        assert [m["template_id"] for m in fake.sent] == [T["sb"], T["sc"]]


async def test_welsh_templates_for_residents_who_chose_welsh(
    tmp_path: Path, notify: tuple[FakeNotify, str]
) -> None:
    fake, url = notify
    welsh = {"welsh_sms_templates": {"booked": T["wsb"], "reminder": T["wsm"]}}
    async with gateway(tmp_path, url, **welsh) as gw:
        slot = (await slots(gw))[0]
        await book(gw, slot, phone=PHONE, language="cy")
        await book(gw, slot, phone=PHONE)  # no choice: the council's default, English
        await gw.drain_outbox()
        by_template = {m["template_id"]: m for m in fake.sent}
        assert set(by_template) == {T["wsb"], T["sb"]}
        cy = by_template[T["wsb"]]["personalisation"]
        assert cy["appointment"] == expected(slot, "cy")
        assert cy["date"].startswith("Dydd ") and cy["status"] == "wedi'i drefnu"


async def test_a_receipt_before_the_send_is_recorded_still_counts(
    tmp_path: Path, notify: tuple[FakeNotify, str]
) -> None:
    fake, url = notify
    async with gateway(tmp_path, url) as gw:
        slot = (await slots(gw))[0]
        ref = await book(gw, slot, phone=PHONE)
        fake.next_ids = [str(uuid.uuid4())]
        early = {"id": fake.next_ids[0], "status": "delivered", "notification_type": "sms"}
        callback = gw.client_for(None)
        async with callback:
            answer = await callback.post(
                RECEIPTS, json=early, headers={"Authorization": f"Bearer {CALLBACK_TOKEN}"}
            )
        assert answer.status_code == 204
        await gw.drain_outbox()
        shown = (await gw.client.get(f"/v1/councils/demo/repairs/{ref}")).json()["notifications"]
        assert [(n["event"], n["status"]) for n in shown] == [("booked", "delivered")]


# -- GOV.UK style, without a gateway ---------------------------------------------------------


def at(day_: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day_.year, day_.month, day_.day, hour, minute, tzinfo=LONDON)


def test_times_and_dates_in_govuk_style() -> None:
    d = date(2026, 12, 3)
    assert [clock(at(d, h, m)) for h, m in ((8, 0), (9, 30), (12, 0), (12, 30), (16, 0))] == [
        "8am",
        "9:30am",
        "midday",
        "12:30pm",
        "4pm",
    ]
    assert clock(at(d, 0)) == "midnight"
    assert appointment_text(at(d, 8), at(d, 12), today=date(2026, 12, 1)) == (
        "Thursday 3 December, 8am to midday"
    )
    assert day(at(date(2027, 1, 7), 8), today=date(2026, 12, 1)) == "Thursday 7 January 2027"
    assert appointment_text(at(d, 12), at(d, 16), "cy", today=date(2026, 12, 1)) == (
        "Dydd Iau 3 Rhagfyr, hanner dydd i 4pm"
    )
    summer = date(2026, 7, 2)  # British Summer Time: the London clock, not UTC
    utc_start = at(summer, 8).astimezone(UTC)
    assert clock(utc_start) == "8am"


def test_values_come_from_the_snapshot() -> None:
    d = date(2026, 12, 3)
    snap = snapshot("booked", at(d, 8), at(d, 12))
    values = personalisation("ABCD-1234", "booked", snap, today=date(2026, 12, 1))
    assert values == {
        "reference": "ABCD-1234",
        "status": "booked",
        "date": "Thursday 3 December",
        "time": "8am to midday",
        "appointment": "Thursday 3 December, 8am to midday",
    }
    waiting = personalisation("ABCD-1234", "awaiting_appointment", snapshot("x", None, None))
    assert waiting["date"] == "" and waiting["appointment"] == ""

"""Resident notifications through GOV.UK Notify, against a fake Notify server on loopback that
checks the client's signed JWT the way Notify does."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.gatewaykit import demo_council, running_gateway

SERVICE_ID = str(uuid.uuid4())
SECRET = str(uuid.uuid4())
API_KEY = f"gateway_test-{SERVICE_ID}-{SECRET}"
SMS_BOOKED, SMS_CANCELLED, EMAIL_BOOKED = (str(uuid.uuid4()) for _ in range(3))


class FakeNotify:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail_next = 0
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
        if self.fail_next:
            self.fail_next -= 1
            return JSONResponse({"errors": [{"error": "Exception"}]}, status_code=500)
        body = await request.json()
        self.sent.append({"channel": request.url.path.rsplit("/", 1)[1], **body})
        return JSONResponse(
            {"id": str(uuid.uuid4()), "reference": body.get("reference")}, status_code=201
        )


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


async def test_booking_and_cancellation_are_notified_after_commit(
    tmp_path: Path, notify: tuple[FakeNotify, str]
) -> None:
    fake, url = notify
    council, files = demo_council(
        notifications={
            "api_key": API_KEY,
            "base_url": url,
            "sms_templates": {"booked": SMS_BOOKED, "cancelled": SMS_CANCELLED},
            "email_templates": {"booked": EMAIL_BOOKED},
        }
    )
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        slots = (
            await gw.client.get(
                "/v1/councils/demo/appointments",
                params={"property_id": "00012345", "sor_code": "N631111", "page_size": 1},
            )
        ).json()["slots"]
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            headers={"Idempotency-Key": "n1"},
            json={
                "property_id": "00012345",
                "sor_code": "N631111",
                "description": "Tap drips",
                "contact": {"phone": "07700900123", "email": "res@example.org"},
                "slot_token": slots[0]["slot_token"],
            },
        )
        assert r.status_code == 201
        ref = r.json()["reference"]
        assert fake.sent == []  # nothing is sent inside the booking request
        fake.fail_next = 1  # Notify has a bad moment: the outbox retries
        await gw.drain_outbox()
        from sqlalchemy import update

        from gateway.storage.models import OutboxItem
        from repairs_gateway_sdk.timeutil import now

        async with gw.database.transaction() as s:
            await s.execute(update(OutboxItem).values(next_attempt_at=now()))
        await gw.drain_outbox()
        by_channel = {m["channel"]: m for m in fake.sent}
        assert by_channel["sms"]["template_id"] == SMS_BOOKED
        assert by_channel["sms"]["phone_number"] == "07700900123"
        assert by_channel["sms"]["personalisation"]["reference"] == ref
        assert by_channel["sms"]["personalisation"]["time"] in (
            "8am to midday",
            "8am to 4pm",
            "9:30am to 2:30pm",
            "midday to 4pm",
        )
        assert by_channel["email"]["template_id"] == EMAIL_BOOKED
        assert len(fake.sent) == 2
        await gw.client.post(f"/v1/councils/demo/repairs/{ref}/cancel")
        await gw.drain_outbox()
        assert fake.sent[-1]["template_id"] == SMS_CANCELLED and len(fake.sent) == 3

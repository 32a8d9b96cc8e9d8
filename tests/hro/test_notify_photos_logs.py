"""govNotifyStatus from the real GOV.UK Notify outcome, photos passed to a works-order adaptor
that takes attachments, and nothing a resident sent (photo, identifier) in the logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.plugins import register
from repairs_gateway_sdk.adaptor import AdaptorConfig, Attachment, AttachmentSink, WorksOrderSink
from repairs_gateway_sdk.model import WorksOrder
from tests.gateway.test_notifications import API_KEY, EMAIL_BOOKED, SMS_BOOKED, FakeNotify
from tests.gateway.test_notifications import notify as notify  # noqa: F401 - the fixture
from tests.gatewaykit import demo_council, running_gateway
from tests.hro.kit import IDENTIFIER, NewarkSherwood, b64, booking_body, hro_council, png

ATTACHED: list[tuple[str, Attachment]] = []


class AttachingSink(WorksOrderSink, AttachmentSink):
    """A works-order sink that takes attachments (records what it was given)."""

    type_name = "test_attaching_sink"
    Config = AdaptorConfig

    async def raise_works_order(self, order: WorksOrder) -> str:
        return f"WO-{order.reference}"

    async def cancel_works_order(self, vendor_ref: str) -> None:
        return None

    async def attach(self, works_order_ref: str, attachment: Attachment) -> None:
        ATTACHED.append((works_order_ref, attachment))


def council(**extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    body, files = demo_council(**extra)
    return hro_council(body, files)


async def book(gw: Any, photo: bytes | None = None, **kw: Any) -> dict[str, Any]:
    fe = NewarkSherwood(gw.client_for(None), "/hro/demo")
    q = {"repairLocation": "bedroom", "repairProblem": "walls", "locationId": "00012345"}
    slot = (await fe.slots("Tenant", **q)).json()[0]
    r = await fe.book(
        "Tenant", booking_body("bedroom", "walls", None, "00012345", slot, photo=photo, **kw)
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_gov_notify_status_is_the_real_outcome(
    tmp_path: Path,
    notify: tuple[FakeNotify, str],  # noqa: F811
) -> None:
    fake, url = notify
    body, files = council(
        notifications={
            "api_key": API_KEY,
            "base_url": url,
            "sms_templates": {"booked": SMS_BOOKED},
            "email_templates": {"booked": EMAIL_BOOKED},
        }
    )
    body["hro"]["notify_wait_seconds"] = 10
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        gw.runtime.worker.start()  # as `serve` does (or a separate `worker` process)
        out = await book(gw)
        assert out["govNotifyStatus"] == "success"
        assert {m["channel"] for m in fake.sent} == {"sms", "email"}
        fake.fail_next = 10
        out = await book(gw, text="another repair")
        assert out["govNotifyStatus"] == "failed"
        # a contact the council sends nothing to
        body_text = {"type": "text", "value": "07700900999"}
        gw.runtime.bookings.notifiers["demo"].config.sms_templates.clear()
        out = await book(gw, text="third", contact=body_text, phone=None)
        assert out["govNotifyStatus"] == "not_sent"


async def test_photos_reach_a_works_order_adaptor_that_takes_attachments(tmp_path: Path) -> None:
    register(AttachingSink.type_name, AttachingSink)
    body, files = council()
    body["adaptors"]["hms"] = {"type": AttachingSink.type_name}
    body["routes"]["works_orders"] = "hms"
    ATTACHED.clear()
    photo = png(2000)
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        out = await book(gw, photo=photo)
        await gw.drain_outbox()
        await gw.drain_outbox()  # the attach waits for the works order if it runs first
        ref = out["id"]
        assert [(w, a.data, a.content_type) for w, a in ATTACHED] == [
            (f"WO-{ref}", photo, "image/png")
        ]
        photos = (await gw.client.get(f"/v1/councils/demo/admin/repairs/{ref}/photos")).json()
        assert photos[0]["attached_to_works_order"] is True


async def test_nothing_a_resident_sent_reaches_the_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, files = council()
    photo = png(5000)
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        await book(gw, photo=photo, text="My secret description", postcode="LN1 1AA")
        bad = png(10)
        fe = NewarkSherwood(gw.client_for(None), "/hro/demo")
        r = await fe.book(
            "Tenant",
            {**booking_body("bedroom", "walls", None, "00012345", None), "time": {"x": b64(bad)}},
        )
        assert r.status_code in (400, 409)
    logged = capsys.readouterr()
    text = logged.out + logged.err
    for secret in (b64(photo)[:40], IDENTIFIER, "My secret description", "resident@example.org"):
        assert secret not in text
    assert "identifier=" not in text

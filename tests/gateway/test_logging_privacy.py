"""No personal data in logs, on success and error paths alike."""

from __future__ import annotations

import io
import json
from pathlib import Path

from gateway.logging import configure
from tests.gatewaykit import demo_council, running_gateway

NAME, PHONE, EMAIL = "Bernadette Quinlan", "07700 900456", "bq.resident@example.org"
DESCRIPTION = "Water pouring through ceiling above the cot"
POSTCODE = "LN1 1AA"


async def test_nothing_a_resident_typed_reaches_the_logs(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure("debug", stream=stream)
    try:
        council, files = demo_council()
        async with running_gateway(tmp_path, {"demo": council}, files) as gw:
            c = gw.client
            await c.get("/v1/councils/demo/addresses", params={"postcode": POSTCODE})
            await c.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1A"})
            slots = (
                await c.get(
                    "/v1/councils/demo/appointments",
                    params={"property_id": "00012345", "sor_code": "N631111", "page_size": 1},
                )
            ).json()["slots"]
            body = {
                "property_id": "00012345",
                "sor_code": "N631111",
                "description": DESCRIPTION,
                "contact": {"name": NAME, "phone": PHONE, "email": EMAIL},
                "slot_token": slots[0]["slot_token"],
            }
            ok = await c.post(
                "/v1/councils/demo/repairs", json=body, headers={"Idempotency-Key": "p1"}
            )
            assert ok.status_code == 201
            # error paths: bad phone, bad email, forged token, reused key, oversize body
            await c.post(
                "/v1/councils/demo/repairs",
                json={**body, "contact": {"phone": f"x{PHONE}", "email": EMAIL}},
                headers={"Idempotency-Key": "p2"},
            )
            await c.post(
                "/v1/councils/demo/repairs",
                json={**body, "contact": {"name": NAME, "email": f"{EMAIL}@"}},
                headers={"Idempotency-Key": "p3"},
            )
            await c.post(
                "/v1/councils/demo/repairs",
                json={**body, "slot_token": "forged"},
                headers={"Idempotency-Key": "p4"},
            )
            await c.post(
                "/v1/councils/demo/repairs",
                json={**body, "description": NAME * 3},
                headers={"Idempotency-Key": "p1"},
            )
            await c.post(
                "/v1/councils/demo/repairs",
                content=json.dumps({**body, "description": DESCRIPTION * 5000}),
                headers={"Idempotency-Key": "p5", "content-type": "application/json"},
            )
            await c.get(f"/v1/councils/demo/repairs/{ok.json()['reference']}")
    finally:
        configure("info")
    import logging

    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)  # URLs carry postcodes
    logs = stream.getvalue()
    assert logs.count('"event": "request"') >= 8  # the access log did run
    for secret in (
        NAME,
        PHONE,
        PHONE.replace(" ", ""),
        EMAIL,
        DESCRIPTION,
        POSTCODE,
        POSTCODE.replace(" ", ""),
        "Minster Yard",
    ):
        assert secret not in logs, secret


async def test_backend_failures_do_not_leak_what_was_submitted(tmp_path: Path) -> None:
    """An adaptor failing with personal data in its exception text: nothing reaches the logs."""
    stream = io.StringIO()
    configure("debug", stream=stream)
    try:
        council, files = demo_council()
        async with running_gateway(tmp_path, {"demo": council}, files) as gw:
            adaptor = gw.runtime.councils["demo"].adaptors["demo_csv"]
            slots = (
                await gw.client.get(
                    "/v1/councils/demo/appointments",
                    params={"property_id": "00012345", "sor_code": "N631111", "page_size": 2},
                )
            ).json()
            body = {
                "property_id": "00012345",
                "sor_code": "N631111",
                "description": DESCRIPTION,
                "contact": {"name": NAME, "phone": PHONE},
                "slot_token": slots["slots"][0]["slot_token"],
            }

            async def explodes(order: object) -> None:
                raise RuntimeError(f"vendor said no to {NAME} {PHONE} {DESCRIPTION}")

            adaptor.book = explodes  # type: ignore[method-assign]
            r = await gw.client.post(
                "/v1/councils/demo/repairs", json=body, headers={"Idempotency-Key": "boom"}
            )
            assert r.status_code in (500, 503)
            assert NAME not in r.text and PHONE not in r.text  # nor to the caller
            from repairs_gateway_sdk.errors import BackendUnavailable

            async def down(order: object) -> None:
                raise BackendUnavailable(f"timeout booking for {PHONE}")

            adaptor.book = down  # type: ignore[method-assign]
            r = await gw.client.post(
                "/v1/councils/demo/repairs", json=body, headers={"Idempotency-Key": "down"}
            )
            assert r.status_code == 503 and r.headers["retry-after"]
            await gw.drain_outbox()
    finally:
        configure("info")
    logs = stream.getvalue()
    assert '"status": 503' in logs or '"status": 500' in logs
    for secret in (NAME, PHONE, DESCRIPTION):
        assert secret not in logs, secret

"""End to end through the standard HTTP API: addresses and works orders from the UH simulator,
appointments from the CSV fallback scheduler; UH outages and lost replies included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from adaptors.civica_uh.tests.conftest import Sim
from gateway.storage.models import OutboxItem
from repairs_gateway_sdk.timeutil import now

gatewaykit = pytest.importorskip("tests.gatewaykit")

SOR = (
    "sor_code,description,trade,size,duration_minutes,priority,enabled\n"
    "20060020,Renew tap washer,PL,small,60,N,yes\n"
    "N373049,Kitchen cupboard door hanging off,CA,small,60,,yes\n"
)
CSV_PROPS = (
    "property_id,uprn,address_line_1,address_line_2,address_line_3,address_line_4,postcode,"
    "kind,parent_id,repairable,reason\n"
    "CSV0001,,1 Nowhere,,Lincoln,,LN9 9ZZ,dwelling,,yes,\n"
)


def council(sim: Sim) -> dict[str, Any]:
    return {
        "name": "City of Lincoln (UH)",
        "mappings": "sor.csv",
        "adaptors": {
            "uh": {"type": "civica_uh", "options": sim.options(timeout_seconds=2)},
            "diary": {
                "type": "csv_fallback",
                "options": {
                    "properties_file": "props.csv",
                    "calendar": {
                        "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "bank_holidays": None,
                        "capacity": 5,
                    },
                },
            },
        },
        "routes": {"addresses": "uh", "appointments": "diary", "works_orders": "uh"},
    }


@pytest.fixture
async def gw(sim: Sim, tmp_path: Path) -> AsyncIterator[Any]:
    async with gatewaykit.running_gateway(
        tmp_path, {"lincoln": council(sim)}, files={"sor.csv": SOR, "props.csv": CSV_PROPS}
    ) as h:
        yield h


async def make_due(gw: Any) -> None:
    """Bring a backed-off outbox retry forward to now (instead of sleeping)."""
    async with gw.database.transaction() as s:
        await s.execute(
            update(OutboxItem).where(OutboxItem.state == "pending").values(next_attempt_at=now())
        )


async def book(gw: Any, property_id: str, key: str) -> dict[str, Any]:
    slots = await gw.client.get(
        "/v1/councils/lincoln/appointments",
        params={"property_id": property_id, "sor_code": "20060020"},
    )
    assert slots.status_code == 200, slots.text
    token = slots.json()["slots"][0]["slot_token"]
    created = await gw.client.post(
        "/v1/councils/lincoln/repairs",
        headers={"Idempotency-Key": key},
        json={
            "property_id": property_id,
            "sor_code": "20060020",
            "description": "Kitchen tap dripping",
            "contact": {"phone": "07700900123"},
            "slot_token": token,
        },
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_addresses_from_uh(gw: Any) -> None:
    r = await gw.client.get("/v1/councils/lincoln/addresses", params={"postcode": "ln24bb"})
    assert r.status_code == 200, r.text
    body = r.json()
    items = (
        body if isinstance(body, list) else next(v for v in body.values() if isinstance(v, list))
    )
    ids = {a["id"] for a in items}
    assert {"00020000", "00020001", "00020004"} <= ids


async def test_uh_outage_gives_503_with_retry_after(sim: Sim, gw: Any) -> None:
    sim.faults(mode="http503")
    r = await gw.client.get("/v1/councils/lincoln/addresses", params={"postcode": "LN1 1AA"})
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) > 0


async def test_booking_during_outage_raises_works_order_once_uh_is_back(sim: Sim, gw: Any) -> None:
    r = await gw.client.get("/v1/councils/lincoln/addresses", params={"postcode": "LN1 1AA"})
    assert r.status_code == 200
    sim.faults(mode="http503")
    repair = await book(gw, "00012001", "k-outage")
    assert repair["status"] == "booked"
    await gw.drain_outbox()
    assert sim.state()["orders"] == []  # UH is down: nothing raised yet, nothing lost
    sim.clear()
    await make_due(gw)
    await gw.drain_outbox()
    orders = sim.state()["orders"]
    assert len(orders) == 1
    assert orders[0]["RepairRequestReference"] == repair["reference"]
    assert orders[0]["JobCode"] == "20060020"
    await make_due(gw)
    await gw.drain_outbox()
    assert len(sim.state()["orders"]) == 1
    got = await gw.client.get(f"/v1/councils/lincoln/repairs/{repair['reference']}")
    assert got.json()["works_order_reference"] == orders[0]["OrderReference"]


async def test_lost_reply_to_the_works_order_creates_exactly_one(sim: Sim, gw: Any) -> None:
    sim.faults(mode="drop_after", operations=["CreateRepairWithOrder"], times=1)
    repair = await book(gw, "00020001", "k-lost")
    await gw.drain_outbox()
    assert len(sim.state()["orders"]) == 1  # created, but the reply was lost
    await make_due(gw)
    await gw.drain_outbox()
    orders = sim.state()["orders"]
    assert len(orders) == 1
    got = await gw.client.get(f"/v1/councils/lincoln/repairs/{repair['reference']}")
    assert got.json()["works_order_reference"] == orders[0]["OrderReference"]


async def test_cancelling_a_repair_cancels_the_works_order(sim: Sim, gw: Any) -> None:
    repair = await book(gw, "00012001", "k-cancel")
    await gw.drain_outbox()
    r = await gw.client.post(f"/v1/councils/lincoln/repairs/{repair['reference']}/cancel")
    assert r.status_code in (200, 202), r.text
    await gw.drain_outbox()
    assert sim.state()["orders"][0]["StatusCode"] == "700"


async def test_ineligible_property_cannot_be_booked(gw: Any) -> None:
    r = await gw.client.get(
        "/v1/councils/lincoln/appointments",
        params={"property_id": "00012005", "sor_code": "20060020"},
    )
    assert r.status_code == 422

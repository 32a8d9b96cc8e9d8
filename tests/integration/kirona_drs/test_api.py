"""Through the standard HTTP API: addresses from a CSV, appointments and bookings from DRS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adaptors.kirona_drs.tests.conftest import Sim
from tests.gatewaykit import GatewayHandle, running_gateway

PROPERTIES = (
    "property_id,uprn,address_line_1,address_line_2,address_line_3,address_line_4,postcode,"
    "kind,parent_id,repairable,reason\n"
    "000123,100030001234,1 High Street,Lincoln,,,LN1 1AA,dwelling,,yes,\n"
    "000124,100030001235,2 High Street,Lincoln,,,LN1 1AA,dwelling,,yes,\n"
)
SOR = (
    "sor_code,description,trade,size,duration_minutes,priority,enabled\n"
    "20060020,Renew tap washer,PL,small,60,N,yes\n"
    "N373049,Kitchen cupboard door hanging off,CA,small,60,,yes\n"
)
BASE = "/v1/councils/lincs"


def council(sim: Sim) -> dict[str, Any]:
    return {
        "name": "Lincs Test Council",
        "mappings": "sor.csv",
        "adaptors": {
            "csv": {"type": "csv_fallback", "options": {"properties_file": "properties.csv"}},
            "drs": {"type": "kirona_drs", "options": sim.options()},
        },
        "routes": {"addresses": "csv", "appointments": "drs"},
    }


@pytest.fixture
async def gw(sim: Sim, tmp_path: Path) -> AsyncIterator[GatewayHandle]:
    async with running_gateway(
        tmp_path, {"lincs": council(sim)}, files={"properties.csv": PROPERTIES, "sor.csv": SOR}
    ) as handle:
        yield handle


async def slots(
    client: httpx.AsyncClient, property_id: str = "000123", **params: Any
) -> dict[str, Any]:
    r = await client.get(
        f"{BASE}/appointments",
        params={"property_id": property_id, "sor_code": "20060020", **params},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def book(
    client: httpx.AsyncClient, token: str, key: str, property_id: str = "000123"
) -> httpx.Response:
    return await client.post(
        f"{BASE}/repairs",
        headers={"Idempotency-Key": key},
        json={
            "property_id": property_id,
            "sor_code": "20060020",
            "description": "Kitchen tap drips",
            "contact": {"phone": "01522 000000"},
            "slot_token": token,
        },
    )


async def test_browse_book_reschedule_status_cancel(sim: Sim, gw: GatewayHandle) -> None:
    r = await gw.client.get(f"{BASE}/addresses", params={"postcode": "ln11aa"})
    assert r.status_code == 200 and len(r.json()["addresses"]) == 2
    page = await slots(gw.client)
    assert page["slots"] and page["next_cursor"]
    nxt = await slots(gw.client, cursor=page["next_cursor"])
    assert nxt["slots"][0]["start"] > page["slots"][-1]["start"] or (
        nxt["slots"][0]["start"] == page["slots"][-1]["start"]
        and nxt["slots"][0]["end"] > page["slots"][-1]["end"]
    )
    first = page["slots"][0]
    r = await book(gw.client, first["slot_token"], "key-1")
    assert r.status_code == 201, r.text
    repair = r.json()
    assert repair["appointment"]["start"] == first["start"]
    ref = repair["reference"]
    assert sim.state()["orders_by_reference"][ref]["start"] is not None

    target = page["slots"][3]
    r = await gw.client.patch(f"{BASE}/repairs/{ref}", json={"slot_token": target["slot_token"]})
    assert r.status_code == 200, r.text
    assert r.json()["appointment"]["start"] == target["start"]

    r = await gw.client.get(f"{BASE}/repairs/{ref}")
    assert r.status_code == 200 and r.json()["status"] == "booked"
    sim.set_status(ref, "STARTED")  # the operative has arrived
    r = await gw.client.get(f"{BASE}/repairs/{ref}")
    assert r.status_code == 200 and r.json()["status"] == "in_progress"


async def test_cancel_removes_the_drs_order(sim: Sim, gw: GatewayHandle) -> None:
    page = await slots(gw.client)
    r = await book(gw.client, page["slots"][0]["slot_token"], "key-c")
    ref = r.json()["reference"]
    r = await gw.client.post(f"{BASE}/repairs/{ref}/cancel", json={"reason": "not needed"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert sim.state()["orders"] == 0


async def test_two_residents_racing_for_the_last_place(sim: Sim, gw: GatewayHandle) -> None:
    sim.reset(capacity=1)
    page = await slots(gw.client)
    token = page["slots"][0]["slot_token"]
    other = (await slots(gw.client, property_id="000124"))["slots"][0]
    assert other["start"] == page["slots"][0]["start"]
    results = await asyncio.gather(
        book(gw.client, token, "race-a"), book(gw.client, other["slot_token"], "race-b", "000124")
    )
    assert sorted(r.status_code for r in results) == [201, 409]
    await gw.drain_outbox()
    state = sim.state()
    assert state["orders"] == 1 and state["scheduled"] == 1


async def test_lost_reply_is_not_a_duplicate_order(sim: Sim, gw: GatewayHandle) -> None:
    page = await slots(gw.client)
    sim.faults(
        {"op": "createOrder", "kind": "lost", "times": 1},
        {"op": "scheduleBooking", "kind": "lost", "times": 1},
    )
    r = await book(gw.client, page["slots"][0]["slot_token"], "lost-1")
    assert r.status_code == 201, r.text
    again = await book(gw.client, page["slots"][0]["slot_token"], "lost-1")
    assert again.json()["reference"] == r.json()["reference"]
    assert sim.state()["orders"] == 1


async def test_outage_mid_booking_leaves_no_orphan(sim: Sim, gw: GatewayHandle) -> None:
    page = await slots(gw.client)
    sim.faults(
        {"op": "scheduleBooking", "kind": "lost"},
        {"op": "selectOrder", "kind": "lost"},
        {"op": "deleteOrder", "kind": "fault"},
    )
    r = await book(gw.client, page["slots"][0]["slot_token"], "down-1")
    assert r.status_code == 503, r.text
    assert sim.state()["orders"] == 1  # DRS scheduled it; the reply never arrived
    sim.faults()
    await gw.drain_outbox()  # the gateway's compensation cancels by reference
    assert sim.state()["orders"] == 0

"""End to end through the standard repairs API: addresses from a CSV, appointments and
bookings from the Totalmobile simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from adaptors.totalmobile.tests.conftest import Sim, options
from tests.gatewaykit import running_gateway

BASE = "/v1/councils/tmc"
SOR = """sor_code,description,trade,size,duration_minutes,priority,enabled
N630945,Seal around bath,PL,small,60,,yes
N856010,Replace light switch,EL,medium,120,,yes
"""
PROPERTIES = (
    (
        "property_id,uprn,address_line_1,address_line_2,address_line_3,address_line_4,postcode,"
        "kind,parent_id,repairable,reason\n"
    )
    + """00012345,100023336956,Flat 1,2 High Street,Lincoln,,LN1 1AA,dwelling,,yes,
00012346,100023336957,Flat 2,2 High Street,Lincoln,,LN1 1AA,dwelling,,yes,
"""
)


def council(sim_url: str) -> dict[str, Any]:
    return {
        "name": "Totalmobile Test Council",
        "mappings": "sor.csv",
        "adaptors": {
            "props": {"type": "csv_fallback", "options": {"properties_file": "properties.csv"}},
            "tm": {"type": "totalmobile", "options": options(sim_url)},
        },
        "routes": {"addresses": "props", "appointments": "tm"},
    }


def gateway(tmp_path: Path, sim: Sim) -> Any:
    return running_gateway(
        tmp_path, {"tmc": council(sim.url)}, files={"sor.csv": SOR, "properties.csv": PROPERTIES}
    )


async def slots(client: Any, n: int = 8, **params: Any) -> dict[str, Any]:
    r = await client.get(
        f"{BASE}/appointments",
        params={"property_id": "00012345", "sor_code": "N630945", "page_size": n, **params},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def repair(token: str, property_id: str = "00012345") -> dict[str, Any]:
    return {
        "property_id": property_id,
        "sor_code": "N630945",
        "description": "Sealant round the bath has failed",
        "contact": {"phone": "07700 900123"},
        "slot_token": token,
    }


async def test_browse_book_reschedule_status_cancel(tmp_path: Path, sim: Sim) -> None:
    async with gateway(tmp_path, sim) as gw:
        c = gw.client
        r = await c.get(f"{BASE}/addresses", params={"postcode": "ln1 1aa"})
        assert r.status_code == 200
        assert {a["id"] for a in r.json()["addresses"]} == {"00012345", "00012346"}

        page = await slots(c)
        assert len(page["slots"]) == 8 and page["next_cursor"]
        assert {s["label"] for s in page["slots"]} >= {"morning", "afternoon"}
        assert all(s["start"][-6:] in ("+00:00", "+01:00") for s in page["slots"])
        more = await slots(c, cursor=page["next_cursor"])
        assert more["slots"][0]["start"] >= page["slots"][-1]["start"]

        chosen = page["slots"][0]
        r = await c.post(
            f"{BASE}/repairs", json=repair(chosen["slot_token"]), headers={"Idempotency-Key": "k-1"}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        ref = body["reference"]
        assert body["status"] == "booked"
        assert (body["appointment"]["start"], body["appointment"]["label"]) == (
            chosen["start"],
            chosen["label"],
        )
        state = await sim.state()
        assert state["references"] == [ref] and state["bookings"] == 1

        other = next(s for s in page["slots"][1:] if s["start"] != chosen["start"])
        r = await c.patch(f"{BASE}/repairs/{ref}", json={"slot_token": other["slot_token"]})
        assert r.status_code == 200, r.text
        assert r.json()["appointment"]["start"] == other["start"]

        r = await c.get(f"{BASE}/repairs/{ref}")
        assert r.status_code == 200 and r.json()["status"] == "booked"
        assert r.json()["appointment"]["start"] == other["start"]

        r = await c.post(f"{BASE}/repairs/{ref}/cancel", json={"reason": "fixed it myself"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled"
        state = await sim.state()
        assert state["jobs"] == 0 and state["jobs_created"] == 1


async def test_idempotent_retry_makes_one_job(tmp_path: Path, sim: Sim) -> None:
    async with gateway(tmp_path, sim) as gw:
        token = (await slots(gw.client))["slots"][0]["slot_token"]
        answers = [
            await gw.client.post(
                f"{BASE}/repairs", json=repair(token), headers={"Idempotency-Key": "same"}
            )
            for _ in range(2)
        ]
        assert [a.status_code for a in answers] == [201, 201]
        assert answers[0].json()["reference"] == answers[1].json()["reference"]
        assert (await sim.state())["jobs_created"] == 1


async def test_lost_replies_make_no_duplicate_jobs(tmp_path: Path, sim: Sim) -> None:
    async with gateway(tmp_path, sim) as gw:
        page = await slots(gw.client)
        await sim.faults(
            rules=[
                {"op": "create_job", "action": "lost_reply"},
                {"op": "booking", "action": "lost_reply"},
            ]
        )
        r = await gw.client.post(
            f"{BASE}/repairs",
            json=repair(page["slots"][0]["slot_token"]),
            headers={"Idempotency-Key": "lost"},
        )
        assert r.status_code == 201, r.text
        state = await sim.state()
        assert (state["jobs"], state["jobs_created"], state["bookings"]) == (1, 1, 1)
        assert state["references"] == [r.json()["reference"]]


async def test_token_expiry_mid_flow(tmp_path: Path, sim: Sim) -> None:
    async with gateway(tmp_path, sim) as gw:
        page = await slots(gw.client)
        await sim.faults(expire_tokens=True)
        r = await gw.client.post(
            f"{BASE}/repairs",
            json=repair(page["slots"][0]["slot_token"]),
            headers={"Idempotency-Key": "expiry"},
        )
        assert r.status_code == 201, r.text
        assert (await sim.state())["token_requests"] == 2


async def test_two_residents_one_last_place(tmp_path: Path, sim: Sim) -> None:
    await sim.reset(capacity={"PLUMBING": 1})
    async with gateway(tmp_path, sim) as gw:
        token = (await slots(gw.client))["slots"][0]["slot_token"]
        other = (
            await gw.client.get(
                f"{BASE}/appointments",
                params={"property_id": "00012346", "sor_code": "N630945", "page_size": 1},
            )
        ).json()
        answers = await asyncio.gather(
            gw.client.post(f"{BASE}/repairs", json=repair(token), headers={"Idempotency-Key": "a"}),
            gw.client.post(
                f"{BASE}/repairs",
                json=repair(other["slots"][0]["slot_token"], "00012346"),
                headers={"Idempotency-Key": "b"},
            ),
        )
        assert sorted(a.status_code for a in answers) == [201, 409]
        loser = next(a for a in answers if a.status_code == 409)
        assert "slot-unavailable" in loser.json()["type"]
        state = await sim.state()
        assert state["jobs"] == 1 and state["bookings"] == 1


async def test_outage_is_a_503_with_retry_after(tmp_path: Path, sim: Sim) -> None:
    async with gateway(tmp_path, sim) as gw:
        await sim.fail("browse", status=503, times=10)
        r = await gw.client.get(
            f"{BASE}/appointments", params={"property_id": "00012345", "sor_code": "N630945"}
        )
        assert r.status_code == 503
        assert "Retry-After" in r.headers


async def test_status_follows_the_job(tmp_path: Path, sim: Sim) -> None:
    async with gateway(tmp_path, sim) as gw:
        token = (await slots(gw.client))["slots"][0]["slot_token"]
        r = await gw.client.post(
            f"{BASE}/repairs", json=repair(token), headers={"Idempotency-Key": "st"}
        )
        ref = r.json()["reference"]
        await sim.set_status(ref, "InProgress")
        r = await gw.client.get(f"{BASE}/repairs/{ref}")
        assert r.status_code == 200 and r.json()["status"] == "in_progress"


def test_adaptor_type_is_registered() -> None:
    from adaptors.totalmobile.adaptor import TotalmobileAdaptor
    from gateway.plugins import discover

    assert discover(refresh=True).types["totalmobile"] is TotalmobileAdaptor

"""End to end through the HRO facade against the Civica UH and Kirona DRS simulators (real
subprocesses): properties from UH, slots and bookings in DRS, works orders (and their
cancellation) in UH, for both front ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gatewaykit import demo_council, running_gateway
from tests.hro.kit import NewarkSherwood, Redbridge, booking_body, hro_council, png
from tests.simulators import running_simulator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[str, str]]:
    with (
        running_simulator("adaptors.civica_uh.simulator") as uh,
        running_simulator("adaptors.kirona_drs.simulator") as drs,
    ):
        yield uh, drs


def lincoln(uh: str, drs: str, **hro: Any) -> tuple[dict[str, Any], dict[str, str]]:
    body, files = demo_council()
    body["adaptors"] = {
        "uh": {
            "type": "civica_uh",
            "options": {
                "property_wsdl": f"{uh}/PropertyService.svc?wsdl",
                "property_endpoint": f"{uh}/PropertyService.svc",
                "repair_endpoint": f"{uh}/RepairService.svc",
                "username": "gateway",
                "password": "secret",
                "source_system": "REPAIRSGW",
                "user_id": 42,
                "timeout_seconds": 5,
            },
        },
        "drs": {
            "type": "kirona_drs",
            "options": {
                "wsdl": f"{drs}/DRSService?wsdl",
                "endpoint": f"{drs}/DRSService",
                "login": "gateway",
                "password": "drs-secret",
                "contract": "RESPONSIVE",
                "user_id": "REPAIRSGW",
                "timeout_seconds": 5,
            },
        },
    }
    body["routes"] = {"addresses": "uh", "appointments": "drs", "works_orders": "uh"}
    body.pop("accept_without_slot", None)
    return hro_council(body, files, **hro)


async def state(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        return dict((await c.get(f"{url}/_sim/state")).json())


async def test_ns_flows_and_redbridge_on_uh_and_drs(tmp_path: Path, sims: tuple[str, str]) -> None:
    uh, drs = sims
    token_council, files = lincoln(uh, drs)
    open_council, _ = lincoln(uh, drs, auth="none")
    async with running_gateway(
        tmp_path, {"lincoln": token_council, "redbridge": open_council}, files
    ) as gw:
        fe = NewarkSherwood(gw.client_for(None), "/hro/lincoln")
        homes = (await fe.addresses("Tenant", "ln2 4bb")).json()
        ids = [a["locationId"] for a in homes]
        assert "00020001" in ids and "00020000" not in ids, homes
        blocks = (await fe.addresses("Communal", "LN2 4BB")).json()
        assert [a["locationId"] for a in blocks] == ["00020000"], blocks

        # tenant, with a photo
        q = {
            "repairLocation": "bathroom",
            "repairProblem": "shower",
            "repairIssue": "hose",
            "locationId": "00020001",
        }
        r = await fe.slots("Tenant", **q)
        assert r.status_code == 200, r.text
        slots = r.json()
        assert len(slots) >= 2, slots
        b = booking_body(
            "bathroom", "shower", "hose", "00020001", slots[0], postcode="LN2 4BB", photo=png()
        )
        r = await fe.book("Tenant", b)
        assert r.status_code == 200, r.text
        tenant_ref = r.json()["id"]
        await gw.drain_outbox()
        drs_orders = (await state(drs))["orders_by_reference"]
        assert drs_orders[tenant_ref]["start"] is not None
        uh_orders = {o["RepairRequestReference"]: o for o in (await state(uh))["orders"]}
        assert tenant_ref in uh_orders
        uh_status = uh_orders[tenant_ref]["StatusCode"]

        # change, then cancel: both systems follow
        found = (await fe.find("ln24bb", tenant_ref)).json()
        assert found["repairType"] == "TENANT"
        later = (await fe.slots(found["repairType"], **q)).json()[-1]
        r = await fe.change(
            "LN2 4BB",
            tenant_ref,
            {"startDateTime": later["startTime"], "endDateTime": later["endTime"], "display": ""},
        )
        assert r.status_code == 200, r.text
        found = (await fe.find("LN2 4BB", tenant_ref)).json()
        assert found["appointmentTime"]["startDateTime"] == later["startTime"]
        r = await fe.cancel("LN2 4BB", tenant_ref)
        assert r.status_code == 200, r.text
        await gw.drain_outbox()
        gone = (await state(drs))["orders_by_reference"].get(tenant_ref)
        assert gone is None or gone["start"] is None
        uh_orders = {o["RepairRequestReference"]: o for o in (await state(uh))["orders"]}
        assert uh_orders[tenant_ref]["StatusCode"] != uh_status  # cancelled in UH too

        # leasehold, with a photo
        lq = {"repairLocation": "outside", "repairProblem": "window", "locationId": "00020002"}
        slots = (await fe.slots("Leasehold", **lq)).json()
        assert slots
        b = booking_body(
            "outside", "window", None, "00020002", slots[0], postcode="LN2 4BB", photo=png()
        )
        r = await fe.book("Leasehold", b)
        assert r.status_code == 200, r.text
        assert (await fe.find("LN2 4BB", r.json()["id"])).json()["repairType"] == "LEASEHOLD"

        # communal, with a photo: the earliest slot, days from the priority
        b = booking_body(
            "stairs",
            "lighting",
            None,
            "00020000",
            None,
            postcode="LN2 4BB",
            photo=png(),
            location_text="Ground floor lobby",
        )
        r = await fe.book("Communal", b)
        assert r.status_code == 200, r.text
        communal_ref = r.json()["id"]
        assert r.json()["daysForRepair"] == 21
        listed = (await fe.communal_repairs("00020000")).json()
        assert [x["id"] for x in listed] == [communal_ref]
        await gw.drain_outbox()
        assert (await state(drs))["orders_by_reference"][communal_ref]["start"] is not None

        # Redbridge, on the council that allows it without credentials
        red = Redbridge(gw.client_for(None), "/hro/redbridge")
        assert (
            await Redbridge(gw.client_for(None), "/hro/lincoln").addresses("LN2 4BB")
        ).status_code == 401
        homes = (await red.addresses("LN2 4BB")).json()
        assert "00020003" in [a["locationId"] for a in homes]
        slots = (
            await red.slots(
                repairLocation="kitchen",
                repairProblem="cupboards",
                repairIssue="doorHangingOff",
                locationId="00020003",
            )
        ).json()
        assert slots and all(s["id"] for s in slots)
        b = booking_body(
            "kitchen", "cupboards", "doorHangingOff", "00020003", slots[0], with_id=True
        )
        r = await red.book(b)
        assert r.status_code == 200, r.text
        ref = r.json()["reference"]
        await gw.drain_outbox()
        assert (await state(drs))["orders_by_reference"][ref]["start"] is not None

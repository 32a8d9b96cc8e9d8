"""A council moves from Kirona DRS to Totalmobile trade by trade, against both real
simulators: new plumbing work goes to Totalmobile, other trades stay on DRS, and a booking
made on DRS before the move is still moved and cancelled on DRS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gatewaykit import demo_council, running_gateway
from tests.simulators import running_simulator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[str, str]]:
    with (
        running_simulator("adaptors.kirona_drs.simulator") as drs,
        running_simulator("adaptors.totalmobile.simulator", "--log-level", "critical") as tm,
    ):
        yield drs, tm


def council(drs: str, tm: str, appointments: Any) -> tuple[dict[str, Any], dict[str, str]]:
    body, files = demo_council()
    body["adaptors"]["drs"] = {
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
    }
    body["adaptors"]["tm"] = {
        "type": "totalmobile",
        "options": {
            "base_url": tm,
            "client_id": "repairs-gateway",
            "client_secret": "s3cret",
            "world": "housing-repairs",
            "timeout_seconds": 5,
        },
    }
    body["routes"] = {"addresses": "demo_csv", "appointments": appointments}
    return body, files


async def state(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        return dict((await c.get(f"{url}/_sim/state")).json())


async def book(client: httpx.AsyncClient, sor: str, key: str) -> tuple[str, dict[str, Any]]:
    slots = (
        await client.get(
            "/v1/councils/demo/appointments",
            params={"property_id": "00012345", "sor_code": sor, "page_size": 3},
        )
    ).json()
    assert slots["slots"], slots
    r = await client.post(
        "/v1/councils/demo/repairs",
        headers={"Idempotency-Key": key},
        json={
            "property_id": "00012345",
            "sor_code": sor,
            "description": "fix it",
            "contact": {"phone": "07700900000"},
            "slot_token": slots["slots"][0]["slot_token"],
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["reference"], r.json()


async def test_trade_by_trade_move_keeps_old_bookings_on_the_old_system(
    tmp_path: Path, sims: tuple[str, str]
) -> None:
    drs, tm = sims
    for url in sims:
        async with httpx.AsyncClient() as c:
            await c.post(f"{url}/_sim/reset", json={})
    db = f"sqlite:///{tmp_path / 'gateway.db'}"
    body, files = council(drs, tm, "drs")
    async with running_gateway(tmp_path / "before", {"demo": body}, files, database_url=db) as gw:
        old_ref, _ = await book(gw.client, "N631111", "before-1")  # plumbing, on DRS
    assert old_ref in (await state(drs))["orders_by_reference"]

    body, files = council(
        drs, tm, {"default": "drs", "rules": [{"use": "tm", "trade": ["plumbing"]}]}
    )
    async with running_gateway(tmp_path / "after", {"demo": body}, files, database_url=db) as gw:
        new_ref, _ = await book(gw.client, "N631111", "after-1")  # plumbing: Totalmobile now
        carp_ref, _ = await book(gw.client, "N373049", "after-2")  # carpentry: still DRS
        tm_state, drs_state = await state(tm), await state(drs)
        assert tm_state["references"] == [new_ref]
        assert set(drs_state["orders_by_reference"]) == {old_ref, carp_ref}

        # the old plumbing booking is moved with slots from DRS, the system that holds it
        move = (
            await gw.client.get(
                "/v1/councils/demo/appointments", params={"reference": old_ref, "page_size": 3}
            )
        ).json()
        r = await gw.client.patch(
            f"/v1/councils/demo/repairs/{old_ref}",
            json={"slot_token": move["slots"][1]["slot_token"]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["appointment"]["start"] == move["slots"][1]["start"]
        moved = (await state(drs))["orders_by_reference"][old_ref]
        assert moved["start"] == move["slots"][1]["start"]
        # and cancelled there too
        r = await gw.client.post(f"/v1/councils/demo/repairs/{old_ref}/cancel")
        assert r.status_code == 200
        after_cancel = (await state(drs))["orders_by_reference"]
        assert old_ref not in after_cancel or after_cancel[old_ref]["status"] != "booked", (
            after_cancel.get(old_ref)
        )
        assert carp_ref in after_cancel
        assert (await state(tm))["references"] == [new_ref]  # Totalmobile untouched

        report = (await gw.client.get("/v1/councils/demo/admin/migration-report")).json()
        appts = report["capabilities"]["appointments"]["adaptors"]
        assert set(appts) == {"drs", "tm"}

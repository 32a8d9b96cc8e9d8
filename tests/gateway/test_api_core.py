"""The three core calls and the repair lifecycle through the standard API on the demo council,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from repairs_gateway_sdk.timeutil import today_london
from tests.gatewaykit import demo_council, running_gateway

BASE = "/v1/councils/demo"


def booking(slot_token: str, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "property_id": "00012345",
        "sor_code": "N631111",
        "description": "Shower hose split",
        "contact": {"phone": "07700 900123"},
        "slot_token": slot_token,
    }
    body.update(extra)
    return body


async def first_slots(client, n: int = 3, **params: object) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    q = {"property_id": "00012345", "sor_code": "N631111", "page_size": n, **params}
    r = await client.get(f"{BASE}/appointments", params=q)
    assert r.status_code == 200, r.text
    return r.json()["slots"]  # type: ignore[no-any-return]


async def test_addresses_normalise_postcode_and_show_eligibility(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get(f"{BASE}/addresses", params={"postcode": " ln11aa "})
        assert r.status_code == 200
        body = r.json()
        assert body["postcode"] == "LN1 1AA"
        by_id = {a["id"]: a for a in body["addresses"]}
        assert "00012345" in by_id and by_id["00012345"]["kind"] == "dwelling"
        assert by_id["00020000"]["kind"] == "communal_block"
        assert by_id["00020001"]["parent_id"] == "00020000"
        leasehold = by_id["00020003"]
        assert (
            leasehold["online_repairs"] is False and "Leasehold" in leasehold["ineligible_reason"]
        )


async def test_bad_postcode_unknown_council_and_missing_key(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get(f"{BASE}/addresses", params={"postcode": "NOT A CODE"})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == "postcode"
        r = await gw.client.get(f"{BASE}/addresses")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "postcode"
        admin = await gw.create_key(["*"], role="admin")
        async with gw.client_for(admin) as c:
            r = await c.get("/v1/councils/nowhere/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "council"
        async with gw.client_for(None) as anon:
            r = await anon.get(f"{BASE}/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 401


async def test_appointments_pages_with_cursor_in_london_time(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get(
            f"{BASE}/appointments",
            params={"property_id": "00012345", "sor_code": "n631111", "page_size": 4},
        )
        assert r.status_code == 200, r.text
        page1 = r.json()
        assert len(page1["slots"]) == 4 and page1["next_cursor"]
        r = await gw.client.get(
            f"{BASE}/appointments",
            params={
                "property_id": "00012345",
                "sor_code": "N631111",
                "page_size": 4,
                "cursor": page1["next_cursor"],
            },
        )
        page2 = r.json()
        starts = [(s["start"], s["end"]) for s in page1["slots"] + page2["slots"]]
        assert starts == sorted(starts) and len(set(starts)) == 8
        for s in page1["slots"]:
            start = datetime.fromisoformat(s["start"])
            assert start.utcoffset() is not None and s["start"][-6:] in ("+00:00", "+01:00")
            assert start.date() > today_london()  # lead time of one day
            assert s["label"] in {"morning", "afternoon", "school_run", "all_day"}


async def test_unknown_or_disabled_sor_code_is_named(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get(
            f"{BASE}/appointments", params={"property_id": "00012345", "sor_code": "XYZ999"}
        )
        assert r.status_code == 422
        assert r.json()["errors"] == [{"field": "sor_code", "message": r.json()["detail"]}]
        assert "XYZ999" in r.json()["detail"]
        r = await gw.client.get(
            f"{BASE}/appointments", params={"property_id": "00012345", "sor_code": "DEMO003"}
        )
        assert r.status_code == 422 and "not bookable" in r.json()["detail"]
        r = await gw.client.get(
            f"{BASE}/appointments",
            params={"property_id": "00012345", "trade": "plumbing", "size": "small"},
        )
        assert r.status_code == 200 and r.json()["slots"]


async def test_book_read_move_cancel(tmp_path: Path, database_url: str) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files, database_url=database_url) as gw:
        slots = await first_slots(gw.client, 3)
        r = await gw.client.post(
            f"{BASE}/repairs",
            json=booking(slots[0]["slot_token"]),
            headers={"Idempotency-Key": "k-1"},
        )
        assert r.status_code == 201, r.text
        created = r.json()
        ref = created["reference"]
        assert len(ref) == 9 and ref[4] == "-"
        assert created["appointment"]["start"] == slots[0]["start"]
        assert created["status"] == "booked"

        r = await gw.client.get(f"{BASE}/repairs/{ref.lower()}")
        assert r.status_code == 200 and r.json()["appointment"]["start"] == slots[0]["start"]

        r = await gw.client.patch(
            f"{BASE}/repairs/{ref}", json={"slot_token": slots[2]["slot_token"]}
        )
        assert r.status_code == 200, r.text
        assert r.json()["appointment"]["start"] == slots[2]["start"]

        r = await gw.client.post(f"{BASE}/repairs/{ref}/cancel", json={"reason": "fixed it"})
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = await gw.client.get(f"{BASE}/repairs/{ref}")
        assert r.json()["status"] == "cancelled" and r.json()["appointment"] is None


async def test_idempotency_key_replays_and_refuses_other_body(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        slots = await first_slots(gw.client, 2)
        body = booking(slots[0]["slot_token"])
        first = await gw.client.post(
            f"{BASE}/repairs", json=body, headers={"Idempotency-Key": "same"}
        )
        again = await gw.client.post(
            f"{BASE}/repairs", json=body, headers={"Idempotency-Key": "same"}
        )
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        other = await gw.client.post(
            f"{BASE}/repairs",
            json=booking(slots[1]["slot_token"]),
            headers={"Idempotency-Key": "same"},
        )
        assert other.status_code == 422
        assert other.json()["errors"][0]["field"] == "Idempotency-Key"
        missing = await gw.client.post(f"{BASE}/repairs", json=body)
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["field"] == "Idempotency-Key"  # one spelling


async def test_last_place_is_taken_once_under_concurrency(
    tmp_path: Path, database_url: str
) -> None:
    council, files = demo_council()
    council["adaptors"]["demo_csv"]["options"]["calendar"]["capacity_per_trade"] = {"plumbing": 1}
    async with running_gateway(tmp_path, {"demo": council}, files, database_url=database_url) as gw:
        slot = (await first_slots(gw.client, 1))[0]
        results = await asyncio.gather(
            *[
                gw.client.post(
                    f"{BASE}/repairs",
                    json=booking(slot["slot_token"]),
                    headers={"Idempotency-Key": f"race-{i}"},
                )
                for i in range(8)
            ]
        )
        codes = sorted(r.status_code for r in results)
        assert codes.count(201) == 1, [r.text for r in results]
        assert codes.count(409) == 7
        # the taken slot is no longer offered
        again = await first_slots(gw.client, 5)
        assert all(s["start"] != slot["start"] or s["end"] != slot["end"] for s in again)
        # a 409 is the answer to that key from now on (nothing half-created)
        loser = next(r for r in results if r.status_code == 409)
        assert loser.headers["content-type"].startswith("application/problem+json")


async def test_booking_validation_names_fields(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        slot = (await first_slots(gw.client, 1))[0]
        r = await gw.client.post(
            f"{BASE}/repairs",
            json=booking(slot["slot_token"], contact={"phone": "abc"}),
            headers={"Idempotency-Key": "v1"},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "contact.phone"
        r = await gw.client.post(
            f"{BASE}/repairs",
            json=booking(slot["slot_token"], property_id="00099999"),
            headers={"Idempotency-Key": "v2"},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "property_id"
        r = await gw.client.post(
            f"{BASE}/repairs",
            json=booking(slot["slot_token"], property_id="00020003"),
            headers={"Idempotency-Key": "v3"},
        )
        assert r.status_code == 422 and "Leasehold" in r.json()["detail"]
        forged = slot["slot_token"][:-3] + "abc"
        r = await gw.client.post(
            f"{BASE}/repairs", json=booking(forged), headers={"Idempotency-Key": "v4"}
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "slot_token"
        r = await gw.client.post(
            f"{BASE}/repairs",
            json=booking(slot["slot_token"], property_id="00012346"),
            headers={"Idempotency-Key": "v5"},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "slot_token"


async def test_repair_without_slot_when_council_accepts_it(tmp_path: Path) -> None:
    council, files = demo_council(accept_without_slot=True)
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        body = booking("x")
        del body["slot_token"]
        r = await gw.client.post(f"{BASE}/repairs", json=body, headers={"Idempotency-Key": "ns"})
        assert r.status_code == 201 and r.json()["status"] == "awaiting_appointment"
    council, files = demo_council(accept_without_slot=False)
    async with running_gateway(tmp_path / "b", {"demo": council}, files) as gw:
        r = await gw.client.post(f"{BASE}/repairs", json=body, headers={"Idempotency-Key": "ns"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "slot_token"


async def test_health_docs_and_openapi(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get("/health")
        assert r.headers["content-type"].startswith("application/health+json")
        checks = r.json()["checks"]
        assert checks["database"][0]["status"] == "pass"
        assert checks["demo:demo_csv"][0]["status"] == "pass"
        assert "properties_file" not in r.text and "/tmp" not in r.text
        docs = await gw.client.get("/docs")
        assert docs.status_code == 200 and "cdn" not in docs.text.lower()
        asset = docs.text.split('src="')[1].split('"')[0]
        assert (await gw.client.get(asset)).status_code == 200
        spec = (await gw.client.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.1")
        assert "/v1/councils/{council}/repairs/{reference}/cancel" in spec["paths"]


async def test_from_date_is_honoured(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        start = today_london() + timedelta(days=14)
        slots = await first_slots(gw.client, 2, **{"from": start.isoformat()})
        assert all(datetime.fromisoformat(s["start"]).date() >= start for s in slots)
        r = await gw.client.get(
            f"{BASE}/appointments",
            params={"property_id": "00012345", "sor_code": "N631111", "from": "not-a-date"},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from"


@pytest.mark.parametrize("path", ["/v1/councils/demo/repairs/ABCD-1234"])
async def test_unknown_reference_is_404(tmp_path: Path, path: str) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get(path)
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "reference"


async def test_communal_repairs_are_reported_against_the_block(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.post(
            f"{BASE}/repairs",
            json={**booking("x"), "property_id": "00020001", "communal": True},
            headers={"Idempotency-Key": "c1"},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "communal"
        assert "00020000" in r.json()["detail"]  # tells the resident which block to use
        slots = await first_slots(gw.client, 1, property_id="00020000")
        r = await gw.client.post(
            f"{BASE}/repairs",
            json={**booking(slots[0]["slot_token"]), "property_id": "00020000"},
            headers={"Idempotency-Key": "c2"},
        )
        assert r.status_code == 201 and r.json()["communal"] is True

"""The HRO facade on the demo council (CSV fallback): both front ends' flows, their quirks and
error paths, authentication, retries, photos and times across the October clock change."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.hro.auth import TokenSigner
from gateway.storage.models import Repair as RepairRow
from gateway.storage.models import RepairPhoto
from repairs_gateway_sdk.timeutil import today_london
from tests.gatewaykit import GatewayHandle, demo_council, running_gateway
from tests.hro.kit import (
    IDENTIFIER,
    NewarkSherwood,
    Redbridge,
    booking_body,
    jpeg,
    october_change_friday,
    png,
)

BASE = "/hro/demo"


def council(**hro: Any) -> tuple[dict[str, Any], dict[str, str]]:
    from tests.hro.kit import hro_council

    body, files = demo_council()
    return hro_council(body, files, **hro)


def ns(gw: GatewayHandle) -> NewarkSherwood:
    return NewarkSherwood(gw.client_for(None), BASE)


async def repair_rows(gw: GatewayHandle) -> int:
    async with gw.database.session() as s:
        return int((await s.execute(select(func.count()).select_from(RepairRow))).scalar_one())


# -- Newark & Sherwood ---------------------------------------------------------------------


async def test_ns_tenant_flow_with_photo_then_find_change_cancel(
    tmp_path: Path, database_url: str
) -> None:
    body, files = council()
    async with running_gateway(tmp_path, {"demo": body}, files, database_url=database_url) as gw:
        fe = ns(gw)
        r = await fe.addresses("Tenant", "ln1 1aa")
        assert r.status_code == 200, r.text
        ids = [a["locationId"] for a in r.json()]
        assert "00012345" in ids and "00020000" not in ids  # homes only, no blocks
        assert "00020003" not in ids  # not reportable online
        first = r.json()[0]
        assert set(first) == {"locationId", "addressLine1", "addressLine2", "postCode"}

        tree = (await fe.triage("Tenant")).json()
        kitchen = next(o for o in tree if o["value"] == "kitchen")
        cupboards = next(o for o in kitchen["options"] if o["value"] == "cupboards")
        assert [o["value"] for o in cupboards["options"]] == ["doorHangingOff", "unableToBook"]
        assert "sor_code" not in json.dumps(tree) and "sorCode" not in json.dumps(tree)

        q = {
            "repairLocation": "kitchen",
            "repairProblem": "cupboards",
            "repairIssue": "doorHangingOff",
            "locationId": "00012345",
        }
        r = await fe.slots("Tenant", **q)
        assert r.status_code == 200, r.text
        slots = r.json()
        assert slots and all(set(s) >= {"startTime", "endTime"} for s in slots)
        assert all("+" not in s["startTime"] and "Z" not in s["startTime"] for s in slots)
        days = {s["startTime"][:10] for s in slots}
        assert len(days) <= 5
        assert len({(s["startTime"], s["endTime"]) for s in slots}) == len(slots)

        photo = png(50_000)
        b = booking_body(
            "kitchen", "cupboards", "doorHangingOff", "00012345", slots[0], photo=photo
        )
        r = await fe.book("Tenant", b)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["id"] == out["reference"]
        assert out["govNotifyStatus"] != "success"  # the demo council sends no notifications
        ref = out["id"]

        async with gw.database.session() as s:
            stored = (await s.execute(select(RepairPhoto))).scalars().one()
            assert stored.data == photo and stored.content_type == "image/png"
            repair = (await s.execute(select(RepairRow))).scalars().one()
        assert repair.sor_code == "N373049" and repair.client_id == "hro"
        assert repair.contact == {"phone": "02079460000", "email": "resident@example.org"}
        assert repair.description == "The door is hanging off\nsince Tuesday"

        # staff see the photo through the admin API
        r = await gw.client.get(f"/v1/councils/demo/admin/repairs/{ref}/photos")
        assert r.status_code == 200 and r.json()[0]["content_type"] == "image/png"
        r = await gw.client.get(f"/v1/councils/demo/admin/repairs/{ref}/photos/{stored.id}")
        assert r.status_code == 200 and r.content == photo
        assert r.headers["content-type"] == "image/png"

        # find: by reference in any case and the postcode ignoring case and spaces
        r = await fe.find("LN11AA", ref.lower())
        assert r.status_code == 200, r.text
        found = r.json()
        assert found["repairType"] == "TENANT"
        assert found["location"] == {"value": "kitchen", "display": "Kitchen"}
        assert found["issue"]["value"] == "doorHangingOff"
        assert found["appointmentTime"]["startDateTime"] == slots[0]["startTime"]
        assert found["contactDetails"] == {"type": "email", "value": "resident@example.org"}
        assert found["address"]["locationId"] == "00012345"
        assert (await fe.find("LN2 1LT", ref)).status_code == 404
        assert (await fe.find("LN1 1AA", "ZZZZ-ZZZZ")).status_code == 404

        # change: the slots call uses repairType verbatim (AvailableTENANTAppointments)
        r = await fe.slots(found["repairType"], **q)
        assert r.status_code == 200
        other = r.json()[-1]
        new_time = {
            "startDateTime": other["startTime"],
            "endDateTime": other["endTime"],
            "display": "x",
        }
        r = await fe.change("ln1 1aa", ref, new_time)
        assert 200 <= r.status_code < 300, r.text
        r = await fe.find("LN1 1AA", ref)
        assert r.json()["appointmentTime"]["startDateTime"] == other["startTime"]

        r = await fe.cancel("LN1 1AA", ref)
        assert 200 <= r.status_code < 300, r.text
        assert (await fe.find("LN1 1AA", ref)).status_code == 404
        assert (await fe.cancel("LN1 1AA", "ZZZZ-ZZZZ")).status_code == 404
        assert (await fe.change("LN1 1AA", "ZZZZ-ZZZZ", new_time)).status_code == 404


async def test_ns_leasehold_and_communal_flows(tmp_path: Path) -> None:
    body, files = council()
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = ns(gw)
        # leasehold: its own questions, the same bookable homes
        tree = (await fe.triage("Leasehold")).json()
        inside = next(o for o in tree if o["value"] == "inside")
        assert inside["options"][0]["value"] == "notEligibleNonEmergency"
        q = {"repairLocation": "outside", "repairProblem": "window", "locationId": "00012346"}
        slots = (await fe.slots("Leasehold", **q)).json()
        assert slots
        b = booking_body(
            "outside",
            "window",
            None,
            "00012346",
            slots[0],
            photo=jpeg(),
            contact={"type": "text", "value": "07700900123"},
            phone=None,  # N&S leaves it out when the text number may be called: use that
        )
        r = await fe.book("Leasehold", b)
        assert r.status_code == 200, r.text
        ref = r.json()["id"]
        found = (await fe.find("ln1 1aa", ref)).json()
        assert found["repairType"] == "LEASEHOLD" and "issue" not in found
        assert found["contactDetails"] == {"type": "text", "value": "07700900123"}

        # communal: blocks only, no time sent, the earliest slot, daysForRepair
        addrs = (await fe.addresses("Communal", "LN1 1AA")).json()
        assert [a["locationId"] for a in addrs] == ["00020000"]
        assert (await fe.communal_repairs("00020000")).json() == []
        b = booking_body(
            "stairs",
            "lighting",
            None,
            "00020000",
            None,
            photo=png(),
            location_text="Second floor landing",
            text="Light out",
        )
        r = await fe.book("Communal", b)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["daysForRepair"] == 21 and out["id"]
        listed = (await fe.communal_repairs("00020000")).json()
        assert len(listed) == 1
        assert listed[0]["problem"]["display"] == "Lighting"
        assert listed[0]["issue"]["display"] == ""  # must exist
        assert listed[0]["description"] == {"locationText": "Second floor landing"}
        # communal repairs are not found, changed or cancelled by residents
        assert (await fe.find("LN1 1AA", out["id"])).status_code == 404
        async with gw.database.session() as s:
            n = (await s.execute(select(func.count()).select_from(RepairPhoto))).scalar_one()
            communal = (
                await s.execute(select(RepairRow).where(RepairRow.reference == out["id"]))
            ).scalar_one()
        assert n == 2 and communal.communal and communal.slot_start is not None
        assert communal.description.startswith("Where: Second floor landing\n")


async def test_paths_are_case_insensitive_and_unknown_calls_404(tmp_path: Path) -> None:
    body, files = council()
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = ns(gw)
        for path in (
            "/addresses/tenantaddresses",
            "/ADDRESSES/TENANTADDRESSES",
            "/Addresses/TenantAddresses/",
        ):
            r = await fe.call("GET", path, params={"PostCode": "LN1 1AA"})
            assert r.status_code == 200, (path, r.text)
        assert (await fe.call("GET", "/Addresses/OwnerAddresses")).status_code == 404
        assert (await fe.call("GET", "/repair/TenantRepair")).status_code == 405
        r = await fe.slots("undefined", repairLocation="kitchen", repairProblem="sink")
        assert r.status_code == 404  # AvailableundefinedAppointments
        assert (await gw.client_for(None).get("/hro/nosuch/addresses")).status_code == 404


# -- Redbridge -----------------------------------------------------------------------------


async def test_redbridge_flow_without_credentials(tmp_path: Path) -> None:
    body, files = council(auth="none")
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = Redbridge(gw.client_for(None), BASE)
        r = await fe.addresses("ln1 1aa")
        assert r.status_code == 200 and r.json()[0]["locationId"] == "00012345"
        r = await fe.slots(
            repairLocation="bathroom",
            repairProblem="shower",
            repairIssue="hose",
            locationId="00012345",
        )
        assert r.status_code == 200, r.text
        slots = r.json()
        assert slots and all(set(s) == {"id", "startTime", "endTime"} for s in slots)
        b = booking_body(
            "bathroom", "shower", "hose", "00012345", slots[1], postcode="sw1a 2aa", with_id=True
        )
        r = await fe.book(b)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["reference"] == out["id"] and "govNotifyStatus" in out
        async with gw.database.session() as s:
            row = (await s.execute(select(RepairRow))).scalars().one()
        assert row.sor_code == "N631111"
        assert row.slot_start is not None
        assert (
            row.slot_start.astimezone(UTC)
            .isoformat()
            .startswith(datetime.fromisoformat(slots[1]["startTime"]).date().isoformat())
        )
        # next page: fromDate = the day after the latest start
        last = max(s["startTime"] for s in slots)[:10]
        nxt = datetime.fromisoformat(last).date().toordinal() + 1
        from_date = datetime.fromordinal(nxt).date().isoformat()
        r = await fe.slots(
            repairLocation="bathroom",
            repairProblem="shower",
            repairIssue="hose",
            locationId="00012345",
            fromDate=from_date,
        )
        assert r.status_code == 200 and r.json()
        assert min(s["startTime"] for s in r.json()) >= from_date
        # an unknown triage value is a clear error, never a booking
        r = await fe.slots(repairLocation="kitchen", repairProblem="nothing", locationId="00012345")
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "repairProblem"
        # an early exit cannot be booked
        r = await fe.slots(
            repairLocation="outside", repairProblem="gasSmell", locationId="00012345"
        )
        assert r.status_code == 400


# -- authentication ------------------------------------------------------------------------


async def test_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body, files = council()
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        http = gw.client_for(None)
        r = await http.post(f"{BASE}/authentication?identifier=wrong-identifier-000000")
        assert r.status_code == 401
        r = await http.post(f"{BASE}/authentication")
        assert r.status_code == 401
        r = await http.get(f"{BASE}/Addresses/TenantAddresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 401
        r = await http.get(
            f"{BASE}/Addresses/TenantAddresses",
            params={"postcode": "LN1 1AA"},
            headers={"Authorization": "Bearer [object Object]"},
        )
        assert r.status_code == 401
        token = await ns(gw).token()
        header, claims, _ = token.split(".")
        import base64

        decoded = json.loads(base64.urlsafe_b64decode(claims + "=="))
        assert decoded["aud"] == "Housing Repairs Online" and decoded["exp"] - decoded["iat"] == 60
        # expired, and another council's
        old = TokenSigner(["test-secret"], clock=lambda: time.time() - 3600).issue("demo", 60)
        other = TokenSigner(["test-secret"]).issue("lincoln", 60)
        for bad in (old, other, token[:-2] + "xx"):
            r = await http.get(
                f"{BASE}/Addresses/TenantAddresses",
                params={"postcode": "LN1 1AA"},
                headers={"Authorization": f"Bearer {bad}"},
            )
            assert r.status_code == 401, bad
        # Redbridge (no credentials) is refused when the council asks for tokens
        assert (await Redbridge(http, BASE).addresses("LN1 1AA")).status_code == 401
    logged = capsys.readouterr()
    assert IDENTIFIER not in logged.out + logged.err
    assert "wrong-identifier" not in logged.out + logged.err


async def test_rate_limit_per_source_address(tmp_path: Path) -> None:
    body, files = council(auth="none", rate_per_minute=3)
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = Redbridge(gw.client_for(None), BASE)
        statuses = [(await fe.addresses("LN1 1AA")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


# -- bookings: retries, slots gone, bad input -----------------------------------------------


async def test_retried_booking_is_one_repair_and_a_gone_slot_is_409(tmp_path: Path) -> None:
    body, files = council()
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = ns(gw)
        q = {"repairLocation": "bedroom", "repairProblem": "window", "locationId": "00012345"}
        slots = (await fe.slots("Tenant", **q)).json()
        b = booking_body("bedroom", "window", None, "00012345", slots[0])
        first = await fe.book("Tenant", b)
        again = await fe.book("Tenant", b)
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert first.json()["id"] == again.json()["id"]
        assert await repair_rows(gw) == 1
        # a slot that does not exist (or has gone): 409, nothing booked
        gone = dict(slots[0], startTime=slots[0]["startTime"][:11] + "06:00:00")
        r = await fe.book("Tenant", booking_body("bedroom", "window", None, "00012345", gone))
        assert r.status_code == 409, r.text
        past = {"startTime": "2020-01-06T08:00:00", "endTime": "2020-01-06T12:00:00"}
        r = await fe.book("Tenant", booking_body("bedroom", "window", None, "00012345", past))
        assert r.status_code == 409
        assert await repair_rows(gw) == 1


async def test_bad_bodies_are_400_naming_the_field(tmp_path: Path) -> None:
    body, files = council()
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = ns(gw)
        q = {"repairLocation": "bedroom", "repairProblem": "walls", "locationId": "00012345"}
        slot = (await fe.slots("Tenant", **q)).json()[0]

        async def field_of(b: dict[str, Any]) -> str:
            r = await fe.book("Tenant", b)
            assert r.status_code == 400, r.text
            return str(r.json()["errors"][0]["field"])

        good = booking_body("bedroom", "walls", None, "00012345", slot)
        b = json.loads(json.dumps(good))
        b["description"]["text"] = "bad\x0bchar"
        assert await field_of(b) == "description.text"
        b = json.loads(json.dumps(good))
        b["contactDetails"] = {"type": "text", "value": "not a phone"}
        assert await field_of(b) == "contactDetails.value"
        b = json.loads(json.dumps(good))
        b["description"]["base64img"] = "bm90IGFuIGltYWdl"  # "not an image"
        assert await field_of(b) == "description.base64img"
        b = json.loads(json.dumps(good))
        b["description"]["base64img"] = "!!!"
        assert await field_of(b) == "description.base64img"
        r = await fe.call(
            "POST",
            "/repair/TenantRepair",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 400
        assert await repair_rows(gw) == 0


async def test_photo_body_limit_only_on_the_photo_routes(tmp_path: Path) -> None:
    body, files = council()
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = ns(gw)
        q = {"repairLocation": "bedroom", "repairProblem": "ceiling", "locationId": "00012345"}
        slot = (await fe.slots("Tenant", **q)).json()[0]
        big = png(10 * 1024 * 1024 - 1000)  # just under 10 MB: a body of about 14 MB
        b = booking_body("bedroom", "ceiling", None, "00012345", slot, photo=big)
        r = await fe.book("Tenant", b)
        assert r.status_code == 200, r.text[:500]
        too_big = png(10 * 1024 * 1024 + 1000)
        b = booking_body("bedroom", "ceiling", None, "00012345", slot, photo=too_big)
        r = await fe.book("Tenant", b)
        assert r.status_code in (400, 413)
        # everywhere else the usual limit stays
        blob = {"startDateTime": "x" * 200_000}
        r = await fe.change("LN1 1AA", "ABCD-1234", blob)
        assert r.status_code == 413
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            content=b"{" + b" " * 200_000 + b"}",
            headers={"Content-Type": "application/json", "Idempotency-Key": "k"},
        )
        assert r.status_code == 413


async def test_photos_are_purged_after_the_retention(tmp_path: Path) -> None:
    body, files = council()
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = ns(gw)
        q = {"repairLocation": "bedroom", "repairProblem": "walls", "locationId": "00012345"}
        slot = (await fe.slots("Tenant", **q)).json()[0]
        r = await fe.book(
            "Tenant", booking_body("bedroom", "walls", None, "00012345", slot, photo=png())
        )
        assert r.status_code == 200, r.text
        from datetime import timedelta

        from sqlalchemy import update

        from gateway.storage.models import OutboxItem
        from repairs_gateway_sdk.timeutil import now

        async with gw.database.transaction() as s:  # the retention has passed
            await s.execute(update(RepairPhoto).values(purge_after=now() - timedelta(seconds=1)))
            await s.execute(
                update(OutboxItem)
                .where(OutboxItem.kind == "photo.purge")
                .values(next_attempt_at=now() - timedelta(seconds=1))
            )
        await gw.drain_outbox()
        async with gw.database.session() as s:
            assert (
                await s.execute(select(func.count()).select_from(RepairPhoto))
            ).scalar_one() == 0
            states = (
                (await s.execute(select(OutboxItem.state).where(OutboxItem.kind == "photo.purge")))
                .scalars()
                .all()
            )
        assert states == ["done"]


# -- times -----------------------------------------------------------------------------------


async def test_booking_across_the_october_clock_change(tmp_path: Path) -> None:
    body, files = council()
    body["adaptors"]["demo_csv"]["options"]["calendar"]["horizon_days"] = 366
    friday = october_change_friday(today_london())
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = ns(gw)
        q = {
            "repairLocation": "bedroom",
            "repairProblem": "walls",
            "locationId": "00012345",
            "fromDate": friday.isoformat(),
        }
        slots = (await fe.slots("Tenant", **q)).json()
        starts = [s["startTime"] for s in slots]
        monday = friday.toordinal() + 3
        mon = datetime.fromordinal(monday).date().isoformat()
        assert f"{friday.isoformat()}T08:00:00" in starts  # BST
        assert f"{mon}T08:00:00" in starts  # GMT: the same wall-clock time
        booked = {}
        for day, slot_time in ((friday.isoformat(), "08:00:00"), (mon, "08:00:00")):
            slot = next(
                s
                for s in slots
                if s["startTime"] == f"{day}T{slot_time}" and s["endTime"].endswith("12:00:00")
            )
            b = booking_body("bedroom", "walls", None, "00012345", slot, text=f"walls {day}")
            r = await fe.book("Tenant", b)
            assert r.status_code == 200, r.text
            booked[day] = r.json()["id"]
        async with gw.database.session() as s:
            rows = {r.reference: r for r in (await s.execute(select(RepairRow))).scalars()}
        fri_start, mon_start = (
            rows[booked[friday.isoformat()]].slot_start,
            rows[booked[mon]].slot_start,
        )
        assert fri_start is not None and mon_start is not None
        assert fri_start.astimezone(UTC).hour == 7  # 08:00 BST
        assert mon_start.astimezone(UTC).hour == 8  # 08:00 GMT
        found = (await fe.find("LN1 1AA", booked[mon])).json()
        assert found["appointmentTime"]["startDateTime"] == f"{mon}T08:00:00"
        # a time sent back with Z or an offset is read as the instant it names
        r = await fe.change(
            "LN1 1AA",
            booked[mon],
            {
                "startDateTime": f"{friday.isoformat()}T11:00:00Z",  # 12:00 BST
                "endDateTime": f"{friday.isoformat()}T16:00:00+01:00",
                "display": "x",
            },
        )
        assert r.status_code == 200, r.text
        found = (await fe.find("LN1 1AA", booked[mon])).json()
        assert found["appointmentTime"]["startDateTime"] == f"{friday.isoformat()}T12:00:00"
        assert found["appointmentTime"]["display"].endswith("between 12:00pm to 4:00pm")


# -- the standard API's view ----------------------------------------------------------------


async def test_v1_triage(tmp_path: Path) -> None:
    body, files = council()
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        key = await gw.create_key(["demo"])
        r = await gw.client_for(key).get("/v1/councils/demo/triage")
        assert r.status_code == 200, r.text
        trees = r.json()["repair_types"]
        assert set(trees) == {"tenant", "communal", "leasehold"}
        outside = next(o for o in trees["tenant"] if o["value"] == "outside")
        drain = next(o for o in outside["options"] if o["value"] == "drain")
        assert drain == {
            "value": "drain",
            "display": "Blocked drain",
            "sor_code": "627001",
            "priority": "urgent",
        }
        r = await gw.client_for(key).get("/v1/councils/demo/triage", params={"repair_type": "x"})
        assert r.status_code == 422
        r = await gw.client_for(key).get("/v1/councils/demo/admin/repairs/ABCD-1234/photos")
        assert r.status_code == 403  # photos are for staff (admin keys) only

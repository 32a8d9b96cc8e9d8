"""The backend contract of the two Housing Repairs Online front ends, checked at a base URL
(``REPAIRS_API_BASE_URL``) the way their server sides call it (axios 0.24). With
``--hro-identifier`` the N&S calls are checked (a token before every call); without, the
Redbridge calls (no credentials). Read-only unless ``--write``.

Runnable against any implementation: the gateway's facade (``/hro/{council}``) or HRO's own
backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest

from contract_tests.plugin import HroTarget

NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
AXIOS = {"User-Agent": "axios/0.24.0", "Accept": "application/json, text/plain, */*"}
EXITS = {
    "emergencyValue": "emergency",
    "notEligibleNonEmergencyValue": "notEligibleNonEmergency",
    "unableToBookValue": "unableToBook",
    "contactUsValue": "contactUs",
}


class FrontEnd:
    def __init__(self, target: HroTarget, http: httpx.Client) -> None:
        self.t = target
        self.http = http

    @property
    def ns(self) -> bool:
        return self.t.identifier is not None

    def token(self, identifier: str | None = None) -> httpx.Response:
        return self.http.post(
            f"{self.t.base_url}/authentication?identifier={identifier or self.t.identifier}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def _headers(self) -> dict[str, str]:
        if not self.ns:
            return {}
        r = self.token()
        assert 200 <= r.status_code < 300, f"POST /authentication: {r.status_code} {r.text}"
        return {"Authorization": f"Bearer {r.text}"}

    def get(self, path: str, **params: str | None) -> httpx.Response:
        q = {k: v for k, v in params.items() if v is not None}
        return self.http.get(f"{self.t.base_url}{path}", params=q, headers=self._headers())

    def post(self, path: str, body: Any, **params: str) -> httpx.Response:
        return self.http.post(
            f"{self.t.base_url}{path}", params=params, json=body, headers=self._headers()
        )

    def addresses(self, repair_type: str = "Tenant", postcode: str | None = None) -> httpx.Response:
        postcode = postcode or self.t.postcode
        if self.ns:
            return self.get(f"/Addresses/{repair_type}Addresses", postcode=postcode)
        return self.get("/addresses", postcode=postcode)

    def slots(
        self,
        choice: list[str],
        property_id: str,
        repair_type: str = "Tenant",
        from_date: str | None = None,
    ) -> httpx.Response:
        path = (
            f"/Appointments/Available{repair_type}Appointments"
            if self.ns
            else "/Appointments/AvailableAppointments"
        )
        return self.get(
            path,
            repairLocation=choice[0],
            repairProblem=choice[1],
            repairIssue=choice[2] if len(choice) > 2 else None,
            locationId=property_id,
            fromDate=from_date,
        )

    def body(
        self, choice: list[str], property_id: str, slot: dict[str, Any] | None, **extra: Any
    ) -> dict[str, Any]:
        b: dict[str, Any] = {
            "postcode": self.t.postcode.lower(),
            "address": {"display": "as the front end shows it", "locationId": property_id},
            "location": {"value": choice[0], "display": choice[0]},
            "problem": {"value": choice[1], "display": choice[1]},
            "contactPersonNumber": self.t.phone,
            "description": {"text": "Contract test: please ignore\nsecond line", "filename": ""},
            "contactDetails": {"type": "email", "value": self.t.email},
        }
        if len(choice) > 2:
            b["issue"] = {"value": choice[2], "display": choice[2]}
        if slot is not None:
            b["time"] = {
                "startDateTime": slot["startTime"],
                "endDateTime": slot["endTime"],
                "display": "as the browser showed it",
            }
            if not self.ns:
                b["time"]["id"] = slot["id"]
        b.update(extra)
        return b

    def book(self, body: dict[str, Any], repair_type: str = "Tenant") -> httpx.Response:
        return self.post(f"/repair/{repair_type}Repair" if self.ns else "/repair", body)


@pytest.fixture(scope="session")
def fe(contract_hro_target: HroTarget) -> Iterator[FrontEnd]:
    with httpx.Client(headers=AXIOS, timeout=60) as http:
        yield FrontEnd(contract_hro_target, http)


@pytest.fixture
def ns(fe: FrontEnd) -> FrontEnd:
    if not fe.ns:
        pytest.skip("N&S calls: give --hro-identifier")
    return fe


@pytest.fixture
def redbridge(fe: FrontEnd) -> FrontEnd:
    if fe.ns:
        pytest.skip("Redbridge calls: run without --hro-identifier")
    return fe


@pytest.fixture
def writes(fe: FrontEnd) -> FrontEnd:
    if not fe.t.write:
        pytest.skip("writes (bookings) only with --write")
    return fe


def ok(r: httpx.Response) -> Any:
    assert 200 <= r.status_code < 300, (
        f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    )
    return r.json()


def refused(r: httpx.Response) -> None:
    """The front ends turn any non-2xx into their error page: it must not be a 2xx."""
    assert not 200 <= r.status_code < 300, f"{r.request.url}: {r.status_code} {r.text}"
    assert r.status_code < 500 or r.status_code in (502, 503), f"{r.status_code}: {r.text}"


def first_slots(fe: FrontEnd, choice: list[str], repair_type: str = "Tenant") -> list[Any]:
    slots = ok(fe.slots(choice, fe.t.tenant_property, repair_type))
    assert slots, f"no slots for {choice} at {fe.t.tenant_property}: use --hro-config"
    return list(slots)


# -- read-only: both flavours ----------------------------------------------------------------


def test_addresses_answer_what_the_address_page_reads(fe: FrontEnd) -> None:
    rows = ok(fe.addresses())
    assert isinstance(rows, list) and rows, f"no addresses at {fe.t.postcode}: use --hro-config"
    for row in rows:
        assert {"locationId", "addressLine1", "addressLine2", "postCode"} <= set(row), row
        assert all(isinstance(row[k], str) for k in ("locationId", "addressLine1", "postCode"))
    ids = [r["locationId"] for r in rows]
    assert fe.t.tenant_property in ids, f"{fe.t.tenant_property} not offered at {fe.t.postcode}"


def test_postcode_as_typed_any_case_and_spacing(fe: FrontEnd) -> None:
    squashed = fe.t.postcode.replace(" ", "").lower()
    assert ok(fe.addresses(postcode=squashed)) == ok(fe.addresses())


def test_paths_match_case_insensitively(fe: FrontEnd) -> None:
    path = "/addresses/tenantaddresses" if fe.ns else "/ADDRESSES"
    upper = "/ADDRESSES/TENANTADDRESSES" if fe.ns else "/Addresses"
    for p in (path, upper):
        assert ok(fe.get(p, postcode=fe.t.postcode)) == ok(fe.addresses()), p


def test_slots_are_naive_wall_clock_times_five_days_a_page(fe: FrontEnd) -> None:
    slots = first_slots(fe, fe.t.tenant_choice)
    for s in slots:
        assert NAIVE.match(s["startTime"]) and NAIVE.match(s["endTime"]), (
            f"times must be naive local times (no Z or offset): {s}"
        )
        assert s["startTime"] < s["endTime"]
    keys = [(s["startTime"], s["endTime"]) for s in slots]
    assert len(set(keys)) == len(keys), "two slots with the same times collapse in the page"
    days = sorted({s["startTime"][:10] for s in slots})
    first = date.fromisoformat(days[0])
    assert date.fromisoformat(days[-1]) < first + timedelta(days=5), days
    # "Next 5 days": fromDate = the day after the latest start
    nxt = (
        date.fromisoformat(max(s["startTime"] for s in slots)[:10]) + timedelta(days=1)
    ).isoformat()
    page2 = ok(fe.slots(fe.t.tenant_choice, fe.t.tenant_property, from_date=nxt))
    assert all(s["startTime"][:10] >= nxt for s in page2), page2


def test_unknown_choices_are_errors_not_slots(fe: FrontEnd) -> None:
    refused(fe.slots([fe.t.tenant_choice[0], "noSuchProblem"], fe.t.tenant_property))
    refused(fe.slots(["noSuchLocation", "x"], fe.t.tenant_property))


def test_redbridge_slots_carry_an_id(redbridge: FrontEnd) -> None:
    slots = first_slots(redbridge, redbridge.t.tenant_choice)
    assert all(isinstance(s.get("id"), str) and s["id"] for s in slots), slots


# -- read-only: N&S --------------------------------------------------------------------------


def test_authentication_answers_a_bare_token(ns: FrontEnd) -> None:
    r = ns.token()
    assert r.status_code == 200, r.text
    assert r.text and not r.text.lstrip().startswith("{"), "the body is used as is after Bearer"
    refused(ns.token("not-the-identifier-0000000000"))


def test_calls_without_a_valid_token_are_refused(ns: FrontEnd) -> None:
    url = f"{ns.t.base_url}/Addresses/TenantAddresses"
    refused(ns.http.get(url, params={"postcode": ns.t.postcode}))
    refused(
        ns.http.get(
            url,
            params={"postcode": ns.t.postcode},
            headers={"Authorization": "Bearer [object Object]"},
        )
    )


def _walk(options: list[Any], level: int = 1) -> Iterator[tuple[int, dict[str, Any]]]:
    for o in options:
        yield level, o
        if o.get("options"):
            yield from _walk(o["options"], level + 1)


@pytest.mark.parametrize("repair_type", ["Tenant", "Communal", "Leasehold"])
def test_triage_tree(ns: FrontEnd, repair_type: str) -> None:
    r = ns.get(f"/repairTriage/{repair_type}RepairTriageOptions", **EXITS)
    if r.status_code == 404:
        pytest.skip(f"no {repair_type} triage here")
    tree = ok(r)
    assert isinstance(tree, list) and tree
    for level, o in _walk(tree):
        assert isinstance(o["value"], str) and isinstance(o["display"], str), o
        assert level <= 3, "at most three levels"
        if level == 1:
            assert o.get("options"), f"a location leads to its problems: {o}"
    custom = {k: f"X-{v}" for k, v in EXITS.items()}
    other = ok(ns.get(f"/repairTriage/{repair_type}RepairTriageOptions", **custom))
    for (_, a), (_, b) in zip(_walk(tree), _walk(other), strict=True):
        if a["value"] != b["value"]:  # an early exit: the value the front end passed
            assert a["value"] in EXITS.values() and b["value"] == f"X-{a['value']}", (a, b)


def test_find_change_cancel_of_nothing_are_404(ns: FrontEnd) -> None:
    q = {"postcode": ns.t.postcode, "repairId": "NOSUCHREF"}
    assert ns.get("/repair/TenantOrLeaseholdPropertyRepair", **q).status_code == 404
    r = ns.post(
        "/repair/tenantOrLeaseholdPropertyRepairChangeAppointmentSlot",
        {"startDateTime": "2030-01-07T08:00:00", "endDateTime": "2030-01-07T12:00:00"},
        **q,
    )
    assert r.status_code == 404, r.text
    r = ns.post("/repair/TenantOrLeaseholdPropertyRepairCancel", {}, **q)
    assert r.status_code == 404, r.text


def test_communal_property_repairs_rows(ns: FrontEnd) -> None:
    rows = ok(ns.get("/repair/CommunalPropertyRepairs", propertyReference=ns.t.communal_property))
    assert isinstance(rows, list)
    for row in rows:
        for k in ("location", "problem", "issue"):
            assert isinstance(row[k]["display"], str), row
        assert "locationText" in row["description"], row


# -- writes ----------------------------------------------------------------------------------


def test_booking_answers_reference_and_id(fe: FrontEnd, writes: FrontEnd) -> None:
    slot = first_slots(fe, fe.t.tenant_choice)[-1]
    out = ok(fe.book(fe.body(fe.t.tenant_choice, fe.t.tenant_property, slot)))
    assert out["id"] == out["reference"] and isinstance(out["id"], str) and out["id"]
    assert "govNotifyStatus" in out
    if fe.ns:
        fe.post(
            "/repair/TenantOrLeaseholdPropertyRepairCancel",
            {},
            postcode=fe.t.postcode,
            repairId=out["id"],
        )


def test_the_same_booking_sent_twice_is_one_repair(fe: FrontEnd, writes: FrontEnd) -> None:
    slot = first_slots(fe, fe.t.tenant_choice)[0]
    body = fe.body(fe.t.tenant_choice, fe.t.tenant_property, slot)
    first = ok(fe.book(body))
    again = ok(fe.book(body))
    assert first["reference"] == again["reference"]


def test_a_slot_not_on_offer_is_refused(fe: FrontEnd, writes: FrontEnd) -> None:
    day = (datetime.now() + timedelta(days=8)).date().isoformat()
    slot = {"startTime": f"{day}T03:17:00", "endTime": f"{day}T03:47:00", "id": "no-such-slot"}
    r = fe.book(fe.body(fe.t.tenant_choice, fe.t.tenant_property, slot))
    refused(r)


def test_ns_tenant_find_change_cancel(ns: FrontEnd, writes: FrontEnd) -> None:
    slots = first_slots(ns, ns.t.tenant_choice)
    out = ok(ns.book(ns.body(ns.t.tenant_choice, ns.t.tenant_property, slots[0])))
    ref = out["id"]
    squashed = ns.t.postcode.replace(" ", "").lower()
    found = ok(ns.get("/repair/TenantOrLeaseholdPropertyRepair", postcode=squashed, repairId=ref))
    assert found["location"]["value"] == ns.t.tenant_choice[0]
    assert found["problem"]["value"] == ns.t.tenant_choice[1]
    assert found["address"]["locationId"] == ns.t.tenant_property
    assert found["appointmentTime"]["startDateTime"] == slots[0]["startTime"]
    assert {"type", "value"} <= set(found["contactDetails"])
    # the change flow asks for slots with repairType verbatim
    again = ok(ns.slots(ns.t.tenant_choice, ns.t.tenant_property, str(found["repairType"])))
    target = again[-1]
    r = ns.post(
        "/repair/tenantOrLeaseholdPropertyRepairChangeAppointmentSlot",
        {"startDateTime": target["startTime"], "endDateTime": target["endTime"], "display": ""},
        postcode=ns.t.postcode,
        repairId=ref,
    )
    assert 200 <= r.status_code < 300, r.text
    found = ok(
        ns.get("/repair/TenantOrLeaseholdPropertyRepair", postcode=ns.t.postcode, repairId=ref)
    )
    assert found["appointmentTime"]["startDateTime"] == target["startTime"]
    r = ns.post(
        "/repair/TenantOrLeaseholdPropertyRepairCancel", {}, postcode=ns.t.postcode, repairId=ref
    )
    assert 200 <= r.status_code < 300, r.text
    r = ns.get("/repair/TenantOrLeaseholdPropertyRepair", postcode=ns.t.postcode, repairId=ref)
    assert r.status_code == 404, "a cancelled repair has no appointment to find"


def test_ns_leasehold_booking(ns: FrontEnd, writes: FrontEnd) -> None:
    slots = first_slots(ns, ns.t.leasehold_choice, "Leasehold")
    body = ns.body(
        ns.t.leasehold_choice,
        ns.t.tenant_property,
        slots[0],
        contactDetails={"type": "text", "value": "07700900123"},
    )
    body.pop("contactPersonNumber")  # the N&S quirk: missing when the text number may be called
    out = ok(ns.book(body, "Leasehold"))
    found = ok(
        ns.get(
            "/repair/TenantOrLeaseholdPropertyRepair", postcode=ns.t.postcode, repairId=out["id"]
        )
    )
    assert found["repairType"].lower() == "leasehold"
    ns.post(
        "/repair/TenantOrLeaseholdPropertyRepairCancel",
        {},
        postcode=ns.t.postcode,
        repairId=out["id"],
    )


def test_ns_communal_booking_has_no_time(ns: FrontEnd, writes: FrontEnd) -> None:
    body = ns.body(ns.t.communal_choice, ns.t.communal_property, None)
    body["postcode"] = ns.t.communal_postcode
    body["description"]["locationText"] = "Contract test landing"
    out = ok(ns.book(body, "Communal"))
    assert out["id"] and isinstance(out["daysForRepair"], int), out
    rows = ok(ns.get("/repair/CommunalPropertyRepairs", propertyReference=ns.t.communal_property))
    assert any(r["description"]["locationText"] == "Contract test landing" for r in rows), rows

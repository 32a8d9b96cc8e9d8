"""Test kit for the HRO facade: a council with an ``hro:`` block, and clients that call the
gateway exactly as each front end's server side does (axios 0.24, N&S authenticating before
every call)."""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx

from tests.gatewaykit import REPO

TRIAGE = REPO / "mappings" / "examples" / "demo.triage.yaml"
IDENTIFIER = "ns-frontend-identifier-0123456789"
AXIOS = {"User-Agent": "axios/0.24.0", "Accept": "application/json, text/plain, */*"}


def hro_council(
    body: dict[str, Any], files: dict[str, str], **hro: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """Add an ``hro:`` block (token auth with IDENTIFIER unless overridden) to a council."""
    body = {**body, "hro": {"auth": "token", "identifier": IDENTIFIER, "triage": "t.triage.yaml"}}
    body["hro"].update(hro)
    if body["hro"]["auth"] == "none":
        body["hro"].pop("identifier", None)
    return body, {**files, "t.triage.yaml": TRIAGE.read_text()}


def png(size: int = 0) -> bytes:
    """A valid PNG (1x1), padded with an ancillary chunk to about ``size`` bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00")
    pad = chunk(b"teXt", b"c\x00" + b"x" * max(0, size - 80)) if size else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + pad
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Redbridge:
    """Redbridge's Next API routes: no credentials at all."""

    http: httpx.AsyncClient
    base: str  # e.g. /hro/demo

    async def addresses(self, postcode: str) -> httpx.Response:
        return await self.http.get(f"{self.base}/addresses", params={"postcode": postcode})

    async def slots(self, **params: str) -> httpx.Response:
        return await self.http.get(f"{self.base}/Appointments/AvailableAppointments", params=params)

    async def book(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(f"{self.base}/repair", json=body)


@dataclass
class NewarkSherwood:
    """N&S's Azure Functions: a token from POST /authentication before every call."""

    http: httpx.AsyncClient
    base: str
    identifier: str = IDENTIFIER

    async def token(self) -> str:
        r = await self.http.post(
            f"{self.base}/authentication?identifier={self.identifier}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200, r.text
        return r.text

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self.token()}", **kwargs.pop("headers", {})}
        return await self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)

    async def addresses(self, repair_type: str, postcode: str) -> httpx.Response:
        return await self.call(
            "GET", f"/Addresses/{repair_type}Addresses", params={"postcode": postcode}
        )

    async def triage(self, repair_type: str) -> httpx.Response:
        params = {
            "emergencyValue": "emergency",
            "notEligibleNonEmergencyValue": "notEligibleNonEmergency",
            "unableToBookValue": "unableToBook",
            "contactUsValue": "contactUs",
        }
        return await self.call(
            "GET", f"/repairTriage/{repair_type}RepairTriageOptions", params=params
        )

    async def slots(self, repair_type: str, **params: str) -> httpx.Response:
        return await self.call(
            "GET", f"/Appointments/Available{repair_type}Appointments", params=params
        )

    async def book(self, repair_type: str, body: dict[str, Any]) -> httpx.Response:
        return await self.call("POST", f"/repair/{repair_type}Repair", json=body)

    async def find(self, postcode: str, repair_id: str) -> httpx.Response:
        return await self.call(
            "GET",
            "/repair/TenantOrLeaseholdPropertyRepair",
            params={"postcode": postcode, "repairId": repair_id},
        )

    async def change(self, postcode: str, repair_id: str, time: dict[str, str]) -> httpx.Response:
        return await self.call(
            "POST",
            "/repair/tenantOrLeaseholdPropertyRepairChangeAppointmentSlot",
            params={"postcode": postcode, "repairId": repair_id},
            json=time,
        )

    async def cancel(self, postcode: str, repair_id: str) -> httpx.Response:
        return await self.call(
            "POST",
            "/repair/TenantOrLeaseholdPropertyRepairCancel",
            params={"postcode": postcode, "repairId": repair_id},
            json={},
        )

    async def communal_repairs(self, property_id: str) -> httpx.Response:
        return await self.call(
            "GET", "/repair/CommunalPropertyRepairs", params={"propertyReference": property_id}
        )


def booking_body(
    location: str,
    problem: str,
    issue: str | None,
    property_id: str,
    slot: dict[str, str] | None,
    *,
    postcode: str = "ln1 1aa",
    contact: dict[str, str] | None = None,
    phone: str | None = "02079460000",
    photo: bytes | None = None,
    location_text: str | None = None,
    text: str = "The door is hanging off\nsince Tuesday",
    with_id: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "postcode": postcode,
        "address": {"display": "1 Minster Yard, Lincoln, LN1 1AA", "locationId": property_id},
        "location": {"value": location, "display": location.title()},
        "problem": {"value": problem, "display": problem.title()},
        "description": {"text": text, "filename": ""},
        "contactDetails": contact or {"type": "email", "value": "resident@example.org"},
    }
    if issue is not None:
        body["issue"] = {"value": issue, "display": issue.title()}
    if phone is not None:
        body["contactPersonNumber"] = phone
    if photo is not None:
        body["description"].update(
            {
                "photo": "blob:http://localhost:3000/1234",
                "fileExtension": "png",
                "base64img": b64(photo),
            }
        )
    if location_text is not None:
        body["description"]["locationText"] = location_text
    if slot is not None:
        body["time"] = {
            "startDateTime": slot["startTime"],
            "endDateTime": slot["endTime"],
            "display": "shown by the browser",
            **({"id": slot["id"]} if with_id else {}),
        }
    return body


def october_change_friday(today: date, lead_days: int = 2) -> date:
    """The Friday before the next October clock change (last Sunday of October) that is at
    least ``lead_days`` away."""
    year = today.year
    while True:
        last = date(year, 10, 31)
        sunday = last - timedelta(days=(last.weekday() + 1) % 7)
        friday = sunday - timedelta(days=2)
        if friday - today >= timedelta(days=lead_days):
            return friday
        year += 1

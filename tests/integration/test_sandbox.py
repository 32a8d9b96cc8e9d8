"""The sandbox: the documented test council, its magic data through the real API, and test
keys that act for sandbox councils only (the README's table against the data:
adaptors/sandbox/tests)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from adaptors.sandbox.data import BY_ID, PROPERTIES
from gateway.cli import app as cli
from tests.gatewaykit import DEMO_CONFIG, DEMO_SOR, GatewayHandle, demo_council, running_gateway

SB = "/v1/councils/sandbox"


def sandbox_council() -> tuple[dict[str, Any], dict[str, str]]:
    body = yaml.safe_load((DEMO_CONFIG / "sandbox.yaml").read_text())
    body["mappings"] = "sor.csv"
    return body, {"sor.csv": DEMO_SOR.read_text()}


@asynccontextmanager
async def sandbox(tmp_path: Path) -> AsyncIterator[tuple[GatewayHandle, httpx.AsyncClient]]:
    """The sandbox council beside the demo one, and a client holding a test key."""
    body, files = sandbox_council()
    demo, demo_files = demo_council()
    async with running_gateway(
        tmp_path, {"sandbox": body, "demo": demo}, {**files, **demo_files}
    ) as gw:
        key = await gw.runtime.keys.create("frontend-team", ["sandbox", "demo"], "test", 10_000)
        async with gw.client_for(key) as client:
            yield gw, client


async def slots(client: httpx.AsyncClient, property_id: str) -> httpx.Response:
    return await client.get(
        f"{SB}/appointments",
        params={"property_id": property_id, "sor_code": "N631111", "page_size": 6},
    )


async def book(
    client: httpx.AsyncClient, property_id: str, slot_token: str | None = None, **extra: Any
) -> httpx.Response:
    body: dict[str, Any] = {
        "property_id": property_id,
        "sor_code": "N631111",
        "description": "Tap drips",
        "contact": {"phone": "07700900123"},
        **extra,
    }
    if slot_token:
        body["slot_token"] = slot_token
    return await client.post(
        f"{SB}/repairs", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )


async def test_every_case_a_screen_must_handle(tmp_path: Path) -> None:
    async with sandbox(tmp_path) as (gw, client):
        # homes, a block and a communal area at one postcode (any case and spacing)
        found = (await client.get(f"{SB}/addresses", params={"postcode": "sb11aa"})).json()
        kinds = {a["id"]: a["kind"] for a in found["addresses"]}
        assert kinds == {
            "SBX-0001": "dwelling",
            "SBX-0002": "dwelling",
            "SBX-B001": "communal_block",
            "SBX-A001": "communal_area",
        }
        assert (await client.get(f"{SB}/addresses", params={"postcode": "SB1 9ZZ"})).json()[
            "addresses"
        ] == []

        # deterministic slots; a home books, its works order is raised
        first, again = (
            (await slots(client, "SBX-0001")).json(),
            (await slots(client, "SBX-0001")).json(),
        )
        assert [(s["start"], s["label"]) for s in first["slots"]] == [
            (s["start"], s["label"]) for s in again["slots"]
        ]
        booked = await book(client, "SBX-0001", first["slots"][0]["slot_token"])
        assert booked.status_code == 201, booked.text
        ref = booked.json()["reference"]
        await gw.drain_outbox()
        shown = (await client.get(f"{SB}/repairs/{ref}")).json()
        assert shown["status"] == "booked" and shown["works_order_reference"] == f"SBX-WO-{ref}"
        moved = await client.patch(
            f"{SB}/repairs/{ref}", json={"slot_token": first["slots"][1]["slot_token"]}
        )
        assert (
            moved.status_code == 200
            and moved.json()["appointment"]["start"] == (first["slots"][1]["start"])
        )
        assert (await client.post(f"{SB}/repairs/{ref}/cancel")).json()["status"] == "cancelled"

        # communal: the block books as communal; a home cannot
        block = (await slots(client, "SBX-B001")).json()["slots"][0]["slot_token"]
        assert (await book(client, "SBX-B001", block, communal=True)).status_code == 201
        home = (await slots(client, "SBX-0002")).json()["slots"][0]["slot_token"]
        refused = await book(client, "SBX-0002", home, communal=True)
        assert refused.status_code == 422 and "SBX-B001" in refused.json()["detail"]

        # ineligible: the reason is the resident's to read
        ineligible = await slots(client, "SBX-0201")
        assert ineligible.status_code == 422
        assert "leasehold" in ineligible.json()["detail"]
        assert (await book(client, "SBX-0202")).status_code == 422

        # no slots: an empty page, and the repair can still be reported
        assert (await slots(client, "SBX-0301")).json()["slots"] == []
        waiting = await book(client, "SBX-0301")
        assert waiting.status_code == 201 and waiting.json()["status"] == "awaiting_appointment"

        # a slot that goes while booking: mornings 409, the others book
        offered = (await slots(client, "SBX-0401")).json()["slots"]
        morning = next(s for s in offered if s["label"] == "morning")
        afternoon = next(s for s in offered if s["label"] == "afternoon")
        gone = await book(client, "SBX-0401", morning["slot_token"])
        assert gone.status_code == 409
        assert gone.json()["type"].endswith("/slot-unavailable")
        assert (await book(client, "SBX-0401", afternoon["slot_token"])).status_code == 201

        # outages: 503 with Retry-After, and only where documented, however often it is hit
        for _ in range(8):
            down = await slots(client, "SBX-0501")
            assert down.status_code == 503 and "retry-after" in down.headers
        lookup = await client.get(f"{SB}/addresses", params={"postcode": "SB9 9ZZ"})
        assert lookup.status_code == 503
        token = (await slots(client, "SBX-0502")).json()["slots"][0]["slot_token"]
        failed = await book(client, "SBX-0502", token)
        assert failed.status_code == 503 and failed.json()["type"].endswith("/backend-unavailable")
        assert (await slots(client, "SBX-0203")).status_code == 200  # the rest still serves
        assert (
            await client.get(f"{SB}/addresses", params={"postcode": "SB1 2AA"})
        ).status_code == 200


async def test_a_test_key_acts_for_sandbox_councils_only(tmp_path: Path) -> None:
    async with sandbox(tmp_path) as (gw, client):
        # the key lists "demo" too, but demo is served by a real adaptor: refused
        for path in (
            "/v1/councils/demo/addresses?postcode=LN1%201AA",
            "/v1/councils/demo/repairs/X",
        ):
            answer = await client.get(path)
            assert answer.status_code == 403, path
            assert answer.json()["detail"] == "a test key acts only for sandbox councils"
        assert (await client.get(f"{SB}/admin/outbox")).status_code == 403  # not an admin
        everywhere = await gw.runtime.keys.create("wildcard", ["*"], "test", 100)
        async with gw.client_for(everywhere) as wildcard:
            assert (
                await wildcard.get("/v1/councils/demo/addresses?postcode=LN1 1AA")
            ).status_code == 403
            assert (await wildcard.get(f"{SB}/addresses?postcode=SB1 1AA")).status_code == 200


async def test_a_council_is_a_sandbox_only_when_every_adaptor_is_one(tmp_path: Path) -> None:
    from gateway.sandbox import is_sandbox

    body, files = sandbox_council()
    mixed = dict(
        body,
        adaptors={
            **body["adaptors"],
            "csv": {"type": "csv_fallback", "options": {"properties_file": "demo-properties.csv"}},
        },
    )
    notifying = dict(
        body, notifications={"api_key": "k-" + str(uuid.uuid4()) + "-" + str(uuid.uuid4())}
    )
    _, demo_files = demo_council()
    async with running_gateway(
        tmp_path,
        {"sandbox": body, "mixed": mixed, "notifying": notifying},
        {**files, **demo_files},
    ) as gw:
        councils = gw.runtime.gateway.councils
        assert [is_sandbox(councils[c]) for c in ("sandbox", "mixed", "notifying")] == [
            True,
            False,
            False,
        ]
        key = await gw.runtime.keys.create("t", ["sandbox", "mixed", "notifying"], "test", 100)
        async with gw.client_for(key) as client:
            for council, status in (("sandbox", 200), ("mixed", 403), ("notifying", 403)):
                answer = await client.get(
                    f"/v1/councils/{council}/addresses", params={"postcode": "SB1 1AA"}
                )
                assert answer.status_code == status, council


def test_keys_create_makes_a_test_key_for_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    result = CliRunner().invoke(
        cli,
        [
            "keys",
            "create",
            "frontend-team",
            "--council",
            "sandbox",
            "--role",
            "test",
            "--config-dir",
            str(DEMO_CONFIG),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith("rgw_")


def test_the_sandbox_adaptor_is_registered_and_the_council_is_valid() -> None:
    from gateway.plugins import discover

    assert discover().types["sandbox"].__module__ == "adaptors.sandbox.adaptor"
    result = CliRunner().invoke(cli, ["check", "--config-dir", str(DEMO_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "sandbox: 3 adaptor(s)" in result.output
    assert set(BY_ID) == {p.id for p in PROPERTIES}

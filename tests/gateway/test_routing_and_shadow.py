"""Strangler routing, shadow comparison, the migration report and circuit breakers, with two
CSV-fallback schedulers standing in for an old and a new system."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from gateway.config import CapabilityRoute, RouteRule
from gateway.routing import RouteRequest, bucket, choose
from repairs_gateway_sdk.model import Trade
from tests.gatewaykit import demo_council, running_gateway


def old_and_new(**routes: Any) -> tuple[dict[str, Any], dict[str, str]]:
    council, files = demo_council()
    old = council["adaptors"]["demo_csv"]
    new = copy.deepcopy(old)
    new["options"]["calendar"]["slots"] = [{"start": "10:00", "end": "14:00"}]
    council["adaptors"] = {"old": old, "new": new}
    council["routes"] = {"addresses": "old", **routes}
    return council, files


def test_rules_first_match_wins_and_percent_is_stable_per_property() -> None:
    route = CapabilityRoute(
        default="drs",
        rules=[
            RouteRule(use="tm", trade=[Trade.PLUMBING]),
            RouteRule(use="tm", postcodes=["LN2"]),
            RouteRule(use="tm", percent=30),
        ],
    )

    def req(**kw: Any) -> RouteRequest:
        return RouteRequest("c", "appointments", **kw)

    assert choose(route, req(trade=Trade.PLUMBING, property_id="1")) == "tm"
    assert choose(route, req(trade=Trade.ROOFING, postcode="LN2 1LT", property_id="x")) == "tm"
    ids = [str(i) for i in range(2000)]
    chosen = [
        choose(route, req(trade=Trade.ROOFING, postcode="LN1 1AA", property_id=i)) for i in ids
    ]
    share = chosen.count("tm") / len(ids)
    assert 0.25 < share < 0.35
    again = [
        choose(route, req(trade=Trade.ROOFING, postcode="LN1 1AA", property_id=i)) for i in ids
    ]
    assert chosen == again  # the same property always goes the same way
    assert all(
        (bucket("c", "appointments", i) < 30) == (c == "tm")
        for i, c in zip(ids, chosen, strict=True)
    )


async def test_trade_moves_to_new_system_and_bookings_stay_with_their_adaptor(
    tmp_path: Path,
) -> None:
    council, files = old_and_new(appointments="old")
    async with running_gateway(tmp_path / "a", {"demo": council}, files) as gw:
        slots = (
            await gw.client.get(
                "/v1/councils/demo/appointments",
                params={"property_id": "00012345", "sor_code": "N631111", "page_size": 2},
            )
        ).json()["slots"]
        assert slots[0]["start"][11:16] == "08:00"  # the old system's calendar
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            headers={"Idempotency-Key": "a"},
            json={
                "property_id": "00012345",
                "sor_code": "N631111",
                "description": "drip",
                "contact": {"phone": "07700900000"},
                "slot_token": slots[0]["slot_token"],
            },
        )
        ref = r.json()["reference"]
    # the council moves plumbing to the new system; the existing booking stays with "old"
    council["routes"]["appointments"] = {
        "default": "old",
        "rules": [{"use": "new", "trade": ["plumbing"]}],
    }
    gw_dir = tmp_path / "a"
    async with running_gateway(
        gw_dir, {"demo": council}, files, database_url=f"sqlite:///{gw_dir / 'gateway.db'}"
    ) as gw:
        new_slots = (
            await gw.client.get(
                "/v1/councils/demo/appointments",
                params={"property_id": "00012345", "sor_code": "N631111", "page_size": 2},
            )
        ).json()["slots"]
        assert new_slots[0]["start"][11:16] == "10:00"  # plumbing now comes from "new"
        carpentry = (
            await gw.client.get(
                "/v1/councils/demo/appointments",
                params={"property_id": "00012345", "sor_code": "N373049", "page_size": 1},
            )
        ).json()["slots"]
        assert carpentry[0]["start"][11:16] == "08:00"  # other trades still on "old"
        # moving the old booking to a slot from the new system is refused, not half-done
        r = await gw.client.patch(
            f"/v1/councils/demo/repairs/{ref}", json={"slot_token": new_slots[0]["slot_token"]}
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "slot_token"
        r = await gw.client.post(f"/v1/councils/demo/repairs/{ref}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        report = (await gw.client.get("/v1/councils/demo/admin/migration-report")).json()
        shares = report["capabilities"]["appointments"]["adaptors"]
        # statistics persist across restarts: one browse before the move, one after
        assert shares["new"]["calls"] == 1 and shares["old"]["calls"] == 2
        assert shares["new"]["share"] == round(1 / 3, 4)
        # book (first run) and cancel (second run) both went to "old"; the refused move didn't
        assert report["capabilities"]["bookings"]["adaptors"] == {
            "old": report["capabilities"]["bookings"]["adaptors"]["old"]
        }
        assert report["capabilities"]["bookings"]["adaptors"]["old"]["calls"] == 2


async def test_shadow_disagreement_is_recorded_but_never_seen(tmp_path: Path) -> None:
    council, files = old_and_new(appointments={"default": "old", "shadow": "new"})
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get(
            "/v1/councils/demo/appointments",
            params={"property_id": "00012345", "sor_code": "N631111", "page_size": 3},
        )
        assert r.status_code == 200
        assert all(s["start"][11:16] in ("08:00", "09:30", "12:00") for s in r.json()["slots"])
        await gw.runtime.gateway.shadow.drain()
        report = (await gw.client.get("/v1/councils/demo/admin/migration-report")).json()
        shadow = report["capabilities"]["appointments"]["shadow"]
        assert shadow["compared"] == 1 and shadow["agreement_rate"] == 0.0
        assert shadow["disagreements"][0]["only_shadow"]  # the new system's 10:00 slots


async def test_shadow_that_is_down_does_not_touch_the_caller(tmp_path: Path) -> None:
    council, files = demo_council()
    council["adaptors"]["broken"] = {
        "type": "csv_fallback",
        "options": {"properties_file": "missing.csv"},
    }
    council["routes"]["addresses"] = {"default": "demo_csv", "shadow": "broken"}
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 200 and len(r.json()["addresses"]) == 7
        await gw.runtime.gateway.shadow.drain()
        report = (await gw.client.get("/v1/councils/demo/admin/migration-report")).json()
        shadow = report["capabilities"]["addresses"]["shadow"]
        assert shadow["compared"] == 1 and shadow["agreed"] == 0
        # its property file is missing: it never started, so it was not even called
        assert shadow["disagreements"][0]["shadow_error"] == "NotAttempted"


async def test_breaker_opens_after_repeated_failures_and_health_shows_it(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        adaptor = gw.runtime.councils["demo"].adaptors["demo_csv"]
        calls = 0

        async def down(postcode: str) -> list[Any]:
            nonlocal calls
            calls += 1
            from repairs_gateway_sdk.errors import BackendUnavailable

            raise BackendUnavailable("simulated outage")

        adaptor.addresses = down  # type: ignore[method-assign]
        codes = []
        for _ in range(8):
            r = await gw.client.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
            codes.append(r.status_code)
            assert "retry-after" in r.headers
        assert codes == [503] * 8
        assert calls == 5  # the breaker stopped calling the failing backend
        health = (await gw.client.get("/health")).json()
        assert health["checks"]["demo:demo_csv"][0]["circuit"] == "open"


async def test_a_slow_backend_cannot_hold_a_request_past_its_budget(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(
        tmp_path, {"demo": council}, files, settings={"request_budget_seconds": 1.5}
    ) as gw:
        adaptor = gw.runtime.councils["demo"].adaptors["demo_csv"]
        cancelled = False

        async def hangs(postcode: str) -> list[Any]:
            nonlocal cancelled
            import asyncio

            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled = True
                raise
            return []

        adaptor.addresses = hangs  # type: ignore[method-assign]
        r = await gw.client.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 503 and "did not answer in time" in r.json()["detail"]
        assert cancelled  # the backend call was abandoned, not left running

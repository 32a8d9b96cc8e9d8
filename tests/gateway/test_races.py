"""Races a reviewer found: cancels and moves overlapping bookings, double cancels, a probe that
never answers, and the admin outbox view under another council's load."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import select

from adaptors.csv_fallback.tables import CsvSlotUsage
from gateway.outbox import enqueue
from gateway.resilience import CallStats, CircuitBreaker, Guarded
from gateway.storage.database import MIGRATIONS, sync_url
from gateway.storage.models import OutboxItem
from repairs_gateway_sdk.errors import BackendUnavailable
from tests.gatewaykit import demo_council, running_gateway

BASE = "/v1/councils/demo"


async def slots(client: httpx.AsyncClient, n: int = 3) -> list[dict[str, Any]]:
    r = await client.get(
        f"{BASE}/appointments",
        params={"property_id": "00012345", "sor_code": "N631111", "page_size": n},
    )
    return list(r.json()["slots"])


def body(token: str) -> dict[str, Any]:
    return {
        "property_id": "00012345",
        "sor_code": "N631111",
        "description": "Tap drips",
        "contact": {"phone": "07700900111"},
        "slot_token": token,
    }


async def test_a_repair_still_being_booked_cannot_be_cancelled(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        adaptor = gw.runtime.councils["demo"].adaptors["demo_csv"]
        real_book, release = adaptor.book, asyncio.Event()

        async def slow_book(order: Any) -> Any:
            await release.wait()
            return await real_book(order)

        adaptor.book = slow_book  # type: ignore[method-assign]
        offered = await slots(gw.client, 1)
        booking = asyncio.create_task(
            gw.client.post(
                f"{BASE}/repairs",
                json=body(offered[0]["slot_token"]),
                headers={"Idempotency-Key": "slow"},
            )
        )
        for _ in range(200):
            items = (await gw.client.get(f"{BASE}/admin/outbox")).json()
            if items:
                break
            await asyncio.sleep(0.01)
        ref = items[0]["reference"]
        r = await gw.client.post(f"{BASE}/repairs/{ref}/cancel")
        assert r.status_code == 409 and "still being booked" in r.json()["detail"]
        release.set()
        done = await booking
        assert done.status_code == 201 and done.json()["reference"] == ref


async def test_a_move_overlapping_a_cancel_does_not_bring_the_repair_back(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        offered = await slots(gw.client, 3)
        ref = (
            await gw.client.post(
                f"{BASE}/repairs",
                json=body(offered[0]["slot_token"]),
                headers={"Idempotency-Key": "m"},
            )
        ).json()["reference"]
        adaptor = gw.runtime.councils["demo"].adaptors["demo_csv"]
        real_move, release = adaptor.reschedule, asyncio.Event()

        async def slow_move(handle: Any, slot: Any) -> Any:
            result = await real_move(handle, slot)
            await release.wait()
            return result

        adaptor.reschedule = slow_move  # type: ignore[method-assign]
        move = asyncio.create_task(
            gw.client.patch(f"{BASE}/repairs/{ref}", json={"slot_token": offered[2]["slot_token"]})
        )
        await asyncio.sleep(0.05)
        cancelled = await gw.client.post(f"{BASE}/repairs/{ref}/cancel")
        assert cancelled.status_code == 200
        release.set()
        moved = await move
        assert moved.status_code == 409
        assert (await gw.client.get(f"{BASE}/repairs/{ref}")).json()["status"] == "cancelled"
        await gw.drain_outbox()  # the compensation takes back the place the move booked
        async with gw.database.session() as s:
            used = sum(u for (u,) in await s.execute(select(CsvSlotUsage.used)))
        assert used == 0


async def test_a_double_cancel_frees_the_place_once(tmp_path: Path, database_url: str) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files, database_url=database_url) as gw:
        offered = await slots(gw.client, 1)
        refs = []
        for key in ("a", "b"):
            r = await gw.client.post(
                f"{BASE}/repairs",
                json=body(offered[0]["slot_token"]),
                headers={"Idempotency-Key": key},
            )
            refs.append(r.json()["reference"])
        answers = await asyncio.gather(
            *[gw.client.post(f"{BASE}/repairs/{refs[0]}/cancel") for _ in range(4)]
        )
        assert {a.status_code for a in answers} == {200}
        async with gw.database.session() as s:
            used = sum(u for (u,) in await s.execute(select(CsvSlotUsage.used)))
        assert used == 1  # the other resident still holds their place


async def test_a_probe_that_never_answers_does_not_wedge_the_breaker() -> None:
    class Flaky:
        calls = 0

        async def addresses(self, postcode: str) -> list[Any]:
            self.calls += 1
            if self.calls <= 2:
                raise BackendUnavailable("down")
            if self.calls == 3:
                raise asyncio.CancelledError()  # the caller went away mid-probe
            return []

    breaker = CircuitBreaker(threshold=2, cooldown=0.01)
    guarded = Guarded("c", "a", Flaky(), breaker, CallStats())
    for _ in range(2):
        try:
            await guarded.addresses("LN1 1AA")
        except BackendUnavailable:
            pass
    await asyncio.sleep(0.02)
    try:
        await guarded.addresses("LN1 1AA")
    except asyncio.CancelledError:
        pass
    await asyncio.sleep(0.02)
    assert await guarded.addresses("LN1 1AA") == []  # probed again, and closed
    assert breaker.state == "closed"


async def test_admin_outbox_shows_the_councils_own_items(tmp_path: Path) -> None:
    demo, files = demo_council()
    other, _ = demo_council(name="Other")
    async with running_gateway(tmp_path, {"demo": demo, "other": other}, files) as gw:
        async with gw.database.transaction() as s:
            enqueue(s, "demo", "works_order.raise", {"reference": "MINE-0001"})
            for i in range(250):
                enqueue(s, "other", "works_order.raise", {"reference": f"OTHR-{i:04d}"})
        items = (await gw.client.get(f"{BASE}/admin/outbox")).json()
        assert [i["reference"] for i in items] == ["MINE-0001"]
        async with gw.database.session() as s:
            assert len((await s.execute(select(OutboxItem))).all()) == 251


async def test_oversized_chunked_bodies_get_413(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:

        async def chunks() -> Any:
            for _ in range(20):
                yield b"x" * 10_000

        r = await gw.client.post(
            f"{BASE}/repairs",
            content=chunks(),
            headers={"Idempotency-Key": "big", "content-type": "application/json"},
        )
        assert r.status_code == 413


def test_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(url))
    command.upgrade(cfg, "head")
    command.check(cfg)  # raises if the models need a migration that does not exist

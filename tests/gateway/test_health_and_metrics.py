"""Health that tells the truth (a background probe of each backend, its result and age; circuits
per capability; the outbox by state) and metrics for operating the gateway."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import update

from gateway.outbox import enqueue
from gateway.probes import Prober
from gateway.storage.models import OutboxItem
from repairs_gateway_sdk.timeutil import now
from tests.gateway.test_notifications import API_KEY, SMS_BOOKED, FakeNotify
from tests.gateway.test_notifications import notify as notify  # noqa: F401 - a fixture
from tests.gatewaykit import DEMO_CONFIG, demo_council, running_gateway

FAST = {"probe_interval_seconds": 0.5, "probe_timeout_seconds": 2}


async def _health(client: httpx.AsyncClient) -> dict[str, Any]:
    from gateway.api import health

    health._cache.clear()  # the page is cached for a few seconds; look afresh
    return dict((await client.get("/health")).json())


async def _until(
    client: httpx.AsyncClient, check: str, status: str, within: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within  # a bound on waiting, not a measured timing
    while True:
        entry: dict[str, Any] = (await _health(client))["checks"][check][0]
        if entry["status"] == status or time.monotonic() > deadline:
            return entry
        await asyncio.sleep(0.1)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_backend_that_goes_away_fails_in_health_and_comes_back(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files, settings=FAST) as gw:
        anon = gw.client_for(None)
        first = (await _health(anon))["checks"]["demo:demo_csv"][0]
        assert first["status"] == "pass", first
        assert first["probe"]["result"] == "pass" and first["probe"]["age_seconds"] >= 0
        assert first["circuits"] == {
            "addresses": "closed",
            "appointments": "closed",
            "bookings": "closed",
        }

        properties = gw.config_dir / "demo-properties.csv"
        properties.unlink()  # the "backend" goes away: nothing is cached for health
        entry = await _until(anon, "demo:demo_csv", "fail", within=60)
        assert entry["status"] == "fail", entry
        assert entry["output"] == "backend-unavailable"
        assert entry["probe"]["consecutive_failures"] >= 1
        assert entry["probe"]["last_success_age_seconds"] is not None
        page = (await anon.get("/health")).text
        assert "demo-properties" not in page and str(tmp_path) not in page  # no paths, no texts
        assert _sample("gateway_adaptor_probe_up", council="demo", adaptor="demo_csv") == 0

        properties.write_text((DEMO_CONFIG / "demo-properties.csv").read_text())
        entry = await _until(anon, "demo:demo_csv", "pass", within=60)
        assert entry["status"] == "pass", entry
        assert _sample("gateway_adaptor_probe_up", council="demo", adaptor="demo_csv") == 1
        age = _sample(
            "gateway_adaptor_probe_last_success_age_seconds", council="demo", adaptor="demo_csv"
        )
        assert 0 <= age < 60


async def test_health_requests_never_call_a_backend_themselves(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(
        tmp_path, {"demo": council}, files, settings={"probe_interval_seconds": 300}
    ) as gw:
        adaptor = gw.runtime.councils["demo"].adaptors["demo_csv"]
        calls = 0
        real = adaptor.check_health

        async def counting() -> None:
            nonlocal calls
            calls += 1
            await real()

        adaptor.check_health = counting  # type: ignore[method-assign]
        anon = gw.client_for(None)
        for _ in range(20):
            assert (await _health(anon))["checks"]["demo:demo_csv"][0]["status"] == "pass"
        for _ in range(20):
            r = await gw.client.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
            assert r.status_code == 200
        assert calls == 1  # the first /health probed it once (never probed before); then none


async def test_probes_are_bounded_in_concurrency_and_time() -> None:
    from dataclasses import dataclass, field

    @dataclass
    class Hangs:
        running: list[int]
        most: list[int]

        async def check_health(self) -> None:
            self.running[0] += 1
            self.most[0] = max(self.most[0], self.running[0])
            try:
                await asyncio.sleep(30)
            finally:
                self.running[0] -= 1

    @dataclass
    class FakeCouncil:
        id: str
        adaptors: dict[str, Any]
        not_ready: dict[str, Any] = field(default_factory=dict)

    running, most = [0], [0]
    councils = [FakeCouncil(f"c{i}", {"a": Hangs(running, most)}) for i in range(6)]
    prober = Prober(councils, interval=60, timeout=0.3, concurrency=2)  # type: ignore[arg-type]
    results = await asyncio.gather(*(prober.probe(c, "a") for c in councils))  # type: ignore[arg-type]
    assert most[0] == 2
    assert {r.status for r in results} == {"fail"}
    assert {r.output for r in results} == {"timed-out"}
    assert all(r.public()["result"] == "fail" for r in results)


async def test_outbox_by_state_in_health_and_metrics(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        async with gw.database.transaction() as s:
            enqueue(s, "demo", "works_order.raise", {"reference": "X"}, delay_seconds=600)
            dead = enqueue(s, "demo", "works_order.raise", {"reference": "Y"})
            enqueue(s, "demo", "booking.compensate", {"reference": "Z"})
        async with gw.database.transaction() as s:
            await s.execute(update(OutboxItem).where(OutboxItem.id == dead.id).values(state="dead"))
            await s.execute(
                update(OutboxItem)
                .where(OutboxItem.kind == "booking.compensate")
                .values(next_attempt_at=now().replace(year=now().year - 1))
            )
        # read every few seconds in the background: read afresh, after any read already
        # running (one that began before the writes above would otherwise be what is shown)
        await gw.runtime.outbox_monitor.current(max_age=0)
        health = await _health(gw.client_for(None))
        outbox = health["checks"]["outbox"][0]
        assert outbox["status"] == "warn"
        assert outbox["items"] == {"pending": 2, "dead": 1} and outbox["dead"] == 1
        assert outbox["dead_by_kind"] == {"works_order.raise": 1}
        assert outbox["oldest_pending_age_seconds"] >= 0
        assert outbox["oldest_due_wait_seconds"] > 300 * 24 * 3600  # overdue a year
        assert "X" not in str(outbox) and "reference" not in str(outbox)
        metrics = (await gw.client.get("/metrics")).text
        assert 'gateway_outbox_items{state="pending"} 2.0' in metrics
        assert 'gateway_outbox_dead_items{kind="works_order.raise"} 1.0' in metrics
        assert "gateway_outbox_oldest_pending_age_seconds" in metrics


async def test_booking_notification_and_rate_limit_metrics_carry_no_personal_data(
    tmp_path: Path, notify: tuple[FakeNotify, str]
) -> None:
    fake, url = notify
    council, files = demo_council(
        notifications={"api_key": API_KEY, "base_url": url, "sms_templates": {"booked": SMS_BOOKED}}
    )
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        booked = _sample("gateway_bookings_total", council="demo", result="booked")
        invalid = _sample("gateway_bookings_total", council="demo", result="invalid-input")
        sent = _sample("gateway_notifications_total", council="demo", result="sent")
        limited = _sample("gateway_rate_limited_total", council="demo")
        slots = (
            await gw.client.get(
                "/v1/councils/demo/appointments",
                params={"property_id": "00012345", "sor_code": "N631111", "page_size": 2},
            )
        ).json()["slots"]
        body = {
            "property_id": "00012345",
            "sor_code": "N631111",
            "description": "Tap drips",
            "contact": {"phone": "07700900123"},
            "slot_token": slots[0]["slot_token"],
        }
        r = await gw.client.post(
            "/v1/councils/demo/repairs", headers={"Idempotency-Key": "m1"}, json=body
        )
        assert r.status_code == 201
        reference = r.json()["reference"]
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            headers={"Idempotency-Key": "m2"},
            json={**body, "contact": {}, "slot_token": slots[1]["slot_token"]},
        )
        assert r.status_code == 422
        await gw.drain_outbox()
        assert fake.sent
        slow = gw.client_for(await gw.create_key(["demo"], rate_per_minute=2))
        codes = [
            (
                await slow.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
            ).status_code
            for _ in range(4)
        ]
        assert codes.count(429) == 2, codes
        assert _sample("gateway_bookings_total", council="demo", result="booked") == booked + 1
        assert (
            _sample("gateway_bookings_total", council="demo", result="invalid-input") == invalid + 1
        )
        assert _sample("gateway_notifications_total", council="demo", result="sent") == sent + 1
        assert _sample("gateway_rate_limited_total", council="demo") == limited + 2
        metrics = (await gw.client.get("/metrics")).text
        for secret in (reference, "00012345", "LN1", "07700900123", gw.key.split("_")[1]):
            assert secret not in metrics

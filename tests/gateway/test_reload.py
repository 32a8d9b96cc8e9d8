"""Reloading council configuration without a restart (gateway/reload.py): by the admin call
and by SIGHUP to a real `serve` process; a bad change is refused and the running
configuration keeps serving; requests running during a reload complete."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.gatewaykit import demo_council, running_gateway, write_config
from tests.processes import ServerProcess, clean_env

BASE = "/v1/councils/demo"
SLOTS = {"property_id": "00012345", "sor_code": "XYZ999", "page_size": 2}


async def _reload(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/v1/admin/reload")


async def test_reload_picks_up_a_changed_sor_table_and_a_new_council(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get(f"{BASE}/appointments", params=SLOTS)
        assert r.status_code == 422 and "XYZ999" in r.json()["detail"]
        running = gw.runtime.councils["demo"]
        adaptor = running.adaptors["demo_csv"]
        breaker = running.breaker("demo_csv", "addresses")
        councils_dict = gw.runtime.councils

        sor = gw.config_dir / "sor.csv"
        sor.write_text(sor.read_text() + "XYZ999,Tap washer (new),PL,small,30,,yes\n")
        other, _ = demo_council(name="Other Borough Council")
        write_config(gw.config_dir, {"other": other})
        r = await _reload(gw.client)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["outcome"] == "reloaded"
        assert body["updated"] == ["demo"] and body["added"] == ["other"]
        assert body["replaced"] == [] and body["removed"] == []

        r = await gw.client.get(f"{BASE}/appointments", params=SLOTS)
        assert r.status_code == 200, r.text
        assert r.json()["slots"]
        # the demo council kept its adaptor instance and breakers; one dict, updated in place
        assert gw.runtime.councils is councils_dict is gw.runtime.gateway.councils
        assert gw.runtime.councils["demo"] is running
        assert running.adaptors["demo_csv"] is adaptor
        assert running.breaker("demo_csv", "addresses") is breaker

        everything = gw.client_for(await gw.create_key(["*"], role="admin"))
        async with everything:
            r = await everything.get("/v1/councils/other/addresses", params={"postcode": "LN1 1AA"})
            assert r.status_code == 200, r.text
            assert len(r.json()["addresses"]) == 7
            # nothing changed: nothing is replaced
            r = await _reload(everything)
            assert r.status_code == 200, r.text
            assert r.json()["unchanged"] == 2 and not r.json()["updated"]


async def test_a_bad_change_is_refused_and_the_running_configuration_keeps_serving(
    tmp_path: Path,
) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        running = gw.runtime.councils["demo"]
        path = gw.config_dir / "demo.yaml"
        good = path.read_text()
        path.write_text(good.replace("appointments: demo_csv", "appointments: demo_cvs"))
        r = await _reload(gw.client)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["outcome"] == "refused"
        assert any(
            "demo.yaml" in p and "routes.appointments.default" in p and "demo_csv" in p
            for p in body["problems"]
        ), body["problems"]
        assert gw.runtime.councils["demo"] is running

        # not YAML at all, and a property file the import would refuse
        path.write_text("name: [unclosed\n")
        r = await _reload(gw.client)
        assert r.status_code == 409 and "not valid YAML" in " ".join(r.json()["problems"])
        path.write_text(good.replace("demo-properties.csv", "dupes.csv"))
        props = (gw.config_dir / "demo-properties.csv").read_text().splitlines()
        (gw.config_dir / "dupes.csv").write_text("\n".join([*props, props[1]]) + "\n")
        r = await _reload(gw.client)
        assert r.status_code == 409
        assert "duplicate property id" in " ".join(r.json()["problems"])

        assert gw.runtime.councils["demo"] is running
        r = await gw.client.get(f"{BASE}/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 200 and len(r.json()["addresses"]) == 7
        assert gw.runtime.reloader.last is not None
        assert gw.runtime.reloader.last.outcome == "refused"


async def test_requests_running_during_a_reload_complete(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        old = gw.runtime.councils["demo"].adaptors["demo_csv"]
        entered, release = asyncio.Event(), asyncio.Event()
        real_addresses = old.addresses
        closed: list[Any] = []
        was_closed = asyncio.Event()
        real_close = old.close

        async def slow_addresses(postcode: str) -> Any:
            entered.set()
            await release.wait()
            return await real_addresses(postcode)

        async def spy_close() -> None:
            closed.append(old)
            was_closed.set()
            await real_close()

        old.addresses = slow_addresses  # type: ignore[method-assign]
        old.close = spy_close  # type: ignore[method-assign]
        running = asyncio.create_task(
            gw.client.get(f"{BASE}/addresses", params={"postcode": "LN1 1AA"})
        )
        await asyncio.wait_for(entered.wait(), 30)

        # an adaptor option changes: the council gets new adaptors
        body = yaml.safe_load((gw.config_dir / "demo.yaml").read_text())
        body["adaptors"]["demo_csv"]["options"]["calendar"]["capacity"] = 3
        write_config(gw.config_dir, {"demo": body})
        r = await _reload(gw.client)
        assert r.status_code == 200, r.text
        assert r.json()["replaced"] == ["demo"]
        new = gw.runtime.councils["demo"].adaptors["demo_csv"]
        assert new is not old
        # new requests go to the new adaptor while the old one finishes its request
        r = await gw.client.get(f"{BASE}/addresses", params={"postcode": "LN1 1AB"})
        assert r.status_code == 200, r.text
        assert not running.done() and not closed

        release.set()
        r = await asyncio.wait_for(running, 30)
        assert r.status_code == 200, r.text
        assert len(r.json()["addresses"]) == 7
        await asyncio.wait_for(was_closed.wait(), 60)
        assert closed == [old]  # closed once nothing ran on it any more


async def test_reload_needs_an_admin_of_every_council(tmp_path: Path) -> None:
    demo, files = demo_council()
    other, _ = demo_council(name="Other Borough Council")
    async with running_gateway(tmp_path, {"demo": demo, "other": other}, files) as gw:
        for key in (
            await gw.create_key(["demo", "other"], role="frontend"),
            await gw.create_key(["demo"], role="admin"),
        ):
            async with gw.client_for(key) as client:
                assert (await _reload(client)).status_code == 403
        async with gw.client_for(None) as client:
            assert (await _reload(client)).status_code == 401
        assert (await _reload(gw.client)).status_code == 200


def _ready_councils(server: ServerProcess) -> int:
    r = server.get("/health/ready")
    return int(r.json()["checks"]["config"].get("councils", 0))


def test_sighup_reloads_a_running_serve_process(tmp_path: Path) -> None:
    council, files = demo_council()
    config = tmp_path / "config"
    write_config(config, {"demo": council}, files)
    env = clean_env(
        GATEWAY_SECRET_KEY="reload-test-secret",
        GATEWAY_DATA_DIR=str(tmp_path / "data"),
        GATEWAY_ADAPTOR_START_GRACE_SECONDS="5",
    )
    logs = tmp_path / "logs"
    server = ServerProcess.replica("reload", config, env, logs)
    server.start()
    try:
        assert _ready_councils(server) == 1
        other, _ = demo_council(name="Other Borough Council")
        write_config(config, {"other": other})
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 60
        while _ready_councils(server) != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _ready_councils(server) == 2
        assert server.running  # SIGHUP did not end it

        # a bad file: refused, logged with its problems, still serving both
        (config / "broken.yaml").write_text("name: [unclosed\n")
        os.kill(server.proc.pid, signal.SIGHUP)
        log = server.log
        deadline = time.monotonic() + 60
        while "config.reload_refused" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = log.read_text()
        assert "config.reload_refused" in text and "broken.yaml" in text
        assert server.running and _ready_councils(server) == 2
    finally:
        server.stop()

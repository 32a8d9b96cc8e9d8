"""Adaptors that could not start heal without a restart, and one adaptor's slow start holds
up neither the others, nor serving, nor shutdown."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.api.app import create_app
from gateway.runtime import Runtime
from gateway.settings import Settings
from tests.gatewaykit import DEMO_CONFIG, demo_council, running_gateway, write_config


async def _health(client: httpx.AsyncClient) -> dict[str, Any]:
    from gateway.api import health

    health._cache.clear()  # the page is cached for a few seconds; look afresh
    return dict((await client.get("/health")).json())


async def test_an_adaptor_whose_backend_was_down_at_start_serves_once_it_is_back(
    tmp_path: Path,
) -> None:
    council, files = demo_council()
    council["adaptors"]["demo_csv"]["options"]["properties_file"] = "arrives-later.csv"
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        r = await gw.client.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 503
        assert "retrying" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1
        check = (await _health(gw.client))["checks"]["demo:demo_csv"][0]
        assert check["status"] == "fail" and check["state"] == "retrying"
        assert check["last_error"] == "backend-unavailable" and check["retry_in_seconds"] >= 1

        (gw.config_dir / "arrives-later.csv").write_text(
            (DEMO_CONFIG / "demo-properties.csv").read_text()
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = await gw.client.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
            if r.status_code == 200:
                break
            await asyncio.sleep(0.25)
        assert r.status_code == 200, r.text
        assert len(r.json()["addresses"]) == 7
        check = (await _health(gw.client))["checks"]["demo:demo_csv"][0]
        assert check["status"] == "pass"


async def test_a_start_that_hangs_holds_up_nothing_else(tmp_path: Path) -> None:
    demo, files = demo_council()
    other, _ = demo_council(name="Other Borough Council")
    config_dir = tmp_path / "config"
    write_config(config_dir, {"demo": demo, "other": other}, files)
    settings = Settings(
        config_dir=config_dir,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'gateway.db'}",
        secret_key="test-secret",
        adaptor_start_grace_seconds=1.0,
        adaptor_start_timeout_seconds=600.0,
    )
    rt = Runtime(settings, run_worker=False)
    app = create_app(settings, runtime=rt)
    hung = asyncio.Event()

    async def never_starts() -> None:
        hung.set()
        await asyncio.Event().wait()  # a backend that accepts and never answers

    rt.councils["demo"].adaptors["demo_csv"].start = never_starts  # type: ignore[method-assign]
    began = time.monotonic()
    await rt.start()
    assert time.monotonic() - began < 5  # the grace, not the hung start, bounded start-up
    assert hung.is_set()
    try:
        key = await rt.keys.create("t", ["demo", "other"], "admin", 10_000)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway.test",
            headers={"Authorization": f"Bearer {key}"},
        ) as c:
            r = await c.get("/v1/councils/other/addresses", params={"postcode": "LN1 1AA"})
            assert r.status_code == 200  # the other council is not held up
            r = await c.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
            assert r.status_code == 503 and "starting" in r.json()["detail"]
            check = (await _health(c))["checks"]["demo:demo_csv"][0]
            assert check["state"] == "starting" and check["status"] == "warn"
    finally:
        began = time.monotonic()
        await rt.stop()
        assert time.monotonic() - began < 10  # shutdown does not wait for the hung start


async def test_lazily_started_adaptors_start_on_their_first_call(tmp_path: Path) -> None:
    demo, files = demo_council()
    other, _ = demo_council(name="Other Borough Council")
    other["adaptors"]["demo_csv"]["options"]["properties_file"] = "arrives-later.csv"
    async with running_gateway(
        tmp_path, {"demo": demo, "other": other}, files, settings={"adaptor_start": "lazy"}
    ) as gw:
        demo_c, other_c = gw.runtime.councils["demo"], gw.runtime.councils["other"]
        assert demo_c.unstarted == {"demo_csv"} and other_c.unstarted == {"demo_csv"}
        assert demo_c.adaptors["demo_csv"]._index is None  # nothing loaded at start-up
        r = await gw.client.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 200 and len(r.json()["addresses"]) == 7  # the first call waits
        assert demo_c.unstarted == set() and other_c.unstarted == {"demo_csv"}
        # a lazy start that fails answers with the reason and is retried like any other
        r = await gw.client.get("/v1/councils/other/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 503 and "could not start" in r.json()["detail"]
        assert other_c.not_ready["demo_csv"].status == "retrying"
        (gw.config_dir / "arrives-later.csv").write_text(
            (DEMO_CONFIG / "demo-properties.csv").read_text()
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = await gw.client.get("/v1/councils/other/addresses", params={"postcode": "LN1 1AA"})
            if r.status_code == 200:
                break
            await asyncio.sleep(0.25)
        assert r.status_code == 200

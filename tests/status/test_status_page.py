"""The status page for council IT (issue 14, part 1): over HTTP in-process, and in a real
headless Chromium against a real `repairs-gateway serve`: sign in, view a council, replay a
dead outbox item. Screenshots are kept in tests/artefacts/status/ (ignored by git)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.auth import KeyStore
from gateway.outbox import enqueue
from gateway.storage.database import Database
from gateway.storage.models import AuditEvent, OutboxItem
from tests.gatewaykit import demo_council, running_gateway, write_config
from tests.processes import ServerProcess, clean_env

ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts" / "status"


async def _dead_item(db: Database, council: str = "demo") -> int:
    async with db.transaction() as s:
        item = enqueue(s, council, "works_order.raise", {"reference": "RG-TEST-1"})
        await s.flush()
        item_id = int(item.id)
    async with db.transaction() as s:
        await s.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(state="dead", attempts=3, last_error="BackendUnavailable: down")
        )
    return item_id


async def test_status_page_needs_an_admin_login_and_shows_a_council(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        item_id = await _dead_item(gw.database)
        anon = gw.client_for(None)
        frontend_key = await gw.create_key(["demo"])
        async with anon:
            r = await anon.get("/status/demo")
            assert r.status_code == 303 and r.headers["location"].startswith("/status/login")
            page = await anon.get("/status/login")
            assert page.status_code == 200 and '<label for="key">' in page.text
            assert "http://" not in page.text and "https://" not in page.text  # no assets
            r = await anon.post("/status/login", data={"key": "rgw_nope_nope"})
            assert r.status_code == 401 and "There is a problem" in r.text
            r = await anon.post("/status/login", data={"key": frontend_key})
            assert r.status_code == 403 and "not an admin key" in r.text
            r = await anon.post("/status/login", data={"key": gw.key, "next": "/status/demo"})
            assert r.status_code == 303 and r.headers["location"] == "/status/demo"
            cookie = r.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and gw.key not in cookie
            page = await anon.get("/status/demo")
            assert page.status_code == 200, page.text
            text = page.text
            for heading in ("Adaptors", "Routes", "SoR mapping coverage", "Outbox", "API keys"):
                assert heading in text
            assert "demo_csv" in text and "RG-TEST-1" in text
            assert gw.key.split("_", 2)[2] not in text  # no secrets
            # a form without its CSRF token is refused
            r = await anon.post(f"/status/demo/outbox/{item_id}/replay", data={})
            assert r.status_code == 403
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', text)
            assert csrf
            r = await anon.post(f"/status/demo/outbox/{item_id}/drop", data={"csrf": csrf.group(1)})
            assert r.status_code == 303 and "done=dropped" in r.headers["location"]
            assert (await anon.get("/status/nosuch")).status_code == 404
        async with gw.database.session() as s:
            actions = [a for (a,) in (await s.execute(select(AuditEvent.action))).all()]
        assert "status.login" in actions and "outbox.drop" in actions


@pytest.fixture(scope="module")
def chromium() -> str:
    from tests.browser import find_chromium

    path, why = find_chromium()
    if path is None:
        pytest.skip(why)
    return path


def test_status_page_in_a_real_browser(tmp_path: Path, chromium: str) -> None:
    from tests.browser import Browser

    council, files = demo_council()
    config = tmp_path / "config"
    write_config(config, {"demo": council}, files)
    url = f"sqlite:///{tmp_path / 'gateway.db'}"

    async def prepare() -> tuple[str, int]:
        db = Database(url)
        await asyncio.to_thread(db.migrate)
        key = await KeyStore(db).create("council it", ["demo"], "admin", 1000)
        item_id = await _dead_item(db)
        await db.dispose()
        return key, item_id

    key, item_id = asyncio.run(prepare())
    env = clean_env(
        DATABASE_URL=url, GATEWAY_SECRET_KEY="browser-test", GATEWAY_DATA_DIR=str(tmp_path)
    )
    server = ServerProcess.replica("status", config, env, tmp_path / "logs")
    server.start()
    shots = ARTEFACTS
    try:
        with Browser.launch(chromium) as b:
            b.goto(f"{server.url}/status/demo")
            b.wait_loaded("/status/login")
            assert "Sign in" in b.text()
            b.screenshot(shots / "1-login.png")
            b.eval(
                f"document.getElementById('key').value = {key!r};"
                "document.getElementById('sign-in').click(); true"
            )
            b.wait_loaded("/status/demo")
            text = b.text()
            assert "Adaptors" in text and "demo_csv" in text and "RG-TEST-1" in text
            b.screenshot(shots / "2-council.png")
            button = f'form[data-item="{item_id}"][data-action="replay"] button'
            b.eval(f"document.querySelector({button!r}).click(); true")
            b.wait_for("location.search.includes('done=replayed')")
            b.wait_loaded("/status/demo")
            assert "The item was queued again." in b.text()
            b.screenshot(shots / "3-replayed.png")
    finally:
        server.stop()
    print(f"screenshots: {shots}")

    async def state() -> tuple[str, list[str]]:
        db = Database(url)
        async with db.session() as s:
            item = await s.get(OutboxItem, item_id)
            actions = [a for (a,) in (await s.execute(select(AuditEvent.action))).all()]
        await db.dispose()
        assert item is not None
        return item.state, actions

    item_state, actions = asyncio.run(state())
    assert item_state == "pending"
    assert "outbox.replay" in actions and "status.login" in actions
    for name in ("1-login.png", "2-council.png", "3-replayed.png"):
        assert (shots / name).stat().st_size > 1000

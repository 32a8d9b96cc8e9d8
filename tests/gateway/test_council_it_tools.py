"""Tools that refuse bad input, keys with expiry, last use and rotation (CLI and admin API),
and the audit trail of writes and admin actions (issue 14, part 3)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from gateway.auth import KeyStore, key_state
from gateway.cli import app
from gateway.outbox import enqueue
from gateway.storage.database import Database
from gateway.storage.models import ApiKey, AuditEvent, OutboxItem
from repairs_gateway_sdk.errors import Unauthorized
from repairs_gateway_sdk.timeutil import now
from tests.gatewaykit import DEMO_CONFIG, demo_council, running_gateway

runner = CliRunner()


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("GATEWAY_CONFIG_DIR", str(DEMO_CONFIG))
    return url


def _refused(args: list[str], *words: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    for w in words:
        assert w in result.output, result.output
    return result.output


def test_keys_create_refuses_bad_input(db_env: str) -> None:
    _refused(
        ["keys", "create", "portal", "--council", "demo", "--rate-per-minute", "0"],
        "--rate-per-minute must be at least 1 (got 0)",
    )
    _refused(
        ["keys", "create", "portal", "--council", "nosuchcouncil"],
        "no council 'nosuchcouncil'",
        "councils: demo",
    )
    _refused(["keys", "create", "portal", "--council", "demo", "--role", "root"], "unknown role")
    _refused(
        ["keys", "create", "portal", "--council", "demo", "--expires-in-days", "0"],
        "--expires-in-days must be at least 1",
    )
    _refused(["keys", "rotate", "nosuchkey"], "no active key 'nosuchkey'")
    ok = runner.invoke(app, ["keys", "create", "portal", "--council", "demo"])
    assert ok.exit_code == 0 and ok.output.startswith("rgw_")


def test_keystore_refuses_a_zero_rate(tmp_path: Path) -> None:
    async def run() -> None:
        db = Database(f"sqlite:///{tmp_path / 'k.db'}")
        await asyncio.to_thread(db.migrate)
        with pytest.raises(ValueError, match="at least 1"):
            await KeyStore(db).create("x", ["demo"], "frontend", 0)
        await db.dispose()

    asyncio.run(run())


def test_outbox_commands_refuse_unknown_states_and_ids(db_env: str) -> None:
    _refused(["outbox", "list", "--state", "deadd"], "unknown state 'deadd'", "dead")
    _refused(["outbox", "list", "--limit", "0"], "--limit must be at least 1")
    _refused(["outbox", "replay", "99999"], "1 of the ids given are not dead items")
    _refused(["outbox", "drop", "99999"], "not dead items")
    ok = runner.invoke(app, ["outbox", "list", "--state", "retrying"])
    assert ok.exit_code == 0, ok.output


def test_export_refuses_unknown_council(db_env: str) -> None:
    _refused(
        ["export", "bookings", "nosuch", "--config-dir", str(DEMO_CONFIG)], "no council 'nosuch'"
    )


def test_rotation_expiry_and_last_use_through_the_cli(db_env: str) -> None:
    created = runner.invoke(app, ["keys", "create", "portal", "--council", "demo"])
    old = created.output.strip()
    old_id = old.split("_", 2)[1]
    rotated = runner.invoke(app, ["keys", "rotate", old_id, "--overlap-days", "2"])
    assert rotated.exit_code == 0, rotated.output
    new = rotated.output.strip().splitlines()[0]
    assert new.startswith("rgw_") and new != old
    listing = runner.invoke(app, ["keys", "list"]).output
    line_old = next(x for x in listing.splitlines() if x.startswith(old_id))
    assert "\texpiring\t" in line_old and "expires=" in line_old
    assert f"replaces={old_id}" in listing

    async def both_work() -> tuple[str, str]:
        db = Database(db_env)
        store = KeyStore(db)
        a = await store.authenticate(old)
        b = await store.authenticate(new)
        await store.flush_last_used()
        rows = {r.key_id: r for r in await store.list()}
        await db.dispose()
        assert rows[old_id].last_used_at is not None
        return a.key_id, b.key_id

    a, b = asyncio.run(both_work())
    assert a == old_id and b != old_id
    events = asyncio.run(_audit_actions(db_env))
    assert {"keys.create", "keys.rotate"} <= set(events)


async def _audit_actions(url: str) -> list[str]:
    db = Database(url)
    async with db.session() as s:
        rows = list((await s.execute(select(AuditEvent))).scalars())
    await db.dispose()
    for r in rows:
        assert "contact" not in (r.detail or {})
    return [r.action for r in rows]


def test_an_expired_key_is_refused(tmp_path: Path) -> None:
    async def run() -> None:
        db = Database(f"sqlite:///{tmp_path / 'k.db'}")
        await asyncio.to_thread(db.migrate)
        store = KeyStore(db)
        key = await store.create(
            "x", ["demo"], "frontend", 10, expires_at=now() + timedelta(days=1)
        )
        assert (await store.authenticate(key)).name == "x"
        async with db.transaction() as s:
            await s.execute(update(ApiKey).values(expires_at=now() - timedelta(seconds=1)))
        fresh = KeyStore(db)
        with pytest.raises(Unauthorized, match="expired"):
            await fresh.authenticate(key)
        row = (await fresh.list())[0]
        assert key_state(row) == "expired"
        await db.dispose()

    asyncio.run(run())


async def test_admin_api_for_keys_and_outbox(tmp_path: Path) -> None:
    council, files = demo_council()
    other, _ = demo_council()
    async with running_gateway(tmp_path, {"demo": council, "other": other}, files) as gw:
        demo_admin = gw.client_for(await gw.create_key(["demo"], role="admin"))
        frontend = gw.client_for(await gw.create_key(["demo"]))
        async with demo_admin, frontend:
            r = await demo_admin.post(
                "/v1/councils/demo/admin/keys",
                json={"name": "portal", "rate_per_minute": 0},
            )
            assert r.status_code == 422 and "rate_per_minute" in r.text
            r = await demo_admin.post(
                "/v1/councils/demo/admin/keys",
                json={"name": "portal", "expires_in_days": 30},
            )
            assert r.status_code == 201, r.text
            made = r.json()
            listed = (await demo_admin.get("/v1/councils/demo/admin/keys")).json()
            row = next(k for k in listed if k["key_id"] == made["key_id"])
            assert row["state"] == "expiring" and "key" not in row and "key_hash" not in row
            # the keys of both councils (the test's own admin key) are not this admin's to see
            assert all(set(k["councils"]) <= {"demo"} for k in listed)
            r = await demo_admin.post(f"/v1/councils/demo/admin/keys/{made['key_id']}/rotate")
            assert r.status_code == 201, r.text
            assert r.json()["old_key_expires_at"] is not None
            assert (await frontend.get("/v1/councils/demo/admin/keys")).status_code == 403
            wide = gw.key.split("_", 2)[1]
            r = await demo_admin.post(f"/v1/councils/demo/admin/keys/{wide}/revoke")
            assert r.status_code == 404
            r = await demo_admin.post(f"/v1/councils/demo/admin/keys/{made['key_id']}/revoke")
            assert r.status_code == 200 and r.json() == {"count": 1}

            async with gw.database.transaction() as s:
                item = enqueue(s, "demo", "no.such.kind", {"reference": "R-1"})
                await s.flush()
                item_id = item.id
            async with gw.database.transaction() as s:
                await s.execute(
                    update(OutboxItem).where(OutboxItem.id == item_id).values(state="dead")
                )
            r = await demo_admin.post(f"/v1/councils/other/admin/outbox/{item_id}/replay")
            assert r.status_code == 403
            r = await demo_admin.post(f"/v1/councils/demo/admin/outbox/{item_id}/drop")
            assert r.status_code == 200
            r = await demo_admin.post(f"/v1/councils/demo/admin/outbox/{item_id}/replay")
            assert r.status_code == 404  # dropped, not dead
        async with gw.database.session() as s:
            events = list((await s.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars())
        actions = [e.action for e in events]
        assert {"keys.create", "keys.rotate", "keys.revoke", "outbox.drop"} <= set(actions)
        assert any(a.startswith("http.POST") for a in actions)  # the refused create, by route
        for e in events:
            assert e.council in ("demo", "other")
            assert e.key_id is None or len(e.key_id) <= 32

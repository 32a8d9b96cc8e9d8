"""Running it as a council would: migrations as their own step (safe to start several at
once), `serve --no-worker` and `worker` as separate processes, probes that tell the truth,
/metrics behind an admin key, and no start with a missing or placeholder signing key."""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from gateway.api.app import create_app
from gateway.cli import app as cli
from gateway.logging import configure
from gateway.outbox import OutboxWorker, enqueue
from gateway.runtime import Runtime
from gateway.settings import Settings, looks_like_placeholder
from gateway.storage.database import Database, migrate, schema_state, sync_url
from tests.gatewaykit import DEMO_CONFIG, demo_council, running_gateway, write_config
from tests.pg import create_database
from tests.processes import clean_env as _env
from tests.processes import cli as _cli
from tests.processes import migrate_concurrently

runner = CliRunner()
KEY = secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def _logs_back_on_stdout() -> Iterator[None]:
    yield
    configure("info")  # a CLI run in CliRunner points the logs at its (closed) output


def _fresh_pg(admin_url: str) -> str:
    return create_database(admin_url, f"ops_{uuid.uuid4().hex[:12]}")


# --- migrations as a step of their own ---------------------------------------------------


@pytest.mark.postgres
def test_three_migrations_started_at_once_on_a_fresh_postgres_all_succeed(
    postgres_admin_url: str,
) -> None:
    url = _fresh_pg(postgres_admin_url)
    assert schema_state(url).state == "behind"
    for returncode, out in migrate_concurrently(_env(DATABASE_URL=url), 3):
        assert returncode == 0, out
        assert "database schema is current" in out, out
    assert schema_state(url).state == "current"


def test_migrate_on_sqlite_as_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    result = runner.invoke(cli, ["migrate"], env=_env(DATABASE_URL=url))
    assert result.exit_code == 0, result.output
    assert schema_state(url).state == "current"


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["serve", "--no-worker"], ["worker"]])
def test_serve_and_worker_refuse_an_unmigrated_postgres(
    postgres_admin_url: str, command: list[str]
) -> None:
    url = _fresh_pg(postgres_admin_url)
    env = _env(DATABASE_URL=url, GATEWAY_SECRET_KEY=KEY, GATEWAY_SCHEMA_WAIT_SECONDS="0")
    result = runner.invoke(cli, [*command, "--config-dir", str(DEMO_CONFIG)], env=env)
    assert result.exit_code == 3, result.output
    assert "empty (never migrated)" in result.output
    assert "run `repairs-gateway migrate` first" in result.output
    assert schema_state(url).state == "behind"  # serve did not migrate behind the operator's back


def test_serve_refuses_an_unreachable_database_clearly(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/none"
    env = _env(DATABASE_URL=url, GATEWAY_SECRET_KEY=KEY, GATEWAY_SCHEMA_WAIT_SECONDS="0")
    result = runner.invoke(cli, ["serve", "--config-dir", str(DEMO_CONFIG)], env=env)
    assert result.exit_code == 3, result.output
    assert "cannot reach the database (OperationalError): check DATABASE_URL" in result.output


def test_a_database_migrated_by_a_newer_release_is_usable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    migrate(url)
    db = Database(url)

    async def bump() -> None:
        async with db.transaction() as s:
            await s.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        await db.dispose()

    asyncio.run(bump())
    state = schema_state(url)
    assert state.state == "ahead" and state.usable


# --- signing key -------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_without_a_secret_key_refuses_naming_the_setting(
    postgres_admin_url: str,
) -> None:
    url = _fresh_pg(postgres_admin_url)
    for command in (["serve", "--no-worker"], ["worker"]):
        result = runner.invoke(
            cli, [*command, "--config-dir", str(DEMO_CONFIG)], env=_env(DATABASE_URL=url)
        )
        assert result.exit_code == 2, result.output
        assert "GATEWAY_SECRET_KEY is not set" in result.output


@pytest.mark.parametrize(
    "value", ["change-me-to-a-long-random-string", "CHANGEME", "<secret>", "${SECRET}", "secret"]
)
def test_placeholder_secret_keys_are_refused_outside_the_demo(tmp_path: Path, value: str) -> None:
    env = _env(GATEWAY_SECRET_KEY=value, GATEWAY_DATA_DIR=str(tmp_path))
    result = runner.invoke(cli, ["serve", "--config-dir", str(DEMO_CONFIG)], env=env)
    assert result.exit_code == 2, result.output
    assert "GATEWAY_SECRET_KEY holds a placeholder value" in result.output
    if len(value) > 8:  # the value itself is not echoed (it might be a real key after all)
        assert value not in result.output
    assert Settings(secret_key=value, demo=True).secret_key_problem() is None


def test_previous_keys_are_checked_too_and_real_keys_pass() -> None:
    s = Settings(secret_key=KEY, secret_keys_previous=f"{secrets.token_urlsafe(32)},change-me")
    assert "GATEWAY_SECRET_KEYS_PREVIOUS" in (s.secret_key_problem() or "")
    assert Settings(secret_key=KEY, database_url="postgresql://x/y").secret_key_problem() is None
    assert not looks_like_placeholder(secrets.token_urlsafe(32))


# --- probes and metrics ------------------------------------------------------------------


async def test_live_and_ready_on_a_migrated_gateway(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        anon = gw.client_for(None)
        live = await anon.get("/health/live")
        assert live.status_code == 200 and live.json() == {"status": "pass"}
        ready = await anon.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.headers["content-type"].startswith("application/health+json")
        checks = ready.json()["checks"]
        assert checks["database"]["status"] == "pass"
        assert checks["schema"]["status"] == "pass" and checks["schema"]["output"] == "current"
        assert checks["config"] == {"status": "pass", "councils": 1}
        assert (await anon.get("/health")).status_code == 200  # the existing report still answers

        # the schema falls behind (a release whose migration has not run yet): not ready
        async with gw.database.transaction() as s:
            await s.execute(text("DELETE FROM alembic_version"))
        from gateway.api import health

        health._ready_cache.clear()
        not_ready = await anon.get("/health/ready")
        assert not_ready.status_code == 503
        assert not_ready.headers["content-type"].startswith("application/problem+json")
        body = not_ready.json()
        assert body["status"] == 503 and body["title"] == "Not ready"
        assert "schema" in body["detail"]
        assert body["checks"]["schema"]["hint"] == "run `repairs-gateway migrate`"
        assert (await anon.get("/health/live")).status_code == 200


async def test_ready_fails_and_live_passes_when_the_database_is_unreachable(
    tmp_path: Path,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    council, files = demo_council()
    config = tmp_path / "config"
    write_config(config, {"demo": council}, files)
    settings = Settings(
        config_dir=config,
        data_dir=tmp_path / "data",
        database_url=f"postgresql://postgres:pw@127.0.0.1:{port}/none",
        secret_key=KEY,
    )
    rt = Runtime(settings, run_worker=False, migrate=False)
    application = create_app(settings, runtime=rt)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        assert (await client.get("/health/live")).status_code == 200
        r = await client.get("/health/ready")
    await rt.database.dispose()
    assert r.status_code == 503
    body = r.json()
    assert body["checks"]["database"]["status"] == "fail"
    assert "127.0.0.1" not in r.text and "pw" not in r.text  # nothing about where or who


async def test_metrics_need_an_admin_key_for_every_council(tmp_path: Path) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council, "other": council}, files) as gw:
        anon = await gw.client_for(None).get("/metrics")
        assert anon.status_code == 401
        assert anon.headers["content-type"].startswith("application/problem+json")
        frontend = await gw.client_for(await gw.create_key(["demo", "other"])).get("/metrics")
        assert frontend.status_code == 403
        one_council = await gw.client_for(await gw.create_key(["demo"], role="admin")).get(
            "/metrics"
        )
        assert one_council.status_code == 403
        ok = await gw.client.get("/metrics")  # admin for both councils
        assert ok.status_code == 200 and "# HELP" in ok.text
        star = await gw.client_for(await gw.create_key(["*"], role="admin")).get("/metrics")
        assert star.status_code == 200


def test_metrics_on_their_own_port_when_configured() -> None:
    from gateway.cli import _start_metrics_port

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _start_metrics_port(Settings(metrics_port=port))
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert r.status_code == 200 and "# HELP" in r.text


# --- the outbox worker as its own process ------------------------------------------------


@pytest.mark.postgres
async def test_competing_workers_never_deliver_an_item_twice(postgres_admin_url: str) -> None:
    url = _fresh_pg(postgres_admin_url)
    migrate(url)
    dbs = [Database(url, pool_size=4) for _ in range(4)]
    delivered: list[int] = []

    async def handler(item) -> None:  # type: ignore[no-untyped-def]
        delivered.append(item.payload["n"])
        await asyncio.sleep(0)  # let the others race for the same rows

    workers = []
    for db in dbs:
        w = OutboxWorker(db, batch=50)
        w.register("test.effect", handler)
        workers.append(w)
    async with dbs[0].transaction() as s:
        for n in range(200):
            enqueue(s, "demo", "test.effect", {"n": n})

    async def drain(w: OutboxWorker) -> None:
        while await w.run_once():
            pass

    for _ in range(3):  # a worker that lost every race for a batch stops early; go again
        await asyncio.gather(*(drain(w) for w in workers))
    try:
        assert sorted(delivered) == list(range(200))  # every item once, none twice
    finally:
        for db in dbs:
            await db.dispose()


@pytest.mark.postgres
def test_worker_processes_deliver_and_stop_cleanly_on_sigterm(
    postgres_admin_url: str, tmp_path: Path
) -> None:
    url = _fresh_pg(postgres_admin_url)
    env = _env(
        DATABASE_URL=url,
        GATEWAY_SECRET_KEY=KEY,
        GATEWAY_DATA_DIR=str(tmp_path / "data"),
        GATEWAY_OUTBOX_POLL_SECONDS="0.2",
    )
    migration = _cli("migrate", env=env)
    assert migration.wait(timeout=120) == 0, migration.communicate()[0]
    council, files = demo_council()
    config = tmp_path / "config"
    write_config(config, {"demo": council}, files)

    async def enqueue_items() -> None:
        db = Database(url)
        async with db.transaction() as s:
            for n in range(10):  # compensations for bookings that never existed: no-ops
                enqueue(s, "demo", "booking.compensate", {"reference": f"NOPE-{n}"})
        await db.dispose()

    engine = create_engine(sync_url(url))

    def pending() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(text("SELECT count(*) FROM outbox WHERE state != 'done'")).scalar_one()
            )

    asyncio.run(enqueue_items())
    workers = [_cli("worker", "--config-dir", str(config), env=env) for _ in range(2)]
    seen = ["" for _ in workers]
    try:
        deadline = time.monotonic() + 60  # a bound on waiting, not a measured timing
        while pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pending() == 0
        for i, w in enumerate(workers):  # both up (signal handlers in place) before SIGTERM
            seen[i] = _read_until(w, '"worker.started"', deadline=time.monotonic() + 60)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        outputs = [seen[i] + w.communicate(timeout=60)[0] for i, w in enumerate(workers)]
        engine.dispose()
    for w, out in zip(workers, outputs, strict=True):
        assert w.returncode == 0, out
        assert '"worker.started"' in out and '"worker.stopped"' in out, out


def _read_until(proc: subprocess.Popen[str], marker: str, *, deadline: float) -> str:
    """What ``proc`` printed up to ``marker`` (read from the pipe's descriptor directly, so
    nothing is left in a Python buffer for ``communicate`` to miss)."""
    import os
    import select

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    got = b""
    while marker.encode() not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            got += chunk
        elif proc.poll() is not None:
            break
    return got.decode(errors="replace")

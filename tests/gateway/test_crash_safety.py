"""kill -9 of a real gateway process in the middle of bookings, then a restart: every booking
is either complete or cleanly failed, the outbox finishes the rest, nothing is duplicated."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gatewaykit import demo_council, write_config

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(config_dir: Path, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_SECRET_KEY": "crash",
        "GATEWAY_RECONCILE_AFTER_SECONDS": "6",
        "GATEWAY_REQUEST_BUDGET_SECONDS": "5",
        "GATEWAY_OUTBOX_POLL_SECONDS": "0.2",
    }
    env.pop("DATABASE_URL", None)
    log = (data_dir / "gateway.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--config-dir",
            str(config_dir),
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code < 600:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gateway did not start")


async def wait_for_bookings_in_flight(db_path: Path, timeout: float = 30.0) -> None:
    """Until the gateway has committed repairs whose scheduler call has not answered yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(db_path) as db:
                n = db.execute("SELECT count(*) FROM repairs WHERE status = 'booking'").fetchone()
            if n[0] >= 3:
                return
        except sqlite3.OperationalError:
            pass  # the table is being created or the database is busy
        await asyncio.sleep(0.02)
    raise AssertionError("no booking was ever in flight")


async def wait_for_outbox(db_path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db_path) as db:
            left = db.execute(
                "SELECT count(*) FROM outbox WHERE state = 'pending' AND kind = 'booking.reconcile'"
            ).fetchone()[0]
        if left == 0:
            return
        await asyncio.sleep(0.2)


def make_key(data_dir: Path) -> str:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "keys",
            "create",
            "crash",
            "--council",
            "demo",
            "--role",
            "admin",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


async def test_kill_dash_nine_mid_booking_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    council, files = demo_council()
    council["adaptors"]["demo_csv"]["options"]["calendar"]["capacity_per_trade"] = {"plumbing": 1}
    council["adaptors"]["demo_csv"]["options"]["booking_latency_ms"] = 400
    config, data = tmp_path / "config", tmp_path / "data"
    write_config(config, {"demo": council}, files)
    key = make_key(data)
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1/councils/demo"
    headers = {"Authorization": f"Bearer {key}"}
    proc = start_gateway(config, data, port)
    async with httpx.AsyncClient(headers=headers, timeout=30) as c:
        slots = (
            await c.get(
                f"{base}/appointments",
                params={"property_id": "00012345", "sor_code": "N631111", "page_size": 20},
            )
        ).json()["slots"]
        bodies = [
            {
                "property_id": "00012345",
                "sor_code": "N631111",
                "description": "leak",
                "contact": {"phone": "07700900000"},
                "slot_token": slots[i % 20]["slot_token"],
            }
            for i in range(60)
        ]

        async def post(i: int) -> Any:
            try:
                return await c.post(
                    f"{base}/repairs", json=bodies[i], headers={"Idempotency-Key": f"crash-{i}"}
                )
            except httpx.HTTPError as exc:
                return exc

        tasks = [asyncio.create_task(post(i)) for i in range(60)]
        await wait_for_bookings_in_flight(data / "gateway.db")
        os.kill(proc.pid, signal.SIGKILL)  # bookings are in flight at the scheduler
        proc.wait()
        first = await asyncio.gather(*tasks)
    answered = {
        i: r.json()["reference"]
        for i, r in enumerate(first)
        if isinstance(r, httpx.Response) and r.status_code == 201
    }

    proc = start_gateway(config, data, port)
    try:
        await wait_for_outbox(data / "gateway.db")  # reconcile items are due after 6 s
        async with httpx.AsyncClient(headers=headers, timeout=30) as c:
            # every resident retries with the same key: same answer, or a clean refusal
            async def resend(i: int) -> httpx.Response:
                # as a front-end would: the same key again while the answer is "try later"
                give_up = time.monotonic() + 90
                while True:
                    r = await c.post(
                        f"{base}/repairs", json=bodies[i], headers={"Idempotency-Key": f"crash-{i}"}
                    )
                    if r.status_code != 503 or time.monotonic() > give_up:
                        return r
                    await asyncio.sleep(min(2.0, float(r.headers.get("retry-after", "1"))))

            retried = await asyncio.gather(*[resend(i) for i in range(60)])
        await wait_for_outbox(data / "gateway.db")
    finally:
        proc.terminate()
        proc.wait(10)
    for i, r in enumerate(retried):
        assert r.status_code in (201, 409), (i, r.status_code, r.text)
        if i in answered:
            assert r.status_code == 201 and r.json()["reference"] == answered[i]

    db = sqlite3.connect(data / "gateway.db")
    statuses = dict(db.execute("SELECT status, count(*) FROM repairs GROUP BY status").fetchall())
    assert set(statuses) <= {"booked", "failed"}, statuses  # nothing left half-done
    booked = {r for (r,) in db.execute("SELECT reference FROM repairs WHERE status='booked'")}
    held = {r for (r,) in db.execute("SELECT reference FROM csv_bookings WHERE status='booked'")}
    assert booked == held  # no orphan in the scheduler, no confirmed booking missing there
    used = db.execute("SELECT coalesce(sum(used), 0) FROM csv_slot_usage").fetchone()[0]
    assert used == len(held) <= 20  # capacity 1 per slot: never double-booked
    assert {r.json()["reference"] for r in retried if r.status_code == 201} == booked
    reconciled = db.execute(
        "SELECT count(*) FROM outbox WHERE kind = 'booking.reconcile' AND state = 'done'"
    ).fetchone()[0]
    assert reconciled >= 1  # the kill did land mid-booking, and the outbox settled it
    assert any(isinstance(r, httpx.HTTPError) for r in first)  # callers saw the crash
    pending = db.execute(
        "SELECT count(*) FROM outbox WHERE state != 'done' AND kind != 'booking.compensate'"
    ).fetchone()[0]
    assert pending == 0

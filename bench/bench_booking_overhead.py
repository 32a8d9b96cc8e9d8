"""Booking overhead (issue 16): what the gateway adds to a booking beyond its DRS calls.

    .venv/bin/python -m bench.bench_booking_overhead [--bookings 48] [--concurrency 4]

Goal: with Kirona DRS at realistic latency, a booking through the gateway costs under 5 ms
(p50) and 20 ms (p99) more than the vendor calls it makes.

Set-up (all on loopback, started by the bench): the DRS simulator
(`python -m adaptors.kirona_drs.simulator`) with a *fixed* latency on every call (1.5 s by
default, `--latency`), and a real `repairs-gateway serve` process (SQLite, or with `--db
postgres` a PostgreSQL server from tests/pg.py, migrated; one uvicorn worker, its outbox
worker running) with one council: addresses from a CSV fallback (a
generated property file), appointments from DRS.

What a booking is, through the gateway (timed by the caller, a keep-alive httpx client in
this process): `GET .../appointments?property_id=P&sor_code=N858111` for a property not
asked about before (a cold DRS cache: 4 concurrent 7-day `checkAvailability` windows, as the
adaptor's defaults fetch them), then `POST .../repairs` with the first slot's token and an
Idempotency-Key (the gateway writes the repair, the idempotency record and a reconcile item,
the DRS adaptor calls `createOrder` then `scheduleBooking` with its day-long session, and
the gateway records the confirmation). The DRS session and WSDL are warmed first (untimed).

The baseline, in the same run: the same DRS operations made directly with the adaptor
library in this process (`KironaDRSAdaptor.availability` for a new property, then
`KironaDRSAdaptor.book` of its first slot: the same `checkAvailability` x 4,
`createOrder`, `scheduleBooking`, built by the same code from the same options). Its wire
time (each SOAP exchange's POST to parsed reply, the union of the concurrent windows) is
recorded too, so the adaptor's own share is visible. The gateway's figure minus the
baseline is what the gateway adds: HTTP, authentication, slot-token signing and checking,
routing, the property look-up, breakers and deadlines, the database writes, the answer.

Why fixed latency: the simulator's realistic latency is random (1-2 s per call), and a
random draw differs between a gateway booking and its baseline by up to a second, which
would bury a few milliseconds. With every call taking exactly `--latency` seconds, the
vendor's share is the same on both sides, and the difference is the gateway's. The
baseline's wire time shows how constant the vendor's share really is (its spread bounds the
noise in the difference).

Pairing: bookings run in rounds of `--concurrency` concurrent flows; each round runs a
gateway batch and a direct batch one after the other (alternating which goes first), and
booking j of a round through the gateway is paired with booking j of the same round made
directly. The bookings of a round start at the same instant (with a fixed latency their
vendor replies then reach the gateway together: the worst case for queueing), or
`--stagger S` seconds apart (each booking's clock starts after its wait; the same on both
sides), as residents arrive. Reported per call (GET, POST, both): p50/p99 of the gateway,
of the baseline, and of the paired difference (gateway minus baseline), plus totals; with
the machine's load average and the CPU other processes used meanwhile (the machine is
shared).

`--in-process` (not the figure, the where-it-goes): the gateway app in this process, driven
through httpx's ASGI transport (no HTTP, no uvicorn), against the same simulator (at
`--latency`, 0 s suits it), one booking at a time. Per POST: the scheduler's `book` (the
vendor's share), the gateway's own time (POST minus `book`, less the audit write that a real
server does after the answer is sent), its write transactions (`transactions`: sessions from
`Database.transaction`; `writes`: `Database.write`, a transaction in one go), the idempotency
look-ups (`_replay`), the confirmation (`_confirm`), the database statements and the
database's waits (aiosqlite thread hops: a statement's or a whole write's; psycopg protocol
waits) with their time; transactions, writes, statements and waits count the audit write's
too (`audit` is its time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import (
    busy_cpu_seconds,
    free_port,
    machine_info,
    process_cpu_seconds,
)

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
SOR = REPO / "mappings" / "examples" / "demo-sor.csv"
SOR_CODE = "N858111"  # Light fitting: electrical, small, 60 minutes (demo-sor.csv)
COUNCIL = "bench"
POSTCODE = "LN1 9ZZ"
DRS_PASSWORD = "drs-secret"  # the simulator's seeded credential
GOAL_P50_MS = 5.0
GOAL_P99_MS = 20.0


def log(msg: str) -> None:
    print(f"[booking-overhead] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))] if s else float("nan")


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# -- set-up -----------------------------------------------------------------------------------
def property_rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "property_id": f"BK{i:05d}",
            "uprn": f"{100090000000 + i}",
            "address_line_1": f"{i + 1} Bench Street",
            "address_line_2": "",
            "address_line_3": "Lincoln",
            "address_line_4": "",
            "postcode": POSTCODE,
            "kind": "dwelling",
            "parent_id": "",
            "repairable": "yes",
            "reason": "",
        }
        for i in range(n)
    ]


def write_properties(path: Path, rows: list[dict[str, str]]) -> None:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(r[h] for h in header) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def drs_options(port: int) -> dict[str, Any]:
    return {
        "wsdl": f"http://127.0.0.1:{port}/DRSService?wsdl",
        "endpoint": f"http://127.0.0.1:{port}/DRSService",
        "login": "gateway",
        "password": "${DRS_PASSWORD}",
        "contract": "RESPONSIVE",
        "user_id": "REPAIRSGW",
        "timeout_seconds": 15,
    }


def write_council(config_dir: Path, drs_port: int, properties: Path) -> None:
    config_dir.mkdir(parents=True)
    body = {
        "name": "Booking overhead bench council",
        "mappings": str(SOR),
        "adaptors": {
            "props": {"type": "csv_fallback", "options": {"properties_file": str(properties)}},
            "drs": {"type": "kirona_drs", "options": drs_options(drs_port)},
        },
        "routes": {"addresses": "props", "appointments": "drs"},
    }
    (config_dir / f"{COUNCIL}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))


def env_for(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("DATABASE_URL", None)
    env.update(
        GATEWAY_DATA_DIR=str(data_dir),
        DATABASE_URL=database_url or f"sqlite:///{data_dir / 'gateway.db'}",
        GATEWAY_SECRET_KEY=secrets.token_urlsafe(32),
        GATEWAY_LOG_LEVEL="warning",
        DRS_PASSWORD=DRS_PASSWORD,
    )
    return env


def wait_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited: {log_path.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the direct path (the adaptor library in this process) ------------------------------------
Sample = dict[str, float]
Outcome = tuple[list[Sample], list[Sample], dict[str, dict[str, int]]]
WIRE: contextvars.ContextVar[list[tuple[float, float]]] = contextvars.ContextVar("wire")


def union_ms(intervals: list[tuple[float, float]]) -> float:
    """Total time covered by the intervals (concurrent windows count once)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total * 1000


class Direct:
    """The DRS adaptor as the gateway builds it, with each SOAP exchange timed."""

    def __init__(self, drs_port: int, tmp: Path) -> None:
        from adaptors.kirona_drs.adaptor import KironaDRSAdaptor
        from adaptors.kirona_drs.config import KironaDRSConfig
        from gateway.logging import configure
        from repairs_gateway_sdk.adaptor import AdaptorContext

        configure("warning")  # the gateway's level in this run: no info lines on either side
        options = {**drs_options(drs_port), "password": DRS_PASSWORD}
        context = AdaptorContext(council=COUNCIL, name="drs", config_dir=tmp, data_dir=tmp)
        self.adaptor = KironaDRSAdaptor(KironaDRSConfig(**options), context)
        self._timed = False

    def _time_exchanges(self) -> None:
        service = self.adaptor.client._service
        assert service is not None
        inner = service.exchange

        async def exchange(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await inner(*args, **kwargs)
            finally:
                spans = WIRE.get(None)
                if spans is not None:
                    spans.append((t0, time.perf_counter()))

        service.exchange = exchange  # type: ignore[method-assign]
        self._timed = True

    async def booking(self, row: dict[str, str], n: int) -> dict[str, float]:
        from repairs_gateway_sdk.model import (
            AvailabilityQuery,
            BookingOrder,
            Contact,
            JobSize,
            JobSpec,
            Property,
            PropertyKind,
            Trade,
        )
        from repairs_gateway_sdk.references import new_reference
        from repairs_gateway_sdk.timeutil import today_london

        prop = Property(
            id=row["property_id"],
            uprn=row["uprn"],
            address_lines=[row["address_line_1"], row["address_line_3"]],
            postcode=row["postcode"],
            kind=PropertyKind.DWELLING,
            online_repairs=True,
        )
        job = JobSpec(
            sor_code=SOR_CODE, trade=Trade.ELECTRICAL, size=JobSize.SMALL, duration_minutes=60
        )
        out: dict[str, float] = {}
        spans: list[tuple[float, float]] = []
        WIRE.set(spans)
        t0 = time.perf_counter()
        page = await self.adaptor.availability(
            AvailabilityQuery(property=prop, job=job, start_from=today_london(), page_size=10)
        )
        out["get_ms"] = (time.perf_counter() - t0) * 1000
        out["get_wire_ms"] = union_ms(spans)
        if not self._timed:  # the first call built the SOAP client: time every one after it
            self._time_exchanges()
        spans.clear()
        order = BookingOrder(
            reference=new_reference(),
            property=prop,
            job=job,
            slot=page.slots[0],
            description=f"Light fitting hanging loose (bench {n})",
            contact=Contact(phone="07700 900123"),
        )
        t0 = time.perf_counter()
        await self.adaptor.book(order)
        out["post_ms"] = (time.perf_counter() - t0) * 1000
        out["post_wire_ms"] = union_ms(spans)
        return out

    async def close(self) -> None:
        await self.adaptor.close()


# -- the gateway path ---------------------------------------------------------------------------
async def gateway_booking(
    client: httpx.AsyncClient, row: dict[str, str], n: int
) -> dict[str, float]:
    base = f"/v1/councils/{COUNCIL}"
    t0 = time.perf_counter()
    r = await client.get(
        f"{base}/appointments", params={"property_id": row["property_id"], "sor_code": SOR_CODE}
    )
    get_ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 200 or not r.json().get("slots"):
        raise RuntimeError(f"appointments answered {r.status_code}: {r.text[:300]}")
    body = {
        "property_id": row["property_id"],
        "sor_code": SOR_CODE,
        "description": f"Light fitting hanging loose (bench {n})",
        "contact": {"phone": "07700 900123"},
        "slot_token": r.json()["slots"][0]["slot_token"],
    }
    t0 = time.perf_counter()
    r = await client.post(
        f"{base}/repairs",
        json=body,
        headers={"Idempotency-Key": f"overhead-{n}-{secrets.token_hex(4)}"},
    )
    post_ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 201:
        raise RuntimeError(f"booking answered {r.status_code}: {r.text[:300]}")
    return {"get_ms": get_ms, "post_ms": post_ms}


# -- the run ------------------------------------------------------------------------------------
async def drive(
    base: str,
    key: str,
    direct: Direct,
    gw_rows: list[dict[str, str]],
    d_rows: list[dict[str, str]],
    bookings: int,
    concurrency: int,
    warmup: int,
    stagger: float = 0.0,
) -> Outcome:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits
    ) as client:
        for i in range(warmup):  # WSDL, session, connections, first-call paths: untimed
            await gateway_booking(client, gw_rows[i], i)
            await direct.booking(d_rows[i], i)
        gw: list[dict[str, float]] = []
        dr: list[dict[str, float]] = []
        calls: dict[str, dict[str, int]] = {"gateway": {}, "direct": {}}
        i = warmup
        rounds = -(-bookings // concurrency)
        for k in range(rounds):
            idx = list(range(i, i + concurrency))
            i += concurrency

            async def after(n: int, booking: Awaitable[dict[str, float]]) -> dict[str, float]:
                await asyncio.sleep(n * stagger)  # before the booking's own clock starts
                return await booking

            async def gw_batch(idx: list[int] = idx) -> list[dict[str, float]]:
                return list(
                    await asyncio.gather(
                        *(
                            after(n, gateway_booking(client, gw_rows[j], j))
                            for n, j in enumerate(idx)
                        )
                    )
                )

            async def d_batch(idx: list[int] = idx) -> list[dict[str, float]]:
                return list(
                    await asyncio.gather(
                        *(after(n, direct.booking(d_rows[j], j)) for n, j in enumerate(idx))
                    )
                )

            order: list[Callable[[], Awaitable[list[dict[str, float]]]]] = [gw_batch, d_batch]
            if k % 2:
                order.reverse()
            first = await sim_calls(order[0], calls, "gateway" if k % 2 == 0 else "direct")
            second = await sim_calls(order[1], calls, "direct" if k % 2 == 0 else "gateway")
            g, d = (first, second) if k % 2 == 0 else (second, first)
            gw += g
            dr += d
            log(
                f"round {k + 1}/{rounds}: POST gateway "
                f"{statistics.median(x['post_ms'] for x in g):.1f} ms, "
                f"direct {statistics.median(x['post_ms'] for x in d):.1f} ms"
            )
    return gw, dr, calls


async def sim_calls(
    batch: Callable[[], Awaitable[list[dict[str, float]]]],
    calls: dict[str, dict[str, int]],
    side: str,
) -> list[dict[str, float]]:
    """Run ``batch``, adding the DRS calls the simulator counted meanwhile to ``calls[side]``
    (read before and after, outside the timed calls)."""
    before = await _sim_counts()
    out = await batch()
    after = await _sim_counts()
    for op, n in after.items():
        calls[side][op] = calls[side].get(op, 0) + n - before.get(op, 0)
    return out


SIM_STATE = ""


async def _sim_counts() -> dict[str, int]:
    async with httpx.AsyncClient() as c:
        r = await c.get(SIM_STATE)
    return dict(r.json()["calls"])


def summarise(gw: list[dict[str, float]], dr: list[dict[str, float]]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for label, keys in (
        ("GET appointments", ("get_ms",)),
        ("POST repairs", ("post_ms",)),
        ("booking (GET + POST)", ("get_ms", "post_ms")),
    ):
        g = [sum(x[k] for k in keys) for x in gw]
        d = [sum(x[k] for k in keys) for x in dr]
        w = [sum(x[k.replace("_ms", "_wire_ms")] for k in keys) for x in dr]
        diff = [a - b for a, b in zip(g, d, strict=True)]
        rows[label] = {
            "n": len(g),
            "gateway_p50_ms": round(pct(g, 0.5), 2),
            "gateway_p99_ms": round(pct(g, 0.99), 2),
            "direct_p50_ms": round(pct(d, 0.5), 2),
            "direct_p99_ms": round(pct(d, 0.99), 2),
            "wire_p50_ms": round(pct(w, 0.5), 2),
            "wire_p99_ms": round(pct(w, 0.99), 2),
            "wire_spread_ms": round(max(w) - min(w), 2),
            "adaptor_over_wire_p50_ms": round(
                pct([a - b for a, b in zip(d, w, strict=True)], 0.5), 2
            ),
            "added_p50_ms": round(pct(diff, 0.5), 2),
            "added_p99_ms": round(pct(diff, 0.99), 2),
            "added_max_ms": round(max(diff), 2),
            "added_vs_median_baseline_p50_ms": round(pct([x - pct(d, 0.5) for x in g], 0.5), 2),
            "added_vs_median_baseline_p99_ms": round(pct([x - pct(d, 0.5) for x in g], 0.99), 2),
            "gateway_total_s": round(sum(g) / 1000, 2),
            "direct_total_s": round(sum(d) / 1000, 2),
            "ratio_p50": round(pct(g, 0.5) / pct(d, 0.5), 4),
        }
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| call | n | gateway p50 / p99 ms | direct (adaptor) p50 / p99 ms | wire p50 / p99 ms "
        "| **added by the gateway** p50 / p99 / max ms | gateway / direct p50 "
        "| totals gateway / direct s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in result["calls"].items():
        lines.append(
            f"| {label} | {r['n']} | {r['gateway_p50_ms']:.1f} / {r['gateway_p99_ms']:.1f} "
            f"| {r['direct_p50_ms']:.1f} / {r['direct_p99_ms']:.1f} "
            f"| {r['wire_p50_ms']:.1f} / {r['wire_p99_ms']:.1f} "
            f"| **{r['added_p50_ms']:.2f} / {r['added_p99_ms']:.2f}** / {r['added_max_ms']:.2f} "
            f"| {r['ratio_p50']:.4f} | {r['gateway_total_s']:.1f} / {r['direct_total_s']:.1f} |"
        )
    return "\n".join(lines)


# -- where it goes (in-process) ------------------------------------------------------------
async def in_process(
    database_url: str | None, tmp: Path, bookings: int, rows: list[dict[str, str]]
) -> dict[str, Any]:
    """POST /repairs through the app in this process, its parts timed (see the module notes)."""
    from contextlib import asynccontextmanager

    from sqlalchemy import event

    import gateway.audit as audit_module
    from gateway.api.app import create_app
    from gateway.logging import configure
    from gateway.runtime import Runtime
    from gateway.settings import Settings

    configure("warning")
    os.environ["DRS_PASSWORD"] = DRS_PASSWORD
    settings = Settings(
        config_dir=tmp / "config",
        data_dir=tmp / "data",
        database_url=database_url or f"sqlite:///{tmp / 'data' / 'gateway.db'}",
        secret_key=secrets.token_urlsafe(32),
        require_api_keys=True,
    )
    rt = Runtime(settings, run_worker=True)
    app = create_app(settings, runtime=rt)
    await rt.start()
    parts: dict[str, list[float]] = {}
    counts: dict[str, int] = {}

    def timed(owner: Any, name: str, label: str) -> None:
        inner = getattr(owner, name)

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await inner(*args, **kwargs)
            finally:
                parts.setdefault(label, []).append((time.perf_counter() - t0) * 1000)

        setattr(owner, name, wrapper)

    scheduler = rt.gateway.council(COUNCIL).scheduler("drs")
    timed(scheduler, "book", "book")
    timed(rt.bookings, "_replay", "_replay")
    timed(rt.bookings, "_confirm", "_confirm")
    timed(audit_module, "record", "audit")
    inner_tx = rt.database.transaction

    @asynccontextmanager
    async def transaction() -> Any:
        t0 = time.perf_counter()
        async with inner_tx() as s:
            yield s
        parts.setdefault("transactions", []).append((time.perf_counter() - t0) * 1000)

    rt.database.transaction = transaction  # type: ignore[method-assign]
    timed(rt.database, "write", "writes")  # one-go write transactions (Database.write)

    def count_statement(*_: Any) -> None:
        counts["statements"] = counts.get("statements", 0) + 1

    if rt.database.is_sqlite:
        import aiosqlite.core

        from gateway.storage import sqlite_driver
        from gateway.storage.sqlite_driver import OneHopConnection

        # counted where every SQLite statement runs: a statement listener on the engine
        # would send the booking's writes through SQLAlchemy's own path (storage/prepared.py)
        run_statement = sqlite_driver._run

        def counted_run(*args: Any) -> Any:
            count_statement()
            return run_statement(*args)

        sqlite_driver._run = counted_run  # type: ignore[assignment]

        timed(aiosqlite.core.Connection, "_execute", "database waits")  # a statement's hop
        timed(OneHopConnection, "run_on_thread", "database waits")  # a write's one hop
    else:
        import psycopg

        event.listen(rt.database.engine.sync_engine, "before_cursor_execute", count_statement)
        timed(psycopg.AsyncConnection, "wait", "database waits")
    key = await rt.keys.create("bench", [COUNCIL], "frontend", 1_000_000)
    samples: list[dict[str, float]] = []
    base = f"/v1/councils/{COUNCIL}"
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway.test",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ) as client:
            for n, row in enumerate(rows[: bookings + 2]):
                r = await client.get(
                    f"{base}/appointments",
                    params={"property_id": row["property_id"], "sor_code": SOR_CODE},
                )
                slot_token = r.json()["slots"][0]["slot_token"]
                parts.clear()
                counts.clear()
                t0 = time.perf_counter()
                r = await client.post(
                    f"{base}/repairs",
                    json={
                        "property_id": row["property_id"],
                        "sor_code": SOR_CODE,
                        "description": f"Light fitting hanging loose (bench {n})",
                        "contact": {"phone": "07700 900123"},
                        "slot_token": slot_token,
                    },
                    headers={"Idempotency-Key": f"in-process-{n}"},
                )
                post_ms = (time.perf_counter() - t0) * 1000
                if r.status_code != 201:
                    raise RuntimeError(f"booking answered {r.status_code}: {r.text[:300]}")
                if n < 2:
                    continue  # first calls: WSDL, session, connections
                audit = sum(parts.get("audit", []))
                sample = {k: sum(v) for k, v in parts.items()}
                sample["post"] = post_ms - audit
                sample["gateway own"] = post_ms - audit - sample["book"]
                sample["database waits (n)"] = len(parts.get("database waits", []))
                sample["transactions (n)"] = len(parts.get("transactions", []))
                sample["writes (n)"] = len(parts.get("writes", []))
                sample["statements (n)"] = counts.get("statements", 0)
                samples.append(sample)
    finally:
        await rt.stop()
    keys = sorted({k for x in samples for k in x})
    return {
        k: {
            "p50": round(pct([x.get(k, 0.0) for x in samples], 0.5), 2),
            "p90": round(pct([x.get(k, 0.0) for x in samples], 0.9), 2),
        }
        for k in keys
    }


def run_in_process(args: argparse.Namespace, database_url: str | None) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    rows = property_rows(args.bookings + 4)
    write_properties(tmp / "properties.csv", rows)
    drs_port = free_port()
    lat = str(args.latency)
    sim = subprocess.Popen(  # noqa: S603 - our own simulator
        [PY, "-m", "adaptors.kirona_drs.simulator", "--port", str(drs_port)]
        + ["--availability-latency", lat, "--latency", lat, "--capacity", "1000"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "drs.log").open("wb"),
    )
    try:
        wait_http(f"http://127.0.0.1:{drs_port}/_sim/state", sim, tmp / "drs.log", 30)
        write_council(tmp / "config", drs_port, tmp / "properties.csv")
        (tmp / "data").mkdir()
        if database_url:
            from gateway.storage.database import migrate

            migrate(database_url)
        load_before = loadavg()
        result = asyncio.run(in_process(database_url, tmp, args.bookings, rows))
        load_after = loadavg()
    finally:
        stop(sim)
    print(  # noqa: T201
        f"in-process, {args.db}, DRS at {args.latency:g} s, {args.bookings} bookings one at a "
        f"time; load average before/after {load_before} / {load_after} (ms unless (n))"
    )
    for k, v in result.items():
        print(f"  {k:22s} p50 {v['p50']:8.2f}   p90 {v['p90']:8.2f}")  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.bench_booking_overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--bookings", type=int, default=48, help="timed bookings per side")
    ap.add_argument("--concurrency", type=int, default=4, help="concurrent bookings per batch")
    ap.add_argument("--latency", type=float, default=1.5, help="seconds per DRS call (fixed)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="seconds between the starts of a round's bookings (0: all at the same instant)",
    )
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="where the time goes: the app in this process, its parts timed (module notes)",
    )
    args = ap.parse_args(argv)
    stack = ExitStack()
    database_url = None
    if args.db == "postgres":
        from tests.pg import create_database, postgres_server

        database_url = create_database(stack.enter_context(postgres_server()), "overhead")
    if args.in_process:
        with stack:
            return run_in_process(args, database_url)

    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    rows = property_rows(2 * (args.bookings + args.warmup + args.concurrency))
    gw_rows, d_rows = rows[0::2], rows[1::2]
    write_properties(tmp / "properties.csv", rows)
    drs_port = free_port()
    lat = str(args.latency)
    sim = subprocess.Popen(  # noqa: S603 - our own simulator
        [
            PY,
            "-m",
            "adaptors.kirona_drs.simulator",
            "--port",
            str(drs_port),
            "--availability-latency",
            lat,
            "--latency",
            lat,
            "--capacity",
            "1000",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "drs.log").open("wb"),
    )
    gw_proc: subprocess.Popen[bytes] | None = None
    try:
        global SIM_STATE
        SIM_STATE = f"http://127.0.0.1:{drs_port}/_sim/state"
        wait_http(SIM_STATE, sim, tmp / "drs.log", 30)
        config_dir, data_dir = tmp / "config", tmp / "data"
        write_council(config_dir, drs_port, tmp / "properties.csv")
        data_dir.mkdir()
        env = env_for(data_dir, database_url)
        if database_url:
            subprocess.run(  # noqa: S603
                [PY, "-m", "gateway.cli", "migrate"],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
            )
        out = subprocess.run(  # noqa: S603
            [
                PY,
                "-m",
                "gateway.cli",
                "keys",
                "create",
                "bench",
                "--council",
                COUNCIL,
                "--rate-per-minute",
                "1000000",
                "--config-dir",
                str(config_dir),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        key = next(x for x in out.split() if x.startswith("rgw_"))
        port = free_port()
        gw_log = tmp / "gateway.log"
        gw_proc = subprocess.Popen(  # noqa: S603
            [
                PY,
                "-m",
                "gateway.cli",
                "serve",
                "--config-dir",
                str(config_dir),
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=gw_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_http(f"http://127.0.0.1:{port}/health/live", gw_proc, gw_log, 90)
        direct = Direct(drs_port, tmp)
        load_before = loadavg()
        busy0, wall0 = busy_cpu_seconds(), time.monotonic()
        own0 = [process_cpu_seconds(p.pid) for p in (sim, gw_proc)]
        self0 = resource.getrusage(resource.RUSAGE_SELF)

        async def run() -> Outcome:
            try:
                return await drive(
                    f"http://127.0.0.1:{port}",
                    key,
                    direct,
                    gw_rows,
                    d_rows,
                    args.bookings,
                    args.concurrency,
                    args.warmup,
                    args.stagger,
                )
            finally:
                await direct.close()

        gw, dr, calls = asyncio.run(run())
        wall = time.monotonic() - wall0
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        own = sum(process_cpu_seconds(p.pid) for p in (sim, gw_proc)) - sum(own0)
        own += (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
        other = max(0.0, (busy_cpu_seconds() - busy0 - own) / wall)
        load_after = loadavg()
    finally:
        if gw_proc is not None:
            stop(gw_proc)
        stop(sim)
        stack.close()
    summary = summarise(gw, dr)
    post = summary["POST repairs"]
    result = {
        "machine": machine_info(),
        "db": args.db,
        "latency_s": args.latency,
        "bookings": len(gw),
        "concurrency": args.concurrency,
        "stagger_s": args.stagger,
        "seconds": round(wall, 1),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "other_cores": round(other, 2),
        "calls": summary,
        "drs_calls": calls,
        "goal_met": post["added_p50_ms"] < GOAL_P50_MS and post["added_p99_ms"] < GOAL_P99_MS,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=1))  # noqa: T201
    print(markdown(result))  # noqa: T201
    print(f"DRS calls counted by the simulator during the timed batches: {calls}")  # noqa: T201
    print(  # noqa: T201
        f"\nload average before/after: {load_before} / {load_after}; other processes used "
        f"{other:.2f} cores; goal (POST adds < {GOAL_P50_MS:g} ms p50, < {GOAL_P99_MS:g} ms p99): "
        f"{'met' if result['goal_met'] else 'NOT met'}"
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

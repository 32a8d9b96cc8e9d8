"""The gateway as a council runs it, on loopback: PostgreSQL, `repairs-gateway migrate` started
three times at once, three `serve --no-worker` replicas and one `worker` (real processes, each
on its own port), the Kirona DRS simulator as a real process, and callers spreading requests
over the replicas in turn.

One scenario, in steps (each says what it shows):
- an adaptor whose backend (a Civica UH simulator) is down at start serves once it is up,
  on every replica, without a restart;
- a slot listed by one replica is booked through another; a cursor from one is followed on
  another;
- a replica killed with SIGKILL mid-run and started again: nothing lost, booked twice or
  orphaned (the simulator's orders against the gateway's repairs), no dead outbox item;
- a revoked key is refused by every replica within 15 s;
- a key's rate limit holds across the replicas (accepted within 10% of its allowance);
- /health on every replica shows the killed DRS simulator failing within 60 s.

Skips cleanly without PostgreSQL (the ``postgres_admin_url`` fixture)."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from gateway.auth import KeyStore
from gateway.storage.database import Database, sync_url
from gateway.storage.models import OutboxItem, Repair
from repairs_gateway_sdk.timeutil import now
from tests.gatewaykit import demo_council, write_config
from tests.pg import create_database
from tests.processes import ServerProcess, clean_env, migrate_concurrently
from tests.simulators import free_port

pytestmark = pytest.mark.postgres

SOR = {"electrical": "N858111", "carpentry": "N373049"}
PROPERTIES = ["00012345", "00012346"]
INTENTS = 24
CALLERS = 4
KILL_AFTER = 8  # intents finished when replica 1 is killed


def council_configs(drs: str, uh: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    lincoln, files = demo_council(name="Lincoln (topology)")
    lincoln.pop("accept_without_slot", None)
    lincoln["adaptors"]["drs"] = {
        "type": "kirona_drs",
        "options": {
            "wsdl": f"{drs}/DRSService?wsdl",
            "endpoint": f"{drs}/DRSService",
            "login": "gateway",
            "password": "${DRS_PASSWORD}",
            "contract": "RESPONSIVE",
            "user_id": "REPAIRSGW",
            "timeout_seconds": 3,
        },
    }
    lincoln["routes"] = {"addresses": "demo_csv", "appointments": "drs"}
    late = {
        "name": "Late Borough (its housing system is down when the gateway starts)",
        "mappings": "sor.csv",
        "adaptors": {
            "uh": {
                "type": "civica_uh",
                "options": {
                    "property_wsdl": f"{uh}/PropertyService.svc?wsdl",
                    "property_endpoint": f"{uh}/PropertyService.svc",
                    "repair_endpoint": f"{uh}/RepairService.svc",
                    "username": "gateway",
                    "password": "${UH_PASSWORD}",
                    "user_id": 42,
                    "timeout_seconds": 3,
                },
            }
        },
        "routes": {"addresses": "uh"},
    }
    return {"lincoln": lincoln, "late": late}, files


@dataclass
class Topology:
    replicas: list[ServerProcess]
    worker: ServerProcess
    drs: ServerProcess
    uh: ServerProcess
    db_url: str
    admin_key: str
    _turn: count[int] = field(default_factory=count)
    # connection errors met by any call (reads too): the kill landed while calls were running
    connection_errors: list[str] = field(default_factory=list)

    def next(self) -> ServerProcess:
        """The next replica in turn (round robin, as a load balancer would)."""
        return self.replicas[next(self._turn) % len(self.replicas)]


async def _keys(url: str) -> tuple[str, str, str]:
    db = Database(url)
    try:
        store = KeyStore(db)
        admin = await store.create("ops", ["lincoln", "late"], "admin", 1_000_000)
        revokable = await store.create("to-revoke", ["lincoln"], "frontend", 1_000_000)
        slow = await store.create("small-rate", ["lincoln"], "frontend", 100)
    finally:
        await db.dispose()
    return admin, revokable, slow


async def _revoke(url: str, key: str) -> None:
    db = Database(url)
    try:
        assert await KeyStore(db).revoke(key.split("_")[1])
    finally:
        await db.dispose()


@pytest.fixture
def topology(postgres_admin_url: str, tmp_path: Path) -> Iterator[tuple[Topology, str, str]]:
    url = create_database(postgres_admin_url, f"topo_{uuid.uuid4().hex[:12]}")
    logs = tmp_path / "logs"
    env = clean_env(
        DATABASE_URL=url,
        GATEWAY_SECRET_KEY=secrets.token_urlsafe(32),
        DRS_PASSWORD="drs-secret",
        UH_PASSWORD="secret",
        GATEWAY_PROBE_INTERVAL_SECONDS="2",
        GATEWAY_PROBE_TIMEOUT_SECONDS="2",
        GATEWAY_OUTBOX_POLL_SECONDS="0.2",
        GATEWAY_REQUEST_BUDGET_SECONDS="8",
        GATEWAY_RECONCILE_AFTER_SECONDS="10",
        GATEWAY_ADAPTOR_START_GRACE_SECONDS="2",
        GATEWAY_ADAPTOR_START_TIMEOUT_SECONDS="3",
    )
    # migrations are a step of their own: three at once (three pods' init containers)
    for returncode, out in migrate_concurrently(env, 3):
        assert returncode == 0, out
    drs = ServerProcess(
        "drs",
        ["-m", "adaptors.kirona_drs.simulator", "--state-file", str(tmp_path / "drs.state")],
        free_port(),
        "/_sim/state",
        logs / "drs.log",
    )
    uh = ServerProcess(  # not started yet: down when the gateway starts
        "uh", ["-m", "adaptors.civica_uh.simulator"], free_port(), "/_sim/health", logs / "uh.log"
    )
    councils, files = council_configs(drs.url, uh.url)
    config = tmp_path / "config"
    write_config(config, councils, files)
    admin, revokable, slow = asyncio.run(_keys(url))
    replicas = [  # each pod has its own data directory (the CSV index is built per process)
        ServerProcess.replica(
            f"gw{i}", config, {**env, "GATEWAY_DATA_DIR": str(tmp_path / f"data{i}")}, logs
        )
        for i in range(3)
    ]
    worker = ServerProcess.worker(
        "worker", config, {**env, "GATEWAY_DATA_DIR": str(tmp_path / "data-w")}, logs
    )
    everything = [drs, *replicas, worker, uh]
    try:
        drs.start()

        async def start_all() -> None:
            await asyncio.gather(*(asyncio.to_thread(p.start) for p in [*replicas, worker]))

        asyncio.run(start_all())
        yield Topology(replicas, worker, drs, uh, url, admin), revokable, slow
    finally:
        for p in everything:
            p.stop()


# -- callers ------------------------------------------------------------------------------------
@dataclass
class Attempt:
    key: str
    body: dict[str, Any]
    outcome: str = "unknown"  # confirmed | slot_taken | refused | unknown
    reference: str | None = None
    answers: list[str] = field(default_factory=list)


@dataclass
class Intent:
    n: int
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def confirmed(self) -> set[str]:
        return {a.reference for a in self.attempts if a.outcome == "confirmed" and a.reference}


def _slug(r: httpx.Response) -> str:
    if r.headers.get("content-type", "").startswith("application/problem+json"):
        return str(r.json().get("type", "")).rsplit("/", 1)[-1]
    return ""


async def _slots(c: httpx.AsyncClient, topo: Topology, prop: str, sor: str) -> list[dict[str, Any]]:
    for _ in range(40):
        replica = topo.next()
        try:
            r = await c.get(
                f"{replica.url}/v1/councils/lincoln/appointments",
                params={"property_id": prop, "sor_code": sor, "page_size": 10},
            )
        except httpx.HTTPError as exc:
            topo.connection_errors.append(type(exc).__name__)
            await asyncio.sleep(0.3)
            continue
        if r.status_code == 200 and r.json()["slots"]:
            return list(r.json()["slots"])
        await asyncio.sleep(0.3)
    raise AssertionError("no slots from any replica")


async def _post(c: httpx.AsyncClient, topo: Topology, a: Attempt, deadline: float) -> None:
    """Book; after a connection error, a 5xx or 409 in progress, the same key again on the next
    replica (the slot was listed by another one)."""
    while time.monotonic() < deadline:
        replica = topo.next()
        try:
            r = await c.post(
                f"{replica.url}/v1/councils/lincoln/repairs",
                json=a.body,
                headers={"Idempotency-Key": a.key},
            )
        except httpx.HTTPError as exc:
            a.answers.append(type(exc).__name__)
            topo.connection_errors.append(type(exc).__name__)
            await asyncio.sleep(0.3)
            continue
        slug = _slug(r)
        a.answers.append(f"{r.status_code} {slug}".strip())
        if r.status_code == 201:
            a.outcome, a.reference = "confirmed", str(r.json()["reference"])
            return
        if r.status_code == 409 and slug == "slot-unavailable":
            a.outcome = "slot_taken"
            return
        if r.status_code == 409 or r.status_code >= 500:
            await asyncio.sleep(min(2.0, float(r.headers.get("retry-after", "1"))))
            continue
        a.outcome = "refused"
        return


async def _intent(c: httpx.AsyncClient, topo: Topology, intent: Intent, deadline: float) -> None:
    trade = sorted(SOR)[intent.n % len(SOR)]
    prop = PROPERTIES[intent.n % len(PROPERTIES)]
    for n in range(8):  # a new slot (and key) after each "slot taken"
        slots = await _slots(c, topo, prop, SOR[trade])
        slot = slots[(intent.n + n) % len(slots)]
        attempt = Attempt(
            f"topo-{intent.n}-{n}",
            {
                "property_id": prop,
                "sor_code": SOR[trade],
                "description": f"Socket sparks in the kitchen ({intent.n})",
                "contact": {"phone": f"07700 900{intent.n:03d}"},
                "slot_token": slot["slot_token"],
            },
        )
        intent.attempts.append(attempt)
        await _post(c, topo, attempt, deadline)
        if attempt.outcome != "slot_taken":
            return


def _pending_soon(db_url: str) -> int:
    """Outbox items due within a minute (the late second compensation, 5 minutes on, is not)."""
    from datetime import timedelta

    engine = create_engine(sync_url(db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(OutboxItem.id).where(
                    OutboxItem.state == "pending",
                    OutboxItem.next_attempt_at < now() + timedelta(seconds=60),
                )
            ).all()
        return len(rows)
    finally:
        engine.dispose()


def _rows(db_url: str) -> tuple[dict[str, str], dict[str, int]]:
    from sqlalchemy import func

    engine = create_engine(sync_url(db_url))
    try:
        with engine.connect() as conn:
            repairs = dict(conn.execute(select(Repair.reference, Repair.status)).all())
            states = dict(
                conn.execute(
                    select(OutboxItem.state, func.count()).group_by(OutboxItem.state)
                ).all()
            )
        return {str(k): str(v) for k, v in repairs.items()}, {
            str(k): int(v) for k, v in states.items()
        }
    finally:
        engine.dispose()


async def _health_check(c: httpx.AsyncClient, replica: ServerProcess, check: str) -> dict[str, Any]:
    r = await c.get(f"{replica.url}/health")  # open to all
    entry: dict[str, Any] = r.json()["checks"][check][0]
    return entry


async def _within(seconds: float, ok: Any) -> float:
    """Seconds until ``await ok()`` is true, failing past ``seconds`` (a bound, not a timing)."""
    start = time.monotonic()
    while not await ok():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.25)
    return time.monotonic() - start


# -- the scenario --------------------------------------------------------------------------------
async def _scenario(topo: Topology, revokable: str, slow: str) -> None:
    headers = {"Authorization": f"Bearer {topo.admin_key}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as c:
        # 1. the housing system of "late" was down at start: it serves once it is up
        for replica in topo.replicas:
            entry = await _health_check(c, replica, "late:uh")
            assert entry["status"] == "fail" and entry["state"] == "retrying", entry
        await asyncio.to_thread(topo.uh.start)

        async def late_serves_everywhere() -> bool:
            codes = [
                (
                    await c.get(
                        f"{r.url}/v1/councils/late/addresses", params={"postcode": "LN1 1AA"}
                    )
                ).status_code
                for r in topo.replicas
            ]
            return codes == [200, 200, 200]

        await _within(60, late_serves_everywhere)

        # 2. a cursor from one replica is followed on another
        params: dict[str, str | int] = {
            "property_id": PROPERTIES[0],
            "sor_code": SOR["electrical"],
            "page_size": 3,
        }
        page1 = await c.get(
            f"{topo.replicas[0].url}/v1/councils/lincoln/appointments", params=params
        )
        assert page1.status_code == 200, page1.text
        cursor = page1.json()["next_cursor"]
        assert cursor
        page2 = await c.get(
            f"{topo.replicas[1].url}/v1/councils/lincoln/appointments",
            params={**params, "cursor": cursor},
        )
        assert page2.status_code == 200, page2.text
        last = page1.json()["slots"][-1]["start"]
        assert page2.json()["slots"] and page2.json()["slots"][0]["start"] >= last

        # 3. bookings spread over the replicas; replica 1 killed mid-run and started again
        intents = [Intent(n) for n in range(INTENTS)]
        queue: asyncio.Queue[Intent] = asyncio.Queue()
        for i in intents:
            queue.put_nowait(i)
        finished = [0]
        halfway = asyncio.Event()
        deadline = time.monotonic() + 60

        async def caller() -> None:
            while not queue.empty():
                intent = queue.get_nowait()
                await _intent(c, topo, intent, deadline)
                finished[0] += 1
                if finished[0] == KILL_AFTER:
                    halfway.set()

        async def killer() -> None:
            await halfway.wait()
            topo.replicas[1].kill()  # SIGKILL, with requests in flight
            await asyncio.sleep(1.0)
            await asyncio.to_thread(topo.replicas[1].start)

        await asyncio.gather(killer(), *(caller() for _ in range(CALLERS)))
        assert topo.replicas[1].running
        answers = [ans for i in intents for a in i.attempts for ans in a.answers]
        # it died under load: calls to it failed (a listing or a booking, whichever the
        # round robin sent there while it was down)
        assert topo.connection_errors, answers
        # whoever never got an answer retries the same key until answered (a crash in the
        # middle of a booking is settled by the reconciler, then the stored answer is given)
        unknown = [i.attempts[-1] for i in intents if i.attempts[-1].outcome == "unknown"]
        final = time.monotonic() + 60
        await asyncio.gather(*(_post(c, topo, a, final) for a in unknown))
        assert all(i.attempts[-1].outcome != "unknown" for i in intents), [
            i.attempts[-1].answers for i in intents
        ]

        async def outbox_settled() -> bool:
            return await asyncio.to_thread(_pending_soon, topo.db_url) == 0

        await _within(90, outbox_settled)
        repairs, outbox = await asyncio.to_thread(_rows, topo.db_url)
        drs = (await c.get(f"{topo.drs.url}/_sim/state")).json()["orders_by_reference"]
        booked = {ref for ref, status in repairs.items() if status == "booked"}
        scheduled = {ref for ref, o in drs.items() if o.get("start")}
        confirmed = [ref for i in intents for ref in i.confirmed]
        assert len(confirmed) >= INTENTS - 2, [a.answers for i in intents for a in i.attempts]
        assert [i.n for i in intents if len(i.confirmed) > 1] == []  # booked twice: none
        assert set(confirmed) - booked == set()  # lost in the gateway: none
        assert set(confirmed) - scheduled == set()  # lost at the scheduler: none
        assert set(drs) - booked == set()  # orphaned at the scheduler: none
        assert booked - set(confirmed) == set()  # booked, never confirmed to a caller: none
        assert outbox.get("dead", 0) == 0

        # 4. a revoked key is refused by every replica within 15 s
        rk = {"Authorization": f"Bearer {revokable}"}
        for r in topo.replicas:
            ok = await c.get(
                f"{r.url}/v1/councils/lincoln/addresses", params={"postcode": "LN1 1AA"}, headers=rk
            )
            assert ok.status_code == 200
        await _revoke(topo.db_url, revokable)

        async def refused_everywhere() -> bool:
            codes = [
                (
                    await c.get(
                        f"{r.url}/v1/councils/lincoln/addresses",
                        params={"postcode": "LN1 1AA"},
                        headers=rk,
                    )
                ).status_code
                for r in topo.replicas
            ]
            return codes == [401, 401, 401]

        await _within(15, refused_everywhere)

        # 5. a key's allowance (100 a minute) holds over the three replicas together
        if time.time() % 60 > 40:  # the burst must fall within one calendar minute
            await asyncio.sleep(61 - time.time() % 60)
        sk = {"Authorization": f"Bearer {slow}"}
        sent_in = int(time.time() // 60)

        async def one() -> int:
            replica = topo.next()
            r = await c.get(
                f"{replica.url}/v1/councils/lincoln/addresses",
                params={"postcode": "LN1 1AA"},
                headers=sk,
            )
            return r.status_code

        codes: list[int] = []
        for _ in range(15):
            codes += await asyncio.gather(*(one() for _ in range(10)))
        assert int(time.time() // 60) == sent_in, "the burst crossed a minute; run again"
        accepted = codes.count(200)
        assert 90 <= accepted <= 100, (accepted, codes.count(429))
        assert set(codes) == {200, 429}

        # 6. the scheduler goes down: every replica's /health shows it failing within 60 s
        topo.drs.kill()

        async def drs_failing_everywhere() -> bool:
            entries = [await _health_check(c, r, "lincoln:drs") for r in topo.replicas]
            return all(e["status"] == "fail" for e in entries)

        await _within(60, drs_failing_everywhere)
        page = (await c.get(f"{topo.replicas[0].url}/health")).text
        entry = await _health_check(c, topo.replicas[0], "lincoln:drs")
        assert entry["output"] == "backend-unavailable" and entry["probe"]["result"] == "fail"
        assert str(topo.drs.port) not in page and "DRSService" not in page
        metrics = (await c.get(f"{topo.replicas[0].url}/metrics")).text
        assert 'gateway_adaptor_probe_up{adaptor="drs",council="lincoln"} 0.0' in metrics
        assert 'gateway_bookings_total{council="lincoln",result="booked"}' in metrics


def test_replicas_and_a_worker_on_postgres(topology: tuple[Topology, str, str]) -> None:
    topo, revokable, slow = topology
    asyncio.run(_scenario(topo, revokable, slow))

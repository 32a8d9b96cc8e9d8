"""Fault campaign: bookings through a real gateway process in front of the three simulators
(Civica UH, Kirona DRS, Totalmobile) while faults are injected at random, then a count of
what callers were told against what the gateway, the schedulers and the HMS hold.

    .venv/bin/python -m bench.fault_campaign [--bookings 1000] [--seed 1] [--concurrency 8]

Faults (each kind the issue lists): timeouts (the vendor answers after the adaptor gave up,
having done the work), HTTP 500s / SOAP faults, connections dropped after the vendor committed,
DRS session expiry, Totalmobile token expiry, kill -9 and restart of a simulator on the same
port (simulators keep their state in a file, as a real system keeps its database) and kill -9
and restart of the gateway.

Callers behave like a front-end: one Idempotency-Key per booking attempt, retried with the same
key after a 5xx or a connection error (honouring Retry-After, bounded), a new slot and a new key
after 409 slot-unavailable, the same key later after 409 "still being processed". After the
faults stop, every caller whose outcome is still unknown retries its key once more until it
gets an answer (as the crash test's residents do).

Then: lost = confirmed to a caller but not booked in the scheduler (or no works order in the
HMS); duplicated = one booking intent confirmed under two references, or two vendor orders /
works orders for one reference; orphaned = a scheduler order or live works order whose
reference is not a booked repair, or a booked repair no caller was told about. Exit status 1
if any of the three is not 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.simulators import free_port

ROOT = Path(__file__).resolve().parents[1]
SOR_FILE = ROOT / "mappings" / "examples" / "demo-sor.csv"
COUNCIL = "lincoln"
POSTCODES = ["LN1 1AA", "LN2 4BB", "LN6 0DD", "NG1 3FN", "LN5 7CC"]
# SoR code per trade; plumbing goes to Totalmobile, the other trades to DRS (rules by trade).
JOBS = {"plumbing": "N630945", "electrical": "N858111", "carpentry": "N373049"}
SECRETS = {"UH_PASSWORD": "secret", "DRS_PASSWORD": "drs-secret", "TM_SECRET": "s3cret"}
VENDOR_TIMEOUT = 2  # seconds the gateway waits for each vendor call
LATE = 3.5  # a "timeout" fault answers (having done the work) after this many seconds


# -- processes -------------------------------------------------------------------------------
class Proc:
    """A server process on a fixed loopback port that can be killed (-9) and started again."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        ready_path: str,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name, self.argv, self.port, self.ready_path = name, argv, port, ready_path
        self.log, self.env = log, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", *self.argv, "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{tail}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    async def restart(self) -> None:
        self.kill()
        self.restarts += 1
        await asyncio.to_thread(self.start)


def council_config(uh: str, drs: str, tm: str) -> dict[str, Any]:
    return {
        "name": "City of Lincoln (fault campaign)",
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
                    "timeout_seconds": VENDOR_TIMEOUT,
                },
            },
            "drs": {
                "type": "kirona_drs",
                "options": {
                    "wsdl": f"{drs}/DRSService?wsdl",
                    "endpoint": f"{drs}/DRSService",
                    "login": "gateway",
                    "password": "${DRS_PASSWORD}",
                    "contract": "RESPONSIVE",
                    "user_id": "REPAIRSGW",
                    "timeout_seconds": VENDOR_TIMEOUT,
                    "cache_seconds": 5,
                },
            },
            "tm": {
                "type": "totalmobile",
                "options": {
                    "base_url": tm,
                    "client_id": "repairs-gateway",
                    "client_secret": "${TM_SECRET}",
                    "world": "housing-repairs",
                    "timeout_seconds": VENDOR_TIMEOUT,
                },
            },
        },
        "routes": {
            "addresses": "uh",
            "appointments": {"default": "drs", "rules": [{"use": "tm", "trade": ["plumbing"]}]},
            "works_orders": "uh",
        },
        "page_size": 20,
    }


@dataclass
class Stack:
    workdir: Path
    uh: Proc
    drs: Proc
    tm: Proc
    gateway: Proc
    key: str

    @property
    def sims(self) -> list[Proc]:
        return [self.uh, self.drs, self.tm]

    @property
    def db_path(self) -> Path:
        return self.workdir / "data" / "gateway.db"

    @property
    def base(self) -> str:
        return f"{self.gateway.url}/v1/councils/{COUNCIL}"


def gateway_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        **SECRETS,
        "GATEWAY_DATA_DIR": str(workdir / "data"),
        "GATEWAY_SECRET_KEY": "fault-campaign",
        # the reconciler must not judge a booking whose request may still run (budget < it)
        "GATEWAY_REQUEST_BUDGET_SECONDS": "12",
        "GATEWAY_RECONCILE_AFTER_SECONDS": "15",
        "GATEWAY_BREAKER_COOLDOWN_SECONDS": "3",  # a campaign, not a council: probe soon
        "GATEWAY_OUTBOX_POLL_SECONDS": "0.2",
        "GATEWAY_LOG_LEVEL": "warning",
        **(extra or {}),
    }
    if "DATABASE_URL" not in (extra or {}):
        env.pop("DATABASE_URL", None)
    return env


def make_key(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", "create", "campaign", "--council", COUNCIL]
        + ["--role", "admin", "--rate-per-minute", "1000000"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


@contextmanager
def running_stack(
    workdir: Path,
    *,
    drs_args: list[str] | None = None,
    uh_args: list[str] | None = None,
    tm_args: list[str] | None = None,
    capacity: int = 12,
    persist: bool = True,
    gateway_extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Simulators and a gateway process on loopback, all stopped on exit."""
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)

    def state(name: str) -> list[str]:
        return ["--state-file", str(workdir / f"{name}.state")] if persist else []

    uh = Proc(
        "uh",
        ["-m", "adaptors.civica_uh.simulator", *state("uh"), *(uh_args or [])],
        free_port(),
        "/_sim/health",
        logs / "uh.log",
    )
    drs = Proc(
        "drs",
        ["-m", "adaptors.kirona_drs.simulator", "--capacity", str(capacity), *state("drs")]
        + (drs_args or ["--availability-latency", "0.05"]),
        free_port(),
        "/_sim/state",
        logs / "drs.log",
    )
    tm = Proc(
        "tm",
        ["-m", "adaptors.totalmobile.simulator", "--capacity", str(capacity), *state("tm")]
        + (tm_args or []),
        free_port(),
        "/_sim/state",
        logs / "tm.log",
    )
    started: list[Proc] = []
    try:
        for p in (uh, drs, tm):
            p.start()
            started.append(p)
        config = workdir / "config"
        config.mkdir(exist_ok=True)
        (config / f"{COUNCIL}.yaml").write_text(
            yaml.safe_dump(council_config(uh.url, drs.url, tm.url), sort_keys=False)
        )
        shutil.copy(SOR_FILE, config / "sor.csv")
        env = gateway_env(workdir, gateway_extra_env)
        key = make_key(env)
        gw = Proc(
            "gateway",
            ["-m", "gateway.cli", "serve", "--config-dir", str(config)],
            free_port(),
            "/health",
            logs / "gateway.log",
            env,
        )
        gw.start()
        started.append(gw)
        yield Stack(workdir, uh, drs, tm, gw, key)
    finally:
        for p in reversed(started):
            p.stop()


# -- callers ---------------------------------------------------------------------------------
@dataclass
class Attempt:
    key: str
    body: dict[str, Any]
    outcome: str = "unknown"  # confirmed | slot_taken | refused | unknown
    reference: str | None = None
    statuses: list[str] = field(default_factory=list)


@dataclass
class Intent:
    index: int
    trade: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def confirmed(self) -> list[str]:
        return [a.reference for a in self.attempts if a.outcome == "confirmed" and a.reference]


@dataclass
class Tally:
    answers: Counter[str] = field(default_factory=Counter)

    def note(self, what: str) -> None:
        self.answers[what] += 1


def _retry_after(r: httpx.Response, cap: float) -> float:
    try:
        return min(cap, max(0.2, float(r.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


async def get_slots(
    c: httpx.AsyncClient, base: str, prop: str, sor: str, tally: Tally, deadline: float
) -> list[dict[str, Any]]:
    for _ in range(30):
        if time.monotonic() > deadline:
            break
        try:
            r = await c.get(
                f"{base}/appointments",
                params={"property_id": prop, "sor_code": sor, "page_size": 20},
            )
        except httpx.HTTPError as exc:
            tally.note(f"appointments {type(exc).__name__}")
            await asyncio.sleep(random.uniform(0.3, 1.0))
            continue
        tally.note(f"appointments {r.status_code}")
        if r.status_code == 200:
            return list(r.json()["slots"])
        await asyncio.sleep(_retry_after(r, 5) if r.status_code >= 500 else 1.0)
    return []


async def post_until_answered(
    c: httpx.AsyncClient,
    base: str,
    attempt: Attempt,
    tally: Tally,
    *,
    tries: int,
    wait_cap: float,
    deadline: float,
) -> None:
    """Send the booking; retry the same key after a 5xx, a connection error or 409 in-progress."""
    for _ in range(tries):
        if time.monotonic() > deadline:
            return
        try:
            r = await c.post(
                f"{base}/repairs", json=attempt.body, headers={"Idempotency-Key": attempt.key}
            )
        except httpx.HTTPError as exc:
            attempt.statuses.append(type(exc).__name__)
            tally.note(f"book {type(exc).__name__}")
            await asyncio.sleep(random.uniform(0.5, 1.5))
            continue
        slug = ""
        if r.headers.get("content-type", "").startswith("application/problem+json"):
            slug = str(r.json().get("type", "")).rsplit("/", 1)[-1]
        attempt.statuses.append(f"{r.status_code} {slug}".strip())
        tally.note(f"book {r.status_code} {slug}".strip())
        if r.status_code == 201:
            attempt.outcome, attempt.reference = "confirmed", str(r.json()["reference"])
            return
        if r.status_code == 409 and slug == "slot-unavailable":
            attempt.outcome = "slot_taken"
            return
        if r.status_code == 409 or r.status_code >= 500 or r.status_code == 429:
            await asyncio.sleep(_retry_after(r, wait_cap) + random.uniform(0, 0.5))
            continue
        attempt.outcome = "refused"  # 4xx: the caller would show the error
        return


async def run_intent(
    c: httpx.AsyncClient,
    stack: Stack,
    intent: Intent,
    props: list[str],
    rng: random.Random,
    tally: Tally,
    deadline: float,
) -> None:
    prop = rng.choice(props)
    sor = JOBS[intent.trade]
    for n in range(6):  # a new slot (and key) after each "slot taken"
        slots = await get_slots(c, stack.base, prop, sor, tally, deadline)
        if not slots:
            return
        slot = rng.choice(slots[:10])
        attempt = Attempt(
            key=f"intent-{intent.index}-{n}",
            body={
                "property_id": prop,
                "sor_code": sor,
                "description": f"campaign booking {intent.index}",
                "contact": {"phone": "07700 900123"},
                "slot_token": slot["slot_token"],
            },
        )
        intent.attempts.append(attempt)
        await post_until_answered(
            c, stack.base, attempt, tally, tries=6, wait_cap=8, deadline=deadline
        )
        if attempt.outcome != "slot_taken":
            return


# -- faults ----------------------------------------------------------------------------------
FAULT_KINDS = [
    "uh_timeout",
    "uh_http500",
    "uh_drop_after_commit",
    "drs_timeout",
    "drs_http500",
    "drs_status_error",
    "drs_drop_after_commit",
    "drs_session_expiry",
    "tm_timeout",
    "tm_http500",
    "tm_drop_after_commit",
    "tm_token_expiry",
]


async def inject(admin: httpx.AsyncClient, stack: Stack, kind: str, rng: random.Random) -> None:
    times = rng.randint(1, 3)
    uh, drs, tm = stack.uh.url, stack.drs.url, stack.tm.url
    uh_writes = ["CreateRepairWithOrder", "GetRepairRequestByReference", "GetWorksOrdersByRequest"]
    drs_ops = ["createOrder", "scheduleBooking", "selectOrder", "deleteOrder"]
    tm_ops = ["create_job", "booking", "get_job", "delete_job"]
    if kind == "uh_timeout":
        body: dict[str, Any] = {"mode": "timeout", "timeout_seconds": LATE, "times": times}
        body["operations"] = [rng.choice(uh_writes)]
        await admin.post(f"{uh}/_sim/faults", json=body)
    elif kind == "uh_http500":
        await admin.post(f"{uh}/_sim/faults", json={"mode": "http500", "times": times})
    elif kind == "uh_drop_after_commit":
        body = {"mode": "drop_after", "operations": ["CreateRepairWithOrder"], "times": times}
        await admin.post(f"{uh}/_sim/faults", json=body)
    elif kind.startswith("drs_"):
        op = rng.choice(drs_ops)
        drs_faults: dict[str, dict[str, Any]] = {
            "drs_timeout": {"op": op, "kind": "timeout", "seconds": LATE},
            "drs_http500": {"op": op, "kind": "fault"},
            "drs_status_error": {"op": op, "kind": "status", "status": "error"},
            "drs_drop_after_commit": {"op": rng.choice(drs_ops[:2]), "kind": "lost"},
            "drs_session_expiry": {"op": "*", "kind": "session_expired"},
        }
        f = drs_faults[kind]
        await admin.post(f"{drs}/_sim/faults", json={"faults": [{**f, "times": times}]})
    elif kind == "tm_token_expiry":
        await admin.post(f"{tm}/_sim/faults", json={"expire_tokens": True})
    elif kind.startswith("tm_"):
        op = rng.choice(tm_ops)
        tm_rules: dict[str, dict[str, Any]] = {
            "tm_timeout": {"op": op, "action": "delay", "delay_ms": int(LATE * 1000)},
            "tm_http500": {"op": op, "action": "error", "status": 500},
            "tm_drop_after_commit": {"op": rng.choice(tm_ops[:2]), "action": "lost_reply"},
        }
        rule = tm_rules[kind]
        await admin.post(f"{tm}/_sim/faults", json={"rules": [{**rule, "times": times}]})


async def heal(admin: httpx.AsyncClient, stack: Stack) -> None:
    for _ in range(20):
        try:
            await admin.post(f"{stack.uh.url}/_sim/faults", json={})
            await admin.post(f"{stack.drs.url}/_sim/faults", json={"faults": []})
            await admin.post(f"{stack.tm.url}/_sim/faults", json={"clear": True})
            return
        except httpx.HTTPError:
            await asyncio.sleep(0.5)


async def fault_loop(
    stack: Stack,
    rng: random.Random,
    done: asyncio.Event,
    counts: Counter[str],
    progress: list[int],
    total: int,
    *,
    interval: tuple[float, float],
    sim_restarts: int,
    gateway_kills: int,
) -> None:
    """Inject a random fault every few seconds; restart simulators and kill the gateway at
    evenly spread points of progress (so every run has them, however fast it goes)."""
    sim_marks = [total * (i + 1) // (sim_restarts + 1) for i in range(sim_restarts)]
    gw_marks = [total * (2 * i + 1) // (2 * gateway_kills) for i in range(gateway_kills)]
    async with httpx.AsyncClient(timeout=5) as admin:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), rng.uniform(*interval))
                break
            except TimeoutError:
                pass
            finished = progress[0]
            try:
                if gw_marks and finished >= gw_marks[0]:
                    gw_marks.pop(0)
                    await stack.gateway.restart()
                    counts["gateway_kill_9_restart"] += 1
                elif sim_marks and finished >= sim_marks[0]:
                    sim_marks.pop(0)
                    victim = rng.choice(stack.sims)
                    victim.kill()
                    await asyncio.sleep(rng.uniform(0.2, 1.5))
                    await victim.restart()
                    counts[f"{victim.name}_kill_9_restart"] += 1
                else:
                    kind = rng.choice(FAULT_KINDS)
                    await inject(admin, stack, kind, rng)
                    counts[kind] += 1
            except (httpx.HTTPError, RuntimeError) as exc:
                counts[f"injector_error {type(exc).__name__}"] += 1


# -- the count -------------------------------------------------------------------------------
def bring_outbox_forward(db_path: Path, beyond: float = 20.0) -> None:
    """Make outbox retries backed off more than ``beyond`` seconds due now: time passing, not
    a change of behaviour (the backoff cap is 10 minutes; the campaign does not wait that)."""
    from datetime import timedelta

    from sqlalchemy import create_engine, update

    from gateway.storage.models import OutboxItem
    from gateway.timeutil import now

    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.begin() as conn:
            conn.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.state == "pending",
                    OutboxItem.kind != "booking.reconcile",
                    OutboxItem.next_attempt_at > now() + timedelta(seconds=beyond),
                )
                .values(next_attempt_at=now())
            )
    finally:
        engine.dispose()


def outbox_counts(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path, timeout=30) as db:
        rows = db.execute("SELECT kind, state, count(*) FROM outbox GROUP BY kind, state")
        return {f"{k}:{s}": n for k, s, n in rows.fetchall()}


async def drain(stack: Stack, limit: float) -> dict[str, Any]:
    start = time.monotonic()
    nudges = 0
    while time.monotonic() - start < limit:
        counts = await asyncio.to_thread(outbox_counts, stack.db_path)
        if not any(k.endswith(":pending") for k in counts):
            return {"seconds": round(time.monotonic() - start, 1), "nudges": nudges}
        await asyncio.sleep(5)
        await asyncio.to_thread(bring_outbox_forward, stack.db_path)
        nudges += 1
    return {"seconds": round(time.monotonic() - start, 1), "nudges": nudges, "timed_out": True}


def replay_dead(stack: Stack) -> str:
    env = gateway_env(stack.workdir)
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "outbox", "replay"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return (out.stdout + out.stderr).strip()[-300:]


def dead_items(db_path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db_path, timeout=30) as db:
        rows = db.execute(
            "SELECT id, kind, payload, attempts, last_error FROM outbox WHERE state = 'dead'"
        ).fetchall()
    return [
        {"id": i, "kind": k, "payload": json.loads(p), "attempts": a, "error": e}
        for i, k, p, a, e in rows
    ]


def reconcile_counts(
    intents: list[Intent], db_path: Path, drs: dict[str, Any], tm: dict[str, Any], uh: Any
) -> dict[str, Any]:
    with sqlite3.connect(db_path, timeout=30) as db:
        repairs = {
            ref: (status, scheduler, wo)
            for ref, status, scheduler, wo in db.execute(
                "SELECT reference, status, scheduler, works_order_ref FROM repairs"
            ).fetchall()
        }
    booked = {r for r, (s, _, _) in repairs.items() if s == "booked"}
    statuses = Counter(s for s, _, _ in repairs.values())
    confirmed = {ref for i in intents for ref in i.confirmed}
    drs_orders = drs["orders_by_reference"]
    drs_booked = {r for r, o in drs_orders.items() if o.get("start")}
    tm_jobs, tm_booked = set(tm["references"]), set(tm["booked_references"])
    works: Counter[str] = Counter()
    live_works: Counter[str] = Counter()
    for o in uh["orders"]:
        works[o["RepairRequestReference"]] += 1
        if o["StatusCode"] != "700":
            live_works[o["RepairRequestReference"]] += 1
    in_scheduler = drs_booked | tm_booked
    lost = {
        "confirmed_not_in_scheduler": sorted(confirmed - in_scheduler),
        "confirmed_not_booked_in_gateway": sorted(confirmed - booked),
        "confirmed_without_works_order": sorted(r for r in confirmed if live_works[r] == 0),
    }
    duplicated = {
        "intents_confirmed_twice": [i.index for i in intents if len(set(i.confirmed)) > 1],
        "reference_in_both_schedulers": sorted(set(drs_orders) & tm_jobs),
        "works_orders_per_reference_gt_1": sorted(r for r, n in works.items() if n > 1),
    }
    orphaned = {
        "drs_orders_not_booked": sorted(set(drs_orders) - booked),
        "tm_jobs_not_booked": sorted(tm_jobs - booked),
        "booked_but_unscheduled": sorted(booked - in_scheduler),
        "live_works_orders_not_booked": sorted(r for r in live_works if r not in booked),
        "booked_never_confirmed_to_caller": sorted(booked - confirmed),
    }
    unresolved = [i.index for i in intents if i.attempts and i.attempts[-1].outcome == "unknown"]
    return {
        "intents": len(intents),
        "confirmed_to_callers": len(confirmed),
        "slot_taken_answers": sum(a.outcome == "slot_taken" for i in intents for a in i.attempts),
        "refused_answers": sum(a.outcome == "refused" for i in intents for a in i.attempts),
        "intents_unresolved": unresolved,
        "intents_without_slots": sum(1 for i in intents if not i.attempts),
        "intents_not_confirmed": [
            {"intent": i.index, "answers": [a.statuses for a in i.attempts]}
            for i in intents
            if not i.confirmed
        ],
        "gateway_repairs": dict(statuses),
        "drs_orders": len(drs_orders),
        "drs_scheduled": len(drs_booked),
        "tm_jobs": len(tm_jobs),
        "tm_booked": len(tm_booked),
        "uh_works_orders": sum(works.values()),
        "uh_live_works_orders": sum(live_works.values()),
        "lost": lost,
        "duplicated": duplicated,
        "orphaned": orphaned,
        "lost_n": sum(len(v) for v in lost.values()),
        "duplicated_n": sum(len(v) for v in duplicated.values()),
        "orphaned_n": sum(len(v) for v in orphaned.values()),
    }


# -- the campaign ----------------------------------------------------------------------------
@dataclass
class CampaignConfig:
    bookings: int = 1000
    seed: int = 1
    concurrency: int = 8
    fault_interval: tuple[float, float] = (0.2, 0.8)
    sim_restarts: int = 6
    gateway_kills: int = 3
    time_limit: float = 3600.0
    drain_limit: float = 600.0


async def campaign(cfg: CampaignConfig, workdir: Path) -> dict[str, Any]:
    rng = random.Random(cfg.seed)
    random.seed(cfg.seed)
    started = time.monotonic()
    with running_stack(workdir) as stack:
        headers = {"Authorization": f"Bearer {stack.key}"}
        async with httpx.AsyncClient(headers=headers, timeout=40) as c:
            props: list[str] = []
            for pc in POSTCODES:
                r = await c.get(f"{stack.base}/addresses", params={"postcode": pc})
                r.raise_for_status()
                props += [
                    a["id"]
                    for a in r.json()["addresses"]
                    if a["online_repairs"] and a["kind"] == "dwelling"
                ]
            trades = sorted(JOBS)
            intents = [Intent(i, trades[i % len(trades)]) for i in range(cfg.bookings)]
            tally = Tally()
            faults: Counter[str] = Counter()
            progress = [0]
            done = asyncio.Event()
            deadline = started + cfg.time_limit
            queue: asyncio.Queue[Intent] = asyncio.Queue()
            for intent in intents:
                queue.put_nowait(intent)

            async def worker(n: int) -> None:
                wrng = random.Random(cfg.seed * 1000 + n)
                while not queue.empty() and time.monotonic() < deadline:
                    intent = queue.get_nowait()
                    await run_intent(c, stack, intent, props, wrng, tally, deadline)
                    progress[0] += 1

            injector = asyncio.create_task(
                fault_loop(
                    stack,
                    rng,
                    done,
                    faults,
                    progress,
                    cfg.bookings,
                    interval=cfg.fault_interval,
                    sim_restarts=cfg.sim_restarts,
                    gateway_kills=cfg.gateway_kills,
                )
            )
            await asyncio.gather(*(worker(n) for n in range(cfg.concurrency)))
            done.set()
            await injector
            drive_seconds = time.monotonic() - started
            async with httpx.AsyncClient(timeout=5) as admin:
                await heal(admin, stack)
            for p in [*stack.sims, stack.gateway]:  # anything the injector left down
                if p.proc is None or p.proc.poll() is not None:
                    await asyncio.to_thread(p.start)
            # Every caller who never got an answer retries the same key until answered.
            pending = [
                i.attempts[-1]
                for i in intents
                if i.attempts and i.attempts[-1].outcome == "unknown"
            ]
            retried = len(pending)
            final_deadline = time.monotonic() + 300
            sem = asyncio.Semaphore(cfg.concurrency)

            async def final(a: Attempt) -> None:
                async with sem:
                    await post_until_answered(
                        c, stack.base, a, tally, tries=40, wait_cap=10, deadline=final_deadline
                    )

            await asyncio.gather(*(final(a) for a in pending))
            drained = await drain(stack, cfg.drain_limit)
            dead = await asyncio.to_thread(dead_items, stack.db_path)
            replayed = ""
            if dead:
                replayed = await asyncio.to_thread(replay_dead, stack)
                drained["after_replay"] = await drain(stack, cfg.drain_limit)
            async with httpx.AsyncClient(timeout=30) as admin:
                drs = (await admin.get(f"{stack.drs.url}/_sim/state")).json()
                tm = (await admin.get(f"{stack.tm.url}/_sim/state")).json()
                uh = (await admin.get(f"{stack.uh.url}/_sim/state")).json()
            counts = reconcile_counts(intents, stack.db_path, drs, tm, uh)
            outbox = await asyncio.to_thread(outbox_counts, stack.db_path)
    return {
        "config": asdict(cfg),
        "drive_seconds": round(drive_seconds, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "faults_injected": dict(sorted(faults.items())),
        "answers": dict(sorted(tally.answers.items())),
        "final_retries": retried,
        "drain": drained,
        "dead_before_replay": dead,
        "replay": replayed,
        "outbox": outbox,
        **counts,
    }


def table(report: dict[str, Any]) -> str:
    rows = [
        ("booking intents", report["intents"]),
        ("confirmed to callers (201)", report["confirmed_to_callers"]),
        ("gateway repairs by status", report["gateway_repairs"]),
        ("DRS orders / scheduled", f"{report['drs_orders']} / {report['drs_scheduled']}"),
        ("Totalmobile jobs / booked", f"{report['tm_jobs']} / {report['tm_booked']}"),
        (
            "UH works orders / live",
            f"{report['uh_works_orders']} / {report['uh_live_works_orders']}",
        ),
        ("intents unresolved", len(report["intents_unresolved"])),
        ("LOST", report["lost_n"]),
        ("DUPLICATED", report["duplicated_n"]),
        ("ORPHANED", report["orphaned_n"]),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def ok(report: dict[str, Any]) -> bool:
    return report["lost_n"] == 0 and report["duplicated_n"] == 0 and report["orphaned_n"] == 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fault_campaign")
    p.add_argument("--bookings", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--sim-restarts", type=int, default=6)
    p.add_argument("--gateway-kills", type=int, default=3)
    p.add_argument("--time-limit", type=float, default=3600.0, help="seconds for the drive")
    p.add_argument("--workdir", type=Path, default=None, help="keep logs and databases here")
    p.add_argument("--json", type=Path, default=None, help="write the full report here")
    args = p.parse_args(argv)
    cfg = CampaignConfig(
        bookings=args.bookings,
        seed=args.seed,
        concurrency=args.concurrency,
        sim_restarts=args.sim_restarts,
        gateway_kills=args.gateway_kills,
        time_limit=args.time_limit,
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rgw-campaign-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(campaign(cfg, workdir))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    print(
        json.dumps(
            {k: v for k, v in report.items() if k not in ("lost", "duplicated", "orphaned")},
            indent=1,
            default=str,
        )
    )  # noqa: T201
    print("lost:", json.dumps(report["lost"]))  # noqa: T201
    print("duplicated:", json.dumps(report["duplicated"]))  # noqa: T201
    print("orphaned:", json.dumps(report["orphaned"]))  # noqa: T201
    print(table(report))  # noqa: T201
    print(f"workdir: {workdir}")  # noqa: T201
    return 0 if ok(report) else 1


if __name__ == "__main__":
    sys.exit(main())

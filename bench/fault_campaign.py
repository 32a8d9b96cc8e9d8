"""Fault campaign: bookings through a real gateway process in front of the three simulators
(Civica UH, Kirona DRS, Totalmobile) while faults are injected at random, then a count of
what callers were told against what the gateway, the schedulers and the HMS hold.

    .venv/bin/python -m bench.fault_campaign [--bookings 1000] [--seed 1] [--concurrency 8]
        [--db sqlite|postgres] [--gateways N]

``--db postgres`` starts a PostgreSQL server (tests/pg.py) and gives every gateway process its
``DATABASE_URL``; ``--gateways N`` runs N gateway processes on the same database, each on its
own port with its own outbox worker. Callers then send each request to the next process in
turn (a retry of an Idempotency-Key often lands on another process), and each gateway kill -9
picks one of them. Every direct read of the database goes through SQLAlchemy on that URL.

``--topology replicas`` runs the gateway as a council would on Kubernetes (PostgreSQL implied):
``repairs-gateway migrate`` started three times at once, then ``--gateways`` (3 by default)
``serve --no-worker`` replicas, each with its own data directory, and one ``repairs-gateway
worker`` process delivering the outbox; gateway kills pick a replica at random and
``--worker-kills`` (3 by default) kill -9 and restart the worker. The count is the same; a
notification repeated across a *worker* kill is the only repeat explained (replicas deliver
nothing).

``--control-chars SHARE`` (0.1 by default): that share of intents first sends a booking whose
description holds a control character (``\x0b``, ``\x00``, ``\x1b``); each must be refused
422 naming ``description``, before any vendor is called, so it can neither open a breaker nor
leave a repair or a dead works order (checked: no repair stored with a control character).

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

Side effects delivered twice are counted apart ("deliveries"): works orders per reference
(also under duplicated), ``works_order.raise`` items queued twice for one reference, and - with
``--notify``, on by default for PostgreSQL or several gateways - resident SMS recorded by a fake
GOV.UK Notify on loopback: the one outbox effect no vendor de-duplicates by reference, so an
item delivered twice shows there. Notify delivery is at least once by design (a kill -9 between
Notify's answer and the commit repeats a message); a repeat with no gateway kill between the two
sends cannot be explained that way and fails the run, as does a booked repair with no SMS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import make_url

from gateway.storage.database import sync_url
from tests.processes import ServerProcess, migrate_concurrently
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
# A server process on a fixed loopback port that can be killed (-9) and started again; shared
# with the test suite (tests/processes.py), which also runs the replicas topology.
Proc = ServerProcess


def council_config(uh: str, drs: str, tm: str, notify: FakeNotify | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
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
    if notify is not None:
        config["notifications"] = {
            "api_key": notify.api_key,
            "base_url": notify.url,
            "sms_templates": {"booked": notify.template},
        }
    return config


class FakeNotify:
    """GOV.UK Notify on loopback (a thread of this process) that records every message sent,
    with the time it arrived, so a notification delivered twice can be seen."""

    def __init__(self) -> None:
        self.api_key = f"campaign-{uuid.uuid4()}-{uuid.uuid4()}"
        self.template = str(uuid.uuid4())
        self.sent: list[dict[str, Any]] = []
        lock = threading.Lock()
        sent = self.sent

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                n = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                with lock:
                    sent.append(
                        {
                            "at": time.monotonic(),
                            "path": self.path,
                            "reference": body.get("reference"),
                            "template_id": body.get("template_id"),
                        }
                    )
                out = json.dumps({"id": str(uuid.uuid4()), "reference": body.get("reference")})
                self.send_response(201)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out.encode())

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeNotify:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


@dataclass
class Stack:
    workdir: Path
    uh: Proc
    drs: Proc
    tm: Proc
    gateways: list[Proc]
    key: str
    env: dict[str, str]  # the gateway processes' environment (CLI commands use it too)
    db_url: str
    worker: Proc | None = None  # the outbox worker process (topology "replicas")
    gateway_kills: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, name)
    worker_kills: list[tuple[float, str]] = field(default_factory=list)
    _turn: int = 0

    @property
    def deliverers_killed(self) -> list[tuple[float, str]]:
        """Kills of processes that deliver the outbox (a notification repeated across one is
        at least once, by design): the worker's in the replicas topology, else the gateways'."""
        return self.worker_kills if self.worker is not None else self.gateway_kills

    @property
    def sims(self) -> list[Proc]:
        return [self.uh, self.drs, self.tm]

    @property
    def gateway(self) -> Proc:
        return self.gateways[0]

    @property
    def base(self) -> str:
        return f"{self.gateway.url}/v1/councils/{COUNCIL}"

    def next_base(self) -> str:
        """The council's base URL on the next gateway process in turn (round robin)."""
        gw = self.gateways[self._turn % len(self.gateways)]
        self._turn += 1
        return f"{gw.url}/v1/councils/{COUNCIL}"


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
        "GATEWAY_LOG_LEVEL": "info",  # every line is scanned for personal data afterwards
        **(extra or {}),
    }
    if "DATABASE_URL" not in (extra or {}):
        env.pop("DATABASE_URL", None)
    return env


def make_key(env: dict[str, str], config_dir: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", "create", "campaign", "--council", COUNCIL]
        + ["--role", "admin", "--rate-per-minute", "1000000", "--config-dir", str(config_dir)],
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
    gateways: int = 1,
    notify: FakeNotify | None = None,
    topology: str = "single",
) -> Iterator[Stack]:
    """Simulators and ``gateways`` gateway processes (one database) on loopback, all stopped on
    exit. The gateways start one after another, so only the first migrates the schema.

    ``topology="replicas"`` (PostgreSQL only): ``migrate`` three times at once, then
    ``gateways`` ``serve --no-worker`` replicas and one ``worker`` process."""
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
            yaml.safe_dump(council_config(uh.url, drs.url, tm.url, notify), sort_keys=False)
        )
        shutil.copy(SOR_FILE, config / "sor.csv")
        env = gateway_env(workdir, gateway_extra_env)
        db_url = (
            env.get("DATABASE_URL") or f"sqlite:///{(workdir / 'data' / 'gateway.db').resolve()}"
        )
        if topology == "replicas":
            if "DATABASE_URL" not in env:
                raise ValueError("the replicas topology runs on PostgreSQL (--db postgres)")
            for returncode, out in migrate_concurrently(env, 3):
                if returncode != 0:
                    raise RuntimeError(f"migrate failed:\n{out}")
        key = make_key(env, config)
        gws: list[Proc] = []
        if topology == "replicas":
            worker = Proc.worker("worker", config, env, logs)
            worker.start()
            started.append(worker)
            for i in range(gateways):
                data = workdir / f"data-replica{i}"  # each pod has its own
                data.mkdir(exist_ok=True)
                replica_env = {**env, "GATEWAY_DATA_DIR": str(data)}
                gw = Proc.replica(f"replica{i}", config, replica_env, logs)
                gw.start()
                started.append(gw)
                gws.append(gw)
            yield Stack(workdir, uh, drs, tm, gws, key, env, db_url, worker)
            return
        for i in range(gateways):
            name = "gateway" if gateways == 1 else f"gateway{i}"
            gw = Proc(
                name,
                ["-m", "gateway.cli", "serve", "--config-dir", str(config)],
                free_port(),
                "/health",
                logs / f"{name}.log",
                env,
            )
            gw.start()
            started.append(gw)
            gws.append(gw)
        yield Stack(workdir, uh, drs, tm, gws, key, env, db_url)
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
    control: list[str] = field(default_factory=list)  # answers to its control-character booking

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
    c: httpx.AsyncClient, stack: Stack, prop: str, sor: str, tally: Tally, deadline: float
) -> list[dict[str, Any]]:
    for _ in range(30):
        if time.monotonic() > deadline:
            break
        try:
            r = await c.get(
                f"{stack.next_base()}/appointments",
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
    stack: Stack,
    attempt: Attempt,
    tally: Tally,
    *,
    tries: int,
    wait_cap: float,
    deadline: float,
) -> None:
    """Send the booking; retry the same key after a 5xx, a connection error or 409 in-progress.
    Each try goes to the next gateway process in turn (the same one when there is one)."""
    for _ in range(tries):
        if time.monotonic() > deadline:
            return
        try:
            r = await c.post(
                f"{stack.next_base()}/repairs",
                json=attempt.body,
                headers={"Idempotency-Key": attempt.key},
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


CONTROL_CHARACTERS = ("\x0b", "\x00", "\x1b")


async def post_control_character(
    c: httpx.AsyncClient,
    stack: Stack,
    intent: Intent,
    body: dict[str, Any],
    rng: random.Random,
    tally: Tally,
) -> None:
    """A booking like the real one but with a control character in its description: it must
    be refused 422 naming the field, whichever process answers (retried only when no answer
    came: a connection error while a process was being killed)."""
    bad = {**body, "description": body["description"] + rng.choice(CONTROL_CHARACTERS) + "."}
    for _ in range(6):
        try:
            r = await c.post(
                f"{stack.next_base()}/repairs",
                json=bad,
                headers={"Idempotency-Key": f"intent-{intent.index}-control"},
            )
        except httpx.HTTPError as exc:
            intent.control.append(type(exc).__name__)
            await asyncio.sleep(random.uniform(0.3, 1.0))
            continue
        slug, fields = "", ""
        if r.headers.get("content-type", "").startswith("application/problem+json"):
            problem = r.json()
            slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
            fields = ",".join(str(e.get("field")) for e in problem.get("errors") or [])
        answer = f"{r.status_code} {slug} {fields}".strip()
        intent.control.append(answer)
        tally.note(f"control-character booking {answer}")
        return


async def run_intent(
    c: httpx.AsyncClient,
    stack: Stack,
    intent: Intent,
    props: list[str],
    rng: random.Random,
    tally: Tally,
    deadline: float,
    control_share: float = 0.0,
) -> None:
    prop = rng.choice(props)
    sor = JOBS[intent.trade]
    for n in range(6):  # a new slot (and key) after each "slot taken"
        slots = await get_slots(c, stack, prop, sor, tally, deadline)
        if not slots:
            return
        slot = rng.choice(slots[:10])
        attempt = Attempt(
            key=f"intent-{intent.index}-{n}",
            body={
                "property_id": prop,
                "sor_code": sor,
                # personal data a resident would type, with markers the log scan looks for
                "description": f"{PII_DESCRIPTION} {intent.index}",
                "contact": {
                    "name": f"Philippa {PII_SURNAME}-{intent.index}",
                    "phone": f"07700 9{intent.index:05d}",
                    "email": f"pq{intent.index}@{PII_EMAIL_DOMAIN}",
                },
                "slot_token": slot["slot_token"],
            },
        )
        if n == 0 and control_share and rng.random() < control_share:
            await post_control_character(c, stack, intent, attempt.body, rng, tally)
        intent.attempts.append(attempt)
        await post_until_answered(c, stack, attempt, tally, tries=6, wait_cap=8, deadline=deadline)
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
    worker_kills: int = 0,
) -> None:
    """Inject a random fault every few seconds; restart simulators and kill the gateway (and
    the worker process, if there is one) at evenly spread points of progress (so every run has
    them, however fast it goes)."""
    sim_marks = [total * (i + 1) // (sim_restarts + 1) for i in range(sim_restarts)]
    gw_marks = [total * (2 * i + 1) // (2 * gateway_kills) for i in range(gateway_kills)]
    worker_marks = [total * (4 * i + 3) // (4 * worker_kills) for i in range(worker_kills)]
    if stack.worker is None:
        worker_marks = []
    async with httpx.AsyncClient(timeout=5) as admin:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), rng.uniform(*interval))
                break
            except TimeoutError:
                pass
            finished = progress[0]
            try:
                if worker_marks and finished >= worker_marks[0] and stack.worker is not None:
                    worker_marks.pop(0)
                    stack.worker_kills.append((time.monotonic(), stack.worker.name))
                    stack.worker.kill()  # SIGKILL mid-delivery: its claimed items stay locked
                    await asyncio.sleep(rng.uniform(0.2, 2.0))
                    await stack.worker.restart()
                    counts["worker_kill_9_restart"] += 1
                elif gw_marks and finished >= gw_marks[0]:
                    gw_marks.pop(0)
                    # (no draw from rng with one gateway: a one-gateway run stays as it was)
                    gw = rng.choice(stack.gateways) if len(stack.gateways) > 1 else stack.gateway
                    stack.gateway_kills.append((time.monotonic(), gw.name))
                    await gw.restart()
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
@contextmanager
def sync_engine(db_url: str) -> Iterator[Engine]:
    """A short-lived synchronous engine on the gateways' database (SQLite or PostgreSQL)."""
    url = sync_url(db_url)
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"timeout": 30} if sqlite else {})
    try:
        yield engine
    finally:
        engine.dispose()


def bring_outbox_forward(db_url: str, beyond: float = 20.0) -> None:
    """Make outbox retries backed off more than ``beyond`` seconds due now: time passing, not
    a change of behaviour (the backoff cap is 10 minutes; the campaign does not wait that)."""
    from datetime import timedelta

    from sqlalchemy import update

    from gateway.storage.models import OutboxItem
    from repairs_gateway_sdk.timeutil import now

    with sync_engine(db_url) as engine, engine.begin() as conn:
        conn.execute(
            update(OutboxItem)
            .where(
                OutboxItem.state == "pending",
                OutboxItem.kind != "booking.reconcile",
                OutboxItem.next_attempt_at > now() + timedelta(seconds=beyond),
            )
            .values(next_attempt_at=now())
        )


def outbox_counts(db_url: str) -> dict[str, int]:
    from gateway.storage.models import OutboxItem

    q = select(OutboxItem.kind, OutboxItem.state, func.count()).group_by(
        OutboxItem.kind, OutboxItem.state
    )
    with sync_engine(db_url) as engine, engine.connect() as conn:
        return {f"{k}:{s}": int(n) for k, s, n in conn.execute(q).all()}


async def drain(stack: Stack, limit: float) -> dict[str, Any]:
    start = time.monotonic()
    nudges = 0
    while time.monotonic() - start < limit:
        counts = await asyncio.to_thread(outbox_counts, stack.db_url)
        if not any(k.endswith(":pending") for k in counts):
            return {"seconds": round(time.monotonic() - start, 1), "nudges": nudges}
        await asyncio.sleep(5)
        await asyncio.to_thread(bring_outbox_forward, stack.db_url)
        nudges += 1
    return {"seconds": round(time.monotonic() - start, 1), "nudges": nudges, "timed_out": True}


def replay_dead(stack: Stack) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "outbox", "replay"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return (out.stdout + out.stderr).strip()[-300:]


def dead_items(db_url: str) -> list[dict[str, Any]]:
    from gateway.storage.models import OutboxItem

    q = select(
        OutboxItem.id,
        OutboxItem.kind,
        OutboxItem.payload,
        OutboxItem.attempts,
        OutboxItem.last_error,
    ).where(OutboxItem.state == "dead")
    with sync_engine(db_url) as engine, engine.connect() as conn:
        rows = conn.execute(q).all()
    return [{"id": i, "kind": k, "payload": p, "attempts": a, "error": e} for i, k, p, a, e in rows]


def repair_rows(db_url: str) -> dict[str, tuple[str, str | None, str | None]]:
    from gateway.storage.models import Repair

    q = select(Repair.reference, Repair.status, Repair.scheduler, Repair.works_order_ref)
    with sync_engine(db_url) as engine, engine.connect() as conn:
        return {ref: (status, sched, wo) for ref, status, sched, wo in conn.execute(q).all()}


def outbox_items_per_reference(db_url: str, kind: str) -> Counter[str]:
    from gateway.storage.models import OutboxItem

    q = select(OutboxItem.payload).where(OutboxItem.kind == kind)
    with sync_engine(db_url) as engine, engine.connect() as conn:
        return Counter(str((p or {}).get("reference")) for (p,) in conn.execute(q).all())


def delivery_counts(
    booked: set[str],
    works: Counter[str],
    raise_items: Counter[str],
    notify: FakeNotify | None,
    kills: list[tuple[float, str]],
) -> dict[str, Any]:
    """Outbox side effects delivered (or queued) more than once for one reference."""
    out: dict[str, Any] = {
        "works_orders_per_reference_gt_1": sorted(r for r, n in works.items() if n > 1),
        "works_order_raise_items_per_reference_gt_1": sorted(
            r for r, n in raise_items.items() if n > 1
        ),
    }
    if notify is not None:
        times: dict[str, list[float]] = {}
        for m in notify.sent:
            times.setdefault(str(m["reference"]), []).append(float(m["at"]))
        repeated = {r: sorted(t) for r, t in times.items() if len(t) > 1}
        # at least once by design: a kill -9 between Notify's answer and the commit repeats
        across_kill = sorted(
            r for r, t in repeated.items() if any(t[0] <= k <= t[-1] for k, _ in kills)
        )
        out["notifications_sent"] = len(notify.sent)
        out["notifications_repeated_across_gateway_kill"] = across_kill
        out["notifications_repeated_no_kill_between"] = sorted(set(repeated) - set(across_kill))
        out["booked_not_notified"] = sorted(booked - set(times))
        out["notified_not_booked"] = sorted(set(times) - booked)
    return out


def reconcile_counts(
    intents: list[Intent],
    db_url: str,
    drs: dict[str, Any],
    tm: dict[str, Any],
    uh: Any,
    notify: FakeNotify | None = None,
    kills: list[tuple[float, str]] | None = None,
) -> dict[str, Any]:
    repairs = repair_rows(db_url)
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
    raise_items = outbox_items_per_reference(db_url, "works_order.raise")
    deliveries = delivery_counts(booked, works, raise_items, notify, kills or [])
    # every repeat but a notification repeated across a gateway kill (at least once, by design)
    # and every booked repair whose notification never arrived (or arrived for no booking)
    unexplained = [
        k for k in deliveries if k.endswith("_gt_1") or k.endswith("no_kill_between")
    ] + ["booked_not_notified", "notified_not_booked"]
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
        "deliveries": deliveries,
        "deliveries_repeated_n": sum(
            len(v) for k, v in deliveries.items() if "gt_1" in k or "repeated" in k
        ),
        "deliveries_unexplained_n": sum(len(deliveries.get(k, [])) for k in unexplained),
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
    db: str = "sqlite"  # sqlite | postgres
    gateways: int = 1  # gateway processes on the one database
    notify: bool | None = None  # fake Notify recording SMS; None: on for postgres or N > 1
    topology: str = "single"  # single | replicas (serve --no-worker x gateways + a worker)
    worker_kills: int | None = None  # kill -9 of the worker process; None: 3 with replicas
    control_chars: float = 0.1  # share of intents that first send a control-character booking

    @property
    def with_notify(self) -> bool:
        if self.notify is not None:
            return self.notify
        return self.db == "postgres" or self.gateways > 1

    @property
    def worker_kill_count(self) -> int:
        if self.topology != "replicas":
            return 0
        return 3 if self.worker_kills is None else self.worker_kills


@contextmanager
def database_env(db: str) -> Iterator[dict[str, str]]:
    """Extra gateway environment for the database: none for SQLite (the gateways' data folder),
    ``DATABASE_URL`` of a fresh database on a PostgreSQL server started for the run."""
    if db == "sqlite":
        yield {}
        return
    if db != "postgres":
        raise ValueError(f"unknown database {db!r}")
    from tests.pg import create_database, postgres_server

    with postgres_server() as admin:
        yield {"DATABASE_URL": create_database(admin, "campaign")}


async def campaign(cfg: CampaignConfig, workdir: Path) -> dict[str, Any]:
    rng = random.Random(cfg.seed)
    random.seed(cfg.seed)
    started = time.monotonic()
    with ExitStack() as resources:
        extra_env = resources.enter_context(database_env(cfg.db))
        notify = resources.enter_context(FakeNotify()) if cfg.with_notify else None
        stack = resources.enter_context(
            running_stack(
                workdir,
                gateway_extra_env=extra_env or None,
                gateways=cfg.gateways,
                notify=notify,
                topology=cfg.topology,
            )
        )
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
                    await run_intent(
                        c, stack, intent, props, wrng, tally, deadline, cfg.control_chars
                    )
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
                    worker_kills=cfg.worker_kill_count,
                )
            )
            await asyncio.gather(*(worker(n) for n in range(cfg.concurrency)))
            done.set()
            await injector
            drive_seconds = time.monotonic() - started
            async with httpx.AsyncClient(timeout=5) as admin:
                await heal(admin, stack)
            workers = [stack.worker] if stack.worker is not None else []
            for p in [*stack.sims, *stack.gateways, *workers]:  # anything the injector left down
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
                        c, stack, a, tally, tries=40, wait_cap=10, deadline=final_deadline
                    )

            await asyncio.gather(*(final(a) for a in pending))
            drained = await drain(stack, cfg.drain_limit)
            dead = await asyncio.to_thread(dead_items, stack.db_url)
            replayed = ""
            if dead:
                replayed = await asyncio.to_thread(replay_dead, stack)
                drained["after_replay"] = await drain(stack, cfg.drain_limit)
            async with httpx.AsyncClient(timeout=30) as admin:
                drs = (await admin.get(f"{stack.drs.url}/_sim/state")).json()
                tm = (await admin.get(f"{stack.tm.url}/_sim/state")).json()
                uh = (await admin.get(f"{stack.uh.url}/_sim/state")).json()
            counts = await asyncio.to_thread(
                reconcile_counts,
                intents,
                stack.db_url,
                drs,
                tm,
                uh,
                notify,
                stack.deliverers_killed,
            )
            control = await asyncio.to_thread(control_character_counts, intents, stack.db_url)
            outbox = await asyncio.to_thread(outbox_counts, stack.db_url)
            gateway_kills = [name for _, name in stack.gateway_kills]
            worker_kills = [name for _, name in stack.worker_kills]
    logs = workdir / "logs"  # complete now: the processes have stopped
    leaked = personal_data_in_logs(logs)
    scanned = sum(
        sum(1 for _ in p.open(encoding="utf-8", errors="replace")) for p in gateway_logs(logs)
    )
    return {
        "personal_data_in_logs": leaked[:50],
        "log_lines_scanned": scanned,
        "config": asdict(cfg),
        "database": make_url(stack.db_url).get_backend_name(),
        "topology": cfg.topology,
        "gateway_processes": len(stack.gateways),
        "worker_processes": 1 if stack.worker is not None else 0,
        "gateway_kills": gateway_kills,
        "worker_kills": worker_kills,
        "drive_seconds": round(drive_seconds, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "faults_injected": dict(sorted(faults.items())),
        "answers": dict(sorted(tally.answers.items())),
        "final_retries": retried,
        "drain": drained,
        "dead_before_replay": dead,
        "replay": replayed,
        "outbox": outbox,
        "control_characters": control,
        **counts,
    }


def control_character_counts(intents: list[Intent], db_url: str) -> dict[str, Any]:
    """Control-character bookings: each must end refused 422 naming ``description`` (never
    201, never a 5xx that a breaker would count), and no repair may hold one."""
    from gateway.storage.models import Repair
    from gateway.text import first_unsafe

    sent = [i for i in intents if i.control]
    refused = [i for i in sent if i.control[-1] == "422 invalid-input description"]
    with sync_engine(db_url) as engine, engine.connect() as conn:
        stored = [
            ref
            for ref, description in conn.execute(select(Repair.reference, Repair.description))
            if first_unsafe(description or "") is not None
        ]
    return {
        "sent": len(sent),
        "refused_422_naming_description": len(refused),
        "other_answers": [
            {"intent": i.index, "answers": i.control} for i in sent if i not in refused
        ],
        "repairs_stored_with_control_characters": stored,
    }


PII_SURNAME = "Quartermaine"
PII_EMAIL_DOMAIN = "resident.example"
PII_DESCRIPTION = "Mould behind the wardrobe in the back bedroom"
PII_PATTERN = re.compile(
    rf"{PII_SURNAME}|{re.escape(PII_EMAIL_DOMAIN)}|{PII_DESCRIPTION}|07700 ?9\d{{5}}|Philippa"
)


def gateway_logs(logs: Path) -> list[Path]:
    """Every gateway process's log: single gateways, replicas and workers."""
    return sorted(
        p for pattern in ("gateway*.log", "replica*.log", "worker*.log") for p in logs.glob(pattern)
    )


def personal_data_in_logs(logs: Path) -> list[str]:
    """Gateway log lines carrying anything a resident submitted (must be none, whatever failed).
    Simulator logs are the vendors' and are not checked."""
    found: list[str] = []
    for path in gateway_logs(logs):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if PII_PATTERN.search(line):
                    found.append(f"{path.name}:{n}: {line.strip()[:200]}")
    return found


def table(report: dict[str, Any]) -> str:
    d = report["deliveries"]
    rows: list[tuple[str, Any]] = [
        (
            "database / topology / gateway processes / worker processes",
            f"{report['database']} / {report['topology']} / {report['gateway_processes']} / "
            f"{report['worker_processes']}",
        ),
        (
            "kill -9: gateway processes / worker",
            f"{len(report['gateway_kills'])} / {len(report['worker_kills'])}",
        ),
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
        (
            "works orders / works_order.raise items per reference > 1",
            f"{len(d['works_orders_per_reference_gt_1'])} / "
            f"{len(d['works_order_raise_items_per_reference_gt_1'])}",
        ),
    ]
    if "notifications_sent" in d:
        rows.append(
            (
                "SMS sent / repeated (across a kill, none between) / booked not sent",
                f"{d['notifications_sent']} / "
                f"{len(d['notifications_repeated_across_gateway_kill'])}, "
                f"{len(d['notifications_repeated_no_kill_between'])} / "
                f"{len(d['booked_not_notified'])}",
            )
        )
    rows.append(("DELIVERIES REPEATED OR MISSING, UNEXPLAINED", report["deliveries_unexplained_n"]))
    ctl = report["control_characters"]
    dead = Counter(str(i["kind"]) for i in report["dead_before_replay"])
    rows.append(
        (
            "control-character bookings: sent / refused 422 (description) / stored",
            f"{ctl['sent']} / {ctl['refused_422_naming_description']} / "
            f"{len(ctl['repairs_stored_with_control_characters'])}",
        )
    )
    rows.append(("dead outbox items before replay (by kind)", dict(dead) or 0))
    rows.append(
        (
            "GATEWAY LOG LINES WITH PERSONAL DATA (lines scanned)",
            f"{len(report['personal_data_in_logs'])} ({report['log_lines_scanned']})",
        )
    )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def ok(report: dict[str, Any]) -> bool:
    return (
        report["lost_n"] == 0
        and report["duplicated_n"] == 0
        and report["orphaned_n"] == 0
        and report["deliveries_unexplained_n"] == 0
        and not report["personal_data_in_logs"]
        and report["control_characters"]["sent"]
        == report["control_characters"]["refused_422_naming_description"]
        and not report["control_characters"]["repairs_stored_with_control_characters"]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fault_campaign")
    p.add_argument("--bookings", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--sim-restarts", type=int, default=6)
    p.add_argument("--gateway-kills", type=int, default=3)
    p.add_argument("--time-limit", type=float, default=3600.0, help="seconds for the drive")
    p.add_argument("--db", choices=["sqlite", "postgres"], default=None, help="default: sqlite")
    p.add_argument(
        "--gateways", type=int, default=None, help="gateway processes on one database (default 1)"
    )
    p.add_argument(
        "--topology",
        choices=["single", "replicas"],
        default="single",
        help="replicas: PostgreSQL, migrate x3, --gateways (3) 'serve --no-worker' and a worker",
    )
    p.add_argument(
        "--worker-kills", type=int, default=None, help="kill -9 of the worker (replicas: 3)"
    )
    p.add_argument(
        "--control-chars",
        type=float,
        default=0.1,
        help="share of intents that first send a booking with a control character (0.1)",
    )
    p.add_argument(
        "--notify",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record resident SMS on a fake Notify (default: on for postgres or --gateways > 1)",
    )
    p.add_argument("--workdir", type=Path, default=None, help="keep logs and databases here")
    p.add_argument("--json", type=Path, default=None, help="write the full report here")
    args = p.parse_args(argv)
    replicas = args.topology == "replicas"
    if replicas and args.db == "sqlite":
        p.error("--topology replicas runs on PostgreSQL")
    cfg = CampaignConfig(
        bookings=args.bookings,
        seed=args.seed,
        concurrency=args.concurrency,
        sim_restarts=args.sim_restarts,
        gateway_kills=args.gateway_kills,
        time_limit=args.time_limit,
        db=args.db or ("postgres" if replicas else "sqlite"),
        gateways=args.gateways or (3 if replicas else 1),
        notify=args.notify,
        topology=args.topology,
        worker_kills=args.worker_kills,
        control_chars=args.control_chars,
    )
    if not 1 <= cfg.gateways <= 16:
        p.error("--gateways must be between 1 and 16")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rgw-campaign-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(campaign(cfg, workdir))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    print(
        json.dumps(
            {
                k: v
                for k, v in report.items()
                if k not in ("lost", "duplicated", "orphaned", "deliveries")
            },
            indent=1,
            default=str,
        )
    )  # noqa: T201
    print("lost:", json.dumps(report["lost"]))  # noqa: T201
    print("duplicated:", json.dumps(report["duplicated"]))  # noqa: T201
    print("orphaned:", json.dumps(report["orphaned"]))  # noqa: T201
    print("deliveries:", json.dumps(report["deliveries"]))  # noqa: T201
    print(table(report))  # noqa: T201
    print(f"workdir: {workdir}")  # noqa: T201
    return 0 if ok(report) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Growth curves (issue 16): the hot path against the size of the bookings table.

    .venv/bin/python -m bench.bench_growth [--sizes 1000,10000,1000000] [--iterations 200]

Question: do the postcode lookup (`GET .../addresses`), availability (`GET .../appointments`)
and a booking (`POST .../repairs`) cost the same with a thousand bookings in the database as
with a million?

Set-up: one PostgreSQL server (`tests/pg.py`: fsync off, a fresh database per size),
`repairs-gateway migrate`, then the tables a million bookings leave behind, seeded directly
with COPY (one pass, tab-separated text):

- `repairs`: the size's rows; half belong to the measured council (`growth`), the rest are
  spread over 99 other councils (a national deployment: the table holds every landlord's
  bookings). Status mix: 80% booked, 8% completed, 6% cancelled, 3% failed, 3% awaiting an
  appointment; slots from three years back to six weeks ahead.
- `idempotency_keys`: one per repair (state done, its 201 answer kept, as the API leaves it).
- `outbox`: per repair a delivered `works_order.raise`, a delivered `notification.send` for
  70%, a delivered `booking.compensate` per failed booking, and pending reminders
  (`notification.send` due later) for half of the ~3% whose appointment is still ahead: the only
  pending rows, as after a drained outbox.
- `csv_bookings`: one per booked repair of a CSV council, and `csv_slot_usage` in
  proportion: one row per (council, trade, slot) with on average 20 places taken (past slots
  full history; the measured council's next six weeks partly taken, never full: capacity is
  1,000 so that every measured booking succeeds).

Then `VACUUM ANALYZE`, and for each size a real `repairs-gateway serve` (one uvicorn worker,
its outbox worker on) for the measured council, all running at once: addresses and
appointments from the CSV fallback (a generated property file of 2,000 homes in 100
postcodes; its index is the same at every size), no works orders or notifications (so a
booking is the gateway's own work on this database). One closed-loop caller per gateway, used
one at a time: per step a postcode lookup, an availability page for a property (just after
the previous booking, which cleared the adaptor's 2-second usage cache, so each page reads
`csv_slot_usage`), and a booking of its first slot with a new Idempotency-Key. After a
warm-up, the sizes are measured in interleaved rounds (`--batch` steps per size per round,
the order rotated each round), so the noise of the shared machine falls on every size alike.

Reported per size: p50/p99 of each call and the ratio to the smallest size (the baseline, in
the same run), how long seeding took, and `EXPLAIN (ANALYZE)` of the hot queries (plan and
median time of 5), which says why a cost is flat or why not; with the machine's load average
(1 minute, lowest and highest seen between rounds) and the cores busy while measuring.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import busy_cpu_seconds, free_port, machine_info

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
SOR = REPO / "mappings" / "examples" / "demo-sor.csv"
COUNCIL = "growth"
ADAPTOR = "props"
JOBS = {"plumbing": "N630945", "electrical": "N858111", "carpentry": "N373049"}
TEMPLATES = [(8, 0, 12, 0), (12, 0, 16, 0), (9, 30, 14, 30), (8, 0, 16, 0)]
CAPACITY = 1000
OUTBOX_INDEXES = ("ix_outbox_state_due", "ix_outbox_state_kind")  # migration 0007
FLAT_FACTOR = 1.5  # "flat": p50 at the largest size within 1.5x of the baseline's


def log(msg: str) -> None:
    print(f"[growth] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))] if s else float("nan")


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# -- the property file and the council ----------------------------------------------------------
def postcodes(n: int) -> list[str]:
    return [f"GR{1 + i // 10} {i % 10}A{chr(65 + i % 26)}" for i in range(n)]


def write_properties(path: Path, homes: int, n_postcodes: int) -> dict[str, list[str]]:
    pcs = postcodes(n_postcodes)
    by_pc: dict[str, list[str]] = {pc: [] for pc in pcs}
    lines = [
        "property_id,uprn,address_line_1,address_line_2,address_line_3,address_line_4,"
        "postcode,kind,parent_id,repairable,reason"
    ]
    for i in range(homes):
        pc = pcs[i % n_postcodes]
        pid = f"GP{i:06d}"
        by_pc[pc].append(pid)
        lines.append(f"{pid},{200000000000 + i},{i + 1} Growth Road,,Lincoln,,{pc},dwelling,,yes,")
    path.write_text("\n".join(lines) + "\n")
    return by_pc


def write_council(config_dir: Path, properties: Path) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    body = {
        "name": "Growth bench council",
        "mappings": str(SOR),
        "adaptors": {
            ADAPTOR: {
                "type": "csv_fallback",
                "options": {
                    "properties_file": str(properties),
                    "calendar": {
                        "working_days": ["mon", "tue", "wed", "thu", "fri"],
                        "slots": [
                            {"start": f"{a:02d}:{b:02d}", "end": f"{c:02d}:{d:02d}"}
                            for a, b, c, d in TEMPLATES
                        ],
                        "capacity": CAPACITY,
                        "lead_time_days": 1,
                        "horizon_days": 42,
                    },
                },
            }
        },
        "routes": {"addresses": ADAPTOR, "appointments": ADAPTOR},
    }
    (config_dir / f"{COUNCIL}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))


# -- seeding ------------------------------------------------------------------------------------
def _slot(day: date, t: int) -> tuple[datetime, datetime]:
    a, b, c, d = TEMPLATES[t]
    return (
        datetime.combine(day, dtime(a, b), tzinfo=UTC),
        datetime.combine(day, dtime(c, d), tzinfo=UTC),
    )


def _key(start: datetime, end: datetime) -> str:
    return f"{start.isoformat()}/{end.isoformat()}"


def _ts(d: datetime) -> str:
    return d.isoformat()


class Copier:
    """Tab-separated rows for one COPY, written in chunks."""

    def __init__(self, cur: Any, table: str, columns: list[str]) -> None:
        self.cm = cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
        self.copy = self.cm.__enter__()
        self.buf = io.StringIO()
        self.rows = 0

    def row(self, *values: Any) -> None:
        self.buf.write("\t".join("\\N" if v is None else str(v) for v in values))
        self.buf.write("\n")
        self.rows += 1
        if self.rows % 20000 == 0:
            self.flush()

    def flush(self) -> None:
        self.copy.write(self.buf.getvalue().encode())
        self.buf = io.StringIO()

    def close(self) -> None:
        self.flush()
        self.cm.__exit__(None, None, None)


REPAIR_COLS = (
    "council reference property_id postcode sor_code trade size duration_minutes priority "
    "description contact communal status scheduler vendor_order_ref vendor_booking_ref "
    "vendor_slot slot_start slot_end slot_label works_order_adaptor works_order_ref client_id "
    "created_at updated_at"
).split()
IDEM_COLS = (
    "council client_id key request_hash state response_status response_body repair_reference "
    "created_at"
).split()
OUTBOX_COLS = (
    "council kind payload state attempts next_attempt_at locked_until locked_by last_error "
    "created_at done_at"
).split()
CSV_BOOKING_COLS = "council adaptor reference trade slot_key status".split()
STATUSES = [("booked", 80), ("completed", 8), ("cancelled", 6), ("failed", 3)]
STATUSES.append(("awaiting_appointment", 100 - sum(w for _, w in STATUSES)))


def _status(rnd: random.Random) -> str:
    x = rnd.randrange(100)
    for s, w in STATUSES:
        if x < w:
            return s
        x -= w
    return "booked"


def seed(url: str, size: int, today: date, seed_value: int = 16) -> dict[str, Any]:
    """The tables ``size`` bookings leave behind; returns row counts and seconds."""
    import psycopg

    rnd = random.Random(seed_value)
    t0 = time.monotonic()
    councils = [COUNCIL] + [f"c{i:03d}" for i in range(1, 100)]
    first_day = today - timedelta(days=3 * 365)
    span = (today + timedelta(days=42) - first_day).days
    future_from = (today - first_day).days
    counts: dict[str, Any] = {}
    usage: dict[tuple[str, str, str], int] = {}
    trades = list(JOBS)

    def outbox_row(
        council: str,
        kind: str,
        payload: dict[str, str],
        state: str,
        due: str,
        created: str,
        done_at: str | None,
    ) -> tuple[Any, ...]:
        attempts = 1 if state == "done" else 0
        return (
            council,
            kind,
            json.dumps(payload),
            state,
            attempts,
            due,
            None,
            None,
            None,
            created,
            done_at,
        )

    with ExitStack() as stack:
        conns = [stack.enter_context(psycopg.connect(url, autocommit=False)) for _ in range(5)]
        curs = [stack.enter_context(conn.cursor()) for conn in conns]
        rep = Copier(curs[0], "repairs", REPAIR_COLS)
        idem = Copier(curs[1], "idempotency_keys", IDEM_COLS)
        outbox = Copier(curs[2], "outbox", OUTBOX_COLS)
        csvb = Copier(
            curs[3], "csv_bookings", "council adaptor reference trade slot_key status".split()
        )
        for i in range(size):
            council = COUNCIL if i % 2 == 0 else councils[1 + (i // 2) % 99]
            ref = f"S{i:09d}"
            trade = trades[i % 3]
            status = _status(rnd)
            day_n = rnd.randrange(span)
            day = first_day + timedelta(days=day_n)
            while day.weekday() >= 5:
                day -= timedelta(days=1)
            start, end = _slot(day, rnd.randrange(4))
            created_dt = datetime.combine(day, dtime(7, 0), tzinfo=UTC) - timedelta(days=5)
            created = _ts(created_dt)
            key = _key(start, end)
            booked = status in ("booked", "completed")
            rep.row(
                council,
                ref,
                f"P{rnd.randrange(200000):06d}",
                "GR1 0AA",
                JOBS[trade],
                trade,
                "small",
                60,
                "normal",
                "Seeded repair: a dripping tap in the kitchen",
                '{"phone": "07700 900123"}',
                "f",
                status,
                ADAPTOR if booked else None,
                ref if booked else None,
                key if booked else None,
                json.dumps({"key": key}) if booked else "{}",
                _ts(start) if booked else None,
                _ts(end) if booked else None,
                "Morning" if booked else None,
                None,
                None,
                "seedclient",
                created,
                created,
            )
            idem.row(
                council,
                "seedclient",
                f"seed-{i}",
                "0" * 64,
                "done",
                201,
                json.dumps({"reference": ref, "status": status}),
                ref,
                created,
            )
            done_at = _ts(created_dt + timedelta(seconds=2))
            payload = {"reference": ref}
            outbox.row(
                *outbox_row(
                    council, "works_order.raise", payload, "done", created, created, done_at
                )
            )
            if rnd.random() < 0.7:
                outbox.row(
                    *outbox_row(
                        council,
                        "notification.send",
                        {**payload, "event": "booked"},
                        "done",
                        created,
                        created,
                        done_at,
                    )
                )
            if status == "failed":
                outbox.row(
                    *outbox_row(
                        council, "booking.compensate", payload, "done", created, created, done_at
                    )
                )
            if booked and day_n >= future_from and rnd.random() < 0.5:
                outbox.row(
                    *outbox_row(
                        council,
                        "notification.send",
                        {**payload, "event": "reminder"},
                        "pending",
                        _ts(start - timedelta(days=1)),
                        created,
                        None,
                    )
                )
            if booked:
                csvb.row(council, ADAPTOR, ref, trade, key, "booked")
                u = (council, trade, key)
                usage[u] = usage.get(u, 0) + 1
        # csv_slot_usage in proportion: a row per slot the seeded bookings took, each place
        # counted 20 times over (capped at half the capacity: the measured council's next
        # weeks stay bookable), as diaries fuller than the seeded sample would be.
        slots = Copier(curs[4], "csv_slot_usage", "council adaptor trade slot_key used".split())
        for (council, trade, key), n in usage.items():
            slots.row(council, ADAPTOR, trade, key, min(CAPACITY // 2, n * 20))
        for name, c in (
            ("repairs", rep),
            ("idempotency_keys", idem),
            ("outbox", outbox),
            ("csv_bookings", csvb),
            ("csv_slot_usage", slots),
        ):
            c.close()
            counts[name] = c.rows
        for conn in conns:
            conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    counts["seconds"] = round(time.monotonic() - t0, 1)
    return counts


# -- EXPLAIN ------------------------------------------------------------------------------------
def hot_queries(today: date) -> dict[str, str]:
    lo = datetime.combine(today, dtime(0, 0), tzinfo=UTC).isoformat()
    hi = datetime.combine(today + timedelta(days=43), dtime(0, 0), tzinfo=UTC).isoformat()
    c = f"'{COUNCIL}'"
    return {
        "idempotency look-up (replay)": (
            f"SELECT * FROM idempotency_keys WHERE council = {c} AND client_id = 'x' "
            "AND key = 'k-1'"
        ),
        "repair by reference (locked)": (
            f"SELECT * FROM repairs WHERE council = {c} AND reference = 'S000000002' FOR UPDATE"
        ),
        "drop the reconcile item": (
            f"DELETE FROM outbox WHERE kind = 'booking.reconcile' AND council = {c} "
            "AND state = 'pending' AND locked_until IS NULL "
            "AND (payload ->> 'reference') = 'S000000002'"
        ),
        "outbox due items (worker poll)": (
            "SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= now() "
            "AND (locked_until IS NULL OR locked_until < now()) "
            "ORDER BY next_attempt_at, id LIMIT 20"
        ),
        "slot usage for six weeks (availability)": (
            f"SELECT slot_key, used FROM csv_slot_usage WHERE council = {c} "
            f"AND adaptor = '{ADAPTOR}' AND trade = 'electrical' "
            f"AND slot_key >= '{lo}' AND slot_key <= '{hi}'"
        ),
        "CSV booking by reference (locked)": (
            f"SELECT * FROM csv_bookings WHERE council = {c} AND adaptor = '{ADAPTOR}' "
            "AND reference = 'S000000002' FOR UPDATE"
        ),
    }


def explain(url: str, today: date) -> dict[str, dict[str, Any]]:
    import psycopg

    out: dict[str, dict[str, Any]] = {}
    with psycopg.connect(url) as conn:
        for name, sql in hot_queries(today).items():
            times, plan = [], None
            for _ in range(5):
                rows = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").fetchone()
                conn.rollback()  # the DELETE and the locks: measured, never applied
                assert rows is not None
                doc = rows[0][0]
                times.append(float(doc["Execution Time"]))
                plan = doc["Plan"]
            assert plan is not None
            out[name] = {"ms": round(pct(times, 0.5), 3), "plan": _plan_words(plan)}
    return out


def _plan_words(plan: dict[str, Any]) -> str:
    words = []
    stack = [plan]
    while stack:
        node = stack.pop(0)
        w = node["Node Type"]
        if node.get("Index Name"):
            w += f" {node['Index Name']}"
        if "Rows Removed by Filter" in node:
            w += f" (filtered out {node['Rows Removed by Filter']})"
        words.append(w)
        stack.extend(node.get("Plans", []))
    return " > ".join(words)


# -- the gateway --------------------------------------------------------------------------------
def env_for(data_dir: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        DATABASE_URL=url,
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_SECRET_KEY=secrets.token_urlsafe(32),
        GATEWAY_LOG_LEVEL="warning",
    )
    return env


def cli(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run(  # noqa: S603
        [PY, "-m", "gateway.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


class Caller:
    """One closed-loop caller of one gateway: postcode, availability, booking per step."""

    def __init__(self, base: str, key: str, by_pc: dict[str, list[str]], tag: str) -> None:
        self.rnd = random.Random(7)
        self.by_pc = by_pc
        self.pcs = sorted(by_pc)
        self.tag = tag
        self.i = 0
        self.ms: dict[str, list[float]] = {"addresses": [], "appointments": [], "booking": []}
        self.client = httpx.Client(
            base_url=f"{base}/v1/councils/{COUNCIL}",
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        )

    def steps(self, n: int, *, record: bool = True) -> None:
        c = self.client
        for _ in range(n):
            self.i += 1
            pc = self.rnd.choice(self.pcs)
            sor = list(JOBS.values())[self.i % 3]
            t = time.perf_counter()
            r = c.get("/addresses", params={"postcode": pc})
            a_ms = (time.perf_counter() - t) * 1000
            assert r.status_code == 200, r.text[:300]
            prop = self.rnd.choice(self.by_pc[pc])
            t = time.perf_counter()
            r = c.get("/appointments", params={"property_id": prop, "sor_code": sor})
            s_ms = (time.perf_counter() - t) * 1000
            assert r.status_code == 200 and r.json()["slots"], r.text[:300]
            body = {
                "property_id": prop,
                "sor_code": sor,
                "description": "A dripping tap in the kitchen",
                "contact": {"phone": "07700 900123"},
                "slot_token": r.json()["slots"][0]["slot_token"],
            }
            t = time.perf_counter()
            r = c.post("/repairs", json=body, headers={"Idempotency-Key": f"{self.tag}-{self.i}"})
            b_ms = (time.perf_counter() - t) * 1000
            assert r.status_code == 201, r.text[:300]
            if record:
                self.ms["addresses"].append(a_ms)
                self.ms["appointments"].append(s_ms)
                self.ms["booking"].append(b_ms)


@dataclass
class Size:
    bookings: int
    url: str
    env: dict[str, str]
    key: str
    counts: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    caller: Caller | None = None


def prepare(admin: str, size: int, tmp: Path, today: date, without_indexes: bool) -> Size:
    from tests.pg import create_database

    url = create_database(admin, f"growth{size}")
    env = env_for(tmp / f"data-{size}", url)
    cli(["migrate"], env)
    log(f"{size:,} bookings: seeding")
    counts = seed(url, size, today)
    log(f"{size:,} bookings: seeded {counts}")
    if without_indexes:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for name in OUTBOX_INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
    out = cli(
        ["keys", "create", "growth", "--council", COUNCIL, "--rate-per-minute", "100000000"]
        + ["--config-dir", str(tmp / "config")],
        env,
    )
    return Size(size, url, env, next(x for x in out.split() if x.startswith("rgw_")), counts)


def start(sz: Size, tmp: Path, by_pc: dict[str, list[str]]) -> None:
    port = free_port()
    gw_log = tmp / f"gateway-{sz.bookings}.log"
    sz.proc = subprocess.Popen(  # noqa: S603
        [PY, "-m", "gateway.cli", "serve", "--config-dir", str(tmp / "config")]
        + ["--port", str(port)],
        cwd=REPO,
        env=sz.env,
        stdout=gw_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if sz.proc.poll() is not None:
            raise RuntimeError(f"gateway exited: {gw_log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("gateway not ready in 120 s")
        time.sleep(0.2)
    sz.caller = Caller(base, sz.key, by_pc, f"g{sz.bookings}")


def pause(sz: Size, stopped: bool) -> None:
    """Only the gateway being measured runs: the others are stopped (SIGSTOP), so that their
    background work (the outbox worker's poll, probes) never lands on another size's figures."""
    assert sz.proc is not None
    os.kill(sz.proc.pid, signal.SIGSTOP if stopped else signal.SIGCONT)
    if not stopped:
        time.sleep(0.05)


def stop(sz: Size) -> None:
    if sz.proc is not None and sz.proc.poll() is None:
        os.kill(sz.proc.pid, signal.SIGCONT)
    if sz.caller is not None:
        sz.caller.client.close()
    if sz.proc is not None and sz.proc.poll() is None:
        sz.proc.terminate()
        try:
            sz.proc.wait(20)
        except subprocess.TimeoutExpired:
            sz.proc.kill()


def run(args: argparse.Namespace, tmp: Path, by_pc: dict[str, list[str]]) -> dict[str, Any]:
    """Seed every size, start a gateway on each, then measure them in interleaved rounds
    (``--batch`` steps per size per round, the order rotated each round) so that the
    machine's noise falls on every size alike."""
    from tests.pg import postgres_server

    today = datetime.now(UTC).date()
    sizes = [int(s) for s in args.sizes.split(",")]
    with postgres_server() as admin:
        prepared = [prepare(admin, n, tmp, today, args.without_outbox_indexes) for n in sizes]
        try:
            for sz in prepared:
                start(sz, tmp, by_pc)
                pause(sz, True)
            for sz in prepared:
                assert sz.caller is not None
                pause(sz, False)
                sz.caller.steps(args.warmup, record=False)
                pause(sz, True)
            load: list[float] = []
            busy0, wall0 = busy_cpu_seconds(), time.monotonic()
            rounds = -(-args.iterations // args.batch)
            for r in range(rounds):
                order = prepared[r % len(prepared) :] + prepared[: r % len(prepared)]
                for sz in order:
                    assert sz.caller is not None
                    pause(sz, False)
                    sz.caller.steps(args.batch)
                    pause(sz, True)
                load.append(loadavg()[0])
            cores = (busy_cpu_seconds() - busy0) / (time.monotonic() - wall0)
            measured_s = time.monotonic() - wall0
        finally:
            for sz in prepared:
                stop(sz)
        results = []
        for sz in prepared:
            assert sz.caller is not None
            results.append(
                {
                    "bookings": sz.bookings,
                    "rows": sz.counts,
                    "calls": {
                        k: {
                            "p50_ms": round(pct(v, 0.5), 2),
                            "p99_ms": round(pct(v, 0.99), 2),
                            "n": len(v),
                        }
                        for k, v in sz.caller.ms.items()
                    },
                    "explain": explain(sz.url, today),
                }
            )
    return {
        "results": results,
        "measured_s": round(measured_s, 1),
        "loadavg_1min_min_max": [min(load), max(load)],
        "machine_busy_cores": round(cores, 2),
        "without_outbox_indexes": args.without_outbox_indexes,
    }


def markdown(results: list[dict[str, Any]]) -> str:
    base = results[0]
    lines = [
        "| bookings in the table | seeded in s | addresses p50 / p99 ms | appointments p50 / p99 "
        "ms | booking p50 / p99 ms | p50 vs baseline (addr / appt / booking) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        c, b = r["calls"], base["calls"]
        ratio = " / ".join(f"{c[k]['p50_ms'] / b[k]['p50_ms']:.2f}x" for k in c)
        lines.append(
            f"| {r['bookings']:,} | {r['rows']['seconds']} "
            + "".join(f"| {c[k]['p50_ms']:.2f} / {c[k]['p99_ms']:.2f} " for k in c)
            + f"| {ratio} |"
        )
    lines += [
        "",
        "| hot query | " + " | ".join(f"{r['bookings']:,}" for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for name in base["explain"]:
        cells = [
            f"{r['explain'][name]['ms']:.3f} ms: {r['explain'][name]['plan']}" for r in results
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.bench_growth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--sizes", default="1000,10000,1000000")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument(
        "--without-outbox-indexes",
        action="store_true",
        help="drop migration 0007's outbox indexes after migrating (the schema before it)",
    )
    ap.add_argument("--batch", type=int, default=10, help="steps per size per round")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    by_pc = write_properties(tmp / "properties.csv", 2000, 100)
    write_council(tmp / "config", tmp / "properties.csv")
    t0 = time.monotonic()
    out = run(args, tmp, by_pc)
    results = out["results"]
    largest, base = results[-1]["calls"], results[0]["calls"]
    flat = {k: largest[k]["p50_ms"] <= FLAT_FACTOR * base[k]["p50_ms"] for k in base}
    result = {
        "machine": machine_info(),
        "seconds": round(time.monotonic() - t0, 1),
        **out,
        "flat": flat,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=1))  # noqa: T201
    print(markdown(results))  # noqa: T201
    print(  # noqa: T201
        f"\nmeasured for {out['measured_s']} s (sizes interleaved); load average (1 min) "
        f"{out['loadavg_1min_min_max'][0]:.2f}-{out['loadavg_1min_min_max'][1]:.2f}; machine "
        f"busy {out['machine_busy_cores']:.2f} cores of {os.cpu_count()}"
    )
    print(f"\nflat (p50 at the largest size within {FLAT_FACTOR}x of the baseline): {flat}")  # noqa: T201
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

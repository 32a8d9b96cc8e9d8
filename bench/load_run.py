"""Load run: sustained mixed traffic against a real gateway process in front of the three
simulators at realistic latency, on SQLite or PostgreSQL.

    .venv/bin/python -m bench.load_run --minutes 5 --db sqlite|postgres [--clients 16]

Simulators: Civica UH 40 ms per call, Kirona DRS 1-2 s per ``checkAvailability`` (their real
figure) and 50 ms per other call, Totalmobile 60 ms per call. Routing as in the fault campaign:
addresses and works orders from UH, plumbing appointments from Totalmobile, other trades from
DRS (whose window answers the gateway caches for ``cache_seconds``, 60 s).

Traffic comes from a separate load-generator process (``--generate``): closed loop, ``clients``
concurrent callers, each picking its next call at random: 80% availability, 15% addresses, 5%
bookings (a booking uses a slot token from that caller's last availability answer for the same
property and job, fetching one first - not counted - when it has none). Reported: throughput,
p50/p99 per call type, error rate (5xx, connection errors, unexpected 4xx; a 409 "slot taken" is
an answer, counted apart), and for DRS availability the share answered from the gateway's cache
(answers under 0.5 s, when every DRS call takes at least 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.fault_campaign import JOBS, POSTCODES, running_stack

ROOT = Path(__file__).resolve().parents[1]
MIX = (("availability", 0.80), ("addresses", 0.15), ("booking", 0.05))
CACHE_HIT_MS = 500.0


# -- the load generator (its own process) ----------------------------------------------------
@dataclass
class Samples:
    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )

    def add(self, kind: str, ms: float, outcome: str) -> None:
        self.ms[kind].append(ms)
        self.outcomes[kind][outcome] += 1


async def generate(base: str, key: str, seconds: float, clients: int, seed: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    samples = Samples()
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as c:
        props: list[str] = []
        for pc in POSTCODES:
            r = await c.get(f"{base}/addresses", params={"postcode": pc})
            r.raise_for_status()
            props += [
                a["id"]
                for a in r.json()["addresses"]
                if a["online_repairs"] and a["kind"] == "dwelling"
            ]
        start = time.monotonic()
        end = start + seconds

        async def call(kind: str, label: str, req: Any) -> httpx.Response | None:
            t0 = time.perf_counter()
            try:
                r = await req
            except httpx.HTTPError as exc:
                samples.add(label, (time.perf_counter() - t0) * 1000, type(exc).__name__)
                return None
            samples.add(label, (time.perf_counter() - t0) * 1000, str(r.status_code))
            return r

        async def client(n: int) -> None:
            rng = random.Random(seed * 100 + n)
            tokens: dict[tuple[str, str], list[str]] = {}
            i = 0
            while time.monotonic() < end:
                i += 1
                kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
                prop = rng.choice(props)
                trade = rng.choice(sorted(JOBS))
                sor = JOBS[trade]
                if kind == "addresses":
                    await call(
                        kind,
                        "addresses",
                        c.get(f"{base}/addresses", params={"postcode": rng.choice(POSTCODES)}),
                    )
                    continue
                label = "availability_tm" if trade == "plumbing" else "availability_drs"
                if kind == "booking" and (prop, sor) not in tokens:
                    r0 = await c.get(
                        f"{base}/appointments", params={"property_id": prop, "sor_code": sor}
                    )
                    if r0.status_code == 200:
                        tokens[(prop, sor)] = [s["slot_token"] for s in r0.json()["slots"]]
                if kind == "availability":
                    r = await call(
                        kind,
                        label,
                        c.get(
                            f"{base}/appointments", params={"property_id": prop, "sor_code": sor}
                        ),
                    )
                    if r is not None and r.status_code == 200:
                        tokens[(prop, sor)] = [s["slot_token"] for s in r.json()["slots"]]
                    continue
                choices = tokens.pop((prop, sor), [])
                if not choices:
                    continue
                body = {
                    "property_id": prop,
                    "sor_code": sor,
                    "description": "load run booking",
                    "contact": {"phone": "07700 900123"},
                    "slot_token": rng.choice(choices),
                }
                await call(
                    kind,
                    "booking",
                    c.post(
                        f"{base}/repairs",
                        json=body,
                        headers={"Idempotency-Key": f"load-{seed}-{n}-{i}"},
                    ),
                )

        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.monotonic() - start
    return {"elapsed": elapsed, "ms": dict(samples.ms), "outcomes": samples.outcomes}


# -- the figures ------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def is_error(kind: str, outcome: str) -> bool:
    if outcome in ("200", "201"):
        return False
    return not (kind == "booking" and outcome == "409")


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    elapsed = float(raw["elapsed"])
    rows: dict[str, Any] = {}
    total = errors = 0
    everything: list[float] = []
    for kind, values in sorted(raw["ms"].items()):
        outcomes = raw["outcomes"][kind]
        n = len(values)
        errs = sum(v for o, v in outcomes.items() if is_error(kind, o))
        total, errors = total + n, errors + errs
        everything += values
        rows[kind] = {
            "requests": n,
            "rps": round(n / elapsed, 2),
            "p50_ms": round(pct(values, 0.5), 1),
            "p99_ms": round(pct(values, 0.99), 1),
            "errors": errs,
            "error_rate": round(errs / n, 4) if n else 0.0,
            "outcomes": dict(outcomes),
        }
        if kind == "availability_drs":
            hits = sum(1 for v in values if v < CACHE_HIT_MS)
            rows[kind]["cache_hits"] = round(hits / n, 3) if n else 0.0
            rows[kind]["p50_hit_ms"] = round(pct([v for v in values if v < CACHE_HIT_MS], 0.5), 1)
            rows[kind]["p50_miss_ms"] = round(pct([v for v in values if v >= CACHE_HIT_MS], 0.5), 1)
    rows["all"] = {
        "requests": total,
        "rps": round(total / elapsed, 2),
        "p50_ms": round(pct(everything, 0.5), 1),
        "p99_ms": round(pct(everything, 0.99), 1),
        "errors": errors,
        "error_rate": round(errors / total, 4) if total else 0.0,
    }
    return {"seconds": round(elapsed, 1), "calls": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"**{result['db']}**, {result['clients']} clients, {result['seconds']} s measured",
        "",
        "| call | requests | req/s | p50 ms | p99 ms | errors | error rate |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, r in result["calls"].items():
        lines.append(
            f"| {kind} | {r['requests']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['errors']} | {r['error_rate']:.2%} |"
        )
    drs = result["calls"].get("availability_drs")
    if drs:
        lines += [
            "",
            f"DRS availability from the gateway's cache: {drs['cache_hits']:.1%} "
            f"(p50 {drs['p50_hit_ms']} ms) vs DRS called (p50 {drs['p50_miss_ms']} ms).",
        ]
    return "\n".join(lines)


# -- the run ----------------------------------------------------------------------------------
def run(minutes: float, db: str, clients: int, seed: int, workdir: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        extra: dict[str, str] = {}
        if db == "postgres":
            from tests.pg import create_database, postgres_server

            admin = stack.enter_context(postgres_server())
            extra["DATABASE_URL"] = create_database(admin, "loadrun")
        gw = stack.enter_context(
            running_stack(
                workdir,
                drs_args=["--availability-latency", "1,2", "--latency", "0.05"],
                uh_args=["--latency-ms", "40"],
                tm_args=["--latency-ms", "60"],
                capacity=1000,
                persist=False,
                gateway_extra_env=extra,
            )
        )
        out = workdir / "load.json"
        subprocess.run(
            [sys.executable, "-m", "bench.load_run", "--generate", gw.base, gw.key]
            + ["--seconds", str(minutes * 60), "--clients", str(clients), "--seed", str(seed)]
            + ["--out", str(out)],
            cwd=ROOT,
            check=True,
            timeout=minutes * 60 + 300,
        )
        raw = json.loads(out.read_text())
    return {
        "db": db,
        "clients": clients,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}",
        **summarise(raw),
    }


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load_run")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--generate", nargs=2, metavar=("BASE", "KEY"), help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.generate:
        base, key = args.generate
        raw = asyncio.run(generate(base, key, args.seconds, args.clients, args.seed))
        assert args.out is not None
        args.out.write_text(json.dumps(raw))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="rgw-load-"))
    result = run(args.minutes, args.db, args.clients, args.seed, workdir)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=1))  # noqa: T201
    print(markdown(result))  # noqa: T201
    return 0 if result["calls"]["all"]["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Hostile backends (issue 10): one council's housing system sends a 50 MB reply and another's
scheduler trickles (a slow-loris, one byte a second), while a third council's ``addresses``
latency and the gateway process's memory are measured - against the same run with
well-behaved backends, measured first in the same bench run.

    .venv/bin/python -m bench.bench_hostile_backends [--seconds 20] [--clients 4]
        [--hostile-clients 2]

One gateway process (``repairs-gateway serve``) per phase, each with three councils:
- ``measured``: addresses from Civica UH (the UH simulator, always well-behaved);
- ``big``: addresses from Civica UH - the simulator in the baseline phase, then a server that
  answers every call with a well-formed 50 MB SOAP reply, chunked, so that only reading it
  tells its size (``tests/hostile.py --mode big --chunked``);
- ``trickle``: appointments from Kirona DRS - the DRS simulator, then a server that answers
  ``openSession`` properly and every other call one byte a second (``--mode slow``).

``clients`` callers ask ``measured`` for addresses in a closed loop while ``hostile-clients``
callers each keep ``big`` and ``trickle`` busy. The circuit breaker is effectively disabled
(threshold 10^6) so every hostile call reaches its backend: the limits themselves are measured,
not the breaker's rest. Reported: p50/p99 of ``measured`` addresses in each phase and their
ratio (goal: p99 within 2x), the gateway's RSS after warm-up and at its peak in each phase
(sampled every 50 ms from /proc), and the growth (goal: under 100 MiB), plus what the hostile
callers were told.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.fault_campaign import Proc
from tests.simulators import free_port

ROOT = Path(__file__).resolve().parents[1]
SOR_FILE = ROOT / "mappings" / "examples" / "demo-sor.csv"
UH_WSDL = ROOT / "adaptors" / "civica_uh" / "wsdl" / "PropertyService.wsdl"
DRS_WSDL = ROOT / "adaptors" / "kirona_drs" / "wsdl" / "drs-subset.wsdl"
PROPERTIES = (
    "property_id,uprn,address_line_1,address_line_2,address_line_3,address_line_4,postcode,"
    "kind,parent_id,repairable,reason\n"
    "000123,100030001234,1 High Street,Lincoln,,,LN1 1AA,dwelling,,yes,\n"
)
POSTCODE = "LN1 1AA"
SOR = "N858111"  # electrical, small: scheduled by DRS
MiB = 1024 * 1024
BIG = 50_000_000


def uh_options(base: str, *, local_wsdl: bool) -> dict[str, Any]:
    return {
        "property_wsdl": str(UH_WSDL) if local_wsdl else f"{base}/PropertyService.svc?wsdl",
        "property_endpoint": f"{base}/PropertyService.svc",
        "repair_endpoint": f"{base}/RepairService.svc",
        "username": "gateway",
        "password": "secret",
        "user_id": 42,
        "timeout_seconds": 5,
    }


def councils(uh: str, big: str, drs: str, trickle_wsdl: Path | None) -> dict[str, Any]:
    """The three councils; ``big``/``drs`` are the backends of the two councils under test."""
    drs_options = {
        "wsdl": str(trickle_wsdl) if trickle_wsdl else f"{drs}/DRSService?wsdl",
        "endpoint": f"{drs}/DRSService",
        "login": "gateway",
        "password": "drs-secret",
        "contract": "RESPONSIVE",
        "user_id": "REPAIRSGW",
        "timeout_seconds": 5,
        "cache_seconds": 0,  # every request reaches DRS
    }
    return {
        "measured": {
            "name": "Measured council",
            "mappings": "sor.csv",
            "adaptors": {"uh": {"type": "civica_uh", "options": uh_options(uh, local_wsdl=False)}},
            "routes": {"addresses": "uh"},
        },
        "big": {
            "name": "Council whose UH sends 50 MB",
            "mappings": "sor.csv",
            "adaptors": {"uh": {"type": "civica_uh", "options": uh_options(big, local_wsdl=True)}},
            "routes": {"addresses": "uh"},
        },
        "trickle": {
            "name": "Council whose DRS trickles",
            "mappings": "sor.csv",
            "adaptors": {
                "props": {"type": "csv_fallback", "options": {"properties_file": "props.csv"}},
                "drs": {"type": "kirona_drs", "options": drs_options},
            },
            "routes": {"addresses": "props", "appointments": "drs"},
        },
    }


class RssSampler:
    """Samples a process's resident set (VmRSS) every ``every`` seconds in a thread."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.rss()))
            except OSError:
                return
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def peak(self, since: float = 0.0) -> int:
        return max((r for t, r in self.samples if t >= since), default=0)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


async def load(
    gateway: str, key: str, seconds: float, clients: int, hostile_clients: int, warmup: float
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    measured: list[float] = []
    measured_status: Counter[str] = Counter()
    hostile: dict[str, Counter[str]] = {"big": Counter(), "trickle": Counter()}
    hostile_ms: dict[str, list[float]] = {"big": [], "trickle": []}
    limits = httpx.Limits(max_connections=clients + 2 * hostile_clients + 4)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as c:
        start = time.monotonic()
        measure_from = start + warmup
        end = measure_from + seconds

        async def measured_caller() -> None:
            while time.monotonic() < end:
                t0 = time.perf_counter()
                try:
                    r = await c.get(
                        f"{gateway}/v1/councils/measured/addresses", params={"postcode": POSTCODE}
                    )
                    outcome = str(r.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if time.monotonic() >= measure_from:
                    measured.append((time.perf_counter() - t0) * 1000)
                    measured_status[outcome] += 1

        async def hostile_caller(council: str) -> None:
            if council == "big":
                url = f"{gateway}/v1/councils/big/addresses"
                params = {"postcode": POSTCODE}
            else:
                url = f"{gateway}/v1/councils/trickle/appointments"
                params = {"property_id": "000123", "sor_code": SOR}
            while time.monotonic() < end:
                t0 = time.perf_counter()
                try:
                    r = await c.get(url, params=params)
                    outcome = str(r.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if time.monotonic() >= measure_from:
                    hostile[council][outcome] += 1
                    hostile_ms[council].append((time.perf_counter() - t0) * 1000)

        tasks = [measured_caller() for _ in range(clients)]
        for council in ("big", "trickle"):
            tasks += [hostile_caller(council) for _ in range(hostile_clients)]
        await asyncio.gather(*tasks)
    return {
        "measure_from": measure_from,
        "measured_ms": measured,
        "measured_status": dict(measured_status),
        "hostile": {k: dict(v) for k, v in hostile.items()},
        "hostile_p50_ms": {k: round(pct(v, 0.5), 1) for k, v in hostile_ms.items()},
    }


def make_key(env: dict[str, str], config: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", "create", "bench", "--council", "*"]
        + ["--role", "admin", "--rate-per-minute", "10000000", "--config-dir", str(config)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


def phase(
    name: str,
    workdir: Path,
    backends: dict[str, str],
    trickle_wsdl: Path | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One gateway process in front of ``backends``, loaded and measured."""
    root = workdir / name
    config = root / "config"
    config.mkdir(parents=True)
    (root / "data").mkdir()
    for cid, body in councils(
        backends["uh"], backends["big"], backends["drs"], trickle_wsdl
    ).items():
        (config / f"{cid}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    shutil.copy(SOR_FILE, config / "sor.csv")
    (config / "props.csv").write_text(PROPERTIES)
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(root / "data"),
        "GATEWAY_SECRET_KEY": "bench-hostile",
        "GATEWAY_BREAKER_THRESHOLD": "1000000",
        "GATEWAY_LOG_LEVEL": "warning",
    }
    env.pop("DATABASE_URL", None)
    key = make_key(env, config)
    gw = Proc(
        "gateway",
        ["-m", "gateway.cli", "serve", "--config-dir", str(config)],
        free_port(),
        "/health",
        root / "gateway.log",
        env,
    )
    gw.start()
    try:
        assert gw.proc is not None
        with RssSampler(gw.proc.pid) as rss:
            started = rss.rss()
            raw = asyncio.run(
                load(gw.url, key, args.seconds, args.clients, args.hostile_clients, args.warmup)
            )
        after_warmup = min((r for t, r in rss.samples if t >= raw["measure_from"]), default=started)
        ms = raw["measured_ms"]
        return {
            "phase": name,
            "requests": len(ms),
            "p50_ms": round(pct(ms, 0.5), 2),
            "p99_ms": round(pct(ms, 0.99), 2),
            "max_ms": round(max(ms), 1) if ms else float("nan"),
            "measured_status": raw["measured_status"],
            "hostile": raw["hostile"],
            "hostile_p50_ms": raw["hostile_p50_ms"],
            "rss_start_mib": round(started / MiB, 1),
            "rss_after_warmup_mib": round(after_warmup / MiB, 1),
            "rss_peak_mib": round(rss.peak() / MiB, 1),
        }
    finally:
        gw.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="rgw-hostile-"))
    logs = workdir / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        procs: list[Proc] = []

        def start(name: str, argv: list[str], ready: str) -> Proc:
            p = Proc(name, argv, free_port(), ready, logs / f"{name}.log")
            p.start()
            procs.append(p)
            return p

        def stop_all() -> None:
            for p in reversed(procs):
                p.stop()

        stack.callback(stop_all)
        uh = start("uh", ["-m", "adaptors.civica_uh.simulator"], "/_sim/health")
        drs = start(
            "drs",
            ["-m", "adaptors.kirona_drs.simulator", "--availability-latency", "0.05"],
            "/_sim/state",
        )
        big = start("big", ["-m", "tests.hostile", "--mode", "big", "--size", str(BIG)], "/_ready")
        slow = start(
            "slow",
            ["-m", "tests.hostile", "--mode", "slow", "--interval", "1", "--drs-session"],
            "/_ready",
        )
        baseline = phase(
            "baseline", workdir, {"uh": uh.url, "big": uh.url, "drs": drs.url}, None, args
        )
        hostile = phase(
            "hostile", workdir, {"uh": uh.url, "big": big.url, "drs": slow.url}, DRS_WSDL, args
        )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "commit": _commit(),
        "seconds": args.seconds,
        "clients": args.clients,
        "hostile_clients": args.hostile_clients,
        "baseline": baseline,
        "hostile": hostile,
        "p99_ratio": round(hostile["p99_ms"] / baseline["p99_ms"], 2),
        "p50_ratio": round(hostile["p50_ms"] / baseline["p50_ms"], 2),
        "rss_growth_mib": round(hostile["rss_peak_mib"] - baseline["rss_peak_mib"], 1),
        "rss_growth_in_phase_mib": round(
            hostile["rss_peak_mib"] - hostile["rss_after_warmup_mib"], 1
        ),
    }


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip()
    except OSError:
        return "?"


def markdown(r: dict[str, Any]) -> str:
    b, h = r["baseline"], r["hostile"]
    lines = [
        f"Run of {r['date']}, commit `{r['commit']}`, {r['machine']}; {r['seconds']} s measured "
        f"per phase, {r['clients']} callers on `measured`, {r['hostile_clients']} on each of "
        "`big` and `trickle`.",
        "",
        "| phase | `measured` addresses | p50 ms | p99 ms | max ms | RSS after warm-up MiB "
        "| RSS peak MiB | `big` callers told | `trickle` callers told |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for p in (b, h):
        lines.append(
            f"| {p['phase']} | {p['requests']} ({_told(p['measured_status'])}) | {p['p50_ms']} "
            f"| {p['p99_ms']} | {p['max_ms']} | {p['rss_after_warmup_mib']} | "
            f"{p['rss_peak_mib']} | {_told(p['hostile']['big'])} | "
            f"{_told(p['hostile']['trickle'])} |"
        )
    lines += [
        "",
        f"p99 hostile / baseline: **{r['p99_ratio']}x** (goal < 2x; p50 {r['p50_ratio']}x). "
        f"Peak RSS growth over the baseline run: **{r['rss_growth_mib']} MiB** "
        f"(goal < 100 MiB; {r['rss_growth_in_phase_mib']} MiB above the hostile run's own "
        "post-warm-up figure).",
    ]
    return "\n".join(lines)


def _told(c: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_hostile_backends")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--hostile-clients", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=1))  # noqa: T201
    print(markdown(result))  # noqa: T201
    met = result["p99_ratio"] < 2 and result["rss_growth_mib"] < 100
    print(f"goals: {'met' if met else 'NOT met'}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

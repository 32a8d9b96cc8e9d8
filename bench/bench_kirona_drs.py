"""Kirona DRS availability: concurrent 7-day windows vs one at a time, and the slot cache.

Run: ``.venv/bin/python -m bench.bench_kirona_drs [--latency 1,2] [--properties 4]``

Starts the DRS simulator answering each ``checkAvailability`` in 1-2 s (as real DRS does),
then measures for distinct properties (cache misses):
- the first page with windows fetched concurrently (the adaptor's default),
- the same page with windows fetched one after another (baseline, same run),
- one round of calls (a single ``checkAvailability``) for reference,
and the repeated page served from the cache (p50/p99 over many requests).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

from adaptors.kirona_drs import KironaDRSAdaptor, KironaDRSConfig
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.model import AvailabilityQuery, JobSize, JobSpec, Property, Trade

ROOT = Path(__file__).resolve().parents[1]
JOB = JobSpec(sor_code="20060020", trade=Trade.PLUMBING, size=JobSize.SMALL, duration_minutes=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(latency: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adaptors.kirona_drs.simulator",
            "--port",
            str(port),
            "--availability-latency",
            latency,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/_sim/state", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("simulator did not start")


def make(base: str, tmp: Path, **options: object) -> KironaDRSAdaptor:
    config = KironaDRSConfig.model_validate(
        {
            "wsdl": f"{base}/DRSService?wsdl",
            "login": "gateway",
            "password": "drs-secret",
            "contract": "RESPONSIVE",
            "user_id": "BENCH",
            "timeout_seconds": 10,
            "search_days": 28,
            "cache_seconds": 600,
            **options,
        }
    )
    return KironaDRSAdaptor(
        config, AdaptorContext(council="bench", name="drs", config_dir=tmp, data_dir=tmp)
    )


def prop(i: int, run: str) -> Property:
    return Property(id=f"{run}{i:05d}", address_lines=["1 Bench Street"], postcode="LN1 1AA")


async def timed_page(adaptor: KironaDRSAdaptor, p: Property, page_size: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    page = await adaptor.availability(
        AvailabilityQuery(property=p, job=JOB, start_from=date.today(), page_size=page_size)
    )
    return time.perf_counter() - t0, len(page.slots)


async def main(latency: str, properties: int, repeats: int) -> None:
    proc, base = start_simulator(latency)
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            concurrent = make(base, tmp, concurrent_windows=4)
            sequential = make(base, tmp, concurrent_windows=1)
            single = make(base, tmp, concurrent_windows=1, search_days=7)
            for a in (concurrent, sequential, single):
                await a.client.session()  # sessions are opened once a day; not measured
            rows = []
            for page_size in (10, 50):
                one_round = [
                    (await timed_page(single, prop(i, f"R{page_size}"), 200))[0]
                    for i in range(properties)
                ]
                conc = [
                    await timed_page(concurrent, prop(i, f"C{page_size}"), page_size)
                    for i in range(properties)
                ]
                seq = [
                    await timed_page(sequential, prop(i, f"S{page_size}"), page_size)
                    for i in range(properties)
                ]
                rows.append((page_size, one_round, conc, seq))
            # the repeated page, from the cache
            warm = prop(0, "C50")
            q = AvailabilityQuery(property=warm, job=JOB, start_from=date.today(), page_size=50)
            cached = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                await concurrent.availability(q)
                cached.append((time.perf_counter() - t0) * 1000)
            for a in (concurrent, sequential, single):
                await a.close()
    finally:
        proc.terminate()
        proc.wait(timeout=5)

    print(
        f"simulated checkAvailability latency: {latency} s per call; "
        f"{properties} properties per case (each a cache miss); search_days=28 (4 windows)"
    )
    print(
        f"{'page':>5} {'1 call (s)':>11} {'concurrent (s)':>15} {'sequential (s)':>15} "
        f"{'slots':>6} {'speed-up':>9} {'conc/1 call':>12}"
    )
    for page_size, one_round, conc, seq in rows:
        c = statistics.median(t for t, _ in conc)
        s = statistics.median(t for t, _ in seq)
        r = statistics.median(one_round)
        print(
            f"{page_size:>5} {r:>11.2f} {c:>15.2f} {s:>15.2f} {conc[0][1]:>6} "
            f"{s / c:>8.2f}x {c / r:>11.2f}x   (max concurrent {max(t for t, _ in conc):.2f} s)"
        )
    cached.sort()
    p50 = cached[len(cached) // 2]
    p99 = cached[int(len(cached) * 0.99) - 1]
    print(
        f"repeated page from cache: {repeats} requests, p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
        f"max {cached[-1]:.3f} ms (target p99 < 10 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", default="1,2", help="seconds per availability call, MIN,MAX")
    parser.add_argument("--properties", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.latency, args.properties, args.repeats))

"""Per-call overhead of the Totalmobile adaptor against a raw httpx call, same simulator, same run.

    .venv/bin/python -m bench.bench_totalmobile [--calls 400] [--latency-ms 0]

Starts the simulator on a free loopback port, then measures, interleaved in rounds:
- browse: ``adaptor.availability`` (one page of 10 slots = one Browse call) against a raw
  ``httpx`` GET of the same Browse URL with a bearer token, decoding the JSON;
- status: ``adaptor.status`` against a raw GET of the job.
Prints p50/p95 per call, the p50 ratio (goal < 1.3x), and the number of token requests the
simulator saw during the adaptor's calls (goal: 1 for the whole run, never one per call).
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
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog

from adaptors.totalmobile import TotalmobileAdaptor, TotalmobileConfig
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.model import (
    AvailabilityQuery,
    BookingHandle,
    BookingOrder,
    Contact,
    JobSize,
    JobSpec,
    Property,
    Trade,
)
from repairs_gateway_sdk.timeutil import today_london

ROOT = Path(__file__).resolve().parents[1]
CLIENT_ID, SECRET, WORLD = "repairs-gateway", "s3cret", "housing-repairs"
PROP = Property(id="00012345", address_lines=["1 High Street", "Lincoln"], postcode="LN1 1AA")
JOB = JobSpec(sor_code="N630945", trade=Trade.PLUMBING, size=JobSize.SMALL, duration_minutes=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(port: int, latency_ms: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adaptors.totalmobile.simulator",
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
            "--log-level",
            "critical",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sim/state", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("simulator did not start") from None
            time.sleep(0.1)


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


async def run(calls: int, latency_ms: int) -> dict[str, Any]:
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # measure, not log I/O
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_simulator(port, latency_ms)
    try:
        config = TotalmobileConfig.model_validate(
            {"base_url": url, "client_id": CLIENT_ID, "client_secret": SECRET, "world": WORLD}
        )
        ctx = AdaptorContext(
            council="bench",
            name="tm",
            config_dir=Path(tempfile.gettempdir()),
            data_dir=Path(tempfile.gettempdir()),
        )
        adaptor = TotalmobileAdaptor(config, ctx)
        start = today_london() + timedelta(days=1)
        query = AvailabilityQuery(property=PROP, job=JOB, start_from=start, page_size=10)
        raw = httpx.AsyncClient(base_url=url, timeout=10)
        admin = httpx.AsyncClient(base_url=url, timeout=10)
        tok = (
            await raw.post(
                "/identity/connect/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": CLIENT_ID,
                    "client_secret": SECRET,
                    "scope": "optimise serviceconnect",
                },
            )
        ).json()["access_token"]
        sc_headers = {"Authorization": f"Bearer {tok}", "Accept": "application/json; version=3"}
        job_headers = {"Authorization": f"Bearer {tok}", "Accept": "application/json"}
        params: dict[str, Any] = {
            "WorkType": "PLUMBING",
            "Duration": 60,
            "PostCode": "LN1 1AA",
            "StartDate": start.isoformat(),
            "Weeks": 2,
        }
        browse_path = f"/api/serviceconnect/worlds/{WORLD}/Availability/Browse"

        # One booked job to read back.
        page = await adaptor.availability(query)
        await adaptor.book(
            BookingOrder(
                reference="BENCH-1",
                property=PROP,
                job=JOB,
                slot=page.slots[0],
                description="bench",
                contact=Contact(phone="07700900000"),
            )
        )
        handle = BookingHandle(reference="BENCH-1", property_id=PROP.id, job=JOB)
        job_path = f"/api/optimise/worlds/{WORLD}/jobs/BENCH-1"

        async def raw_browse() -> Any:
            r = await raw.get(browse_path, params=params, headers=sc_headers)
            r.raise_for_status()
            return r.json()

        async def raw_job() -> Any:
            r = await raw.get(job_path, headers=job_headers)
            r.raise_for_status()
            return r.json()

        async def ad_browse() -> Any:
            p = await adaptor.availability(query)
            assert len(p.slots) == 10
            return p

        async def ad_status() -> Any:
            return await adaptor.status(handle)

        for fn in (raw_browse, ad_browse, raw_job, ad_status):  # warm up
            await timed(fn, 30)
        before = (await admin.get("/_sim/state")).json()
        samples: dict[str, list[float]] = {
            k: [] for k in ("raw_browse", "ad_browse", "raw_job", "ad_status")
        }
        rounds, per = 10, max(1, calls // 10)
        for _ in range(rounds):  # interleaved so drift hits both sides alike
            samples["raw_browse"] += await timed(raw_browse, per)
            samples["ad_browse"] += await timed(ad_browse, per)
            samples["raw_job"] += await timed(raw_job, per)
            samples["ad_status"] += await timed(ad_status, per)
        after = (await admin.get("/_sim/state")).json()
        await raw.aclose()
        await admin.aclose()
        await adaptor.close()
    finally:
        proc.terminate()
        proc.wait(timeout=5)

    def row(raw_key: str, ad_key: str) -> dict[str, float]:
        r50, a50 = pct(samples[raw_key], 50), pct(samples[ad_key], 50)
        return {
            "raw_p50_ms": r50,
            "raw_p95_ms": pct(samples[raw_key], 95),
            "adaptor_p50_ms": a50,
            "adaptor_p95_ms": pct(samples[ad_key], 95),
            "ratio_p50": a50 / r50,
        }

    adaptor_calls = 2 * rounds * per
    return {
        "calls_per_side": rounds * per,
        "latency_ms": latency_ms,
        "browse": row("raw_browse", "ad_browse"),
        "status": row("raw_job", "ad_status"),
        "adaptor_calls_measured": adaptor_calls,
        "token_requests_during_measurement": after["token_requests"] - before["token_requests"],
        "token_requests_total": after["token_requests"],
        "browse_requests_by_adaptor_and_raw": (
            after["requests"]["browse"] - before["requests"]["browse"]
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=400)
    p.add_argument("--latency-ms", type=int, default=0)
    args = p.parse_args()
    res = asyncio.run(run(args.calls, args.latency_ms))
    print(
        f"Totalmobile adaptor vs raw httpx, {res['calls_per_side']} calls per side, "
        f"simulated latency {res['latency_ms']} ms"
    )
    print(
        f"{'call':<8}{'raw p50':>10}{'raw p95':>10}{'adaptor p50':>13}{'adaptor p95':>13}"
        f"{'p50 ratio':>11}"
    )
    for name in ("browse", "status"):
        r = res[name]
        print(
            f"{name:<8}{r['raw_p50_ms']:>9.2f}m{r['raw_p95_ms']:>9.2f}m"
            f"{r['adaptor_p50_ms']:>12.2f}m{r['adaptor_p95_ms']:>12.2f}m"
            f"{r['ratio_p50']:>10.2f}x"
        )
    print(
        f"token requests during {res['adaptor_calls_measured']} adaptor calls: "
        f"{res['token_requests_during_measurement']} (whole run: {res['token_requests_total']},"
        f" the raw client's included)"
    )
    ok = (
        all(res[n]["ratio_p50"] < 1.3 for n in ("browse", "status"))
        and res["token_requests_during_measurement"] == 0
    )
    print("goal (<1.3x at p50, no token request per call):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()

"""Per-call cost of the civica_uh adaptor against a raw httpx POST of the same envelope.

    .venv/bin/python -m bench.bench_civica_uh [--calls 400]

Starts the UH simulator on a free loopback port, then for GetPropertyListByPostCode (LN2 4BB,
7 properties) and GetPropertyByRef measures, interleaved in the same run:
- adaptor: build the request with zeep from the WSDL, send, strict hardened parse of the reply,
  check Success and map the reply to the gateway's model (what ``addresses`` does per call);
- raw: ``httpx.AsyncClient.post`` of the identical envelope bytes, reading the body.
Prints p50/p95 and the ratio adaptor/raw at p50 (goal: under 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from adaptors.civica_uh import CivicaUHAdaptor
from adaptors.civica_uh.client import items, text
from adaptors.civica_uh.mapping import details_from_dto, summary_lines
from repairs_gateway_sdk.adaptor import AdaptorContext

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(base: str, calls: int) -> list[dict[str, Any]]:
    ctx = AdaptorContext(council="bench", name="uh", config_dir=ROOT, data_dir=ROOT)
    uh = CivicaUHAdaptor(
        CivicaUHAdaptor.Config(
            property_wsdl=f"{base}/PropertyService.svc?wsdl",
            repair_endpoint=f"{base}/RepairService.svc",
            username="gateway",
            password="secret",
            user_id=1,
            cache_seconds=0,
        ),
        ctx,
    )
    prop, _ = await uh._services()
    captured: dict[str, tuple[bytes, dict[str, str]]] = {}

    async def capture(request: httpx.Request) -> None:
        op = request.headers["soapaction"].strip('"').rsplit("/", 1)[-1]
        captured[op] = (
            request.content,
            {
                "Content-Type": request.headers["content-type"],
                "SOAPAction": request.headers["soapaction"],
            },
        )

    assert uh._http is not None
    uh._http.event_hooks["request"].append(capture)

    async def list_call() -> None:
        reply = await prop.call(
            "GetPropertyListByPostCode", read=True, PostCode="LN2 4BB", MaxRecords=500
        )
        for s in items(reply, "PropertyList", "PropertySummary"):
            summary_lines(s), text(s, "PropertyReference")

    async def ref_call() -> None:
        reply = await prop.call("GetPropertyByRef", read=True, PropertyReference="00020001")
        details_from_dto("00020001", reply["Property"])

    await list_call()
    await ref_call()
    uh._http.event_hooks["request"].clear()
    raw = httpx.AsyncClient(timeout=10)
    results = []
    for op, adaptor_call in (
        ("GetPropertyListByPostCode", list_call),
        ("GetPropertyByRef", ref_call),
    ):
        body, headers = captured[op]

        async def raw_call(body: bytes = body, headers: dict[str, str] = headers) -> None:
            r = await raw.post(f"{base}/PropertyService.svc", content=body, headers=headers)
            r.raise_for_status()
            await r.aread()

        for _ in range(30):  # warm up both paths
            await adaptor_call()
            await raw_call()
        a_times, r_times = [], []
        for _ in range(calls):
            t = time.perf_counter()
            await adaptor_call()
            a_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            await raw_call()
            r_times.append(time.perf_counter() - t)
        results.append(
            {
                "op": op,
                "calls": calls,
                "adaptor_p50_ms": pct(a_times, 0.5) * 1000,
                "adaptor_p95_ms": pct(a_times, 0.95) * 1000,
                "raw_p50_ms": pct(r_times, 0.5) * 1000,
                "raw_p95_ms": pct(r_times, 0.95) * 1000,
                "ratio_p50": pct(a_times, 0.5) / pct(r_times, 0.5),
                "adaptor_mean_ms": statistics.mean(a_times) * 1000,
                "raw_mean_ms": statistics.mean(r_times) * 1000,
            }
        )
    await raw.aclose()
    await uh.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "adaptors.civica_uh.simulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/_sim/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        results = asyncio.run(run(base, args.calls))
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    print(
        f"{'operation':28} {'adaptor p50':>12} {'raw p50':>9} {'ratio':>6} "
        f"{'adaptor p95':>12} {'raw p95':>9}"
    )
    for r in results:
        print(
            f"{r['op']:28} {r['adaptor_p50_ms']:10.2f}ms {r['raw_p50_ms']:7.2f}ms "
            f"{r['ratio_p50']:6.2f} {r['adaptor_p95_ms']:10.2f}ms {r['raw_p95_ms']:7.2f}ms"
        )
    worst = max(r["ratio_p50"] for r in results)
    print(
        f"goal: adaptor/raw at p50 < 1.5 -> {'met' if worst < 1.5 else 'NOT met'} "
        f"(worst {worst:.2f})"
    )


if __name__ == "__main__":
    main()

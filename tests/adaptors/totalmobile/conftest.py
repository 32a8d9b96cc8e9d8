"""Fixtures: a real simulator process on loopback, reset before each test, and adaptors."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adaptors.base import AdaptorContext
from adaptors.totalmobile import TotalmobileAdaptor, TotalmobileConfig

ROOT = Path(__file__).resolve().parents[3]
CLIENT_ID, CLIENT_SECRET, WORLD = "repairs-gateway", "s3cret", "housing-repairs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def sim_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adaptors.totalmobile.simulator",
            "--port",
            str(port),
            "--log-level",
            "critical",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/_sim/state", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("Totalmobile simulator did not start") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


class Sim:
    """Admin handle on the running simulator."""

    def __init__(self, url: str, http: httpx.AsyncClient) -> None:
        self.url = url
        self.http = http

    async def reset(self, **body: Any) -> None:
        (await self.http.post("/_sim/reset", json=body)).raise_for_status()

    async def faults(self, **body: Any) -> None:
        (await self.http.post("/_sim/faults", json=body)).raise_for_status()

    async def fail(self, op: str, action: str = "error", **rule: Any) -> None:
        await self.faults(rules=[{"op": op, "action": action, **rule}])

    async def state(self) -> dict[str, Any]:
        resp = await self.http.get("/_sim/state")
        resp.raise_for_status()
        return dict(resp.json())

    async def set_status(self, reference: str, status: str) -> None:
        resp = await self.http.post(f"/_sim/jobs/{reference}/status", json={"status": status})
        resp.raise_for_status()


@pytest.fixture
async def sim(sim_url: str) -> AsyncIterator[Sim]:
    async with httpx.AsyncClient(base_url=sim_url, timeout=5) as http:
        handle = Sim(sim_url, http)
        await handle.reset()
        yield handle
        await handle.reset()


def options(base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "world": WORLD,
        "timeout_seconds": 2,
        "horizon_days": 366,
        **extra,
    }


def make_adaptor(tmp_path: Path, base_url: str, **extra: Any) -> TotalmobileAdaptor:
    config = TotalmobileConfig.model_validate(options(base_url, **extra))
    ctx = AdaptorContext(council="demo", name="tm", config_dir=tmp_path, data_dir=tmp_path)
    return TotalmobileAdaptor(config, ctx)


@pytest.fixture
async def adaptor(tmp_path: Path, sim: Sim) -> AsyncIterator[TotalmobileAdaptor]:
    a = make_adaptor(tmp_path, sim.url)
    yield a
    await a.close()

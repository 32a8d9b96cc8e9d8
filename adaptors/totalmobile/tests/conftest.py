"""Fixtures: a real simulator process on loopback, reset before each test, and adaptors.

The gateway's own tests of this adaptor through its API (tests/integration/totalmobile) reuse
these fixtures; nothing here imports the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adaptors.totalmobile import TotalmobileAdaptor, TotalmobileConfig
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.testing.simulators import running_simulator

CLIENT_ID, CLIENT_SECRET, WORLD = "repairs-gateway", "s3cret", "housing-repairs"


@pytest.fixture(scope="session")
def sim_url() -> Iterator[str]:
    with running_simulator("adaptors.totalmobile.simulator", "--log-level", "critical") as url:
        yield url


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

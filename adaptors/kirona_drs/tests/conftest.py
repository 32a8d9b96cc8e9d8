"""Fixtures: the DRS simulator as a real subprocess on a free loopback port, reset per test.

The gateway's own tests of this adaptor through its API (tests/integration/kirona_drs) reuse
these fixtures; nothing here imports the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adaptors.kirona_drs import KironaDRSAdaptor, KironaDRSConfig
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.model import JobSize, JobSpec, Property, Trade
from repairs_gateway_sdk.testing.simulators import running_simulator

HERE = Path(__file__).resolve().parents[1]  # the adaptor's folder
SUBSET_WSDL = HERE / "wsdl" / "drs-subset.wsdl"
# the vendor's own WSDL, beside the gateway's checkout (tests needing it skip without it)
VENDOR_WSDL = HERE.parents[1] / ".." / "shared" / "vendor-contracts" / "kirona-drs" / "drs.wsdl"

PROPERTY = Property(
    id="000123", uprn="100030001234", address_lines=["1 High Street", "Lincoln"], postcode="LN1 1AA"
)
PLUMBING = JobSpec(
    sor_code="20060020", trade=Trade.PLUMBING, size=JobSize.SMALL, duration_minutes=60
)


@dataclass
class Sim:
    base: str

    @property
    def endpoint(self) -> str:
        return f"{self.base}/DRSService"

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = httpx.post(f"{self.base}/_sim/{path}", json=body or {}, timeout=5)
        r.raise_for_status()
        return dict(r.json())

    def reset(self, **options: Any) -> None:
        self._post("reset", options)

    def faults(self, *faults: dict[str, Any]) -> None:
        self._post("faults", {"faults": list(faults)})

    def clock(self, now: str | None) -> None:
        self._post("clock", {"now": now})

    def expire_sessions(self) -> None:
        self._post("expire-sessions")

    def set_status(self, reference: str, status: str) -> None:
        self._post(f"orders/{reference}/status", {"status": status})

    def state(self) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/_sim/state", timeout=5)
        r.raise_for_status()
        return dict(r.json())

    def options(self, **overrides: Any) -> dict[str, Any]:
        return {
            "wsdl": f"{self.endpoint}?wsdl",
            "login": "gateway",
            "password": "drs-secret",
            "contract": "RESPONSIVE",
            "user_id": "REPAIRSGW",
            "timeout_seconds": 2,
            "cache_seconds": 30,
            **overrides,
        }


@pytest.fixture(scope="session")
def simulator() -> Iterator[Sim]:
    with running_simulator(
        "adaptors.kirona_drs.simulator", "--availability-latency", "0.02"
    ) as base:
        yield Sim(base)


@pytest.fixture
def sim(simulator: Sim) -> Iterator[Sim]:
    simulator.reset()
    yield simulator
    simulator.reset()


AdaptorFactory = Callable[..., KironaDRSAdaptor]


@pytest.fixture
async def make_adaptor(sim: Sim, tmp_path: Path) -> AsyncIterator[AdaptorFactory]:
    made: list[KironaDRSAdaptor] = []

    def factory(**overrides: Any) -> KironaDRSAdaptor:
        config = KironaDRSConfig.model_validate(sim.options(**overrides))
        ctx = AdaptorContext(council="test", name="drs", config_dir=tmp_path, data_dir=tmp_path)
        adaptor = KironaDRSAdaptor(config, ctx)
        made.append(adaptor)
        return adaptor

    yield factory
    for adaptor in made:
        await adaptor.close()

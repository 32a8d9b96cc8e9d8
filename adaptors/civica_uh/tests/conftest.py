"""Fixtures: the UH simulator as a real subprocess on a free loopback port, reset per test.

The gateway's own tests of this adaptor through its API (tests/integration/civica_uh) reuse
these fixtures; nothing here imports the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adaptors.civica_uh import CivicaUHAdaptor
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.testing.simulators import running_simulator

HERE = Path(__file__).resolve().parents[1]  # the adaptor's folder
SUBSET_WSDL = HERE / "wsdl" / "PropertyService.wsdl"
# the vendor's own WSDL, beside the gateway's checkout (tests needing it skip without it)
VENDOR_WSDL = (
    HERE.parents[1] / ".." / "shared" / "vendor-contracts" / "civica-uh" / "PropertyService.wsdl"
)


@dataclass
class Sim:
    base: str

    @property
    def property_url(self) -> str:
        return f"{self.base}/PropertyService.svc"

    @property
    def repair_url(self) -> str:
        return f"{self.base}/RepairService.svc"

    def faults(self, **faults: Any) -> None:
        httpx.post(f"{self.base}/_sim/faults", json=faults, timeout=5).raise_for_status()

    def clear(self) -> None:
        self.faults()

    def reset(self) -> None:
        httpx.post(f"{self.base}/_sim/reset", timeout=5).raise_for_status()

    def state(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/_sim/state", timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def options(self, **overrides: Any) -> dict[str, Any]:
        return {
            "property_wsdl": f"{self.property_url}?wsdl",
            "repair_endpoint": self.repair_url,
            "username": "gateway",
            "password": "secret",
            "source_system": "REPAIRSGW",
            "user_id": 42,
            "timeout_seconds": 2,
            **overrides,
        }


@pytest.fixture(scope="session")
def simulator() -> Iterator[Sim]:
    with running_simulator("adaptors.civica_uh.simulator", ready_path="/_sim/health") as base:
        yield Sim(base)


@pytest.fixture
def sim(simulator: Sim) -> Iterator[Sim]:
    simulator.reset()
    yield simulator
    simulator.reset()


def context(tmp: Path) -> AdaptorContext:
    return AdaptorContext(council="lincoln", name="uh", config_dir=tmp, data_dir=tmp)


@pytest.fixture
async def make_adaptor(tmp_path: Path) -> AsyncIterator[Callable[..., CivicaUHAdaptor]]:
    made: list[CivicaUHAdaptor] = []

    def make(options: dict[str, Any]) -> CivicaUHAdaptor:
        adaptor = CivicaUHAdaptor(CivicaUHAdaptor.Config(**options), context(tmp_path))
        made.append(adaptor)
        return adaptor

    yield make
    for adaptor in made:
        await adaptor.close()


@pytest.fixture
def uh(sim: Sim, make_adaptor: Callable[..., CivicaUHAdaptor]) -> CivicaUHAdaptor:
    return make_adaptor(sim.options())

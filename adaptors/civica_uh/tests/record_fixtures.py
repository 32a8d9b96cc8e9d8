"""Re-record the respx fixtures from the simulator (run by hand when the WSDL subset changes):

.venv/bin/python -m adaptors.civica_uh.tests.record_fixtures
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from lxml import etree

from adaptors.civica_uh import CivicaUHAdaptor
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.model import Contact, JobSize, JobSpec, Trade, WorksOrder
from repairs_gateway_sdk.testing.simulators import running_simulator

from .conftest import HERE, SUBSET_WSDL, Sim

FIXTURES = Path(__file__).parent / "fixtures"
NS = "http://schemas.civica.co.uk/UHWeb/2013/03"
KEYS = ("PostCode", "PropertyReference", "RequestReference", "OrderReference", "PropertyRef")


def fixture_name(request_body: bytes, action: str) -> str:
    op = action.strip('"').rsplit("/", 1)[-1]
    root = etree.fromstring(request_body)
    key = next(
        (
            root.findtext(f".//{{{NS}}}{k}")
            for k in KEYS
            if root.find(f".//{{{NS}}}{k}") is not None
        ),
        "",
    )
    return f"{op}_{(key or '').replace(' ', '').replace('-', '')}"


async def record(sim: Sim) -> None:
    FIXTURES.mkdir(exist_ok=True)
    for old in FIXTURES.glob("*.xml"):
        old.unlink()

    async def save(response: httpx.Response) -> None:
        await response.aread()
        req = response.request
        name = fixture_name(req.content, req.headers.get("soapaction", ""))
        if (FIXTURES / f"{name}.response.xml").exists():
            name += "_again"  # the second call of the same kind (e.g. found after created)
        (FIXTURES / f"{name}.request.xml").write_bytes(req.content)
        (FIXTURES / f"{name}.response.xml").write_bytes(response.content)

    ctx = AdaptorContext(council="lincoln", name="uh", config_dir=HERE, data_dir=HERE)
    uh = CivicaUHAdaptor(
        CivicaUHAdaptor.Config(
            **sim.options(
                property_wsdl=str(SUBSET_WSDL),
                property_endpoint=sim.property_url,
            )
        ),
        ctx,
    )
    await uh.start()
    assert uh._http is not None
    uh._http.event_hooks["response"].append(save)
    await uh.addresses("LN5 7CC")
    await uh.operative_notes("00012003")
    order = WorksOrder(
        reference="K7QH-3M9T",
        property_id="00030001",
        job=JobSpec(
            sor_code="20060020", trade=Trade.PLUMBING, size=JobSize.SMALL, duration_minutes=60
        ),
        description="Kitchen tap dripping",
        contact=Contact(name="Sam", phone="07700900123"),
    )
    for _ in range(2):  # the second time UH answers with the order it already has
        await uh.raise_works_order(order)
    await uh.close()


def main() -> None:
    with running_simulator("adaptors.civica_uh.simulator", ready_path="/_sim/health") as base:
        asyncio.run(record(Sim(base)))


if __name__ == "__main__":
    main()

"""The adaptor built from the vendor's real PropertyService WSDL (../shared), pointed at the
simulator: the project's own WSDL subset must not be the only thing it works with."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adaptors.civica_uh import CivicaUHAdaptor
from repairs_gateway_sdk.model import PropertyKind

from .conftest import VENDOR_WSDL, Sim

pytestmark = pytest.mark.skipif(
    not VENDOR_WSDL.exists(),
    reason="../shared/vendor-contracts/civica-uh/PropertyService.wsdl is absent (CI has it)",
)


async def test_addresses_and_notes_through_the_vendor_wsdl(
    sim: Sim, make_adaptor: Callable[..., CivicaUHAdaptor]
) -> None:
    uh = make_adaptor(
        sim.options(property_wsdl=str(VENDOR_WSDL.resolve()), property_endpoint=sim.property_url)
    )
    props = {p.id: p for p in await uh.addresses("LN2 4BB")}
    assert props["00020000"].kind == PropertyKind.COMMUNAL_BLOCK
    assert props["00020001"].parent_id == "00020000"
    assert not props["00020004"].online_repairs
    assert await uh.operative_notes("00012003") == ["ALERT:CV02", "ALERT:DOG", "ASB:HZ0003"]
    assert (await uh.get_property("00030000")) is not None

"""The adaptor built from the vendor's own WSDL (../shared), pointed at the simulator."""

from __future__ import annotations

from datetime import date

import pytest

from repairs_gateway_sdk.model import (
    AvailabilityQuery,
    BookingHandle,
    BookingOrder,
    Contact,
    RepairStatus,
)

from .conftest import PLUMBING, PROPERTY, VENDOR_WSDL, AdaptorFactory, Sim

pytestmark = pytest.mark.skipif(
    not VENDOR_WSDL.exists(),
    reason=f"vendor DRS WSDL not found at {VENDOR_WSDL.resolve()} (../shared is absent in a "
    "user's own clone; CI always has it)",
)


async def test_browse_book_status_cancel_with_the_vendor_wsdl(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor(wsdl=str(VENDOR_WSDL.resolve()), endpoint=sim.endpoint)
    page = await drs.availability(
        AvailabilityQuery(property=PROPERTY, job=PLUMBING, start_from=date.today(), page_size=3)
    )
    assert len(page.slots) == 3 and page.resume is not None
    order = BookingOrder(
        reference="RG-VENDOR",
        property=PROPERTY,
        job=PLUMBING,
        slot=page.slots[0],
        description="Tap",
        contact=Contact(phone="1"),
    )
    conf = await drs.book(order)
    assert conf.start == page.slots[0].start
    handle = BookingHandle(reference="RG-VENDOR", property_id=PROPERTY.id, job=PLUMBING)
    moved = await drs.reschedule(handle, page.slots[2])
    assert moved.start == page.slots[2].start
    assert (await drs.status(handle)).status == RepairStatus.BOOKED
    await drs.cancel(handle, "test")
    assert sim.state()["orders"] == 0


def test_vendor_wsdl_declares_every_operation_the_adaptor_calls() -> None:
    from repairs_gateway_sdk.soap import parsed_wsdl

    doc = parsed_wsdl(str(VENDOR_WSDL.resolve()), timeout=5)
    binding = next(iter(doc.bindings.values()))
    used = {
        "openSession",
        "closeSession",
        "checkAvailability",
        "createOrder",
        "scheduleBooking",
        "selectOrder",
        "deleteOrder",
    }
    assert used <= set(binding._operations)

"""Issue 11 item 9: honest answers when DRS is vague. Real installations answer a failed
``scheduleBooking`` with ``status=error`` and a generic text, so a taken slot cannot be told
from the reply: the adaptor re-reads the slot's availability. The simulator's ``vague`` fault
answers refusals that way; these tests run against it, through the adaptor (through the API:
tests/integration/kirona_drs/test_vague_refusals_api.py)."""

from __future__ import annotations

import pytest

from adaptors.kirona_drs.simulator.app import VAGUE_MESSAGE
from repairs_gateway_sdk.errors import BackendUnavailable, SlotUnavailable

from .conftest import AdaptorFactory, Sim
from .test_adaptor_sim import OTHER, handle, order, query

VAGUE = {"op": "scheduleBooking", "kind": "vague"}
GENERIC_ERROR = {  # the same text when DRS simply failed: the slot is still free
    "op": "scheduleBooking",
    "kind": "status",
    "status": "error",
    "message": VAGUE_MESSAGE,
    "times": 1,
}


async def test_the_simulator_answers_a_taken_slot_vaguely(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    from adaptors.kirona_drs.wire import DRSFailure

    sim.reset(capacity=1)
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    await drs.book(order("RG-A", slot))
    sim.faults(VAGUE)
    theirs = order("RG-B", slot, prop=OTHER)
    created = await drs._create_order(theirs, drs._order_body(theirs, OTHER.id, slot.start))
    booking = {
        "orderId": int(created["orderId"]),
        "primaryOrderNumber": "RG-B",
        "planningWindowStart": slot.start.isoformat(),
        "planningWindowEnd": slot.end.isoformat(),
    }
    with pytest.raises(DRSFailure) as failure:
        await drs.client.call("scheduleBooking", {"userId": "REPAIRSGW", "theBooking": booking})
    assert failure.value.status == "error" and failure.value.message == VAGUE_MESSAGE


async def test_a_vague_refusal_of_a_taken_slot_is_slot_unavailable(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    sim.reset(capacity=1)
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    await drs.book(order("RG-A", slot))
    sim.faults(VAGUE)
    with pytest.raises(SlotUnavailable):
        await drs.book(order("RG-B", slot, prop=OTHER))
    state = sim.state()
    assert state["orders"] == 1 and "RG-B" not in state["orders_by_reference"]
    assert state["calls"]["checkAvailability"] >= 2  # the slot was read again, not guessed


async def test_a_vague_error_on_a_free_slot_is_an_outage(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    sim.faults(GENERIC_ERROR)
    with pytest.raises(BackendUnavailable):
        await drs.book(order("RG-C", slot))
    assert "RG-C" not in sim.state()["orders_by_reference"]  # the new order is withdrawn


async def test_when_the_re_read_fails_too_it_is_an_outage(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    sim.reset(capacity=1)
    drs = make_adaptor(read_attempts=1)
    slot = (await drs.availability(query())).slots[0]
    await drs.book(order("RG-A", slot))
    sim.faults(VAGUE, {"op": "checkAvailability", "kind": "fault", "message": "boom"})
    with pytest.raises(BackendUnavailable):
        await drs.book(order("RG-B", slot, prop=OTHER))


async def test_a_vague_refusal_of_a_move_to_a_taken_slot_is_slot_unavailable(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    sim.reset(capacity=1)
    drs = make_adaptor()
    first, second = (await drs.availability(query())).slots[:2]
    await drs.book(order("RG-A", first))
    await drs.book(order("RG-B", second, prop=OTHER))
    sim.faults(VAGUE)
    with pytest.raises(SlotUnavailable):
        await drs.reschedule(handle("RG-A"), second)
    assert sim.state()["orders_by_reference"]["RG-A"]["start"] is not None  # still booked


async def test_a_vague_error_on_a_move_to_a_free_slot_is_an_outage(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor()
    first, second = (await drs.availability(query())).slots[:2]
    await drs.book(order("RG-A", first))
    sim.faults(GENERIC_ERROR)
    with pytest.raises(BackendUnavailable):
        await drs.reschedule(handle("RG-A"), second)

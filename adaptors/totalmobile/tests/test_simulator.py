"""The adaptor against the real simulator process on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adaptors.totalmobile.adaptor import TotalmobileAdaptor
from repairs_gateway_sdk.errors import (
    BackendAuthFailed,
    BackendRejected,
    BackendUnavailable,
    InvalidInput,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import RepairStatus, VendorSlot

from .conftest import Sim, make_adaptor
from .factories import handle, order, query


async def first_slot(a: TotalmobileAdaptor, label: str = "morning") -> VendorSlot:
    page = await a.availability(query(page_size=20))
    return next(s for s in page.slots if s.label == label)


async def test_browse_offers_the_seeded_planning_windows(adaptor: TotalmobileAdaptor) -> None:
    page = await adaptor.availability(query(page_size=20))
    assert len(page.slots) == 20 and page.resume is not None
    assert {s.label for s in page.slots} == {"morning", "afternoon", "school_run", "all_day"}
    nxt = await adaptor.availability(query(page_size=20, resume=page.resume))
    assert nxt.slots[0].start >= page.slots[-1].start
    assert not {(s.start, s.end) for s in nxt.slots} & {(s.start, s.end) for s in page.slots}


async def test_book_reschedule_status_cancel(adaptor: TotalmobileAdaptor, sim: Sim) -> None:
    slot = await first_slot(adaptor)
    conf = await adaptor.book(order("GW-100", slot))
    assert (conf.start, conf.end, conf.label) == (slot.start, slot.end, "morning")
    assert conf.vendor_booking_ref

    st = await adaptor.status(handle("GW-100"))
    assert (st.status, st.start, st.end) == (RepairStatus.BOOKED, slot.start, slot.end)

    pm = await first_slot(adaptor, "afternoon")
    moved = await adaptor.reschedule(handle("GW-100"), pm)
    assert (moved.start, moved.label) == (pm.start, "afternoon")
    assert (await adaptor.status(handle("GW-100"))).start == pm.start

    await sim.set_status("GW-100", "Completed")
    assert (await adaptor.status(handle("GW-100"))).status == RepairStatus.COMPLETED

    await adaptor.cancel(handle("GW-100"), "resident cancelled")
    await adaptor.cancel(handle("GW-100"), "resident cancelled")  # absent: not an error
    assert (await adaptor.status(handle("GW-100"))).status == RepairStatus.CANCELLED
    state = await sim.state()
    assert state["jobs"] == 0 and state["jobs_created"] == 1
    assert state["deletions"] == [{"reference": "GW-100", "reason": "CUSTOMER_CANCELLED"}]


async def test_same_reference_twice_is_one_job(adaptor: TotalmobileAdaptor, sim: Sim) -> None:
    slot = await first_slot(adaptor)
    first = await adaptor.book(order("GW-101", slot))
    again = await adaptor.book(order("GW-101", slot))
    assert first == again
    state = await sim.state()
    assert (state["jobs"], state["jobs_created"], state["bookings"]) == (1, 1, 1)


@pytest.mark.parametrize("op", ["create_job", "booking"])
async def test_lost_reply_after_commit_makes_no_duplicate(
    adaptor: TotalmobileAdaptor, sim: Sim, op: str
) -> None:
    slot = await first_slot(adaptor)
    await sim.fail(op, "lost_reply")
    conf = await adaptor.book(order("GW-102", slot))
    assert conf.start == slot.start
    state = await sim.state()
    assert (state["jobs"], state["jobs_created"], state["bookings"]) == (1, 1, 1)
    assert state["requests"][op] == 1  # looked up, not sent again
    assert state["requests"]["get_job"] >= 1  # the look-up by reference happened


async def test_lost_reply_then_gateway_retry_makes_no_duplicate(
    adaptor: TotalmobileAdaptor, sim: Sim
) -> None:
    slot = await first_slot(adaptor)
    # The booking reply is lost and the look-up fails too: the outcome is unknown.
    await sim.faults(
        rules=[
            {"op": "booking", "action": "lost_reply"},
            {"op": "get_job", "action": "error", "status": 503, "times": 3},
        ]
    )
    with pytest.raises(BackendUnavailable):
        await adaptor.book(order("GW-103", slot))
    conf = await adaptor.book(order("GW-103", slot))  # the caller's retry
    assert conf.start == slot.start
    state = await sim.state()
    assert (state["jobs"], state["jobs_created"], state["bookings"]) == (1, 1, 1)


async def test_token_expiry_mid_flow(adaptor: TotalmobileAdaptor, sim: Sim) -> None:
    slot = await first_slot(adaptor)
    await sim.faults(expire_tokens=True)
    conf = await adaptor.book(order("GW-104", slot))
    assert conf.start == slot.start
    state = await sim.state()
    assert state["token_requests"] == 2 and state["jobs"] == 1


async def test_many_calls_one_token(adaptor: TotalmobileAdaptor, sim: Sim) -> None:
    await asyncio.gather(*(adaptor.availability(query()) for _ in range(10)))
    for _ in range(5):
        await adaptor.status(handle("GW-nothing"))
    assert (await sim.state())["token_requests"] == 1


async def test_last_place_goes_to_one_of_two(tmp_path: Path, sim: Sim) -> None:
    await sim.reset(capacity={"PLUMBING": 1})
    a = make_adaptor(tmp_path, sim.url)
    try:
        slot = await first_slot(a)
        results = await asyncio.gather(
            a.book(order("GW-201", slot)), a.book(order("GW-202", slot)), return_exceptions=True
        )
    finally:
        await a.close()
    assert sum(isinstance(r, SlotUnavailable) for r in results) == 1
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    state = await sim.state()
    assert state["jobs"] == 1 and state["bookings"] == 1  # the loser's job was deleted
    assert [d["reason"] for d in state["deletions"]] == ["SLOT_UNAVAILABLE"]


async def test_full_window_is_no_longer_offered(tmp_path: Path, sim: Sim) -> None:
    await sim.reset(capacity={"PLUMBING": 1})
    a = make_adaptor(tmp_path, sim.url)
    try:
        slot = await first_slot(a)
        await a.book(order("GW-203", slot))
        page = await a.availability(query(page_size=20))
    finally:
        await a.close()
    assert (slot.start, slot.end) not in {(s.start, s.end) for s in page.slots}


async def test_bad_credentials(tmp_path: Path, sim: Sim) -> None:
    a = make_adaptor(tmp_path, sim.url, client_secret="wrong")
    try:
        with pytest.raises(BackendAuthFailed):
            await a.availability(query())
    finally:
        await a.close()


async def test_missing_scope_is_an_auth_failure(tmp_path: Path, sim: Sim) -> None:
    a = make_adaptor(tmp_path, sim.url, scope="optimise")
    try:
        with pytest.raises(BackendAuthFailed):
            await a.availability(query())
    finally:
        await a.close()


async def test_unknown_work_type_is_a_clear_rejection(tmp_path: Path, sim: Sim) -> None:
    a = make_adaptor(tmp_path, sim.url, work_type_map={"plumbing": "PLUMBNG"})
    try:
        with pytest.raises(BackendRejected) as err:
            await a.availability(query())
    finally:
        await a.close()
    assert "UnknownWorkType" in err.value.detail  # the code tells council IT what to fix


async def test_throttled_read_is_retried_after_retry_after(
    adaptor: TotalmobileAdaptor, sim: Sim
) -> None:
    await sim.fail("browse", status=429, retry_after=1)
    page = await adaptor.availability(query())
    assert page.slots
    assert (await sim.state())["requests"]["browse"] == 2


async def test_outage_is_unavailable(adaptor: TotalmobileAdaptor, sim: Sim) -> None:
    await sim.fail("browse", status=500, times=5)
    with pytest.raises(BackendUnavailable):
        await adaptor.availability(query())
    assert (await sim.state())["requests"]["browse"] == 3  # bounded


async def test_timeout_is_unavailable(tmp_path: Path, sim: Sim) -> None:
    a = make_adaptor(tmp_path, sim.url, timeout_seconds=0.2, read_attempts=1)
    try:
        await a.check_health()
        await sim.fail("get_job", "delay", delay_ms=600)
        with pytest.raises(BackendUnavailable):
            await a.status(handle("GW-1"))
    finally:
        await a.close()


async def test_server_error_on_booking_does_not_double_book(
    adaptor: TotalmobileAdaptor, sim: Sim
) -> None:
    slot = await first_slot(adaptor)
    await sim.fail("booking", status=500)
    conf = await adaptor.book(order("GW-105", slot))  # looked up, then booked once
    assert conf.start == slot.start
    state = await sim.state()
    assert (state["jobs"], state["bookings"]) == (1, 1)


async def test_reschedule_into_a_full_window_keeps_the_booking(tmp_path: Path, sim: Sim) -> None:
    await sim.reset(capacity={"PLUMBING": 1})
    a = make_adaptor(tmp_path, sim.url)
    try:
        am, pm = await first_slot(a), await first_slot(a, "afternoon")
        await a.book(order("GW-301", am))
        await a.book(order("GW-302", pm))
        with pytest.raises(SlotUnavailable):
            await a.reschedule(handle("GW-301"), pm)
        st = await a.status(handle("GW-301"))
    finally:
        await a.close()
    assert (st.status, st.start) == (RepairStatus.BOOKED, am.start)
    assert (await sim.state())["jobs"] == 2


async def test_reschedule_of_an_unknown_job_is_invalid(adaptor: TotalmobileAdaptor) -> None:
    slot = await first_slot(adaptor)
    with pytest.raises(InvalidInput):
        await adaptor.reschedule(handle("GW-nothing"), slot)

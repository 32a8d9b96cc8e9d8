"""The adaptor against the running DRS simulator (a real SOAP server on loopback)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from adaptors.kirona_drs import KironaDRSAdaptor
from repairs_gateway_sdk.errors import (
    BackendAuthFailed,
    BackendUnavailable,
    InvalidInput,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import (
    AvailabilityQuery,
    BookingHandle,
    BookingOrder,
    Contact,
    JobSize,
    JobSpec,
    Property,
    RepairStatus,
    Trade,
    VendorSlot,
)
from repairs_gateway_sdk.timeutil import LONDON

from .conftest import PLUMBING, PROPERTY, AdaptorFactory, Sim

OTHER = Property(id="000456", address_lines=["2 High Street"], postcode="LN1 1AA")


def query(
    prop: Property = PROPERTY,
    page_size: int = 5,
    start: date | None = None,
    resume: dict | None = None,
    job: JobSpec = PLUMBING,
) -> AvailabilityQuery:
    return AvailabilityQuery(
        property=prop, job=job, start_from=start or date.today(), page_size=page_size, resume=resume
    )


def order(
    ref: str,
    slot: VendorSlot,
    prop: Property = PROPERTY,
    notes: list[str] | None = None,
    description: str = "Kitchen tap dripping",
) -> BookingOrder:
    return BookingOrder(
        reference=ref,
        property=prop,
        job=PLUMBING,
        slot=slot,
        description=description,
        contact=Contact(name="Ann Resident", phone="01522 000000", email="ann@example.org"),
        operative_notes=notes or [],
    )


def handle(ref: str, prop: Property = PROPERTY) -> BookingHandle:
    return BookingHandle(reference=ref, property_id=prop.id, job=PLUMBING)


def pin(adaptor: KironaDRSAdaptor, sim: Sim, now: datetime) -> None:
    sim.clock(now.isoformat())
    adaptor.today = lambda: now.astimezone(LONDON).date()
    adaptor.now = lambda: now


# -- availability ---------------------------------------------------------------------------
async def test_pages_resume_without_repeats_and_only_bookable_slots(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor()
    first = await drs.availability(query(page_size=5))
    assert len(first.slots) == 5 and first.resume is not None
    assert first.slots[0].best
    starts = [(s.start, s.end) for s in first.slots]
    assert starts == sorted(starts)
    assert all(s.start > datetime.now(UTC) for s in first.slots)
    assert {s.label for s in first.slots} <= {"morning", "afternoon", "school_run", "all_day"}
    second = await drs.availability(query(page_size=5, resume=first.resume))
    assert second.slots and (second.slots[0].start, second.slots[0].end) > starts[-1]
    assert not {(s.start, s.end) for s in second.slots} & set(starts)


async def test_a_page_fetches_its_windows_once_and_serves_repeats_from_cache(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor(search_days=28)
    await drs.availability(query(page_size=50))
    assert sim.state()["calls"]["checkAvailability"] == 4  # four 7-day windows
    again = await drs.availability(query(page_size=50))
    assert sim.state()["calls"]["checkAvailability"] == 4
    await drs.book(order("RG-CACHE", again.slots[0]))
    await drs.availability(query(page_size=50))
    assert sim.state()["calls"]["checkAvailability"] == 5  # only the booked window again


async def test_a_full_slot_is_no_longer_offered(sim: Sim, make_adaptor: AdaptorFactory) -> None:
    sim.reset(capacity=1)
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    await drs.book(order("RG-FULL", slot))
    after = await drs.availability(query(page_size=50))
    assert (slot.start, slot.end) not in {(s.start, s.end) for s in after.slots}


async def test_trade_and_size_job_uses_the_configured_default_code(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    job = JobSpec(trade=Trade.ELECTRICAL, size=JobSize.MEDIUM, duration_minutes=120)
    drs = make_adaptor(default_sor_codes={"electrical": "EL-DEFAULT"})
    page = await drs.availability(query(job=job))
    assert page.slots and all((s.end - s.start) >= timedelta(minutes=120) for s in page.slots)
    without = make_adaptor()
    with pytest.raises(InvalidInput) as err:
        await without.availability(query(job=job))
    assert err.value.field == "sor_code"


# -- booking ----------------------------------------------------------------------------------
async def test_book_creates_one_order_with_reference_comments_and_priority(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    conf = await drs.book(order("RG-0001", slot, notes=["PAIRS", "ASB"]))
    assert (conf.start, conf.end, conf.label) == (slot.start, slot.end, slot.label)
    assert conf.vendor_order_ref and conf.vendor_booking_ref
    state = sim.state()
    assert state["orders"] == 1 and state["scheduled"] == 1
    drs_order = state["orders_by_reference"]["RG-0001"]
    assert drs_order["comments"].startswith("ALERTS: PAIRS,ASB")
    assert "Ann" not in drs_order["comments"] and "example.org" not in drs_order["comments"]
    assert drs_order["priority"] == "N" and drs_order["code"] == "20060020"
    assert datetime.fromisoformat(drs_order["start"]) == slot.start


async def test_booking_again_with_the_same_reference_creates_nothing_new(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    first = await drs.book(order("RG-TWICE", slot))
    second = await drs.book(order("RG-TWICE", slot))
    assert first == second
    assert sim.state()["orders"] == 1


async def test_long_comments_are_cut_to_255_characters(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    await drs.book(order("RG-LONG", slot, notes=["ASB"], description="water " * 100))
    comments = sim.state()["orders_by_reference"]["RG-LONG"]["comments"]
    assert len(comments) == 255 and comments.startswith("ALERTS: ASB")


async def test_taken_slot_raises_and_leaves_no_order(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    sim.reset(capacity=1)
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    await drs.book(order("RG-A", slot))
    with pytest.raises(SlotUnavailable):
        await drs.book(order("RG-B", slot, prop=OTHER))
    state = sim.state()
    assert state["orders"] == 1 and "RG-B" not in state["orders_by_reference"]


async def test_when_cleanup_fails_too_cancel_by_reference_removes_the_orphan(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    sim.reset(capacity=1)
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    await drs.book(order("RG-A", slot))
    sim.faults(
        {
            "op": "deleteOrder",
            "kind": "status",
            "status": "error",
            "times": 1,
            "message": "Database busy",
        }
    )
    with pytest.raises(SlotUnavailable):
        await drs.book(order("RG-B", slot, prop=OTHER))
    assert "RG-B" in sim.state()["orders_by_reference"]
    await drs.cancel(handle("RG-B", OTHER), "booking failed")  # the outbox's compensation
    assert sim.state()["orders"] == 1


async def test_concurrent_bookings_for_the_last_place_one_wins(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    sim.reset(capacity=1)
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    results = await asyncio.gather(
        drs.book(order("RG-X", slot)),
        drs.book(order("RG-Y", slot, prop=OTHER)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, SlotUnavailable) for r in results) == 1
    assert sim.state()["orders"] == 1 and sim.state()["scheduled"] == 1


# -- lost replies -------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["createOrder", "scheduleBooking"])
async def test_a_dropped_reply_never_duplicates_the_order(
    sim: Sim, make_adaptor: AdaptorFactory, operation: str
) -> None:
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    sim.faults({"op": operation, "kind": "lost", "times": 1})
    conf = await drs.book(order("RG-LOST", slot))
    assert conf.start == slot.start
    state = sim.state()
    assert state["orders"] == 1 and state["scheduled"] == 1
    assert state["calls"]["createOrder"] == 1


async def test_a_create_that_times_out_and_lands_late_is_not_duplicated(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor(timeout_seconds=0.5)
    slot = (await drs.availability(query())).slots[0]
    sim.faults({"op": "createOrder", "kind": "timeout", "seconds": 0.8, "times": 1})
    conf = await drs.book(order("RG-SLOW", slot))
    assert conf.start == slot.start
    await asyncio.sleep(0.6)  # the late create lands and is refused as a duplicate
    state = sim.state()
    assert state["orders"] == 1 and state["scheduled"] == 1


async def test_booking_outage_raises_unavailable_and_cancel_cleans_up(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    sim.faults(
        {"op": "scheduleBooking", "kind": "lost"},
        {"op": "selectOrder", "kind": "lost"},
        {"op": "deleteOrder", "kind": "fault"},
    )
    with pytest.raises(BackendUnavailable):
        await drs.book(order("RG-DOWN", slot))
    assert sim.state()["orders"] == 1  # the reply was lost after DRS had scheduled it
    sim.faults()
    await drs.cancel(handle("RG-DOWN"), "booking failed")
    assert sim.state()["orders"] == 0


# -- reschedule, cancel, status ---------------------------------------------------------------
async def test_reschedule_cancel_and_status(sim: Sim, make_adaptor: AdaptorFactory) -> None:
    drs = make_adaptor()
    slots = (await drs.availability(query(page_size=10))).slots
    await drs.book(order("RG-MOVE", slots[0]))
    h = handle("RG-MOVE")
    moved = await drs.reschedule(h, slots[5])
    assert (moved.start, moved.end) == (slots[5].start, slots[5].end)
    st = await drs.status(h)
    assert st.status == RepairStatus.BOOKED and st.start == slots[5].start
    sim.set_status("RG-MOVE", "STARTED")
    assert (await drs.status(h)).status == RepairStatus.IN_PROGRESS
    sim.set_status("RG-MOVE", "COMPLETED")
    assert (await drs.status(h)).status == RepairStatus.COMPLETED
    await drs.cancel(h, "resident cancelled")
    await drs.cancel(h, "again")  # absent: not an error
    assert (await drs.status(h)).status == RepairStatus.CANCELLED
    assert sim.state()["orders"] == 0


async def test_reschedule_to_a_full_slot_keeps_the_booking(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    sim.reset(capacity=1)
    drs = make_adaptor()
    slots = (await drs.availability(query(page_size=10))).slots
    await drs.book(order("RG-1", slots[0]))
    await drs.book(order("RG-2", slots[1], prop=OTHER))
    with pytest.raises(SlotUnavailable):
        await drs.reschedule(handle("RG-1"), slots[1])
    assert sim.state()["orders_by_reference"]["RG-1"]["start"] == slots[0].start.isoformat()


# -- sessions -----------------------------------------------------------------------------------
async def test_one_session_is_shared_by_concurrent_requests(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor()
    props = [Property(id=f"P{i}", address_lines=["x"], postcode="LN1 1AA") for i in range(6)]
    await asyncio.gather(*(drs.availability(query(prop=p)) for p in props))
    assert sim.state()["calls"]["openSession"] == 1


async def test_an_expired_session_is_reopened_once(sim: Sim, make_adaptor: AdaptorFactory) -> None:
    drs = make_adaptor()
    await drs.availability(query())
    sim.expire_sessions()
    await drs.availability(query(prop=OTHER))
    assert sim.state()["calls"]["openSession"] == 2


async def test_a_new_day_opens_a_new_session(sim: Sim, make_adaptor: AdaptorFactory) -> None:
    drs = make_adaptor()
    now = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    pin(drs, sim, now)
    await drs.availability(query(start=date(2026, 6, 2)))
    pin(drs, sim, now + timedelta(days=1))
    await drs.availability(query(start=date(2026, 6, 3), prop=OTHER))
    state = sim.state()
    assert state["calls"]["openSession"] == 2
    assert state["calls"].get("closeSession") == 1  # yesterday's session was closed


async def test_close_ends_the_session(sim: Sim, make_adaptor: AdaptorFactory) -> None:
    drs = make_adaptor()
    await drs.availability(query())
    assert sim.state()["sessions_open"] == 1
    await drs.close()
    assert sim.state()["sessions_open"] == 0


# -- failures -----------------------------------------------------------------------------------
async def test_wrong_credentials(sim: Sim, make_adaptor: AdaptorFactory) -> None:
    drs = make_adaptor(password="wrong")
    with pytest.raises(BackendAuthFailed):
        await drs.availability(query())


async def test_slow_availability_is_an_outage(sim: Sim, make_adaptor: AdaptorFactory) -> None:
    drs = make_adaptor(timeout_seconds=0.3, read_attempts=2)
    await drs.client.session()
    sim.faults({"op": "checkAvailability", "kind": "timeout", "seconds": 0.6})
    with pytest.raises(BackendUnavailable):
        await drs.availability(query())


async def test_soap_fault_and_status_error(sim: Sim, make_adaptor: AdaptorFactory) -> None:
    drs = make_adaptor(search_days=7)
    sim.faults({"op": "checkAvailability", "kind": "fault", "message": "NullPointerException"})
    with pytest.raises(BackendUnavailable):  # a soap:Server fault is DRS failing, not a "no"
        await drs.availability(query())
    sim.faults(
        {
            "op": "checkAvailability",
            "kind": "status",
            "status": "error",
            "message": "Scheduler not running",
        }
    )
    with pytest.raises(BackendUnavailable):
        await drs.availability(query())


async def test_truncated_replies_are_an_outage_not_an_empty_answer(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor(search_days=7)
    slot = (await drs.availability(query())).slots[0]
    await drs.book(order("RG-T", slot))
    sim.faults({"op": "checkAvailability", "kind": "malformed"})
    with pytest.raises(BackendUnavailable, match="malformed"):
        await drs.availability(query())
    sim.faults({"op": "selectOrder", "kind": "malformed"})
    with pytest.raises(BackendUnavailable, match="malformed"):
        await drs.status(handle("RG-T"))
    sim.faults()
    assert (await drs.status(handle("RG-T"))).status == RepairStatus.BOOKED


# -- daylight saving ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("today", "before", "after", "offsets"),
    [
        (datetime(2026, 3, 20, 10, tzinfo=UTC), date(2026, 3, 28), date(2026, 3, 29), (0, 1)),
        (datetime(2026, 10, 16, 10, tzinfo=UTC), date(2026, 10, 24), date(2026, 10, 25), (1, 0)),
    ],
)
async def test_slots_keep_the_right_offset_across_the_clock_change(
    sim: Sim,
    make_adaptor: AdaptorFactory,
    today: datetime,
    before: date,
    after: date,
    offsets: tuple[int, int],
) -> None:
    sim.reset(working_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    drs = make_adaptor()
    pin(drs, sim, today)
    page = await drs.availability(query(start=before, page_size=8))
    by_day = {d: [s for s in page.slots if s.start.date() == d] for d in (before, after)}
    for day, hours in zip((before, after), offsets, strict=True):
        morning = next(s for s in by_day[day] if s.label == "morning")
        assert morning.start.utcoffset() == timedelta(hours=hours)
        assert morning.start.astimezone(LONDON).hour == 8
        assert (morning.end - morning.start) == timedelta(hours=4)
    slot = next(s for s in by_day[after] if s.label == "morning")
    conf = await drs.book(order("RG-DST", slot))
    assert conf.start.utcoffset() == timedelta(hours=offsets[1])
    stored = sim.state()["orders_by_reference"]["RG-DST"]["start"]
    assert stored == f"{after.isoformat()}T08:00:00+0{offsets[1]}:00"

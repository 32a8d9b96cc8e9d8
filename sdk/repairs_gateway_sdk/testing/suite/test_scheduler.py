"""Scheduler: slots, and the booking lifecycle the gateway drives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from repairs_gateway_sdk.adaptor import AddressSource, Scheduler
from repairs_gateway_sdk.errors import (
    BackendRejected,
    GatewayError,
    InvalidInput,
    NotFound,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import (
    AvailabilityQuery,
    BookingConfirmation,
    BookingHandle,
    BookingOrder,
    Contact,
    Property,
    RepairStatus,
    VendorSlot,
)
from repairs_gateway_sdk.references import new_reference
from repairs_gateway_sdk.testing.checks import (
    Run,
    answer_or_clear_error,
    as_the_gateway_returns_it,
    check_ordered,
    check_slot,
    expect_error,
    same_slot,
    through_json,
)
from repairs_gateway_sdk.testing.spec import AdaptorSpec, Fixtures, scheduler_property
from repairs_gateway_sdk.timeutil import today_london


@pytest.fixture
def prop(
    contract_scheduler: Scheduler,
    contract_spec: AdaptorSpec,
    contract_run: Run,
) -> Property:
    fx = contract_spec.fixtures
    if isinstance(contract_scheduler, AddressSource) and fx.property_id:
        p = contract_run(contract_scheduler.get_property(fx.property_id))
        assert p is not None, f"fixtures.property_id {fx.property_id!r} not found"
        return p  # type: ignore[no-any-return]
    return scheduler_property(contract_spec)


def _query(fx: Fixtures, prop: Property, **kw: Any) -> AvailabilityQuery:
    base: dict[str, Any] = {
        "property": prop,
        "job": fx.job.spec(),
        "start_from": today_london() + timedelta(days=fx.start_in_days),
        "page_size": fx.page_size,
    }
    base.update(kw)
    return AvailabilityQuery(**base)


def _slots(run: Run, sched: Scheduler, fx: Fixtures, prop: Property, n: int) -> list[VendorSlot]:
    """Offered slots as the gateway hands them back to book (their vendor data through JSON,
    as in a slot token)."""
    page = run(sched.availability(_query(fx, prop, page_size=n)))
    return [as_the_gateway_returns_it(s, f"slot {s.start.isoformat()}") for s in page.slots]


def _order(fx: Fixtures, prop: Property, slot: VendorSlot, reference: str) -> BookingOrder:
    return BookingOrder(
        reference=reference,
        property=prop,
        job=fx.job.spec(),
        slot=slot,
        description="Contract test: kitchen tap dripping",
        contact=Contact(name="Contract Test", phone="07700 900123"),
    )


def _handle(
    fx: Fixtures, prop: Property, reference: str, conf: BookingConfirmation, slot: VendorSlot
) -> BookingHandle:
    return BookingHandle(
        reference=reference,
        property_id=prop.id,
        job=fx.job.spec(),
        vendor_order_ref=conf.vendor_order_ref,
        vendor_booking_ref=conf.vendor_booking_ref,
        slot_start=conf.start,
        slot_end=conf.end,
        vendor_slot=slot.vendor,
    )


class Bookings:
    """Bookings made by a test, cancelled at the end whatever happens."""

    def __init__(self, run: Run, sched: Scheduler, fx: Fixtures, prop: Property) -> None:
        self.run, self.sched, self.fx, self.prop = run, sched, fx, prop
        self.made: list[BookingHandle] = []

    def book(self, slot: VendorSlot, reference: str | None = None) -> BookingHandle:
        ref = reference or new_reference()
        conf = self.run(self.sched.book(_order(self.fx, self.prop, slot, ref)))
        assert isinstance(conf, BookingConfirmation)
        handle = _handle(self.fx, self.prop, ref, conf, slot)
        self.made.append(handle)
        return handle

    def cancel_all(self) -> None:
        made, self.made = self.made, []
        for h in made:
            try:
                self.run(self.sched.cancel(h, "contract test clean-up"))
            except GatewayError:
                pass


@pytest.fixture
def bookings(
    contract_scheduler: Scheduler, contract_fixtures: Fixtures, prop: Property, contract_run: Run
) -> Iterator[Bookings]:
    b = Bookings(contract_run, contract_scheduler, contract_fixtures, prop)
    yield b
    b.cancel_all()


def test_slots_are_future_ordered_and_carry_offsets(
    contract_scheduler: Scheduler, contract_fixtures: Fixtures, prop: Property, contract_run: Run
) -> None:
    q = _query(contract_fixtures, prop)
    page = contract_run(contract_scheduler.availability(q))
    assert page.slots, "no slots offered for fixtures.job at fixtures.property_id"
    assert len(page.slots) <= q.page_size, f"{len(page.slots)} slots for page_size {q.page_size}"
    for s in page.slots:
        check_slot(s, q.start_from, "availability")
    check_ordered(page.slots, "availability")


def test_pages_continue_in_order_without_repeats(
    contract_scheduler: Scheduler, contract_fixtures: Fixtures, prop: Property, contract_run: Run
) -> None:
    q = _query(contract_fixtures, prop)
    first = contract_run(contract_scheduler.availability(q))
    assert first.resume is not None, (
        f"only {len(first.slots)} slot(s) and no next page for page_size {q.page_size}: "
        "the calendar must offer more than one page"
    )
    resume = through_json(  # the gateway keeps it in the page cursor (JSON)
        first.resume,
        "first page",
        what="the page's resume point",
        carried="the gateway carries it in the next page's cursor",
    )
    second = contract_run(contract_scheduler.availability(q.model_copy(update={"resume": resume})))
    assert second.slots, "the next page (resume) is empty although resume was given"
    for s in second.slots:
        check_slot(s, q.start_from, "second page")
    check_ordered(list(first.slots) + list(second.slots), "first and second page together")
    bigger = contract_run(
        contract_scheduler.availability(q.model_copy(update={"page_size": q.page_size * 2}))
    )
    n = len(first.slots) + len(second.slots)
    assert [(s.start, s.end) for s in bigger.slots[:n]] == [
        (s.start, s.end) for s in list(first.slots) + list(second.slots)
    ], "two pages differ from one page twice the size: paging skips or repeats slots"


def test_slot_vendor_data_survives_the_slot_token(
    contract_scheduler: Scheduler, contract_fixtures: Fixtures, prop: Property, contract_run: Run
) -> None:
    """Every offered slot's ``vendor`` data goes into a signed slot token as JSON and comes back
    from it when the resident books: it must be JSON and come back unchanged."""
    q = _query(contract_fixtures, prop)
    page = contract_run(contract_scheduler.availability(q))
    pages = [page]
    if page.resume is not None:
        pages.append(
            contract_run(
                contract_scheduler.availability(q.model_copy(update={"resume": page.resume}))
            )
        )
    offered = [s for p in pages for s in p.slots]
    assert offered, "no slots offered for fixtures.job at fixtures.property_id"
    for n, s in enumerate(offered):
        as_the_gateway_returns_it(s, f"offered slot {n + 1} ({s.start.isoformat()})")


def test_book_read_reschedule_cancel(
    contract_scheduler: Scheduler,
    contract_fixtures: Fixtures,
    prop: Property,
    contract_run: Run,
    bookings: Bookings,
) -> None:
    slots = _slots(contract_run, contract_scheduler, contract_fixtures, prop, 3)
    assert len(slots) >= 2, "need two slots to test a reschedule"
    handle = bookings.book(slots[0])
    assert (handle.slot_start, handle.slot_end) == (slots[0].start, slots[0].end), (
        "the confirmed times differ from the slot booked"
    )
    st = contract_run(contract_scheduler.status(handle))
    assert st.status == RepairStatus.BOOKED, f"status after booking is {st.status}"
    assert (st.start, st.end) == (slots[0].start, slots[0].end), "status shows other times"

    target = slots[-1]
    moved = contract_run(contract_scheduler.reschedule(handle, target))
    assert (moved.start, moved.end) == (target.start, target.end), (
        "reschedule confirmed other times than the slot asked for"
    )
    handle = _handle(contract_fixtures, prop, handle.reference, moved, target)
    bookings.made.append(handle)
    st = contract_run(contract_scheduler.status(handle))
    assert st.status == RepairStatus.BOOKED and (st.start, st.end) == (target.start, target.end), (
        f"status after reschedule: {st}"
    )

    contract_run(contract_scheduler.cancel(handle, "contract test"))
    st = contract_run(contract_scheduler.status(handle))
    assert st.status == RepairStatus.CANCELLED, f"status after cancel is {st.status}"


def test_retried_booking_is_not_duplicated(
    contract_scheduler: Scheduler,
    contract_fixtures: Fixtures,
    prop: Property,
    contract_run: Run,
    bookings: Bookings,
) -> None:
    slot = _slots(contract_run, contract_scheduler, contract_fixtures, prop, 1)[0]
    ref = new_reference()
    first = bookings.book(slot, ref)
    again = bookings.book(slot, ref)
    assert (again.slot_start, again.slot_end) == (first.slot_start, first.slot_end)
    assert (again.vendor_order_ref, again.vendor_booking_ref) == (
        first.vendor_order_ref,
        first.vendor_booking_ref,
    ), "booking again with the same reference created another vendor order or booking"
    contract_run(contract_scheduler.cancel(first, "contract test"))
    st = contract_run(contract_scheduler.status(again))
    assert st.status == RepairStatus.CANCELLED, (
        "after one cancel the retried booking is still live: the retry made a second booking"
    )


def _offered(run: Run, sched: Scheduler, fx: Fixtures, prop: Property, slot: VendorSlot) -> bool:
    q = _query(fx, prop, start_from=slot.start.date() - timedelta(days=1), page_size=50)
    for _ in range(20):
        page = run(sched.availability(q))
        if any(same_slot(s, slot) for s in page.slots):
            return True
        if page.resume is None or not page.slots or page.slots[-1].start > slot.start:
            return False
        q = q.model_copy(update={"resume": page.resume})
    return False


def test_full_slot_is_refused_and_no_longer_offered(
    contract_scheduler: Scheduler,
    contract_fixtures: Fixtures,
    prop: Property,
    contract_run: Run,
    bookings: Bookings,
) -> None:
    fx = contract_fixtures
    slot = _slots(contract_run, contract_scheduler, fx, prop, 1)[0]
    refused = None
    for _ in range(fx.max_places_per_slot + 1):
        try:
            bookings.book(slot)
        except SlotUnavailable as exc:
            refused = exc
            break
    assert refused is not None, (
        f"{fx.max_places_per_slot + 1} bookings of one slot all succeeded: a full slot must "
        "raise SlotUnavailable (raise fixtures.max_places_per_slot if places are many)"
    )
    assert not _offered(contract_run, contract_scheduler, fx, prop, slot), (
        "a slot with no places left is still offered"
    )
    bookings.cancel_all()
    assert _offered(contract_run, contract_scheduler, fx, prop, slot), (
        "after the bookings were cancelled the slot is not offered again"
    )


def test_cancel_twice_or_unknown_is_not_an_error(
    contract_scheduler: Scheduler,
    contract_fixtures: Fixtures,
    prop: Property,
    contract_run: Run,
    bookings: Bookings,
) -> None:
    slot = _slots(contract_run, contract_scheduler, contract_fixtures, prop, 1)[0]
    handle = bookings.book(slot)
    contract_run(contract_scheduler.cancel(handle, "contract test"))
    contract_run(contract_scheduler.cancel(handle, "contract test again"))
    never = BookingHandle(
        reference=new_reference(), property_id=prop.id, job=contract_fixtures.job.spec()
    )
    contract_run(contract_scheduler.cancel(never, "never booked"))


def test_foreign_slot_is_refused_clearly(
    contract_scheduler: Scheduler,
    contract_fixtures: Fixtures,
    prop: Property,
    contract_run: Run,
) -> None:
    real = _slots(contract_run, contract_scheduler, contract_fixtures, prop, 1)[0]
    forged = VendorSlot(
        start=real.start, end=real.end, label=real.label, vendor={"forged": "not-a-slot"}
    )
    expect_error(
        contract_run,
        contract_scheduler.book(_order(contract_fixtures, prop, forged, new_reference())),
        (InvalidInput, SlotUnavailable, BackendRejected),
        "booking a slot the scheduler never offered",
    )


def test_unknown_property_is_answered_or_a_clear_error(
    contract_scheduler: Scheduler, contract_fixtures: Fixtures, prop: Property, contract_run: Run
) -> None:
    """The gateway checks the property first; a scheduler that knows its properties may refuse
    one it does not know, clearly (a scheduler that creates locations on demand answers)."""
    ghost = prop.model_copy(update={"id": contract_fixtures.unknown_property_id, "uprn": None})
    answer_or_clear_error(
        contract_run,
        contract_scheduler.availability(_query(contract_fixtures, ghost)),
        (NotFound, InvalidInput, BackendRejected),
        f"availability for unknown property {ghost.id!r}",
    )


def test_unknown_sor_code_is_answered_or_a_clear_error(
    contract_scheduler: Scheduler, contract_fixtures: Fixtures, prop: Property, contract_run: Run
) -> None:
    """The gateway resolves SoR codes through the council's mapping table first; a scheduler
    that checks codes itself must refuse an unknown one clearly, naming it."""
    code = contract_fixtures.unknown_sor_code
    job = contract_fixtures.job.spec().model_copy(update={"sor_code": code})
    got = answer_or_clear_error(
        contract_run,
        contract_scheduler.availability(_query(contract_fixtures, prop, job=job)),
        (InvalidInput, NotFound, BackendRejected),
        f"availability for unknown SoR code {code!r}",
    )
    if isinstance(got, GatewayError):
        assert got.field == "sor_code" or code in got.detail, (
            f"the error for unknown SoR code {code!r} names neither the field nor the code: "
            f"{got.detail!r}"
        )

"""Moving and cancelling a booked repair, and refreshing its status from the scheduler."""

from __future__ import annotations

from typing import Any

from gateway.booking.base import BookingBase
from gateway.booking.records import (
    TERMINAL,
    _locked_repair,
    handle_of,
    repair_view,
)
from gateway.councils import Council
from gateway.outbox import enqueue
from gateway.storage.models import Repair
from repairs_gateway_sdk.errors import (
    Conflict,
    GatewayError,
    InvalidInput,
)
from repairs_gateway_sdk.model import (
    RepairStatus,
)


class ChangeFlow(BookingBase):
    """Moves, cancels, status refreshes."""

    async def reschedule(self, council: Council, reference: str, token: str) -> dict[str, Any]:
        r = await self.get_repair(council, reference)
        if r.status != RepairStatus.BOOKED or not r.scheduler:
            raise Conflict(f"repair {r.reference} has no appointment to move (it is {r.status})")
        handle = handle_of(r)
        name, slot = self._slot_from_token(council, token, r.property_id, handle.job)
        if name != r.scheduler:
            raise InvalidInput(
                "that slot comes from a different scheduler than the booking's", field="slot_token"
            )
        conf = await council.scheduler(r.scheduler).reschedule(handle, slot)
        async with self.db.transaction() as s:
            row = await _locked_repair(s, council.id, r.reference)
            moved = row.status == RepairStatus.BOOKED
            if moved:
                self._apply_confirmation(row, conf, slot)
                await self._notify(s, council, row, "rescheduled")
            else:  # cancelled meanwhile: take back what the move just booked
                enqueue(s, council.id, "booking.compensate", {"reference": row.reference})
            view = repair_view(row)
        self.worker.wake()
        if not moved:
            raise Conflict(f"repair {r.reference} was {row.status} while it was being moved")
        return view

    async def cancel(self, council: Council, reference: str, reason: str) -> dict[str, Any]:
        r = await self.get_repair(council, reference)
        if r.status == RepairStatus.CANCELLED:
            return repair_view(r)
        if r.status in TERMINAL:
            raise Conflict(f"repair {r.reference} cannot be cancelled (it is {r.status})")
        if r.status == RepairStatus.IN_PROGRESS:
            raise Conflict(
                f"an operative is already working on repair {r.reference}; "
                "please call the council to stop it"
            )
        if r.status == RepairStatus.BOOKING:
            raise Conflict(f"repair {r.reference} is still being booked; try again in a minute")
        if r.scheduler:  # whatever the last status said, make sure the scheduler lets it go
            await council.scheduler(r.scheduler).cancel(handle_of(r), reason)
        async with self.db.transaction() as s:
            row = await _locked_repair(s, council.id, r.reference)
            if row.status == RepairStatus.CANCELLED:  # a concurrent cancel got there first
                return repair_view(row)
            row.status = RepairStatus.CANCELLED.value
            if row.works_order_adaptor:
                enqueue(s, council.id, "works_order.cancel", {"reference": row.reference})
            await self._notify(s, council, row, "cancelled")
            view = repair_view(row)
        self.worker.wake()
        return view

    async def refresh_status(self, council: Council, r: Repair) -> dict[str, Any]:
        """The repair, with the scheduler's view of its status when it can be had quickly."""
        if r.scheduler and r.status == RepairStatus.BOOKED:
            try:
                st = await council.scheduler(r.scheduler).status(handle_of(r))
            except GatewayError:
                return repair_view(r)
            if st.status != RepairStatus.BOOKED or (st.start and st.start != r.slot_start):
                async with self.db.transaction() as s:
                    row = await _locked_repair(s, council.id, r.reference)
                    if row.status == RepairStatus.BOOKED:  # not changed by a move or cancel
                        row.status = st.status.value
                        if st.start and st.end:
                            row.slot_start, row.slot_end = st.start, st.end
                    r = row
        return repair_view(r)

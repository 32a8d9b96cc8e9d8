"""Settling after a crash: a booking whose outcome was never recorded is finished or failed by
the ``booking.reconcile`` outbox item; anything a failed booking may have left at the
scheduler is cancelled by ``booking.compensate``."""

from __future__ import annotations

from sqlalchemy import select

from gateway.booking.base import BookingBase
from gateway.booking.records import (
    _locked_repair,
    _queue_compensation,
    _seconds,
    handle_of,
    repair_view,
)
from gateway.outbox import Retry
from gateway.storage.models import IdempotencyRecord, OutboxItem
from repairs_gateway_sdk.model import (
    RepairStatus,
)
from repairs_gateway_sdk.timeutil import now


class Settlement(BookingBase):
    """Crash reconciliation and compensation (outbox handlers)."""

    async def _reconcile(self, item: OutboxItem) -> None:
        """A booking whose outcome was never recorded (the process died mid-call)."""
        loaded = await self._load(item)
        if loaded is None:
            return
        council, r = loaded
        if r.status != RepairStatus.BOOKING:
            return
        if now() - r.created_at < _seconds(self.reconcile_after * 0.9):
            raise Retry(self.reconcile_after)
        assert r.scheduler
        st = await council.scheduler(r.scheduler).status(handle_of(r))
        async with self.db.transaction() as s:
            row = await _locked_repair(s, r.council, r.reference)
            if row.status != RepairStatus.BOOKING:
                return  # the request answered while we were asking the scheduler
            rec = (
                await s.execute(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.council == r.council,
                        IdempotencyRecord.repair_reference == r.reference,
                    )
                )
            ).scalar_one_or_none()
            if st.status == RepairStatus.BOOKED and st.start and st.end:
                from repairs_gateway_sdk.slots import label_for

                row.status = RepairStatus.BOOKED.value
                row.slot_start, row.slot_end = st.start, st.end
                row.slot_label = label_for(st.start, st.end)
                if rec is not None:
                    rec.state, rec.response_status = "done", 201
                    rec.response_body = repair_view(row)
                await self._after_confirmed(s, council, row)
            else:
                row.status = RepairStatus.FAILED.value
                if rec is not None:
                    await s.delete(rec)
                _queue_compensation(s, council.id, r.reference)

    async def _compensate(self, item: OutboxItem) -> None:
        loaded = await self._load(item)
        if loaded is None:
            return
        council, r = loaded
        if r.status not in (RepairStatus.FAILED, RepairStatus.CANCELLED) or not r.scheduler:
            return
        assert r.scheduler is not None
        await council.scheduler(r.scheduler).cancel(handle_of(r), "booking failed")

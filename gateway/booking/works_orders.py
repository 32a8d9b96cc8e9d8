"""Raising and cancelling works orders in the housing system, from the outbox, after the
resident has their confirmation (an HMS outage never fails a booking)."""

from __future__ import annotations

from gateway.booking.base import BookingBase
from gateway.booking.records import (
    handle_of,
)
from gateway.outbox import enqueue
from gateway.storage.models import OutboxItem, Repair
from repairs_gateway_sdk.model import (
    Contact,
    RepairStatus,
    WorksOrder,
)


class WorksOrders(BookingBase):
    """Works-order outbox handlers."""

    async def _raise_works_order(self, item: OutboxItem) -> None:
        loaded = await self._load(item)
        if loaded is None:
            return
        council, r = loaded
        if r.works_order_ref or not r.works_order_adaptor:
            return
        order = WorksOrder(
            reference=r.reference,
            property_id=r.property_id,
            job=handle_of(r).job,
            description=r.description,
            contact=Contact.model_validate(r.contact or {}),
            slot_start=r.slot_start,
            slot_end=r.slot_end,
        )
        vendor_ref = await council.works_order_sink(r.works_order_adaptor).raise_works_order(order)
        async with self.db.transaction() as s:
            row = await s.get(Repair, r.id)
            assert row is not None
            row.works_order_ref = vendor_ref
            if row.status == RepairStatus.CANCELLED:
                enqueue(s, council.id, "works_order.cancel", {"reference": r.reference})

    async def _cancel_works_order(self, item: OutboxItem) -> None:
        loaded = await self._load(item)
        if loaded is None:
            return
        council, r = loaded
        if not r.works_order_adaptor:
            return
        if not r.works_order_ref:
            return  # the raise is still pending; it queues a cancel when it sees the status
        await council.works_order_sink(r.works_order_adaptor).cancel_works_order(r.works_order_ref)

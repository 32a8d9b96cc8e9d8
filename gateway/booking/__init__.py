"""The write side: booking, moving and cancelling repairs.

Guarantees (see docs/decisions/0002-outbox.md):
- A retry with the same Idempotency-Key and body returns the first answer; a different body
  with the same key is refused (422).
- The repair row, the idempotency record and a delayed ``booking.reconcile`` outbox item are
  written in one transaction before the scheduler is called. If the process dies mid-booking,
  the reconcile item finishes or cleanly fails the booking later - nothing is lost.
- A booking that fails at the scheduler leaves nothing half-created: a ``booking.compensate``
  item cancels anything the scheduler may have created under the reference.
- Works orders (HMS) and notifications are delivered from the outbox after the resident has
  their confirmation; an HMS outage never fails a booking.

The flow reads top to bottom by job: ``create`` (report and book), ``change`` (move, cancel,
refresh), ``settle`` (after a crash), ``works_orders`` (outbox handlers); ``records`` holds
the request, the public view and the row helpers they share.
"""

from __future__ import annotations

from gateway.booking.change import ChangeFlow
from gateway.booking.create import CreateFlow
from gateway.booking.records import (
    RECONCILE_AFTER_SECONDS,
    NewRepair,
    handle_of,
    repair_view,
)
from gateway.booking.settle import Settlement
from gateway.booking.works_orders import WorksOrders
from gateway.notifications import Notifications
from gateway.outbox import OutboxWorker
from gateway.service import Gateway


class Bookings(CreateFlow, ChangeFlow, Settlement, WorksOrders):
    """The write side, one object per running gateway."""

    def __init__(
        self,
        gateway: Gateway,
        worker: OutboxWorker,
        reconcile_after: float = RECONCILE_AFTER_SECONDS,
    ) -> None:
        self.gw = gateway
        self.db = gateway.database
        self.worker = worker
        self.reconcile_after = reconcile_after
        worker.register("booking.reconcile", self._reconcile)
        worker.register("booking.compensate", self._compensate)
        worker.register("works_order.raise", self._raise_works_order)
        worker.register("works_order.cancel", self._cancel_works_order)
        from gateway.hro.photos import register_outbox  # HRO photos: purge, attach

        register_outbox(worker, gateway)
        # resident messages, reminders and delivery receipts (gateway/notifications.py)
        self.notifications = Notifications(gateway, worker)
        self.notifiers = self.notifications.notifiers


__all__ = ["Bookings", "NewRepair", "handle_of", "repair_view"]

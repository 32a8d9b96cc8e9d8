"""Shared state and helpers of the booking flow."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway.booking.records import (
    _ANSWER_KEY,
    _route_req,
)
from gateway.councils import Council
from gateway.notifications import Notifications
from gateway.outbox import OutboxWorker, enqueue
from gateway.service import Gateway
from gateway.storage.models import OutboxItem, Repair
from repairs_gateway_sdk.errors import (
    InvalidInput,
    NotFound,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import (
    BookingConfirmation,
    JobSpec,
    RepairStatus,
    VendorSlot,
)
from repairs_gateway_sdk.references import normalise_reference
from repairs_gateway_sdk.timeutil import now


class BookingBase:
    """Shared state and the helpers every part of the booking flow uses."""

    gw: Gateway
    db: Any
    worker: OutboxWorker
    reconcile_after: float
    notifications: Notifications
    notifiers: Any

    def _slot_from_token(
        self, council: Council, token: str, property_id: str, job: JobSpec
    ) -> tuple[str, VendorSlot]:
        claim = self.gw.codec.read_slot_token(token)
        if claim.council != council.id or claim.property_id != property_id:
            raise InvalidInput("slot token was offered for another property", field="slot_token")
        try:
            offered_job = JobSpec.from_compact(claim.job)
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("slot token is malformed", field="slot_token") from None
        if (offered_job.trade, offered_job.size) != (job.trade, job.size):
            raise InvalidInput("slot token was offered for a different job", field="slot_token")
        if claim.start <= now():  # a page left open overnight: never book the past
            raise SlotUnavailable("that appointment has already started; choose another")
        # the claim's fields are already checked (aware times, text, a dict: SlotClaim), and
        # the token's MAC says the gateway wrote them: no second validation
        slot = VendorSlot.model_construct(
            start=claim.start, end=claim.end, label=claim.label, vendor=claim.vendor
        )
        return claim.adaptor, slot

    async def get_repair(self, council: Council, reference: str) -> Repair:
        ref = normalise_reference(reference)
        async with self.db.session() as s:
            r = (
                await s.execute(
                    select(Repair).where(Repair.council == council.id, Repair.reference == ref)
                )
            ).scalar_one_or_none()
        if r is None or r.status == RepairStatus.FAILED:
            raise NotFound(f"no repair {reference!r} in council {council.id!r}", field="reference")
        return r

    async def _finish_idempotency(
        self, s: Any, council: Council, client_id: str, key: str, status: int, body: dict[str, Any]
    ) -> None:
        """Keep the answer for retries. A record the crash reconciler released is not there
        (nothing is updated): the caller's retry starts afresh."""
        await s.execute(
            _ANSWER_KEY,
            {
                "w_council": council.id,
                "w_client_id": client_id,
                "w_key": key,
                "state": "done",
                "response_status": status,
                "response_body": body,
            },
        )

    @staticmethod
    def _apply_confirmation(r: Repair, conf: BookingConfirmation, slot: VendorSlot) -> None:
        r.status = RepairStatus.BOOKED.value
        r.slot_start, r.slot_end, r.slot_label = conf.start, conf.end, conf.label
        r.vendor_order_ref, r.vendor_booking_ref = conf.vendor_order_ref, conf.vendor_booking_ref
        r.vendor_slot = slot.vendor

    @staticmethod
    def _works_order_sink(council: Council, r: Repair) -> str | None:
        """The housing system that gets the works order of a settled booking (none: no works
        order)."""
        return council.route(_route_req(council, "works_orders", r))

    async def _after_confirmed(
        self, s: Any, council: Council, r: Repair, *, routed: bool = False
    ) -> None:
        """Queue what a settled booking sets off: its works order and its messages.
        ``routed``: the caller has already set (and writes) ``r.works_order_adaptor``."""
        sink = r.works_order_adaptor if routed else self._works_order_sink(council, r)
        if sink is not None:
            r.works_order_adaptor = sink
            enqueue(s, council.id, "works_order.raise", {"reference": r.reference})
        await self._notify(s, council, r, "booked" if r.status == "booked" else r.status)

    async def _notify(self, s: Any, council: Council, r: Repair, event: str) -> None:
        """Messages (and the reminder) for ``event``, from the repair as it is now."""
        await self.notifications.on_event(s, council, r, event)

    async def _load(self, item: OutboxItem) -> tuple[Council, Repair] | None:
        council = self.gw.councils.get(item.council)
        if council is None:
            raise NotFound(f"council {item.council!r} is no longer configured")
        async with self.db.session() as s:
            r = (
                await s.execute(
                    select(Repair).where(
                        Repair.council == item.council,
                        Repair.reference == item.payload["reference"],
                    )
                )
            ).scalar_one_or_none()
        return None if r is None else (council, r)

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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway.councils import Council
from gateway.metrics import counts_bookings
from gateway.notifications import Notifications
from gateway.outbox import OutboxWorker, Retry, enqueue
from gateway.problemdetails import from_error
from gateway.service import Gateway
from gateway.storage.models import IdempotencyRecord, OutboxItem, Repair
from repairs_gateway_sdk.errors import (
    BackendUnavailable,
    Conflict,
    GatewayError,
    InvalidInput,
    NotAttempted,
    NotFound,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import (
    BookingConfirmation,
    BookingHandle,
    BookingOrder,
    Contact,
    JobSize,
    JobSpec,
    Priority,
    PropertyKind,
    RepairStatus,
    Trade,
    VendorSlot,
    WorksOrder,
)
from repairs_gateway_sdk.references import new_reference, normalise_reference
from repairs_gateway_sdk.timeutil import now

log = structlog.get_logger("gateway.booking")
RECONCILE_AFTER_SECONDS = 120
TERMINAL = {RepairStatus.CANCELLED, RepairStatus.FAILED, RepairStatus.COMPLETED}
SHOWS_APPOINTMENT = {RepairStatus.BOOKED, RepairStatus.COMPLETED, RepairStatus.IN_PROGRESS}


@dataclass
class NewRepair:
    property_id: str
    sor_code: str | None
    trade: Trade | None
    size: JobSize | None
    priority: Priority | None
    description: str
    contact: Contact
    communal: bool
    slot_token: str | None

    def fingerprint(self) -> str:
        body = {
            k: (v.model_dump(mode="json") if hasattr(v, "model_dump") else v)
            for k, v in self.__dict__.items()
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def repair_view(r: Repair) -> dict[str, Any]:
    """The public representation of a repair (no contact details)."""
    from repairs_gateway_sdk.timeutil import london

    appointment = None
    if r.slot_start and r.slot_end and r.status in SHOWS_APPOINTMENT:
        appointment = {
            "start": london(r.slot_start).isoformat(),
            "end": london(r.slot_end).isoformat(),
            "label": r.slot_label,
        }
    status = r.status if r.status != RepairStatus.BOOKING else RepairStatus.BOOKED.value
    return {
        "reference": r.reference,
        "council": r.council,
        "status": status,
        "property_id": r.property_id,
        "sor_code": r.sor_code,
        "trade": r.trade,
        "size": r.size,
        "priority": r.priority,
        "communal": r.communal,
        "description": r.description,
        "appointment": appointment,
        "works_order_reference": r.works_order_ref,
        "created_at": london(r.created_at).isoformat(),
    }


def handle_of(r: Repair) -> BookingHandle:
    return BookingHandle(
        reference=r.reference,
        property_id=r.property_id,
        job=JobSpec(
            sor_code=r.sor_code,
            trade=Trade(r.trade),
            size=JobSize(r.size),
            duration_minutes=r.duration_minutes,
            priority=Priority(r.priority),
        ),
        vendor_order_ref=r.vendor_order_ref,
        vendor_booking_ref=r.vendor_booking_ref,
        slot_start=r.slot_start,
        slot_end=r.slot_end,
        vendor_slot=r.vendor_slot or {},
    )


class Bookings:
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

    # -- helpers --------------------------------------------------------------------------
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
        slot = VendorSlot(start=claim.start, end=claim.end, label=claim.label, vendor=claim.vendor)
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

    # -- create -----------------------------------------------------------------------------
    @counts_bookings  # gateway_bookings_total{council,result}
    async def create(
        self, council: Council, client_id: str, key: str, req: NewRepair
    ) -> tuple[int, dict[str, Any]]:
        if not key or len(key) > 255:
            raise InvalidInput(
                "an Idempotency-Key header (1-255 characters) is required", field="Idempotency-Key"
            )
        digest = req.fingerprint()
        replay = await self._replay(council, client_id, key, digest)
        if replay is not None:
            return replay
        job = self.gw.resolve_job(
            council, sor_code=req.sor_code, trade=req.trade, size=req.size, priority=req.priority
        )
        prop = await self.gw.find_property(council, req.property_id)
        if not prop.online_repairs:
            raise InvalidInput(
                prop.ineligible_reason or "repairs here cannot be reported online",
                field="property_id",
            )
        if not req.contact.phone and not req.contact.email:
            raise InvalidInput("give a phone number or an email address", field="contact")
        communal = prop.kind != PropertyKind.DWELLING
        if req.communal and not communal:
            where = f" (its block is {prop.parent_id!r})" if prop.parent_id else ""
            raise InvalidInput(
                f"communal repairs are reported against the block or area, not a home{where}",
                field="communal",
            )
        if req.slot_token:
            scheduler_name, slot = self._slot_from_token(council, req.slot_token, prop.id, job)
            council.scheduler(scheduler_name)
            # A scheduler whose circuit is open will not be called: answer now, before a
            # repair row, an idempotency record and a reconcile item are written for nothing.
            council.ensure_available(scheduler_name, "bookings")
        elif council.config.accept_without_slot:
            scheduler_name, slot = None, None  # type: ignore[assignment]
        else:
            raise InvalidInput("choose an appointment: slot_token is required", field="slot_token")

        reference = new_reference()
        repair = Repair(
            council=council.id,
            reference=reference,
            property_id=prop.id,
            postcode=prop.postcode,
            sor_code=job.sor_code,
            trade=job.trade.value,
            size=job.size.value,
            duration_minutes=job.duration_minutes,
            priority=job.priority.value,
            description=req.description,
            contact=req.contact.model_dump(exclude_none=True),
            communal=communal,
            status=(RepairStatus.BOOKING if slot else RepairStatus.AWAITING_APPOINTMENT).value,
            scheduler=scheduler_name,
            client_id=client_id or None,
            created_at=now(),
        )
        try:
            async with self.db.transaction() as s:
                s.add(
                    IdempotencyRecord(
                        council=council.id,
                        client_id=client_id,
                        key=key,
                        request_hash=digest,
                        state="in_progress",
                        repair_reference=reference,
                    )
                )
                s.add(repair)
                if slot is None:
                    body = repair_view(repair)
                    await self._after_confirmed(s, council, repair)
                    await self._finish_idempotency(s, council, client_id, key, 201, body)
                else:
                    enqueue(
                        s,
                        council.id,
                        "booking.reconcile",
                        {"reference": reference},
                        delay_seconds=self.reconcile_after,
                    )
        except IntegrityError:
            replay = await self._replay(council, client_id, key, digest)
            if replay is not None:
                return replay
            raise Conflict("a request with this Idempotency-Key is in progress") from None
        if slot is None:
            self.worker.wake()
            return 201, repair_view(repair)

        notes: list[str] = []
        route = council.config.routes.addresses
        try:
            notes = await council.address_source(route.default).operative_notes(prop.id)
        except GatewayError:
            notes = []  # notes are best effort; the booking itself must not fail on them
        order = BookingOrder(
            reference=reference,
            property=prop,
            job=job,
            slot=slot,
            description=req.description,
            contact=req.contact,
            communal=communal,
            operative_notes=notes,
        )
        assert scheduler_name is not None
        try:
            conf = await council.scheduler(scheduler_name).book(order)
        except SlotUnavailable as exc:
            await self._fail(council, client_id, key, reference, exc, keep_answer=True)
            raise
        except GatewayError as exc:
            await self._fail(council, client_id, key, reference, exc, keep_answer=False)
            raise
        except Exception as exc:
            await self._fail(
                council,
                client_id,
                key,
                reference,
                BackendUnavailable(f"{type(exc).__name__}"),
                keep_answer=False,
            )
            raise
        return await self._confirm(council, client_id, key, reference, conf, slot)

    async def _replay(
        self, council: Council, client_id: str, key: str, digest: str
    ) -> tuple[int, dict[str, Any]] | None:
        async with self.db.session() as s:
            rec = await _idempotency_record(s, council.id, client_id, key)
        if rec is None:
            return None
        if rec.request_hash != digest:
            raise InvalidInput(
                "this Idempotency-Key was already used with a different request",
                field="Idempotency-Key",
            )
        if rec.state == "done" and rec.response_status is not None:
            return rec.response_status, dict(rec.response_body or {})
        raise Conflict(
            "the first request with this Idempotency-Key is still being processed; "
            "retry in a few seconds"
        )

    async def _finish_idempotency(
        self, s: Any, council: Council, client_id: str, key: str, status: int, body: dict[str, Any]
    ) -> None:
        rec = await _idempotency_record(s, council.id, client_id, key)
        if rec is None:
            return  # released by the crash reconciler: the caller's retry starts afresh
        rec.state, rec.response_status, rec.response_body = "done", status, body

    async def _confirm(
        self,
        council: Council,
        client_id: str,
        key: str,
        reference: str,
        conf: BookingConfirmation,
        slot: VendorSlot,
    ) -> tuple[int, dict[str, Any]]:
        async with self.db.transaction() as s:
            r = await _locked_repair(s, council.id, reference)
            if r.status == RepairStatus.BOOKED:  # the crash reconciler confirmed it first
                return 201, repair_view(r)
            settled_elsewhere = r.status != RepairStatus.BOOKING
            if settled_elsewhere:
                # The reconciler gave up on this booking before the scheduler answered; its
                # compensation may already have run, so queue another (cancel is idempotent)
                # and release the key so the resident's retry starts afresh. Committed here,
                # before the error is raised below.
                _queue_compensation(s, council.id, reference)
                await s.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.council == council.id,
                        IdempotencyRecord.client_id == client_id,
                        IdempotencyRecord.key == key,
                    )
                )
            else:
                self._apply_confirmation(r, conf, slot)
                body = repair_view(r)
                await self._finish_idempotency(s, council, client_id, key, 201, body)
                await self._after_confirmed(s, council, r)
                await _drop_reconcile(s, council.id, reference)
        self.worker.wake()
        if settled_elsewhere:
            raise BackendUnavailable(
                "the booking could not be confirmed in time; please try again", retry_after=5
            )
        return 201, body

    @staticmethod
    def _apply_confirmation(r: Repair, conf: BookingConfirmation, slot: VendorSlot) -> None:
        r.status = RepairStatus.BOOKED.value
        r.slot_start, r.slot_end, r.slot_label = conf.start, conf.end, conf.label
        r.vendor_order_ref, r.vendor_booking_ref = conf.vendor_order_ref, conf.vendor_booking_ref
        r.vendor_slot = slot.vendor

    async def _after_confirmed(self, s: Any, council: Council, r: Repair) -> None:
        sink = council.route(_route_req(council, "works_orders", r))
        if sink is not None:
            r.works_order_adaptor = sink
            enqueue(s, council.id, "works_order.raise", {"reference": r.reference})
        await self._notify(s, council, r, "booked" if r.status == "booked" else r.status)

    async def _notify(self, s: Any, council: Council, r: Repair, event: str) -> None:
        """Messages (and the reminder) for ``event``, from the repair as it is now."""
        await self.notifications.on_event(s, council, r, event)

    async def _fail(
        self,
        council: Council,
        client_id: str,
        key: str,
        reference: str,
        exc: GatewayError,
        *,
        keep_answer: bool,
    ) -> None:
        log.info("booking.failed", council=council.id, error=exc.slug)
        async with self.db.transaction() as s:
            r = await _locked_repair(s, council.id, reference)
            if r.status != RepairStatus.BOOKING:
                return  # the crash reconciler already settled it
            r.status = RepairStatus.FAILED.value
            await _drop_reconcile(s, council.id, reference)
            # Whatever the scheduler said, cancel anything it may hold under this reference
            # (e.g. an order created before it said the slot was gone); a no-op otherwise.
            # A scheduler that was never called (open circuit, no time left) holds nothing.
            if not isinstance(exc, NotAttempted):
                _queue_compensation(s, council.id, reference)
            if keep_answer:
                await self._finish_idempotency(
                    s, council, client_id, key, exc.status, from_error(exc)
                )
            else:
                await s.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.council == council.id,
                        IdempotencyRecord.client_id == client_id,
                        IdempotencyRecord.key == key,
                    )
                )

    # -- change and cancel -------------------------------------------------------------------
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

    # -- outbox handlers ---------------------------------------------------------------------
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


LATE_COMMIT_SECONDS = 300


def _queue_compensation(s: Any, council: str, reference: str) -> None:
    """Cancel whatever the scheduler holds under ``reference``: now, and once more later - a
    vendor that timed out may still commit the order after the first clean-up found nothing."""
    enqueue(s, council, "booking.compensate", {"reference": reference})
    enqueue(
        s,
        council,
        "booking.compensate",
        {"reference": reference},
        delay_seconds=LATE_COMMIT_SECONDS,
    )


async def _idempotency_record(
    s: Any, council: str, client_id: str, key: str
) -> IdempotencyRecord | None:
    rec: IdempotencyRecord | None = (
        await s.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.council == council,
                IdempotencyRecord.client_id == client_id,
                IdempotencyRecord.key == key,
            )
        )
    ).scalar_one_or_none()
    return rec


async def _locked_repair(s: Any, council: str, reference: str) -> Repair:
    """The repair row, locked for this transaction (FOR UPDATE on PostgreSQL; SQLite write
    transactions are IMMEDIATE), so a request and the reconciler never both settle it."""
    row: Repair = (
        await s.execute(
            select(Repair)
            .where(Repair.council == council, Repair.reference == reference)
            .with_for_update()
        )
    ).scalar_one()
    return row


async def _drop_reconcile(s: Any, council: str, reference: str) -> None:
    """The booking's outcome is now recorded: its crash-reconcile item is not needed."""
    await s.execute(
        delete(OutboxItem).where(
            OutboxItem.kind == "booking.reconcile",
            OutboxItem.council == council,
            OutboxItem.state == "pending",
            OutboxItem.locked_until.is_(None),
            OutboxItem.payload["reference"].as_string() == reference,
        )
    )


def _seconds(n: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)


def _route_req(council: Council, capability: str, r: Repair) -> Any:
    from gateway.routing import RouteRequest

    return RouteRequest(
        council.id,
        capability,
        trade=Trade(r.trade),
        priority=Priority(r.priority),
        property_id=r.property_id,
        postcode=r.postcode,
    )

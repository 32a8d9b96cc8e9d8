"""Reporting a repair and booking its slot: idempotency, the booking itself, and its settlement
when the scheduler answers (confirmed or failed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from gateway.booking.base import BookingBase
from gateway.booking.records import (
    NewRepair,
    _drop_reconcile,
    _idempotency_record,
    _locked_repair,
    _queue_compensation,
    log,
    repair_view,
)
from gateway.councils import Council
from gateway.metrics import counts_bookings
from gateway.outbox import enqueue
from gateway.problemdetails import from_error
from gateway.storage.models import IdempotencyRecord, Repair
from repairs_gateway_sdk.errors import (
    BackendUnavailable,
    Conflict,
    GatewayError,
    InvalidInput,
    NotAttempted,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import (
    BookingConfirmation,
    BookingOrder,
    PropertyKind,
    RepairStatus,
    VendorSlot,
)
from repairs_gateway_sdk.references import new_reference
from repairs_gateway_sdk.timeutil import now


class CreateFlow(BookingBase):
    """Reporting and booking."""

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

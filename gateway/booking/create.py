"""Reporting a repair and booking its slot: idempotency, the booking itself, and its settlement
when the scheduler answers (confirmed or failed)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from gateway.booking.base import BookingBase
from gateway.booking.records import (
    _INSERT_REPAIR,
    REPAIRS,
    FollowOn,
    NewRepair,
    _claim_and_insert,
    _claim_key,
    _confirm_statements,
    _drop_reconcile,
    _idempotency_record,
    _locked_repair,
    _queue_compensation,
    log,
    repair_view,
)
from gateway.councils import Council
from gateway.metrics import counts_bookings
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
    JobSpec,
    Property,
    PropertyKind,
    RepairStatus,
    VendorSlot,
)
from repairs_gateway_sdk.references import new_reference
from repairs_gateway_sdk.timeutil import now


class CreateFlow(BookingBase):
    """Reporting and booking.

    A booking is two short write transactions around the scheduler call, each a few
    statements on the tables: before it, the idempotency record (inserted unless the key has
    one: a key used before answers as a replay, without a look-up first), the repair and its
    reconcile item; after it, the confirmation (an UPDATE of the repair only while it is still
    ``booking``, which is what the row lock and status check did: a reconciler that settled it
    first leaves nothing to update, and this request backs off), the kept answer, the
    reconcile item dropped by its id and what the booking sets off (works order, messages).
    Both are ``Database.write`` functions: on SQLite each transaction is one hand-off to the
    database thread."""

    @counts_bookings  # gateway_bookings_total{council,result}
    async def create(
        self, council: Council, client_id: str, key: str, req: NewRepair
    ) -> tuple[int, dict[str, Any]]:
        if not key or len(key) > 255:
            raise InvalidInput(
                "an Idempotency-Key header (1-255 characters) is required", field="Idempotency-Key"
            )
        digest = req.fingerprint()
        try:
            prop, job, communal, scheduler_name, slot = await self._checked(council, req)
        except Exception:
            # A retry is answered as the first request was, whatever has changed since (a
            # slot that has started, a breaker that opened): the key decides before the error.
            replay = await self._replay(council, client_id, key, digest)
            if replay is not None:
                return replay
            raise

        reference = new_reference()
        at = now()
        repair = new_repair(
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
            vendor_slot={},
            client_id=client_id or None,
            created_at=at,
            updated_at=at,
        )  # in memory only (the row is written with Core below): the view and the messages
        record: dict[str, Any] = {
            "council": council.id,
            "client_id": client_id,
            "key": key,
            "request_hash": digest,
            "state": "in_progress",
            "response_status": None,
            "response_body": None,
            "repair_reference": reference,
            "created_at": at,
        }
        answer: dict[str, Any] | None = None
        if slot is None:  # nothing to book: settled now, the answer kept with the record
            repair.works_order_adaptor = self._works_order_sink(council, repair)
            answer = repair_view(repair)
            record.update(state="done", response_status=201, response_body=answer)
        reconcile_id = 0
        try:
            if slot is None:
                async with self.db.transaction() as s:
                    claimed = await _claim_key(s, record)
                    if claimed:
                        await s.execute(_INSERT_REPAIR, _row_values(repair))
                        await self._after_confirmed(s, council, repair, routed=True)
            else:
                item_id = await self.db.write(
                    _claim_and_insert(
                        record,
                        _row_values(repair),
                        _outbox_values(
                            council.id,
                            "booking.reconcile",
                            {"reference": reference},
                            at,
                            self.reconcile_after,
                        ),
                    )
                )
                claimed = item_id is not None
                reconcile_id = item_id or 0
        except IntegrityError:  # e.g. a reference drawn twice (vanishingly rare)
            claimed = False
        if not claimed:
            replay = await self._replay(council, client_id, key, digest)
            if replay is not None:
                return replay
            raise Conflict("a request with this Idempotency-Key is in progress") from None
        if answer is not None:
            self.worker.wake()
            return 201, answer

        notes: list[str] = []
        route = council.config.routes.addresses
        try:
            notes = await council.address_source(route.default).operative_notes(prop.id)
        except GatewayError:
            notes = []  # notes are best effort; the booking itself must not fail on them
        assert scheduler_name is not None and slot is not None
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
        try:
            conf = await council.scheduler(scheduler_name).book(order)
        except SlotUnavailable as exc:
            await self._fail(
                council, client_id, key, reference, reconcile_id, exc, keep_answer=True
            )
            raise
        except GatewayError as exc:
            await self._fail(
                council, client_id, key, reference, reconcile_id, exc, keep_answer=False
            )
            raise
        except Exception as exc:
            await self._fail(
                council,
                client_id,
                key,
                reference,
                reconcile_id,
                BackendUnavailable(f"{type(exc).__name__}"),
                keep_answer=False,
            )
            raise
        return await self._confirm(council, client_id, key, repair, reconcile_id, conf, slot)

    async def _checked(
        self, council: Council, req: NewRepair
    ) -> tuple[Property, JobSpec, bool, str | None, VendorSlot | None]:
        """The request checked against the council: the property, the job, whether it is
        communal, and the scheduler and slot to book (none: reported without a slot)."""
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
            return prop, job, communal, scheduler_name, slot
        if council.config.accept_without_slot:
            return prop, job, communal, None, None
        raise InvalidInput("choose an appointment: slot_token is required", field="slot_token")

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
        repair: Repair,
        reconcile_id: int,
        conf: BookingConfirmation,
        slot: VendorSlot,
    ) -> tuple[int, dict[str, Any]]:
        reference = repair.reference
        self._apply_confirmation(repair, conf, slot)
        repair.works_order_adaptor = self._works_order_sink(council, repair)
        repair.updated_at = now()
        body = repair_view(repair)
        # what the confirmation sets off (works order, messages), worked out before its
        # transaction and written in it, with the UPDATE, only if that matched
        follow_on = FollowOn()
        await self._after_confirmed(follow_on, council, repair, routed=True)
        confirmed = await self.db.write(
            _confirm_statements(
                {
                    "w_council": council.id,
                    "w_reference": reference,
                    "status": repair.status,
                    "slot_start": repair.slot_start,
                    "slot_end": repair.slot_end,
                    "slot_label": repair.slot_label,
                    "vendor_order_ref": repair.vendor_order_ref,
                    "vendor_booking_ref": repair.vendor_booking_ref,
                    "vendor_slot": repair.vendor_slot,
                    "works_order_adaptor": repair.works_order_adaptor,
                    "updated_at": repair.updated_at,
                },
                {
                    "w_council": council.id,
                    "w_client_id": client_id,
                    "w_key": key,
                    "state": "done",
                    "response_status": 201,
                    "response_body": body,
                },
                reconcile_id,
                follow_on.rows(),
            )
        )
        if confirmed:
            if follow_on.items:  # works order or messages to deliver now
                self.worker.wake()
            return 201, body
        # No longer being booked: the crash reconciler settled it first (a repair never goes
        # back to ``booking``, so a transaction of its own sees what the UPDATE did not match).
        async with self.db.transaction() as s:
            r = await _locked_repair(s, council.id, reference)
            if r.status == RepairStatus.BOOKED:  # ... as booked
                return 201, repair_view(r)
            # ... as failed, before the scheduler answered; its compensation may already
            # have run, so queue another (cancel is idempotent) and release the key so the
            # resident's retry starts afresh. Committed here, before the error is raised.
            _queue_compensation(s, council.id, reference)
            await s.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.council == council.id,
                    IdempotencyRecord.client_id == client_id,
                    IdempotencyRecord.key == key,
                )
            )
        self.worker.wake()  # the compensation
        raise BackendUnavailable(
            "the booking could not be confirmed in time; please try again", retry_after=5
        )

    async def _fail(
        self,
        council: Council,
        client_id: str,
        key: str,
        reference: str,
        reconcile_id: int,
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
            await _drop_reconcile(s, reconcile_id)
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


_REPAIR_COLUMNS = tuple(c.key for c in REPAIRS.columns if c.key != "id")


class RepairDraft:
    """A repair being reported, in memory: its columns as plain attributes (unset ones
    None), read like a ``Repair`` (the view, routing, messages) and written with Core. Not an
    ORM instance: building one and reading it back through SQLAlchemy's attribute
    instrumentation was a fifth of the booking's own CPU."""

    def __init__(self, **columns: Any) -> None:
        self.__dict__.update(dict.fromkeys(_REPAIR_COLUMNS), **columns)


def new_repair(**columns: Any) -> Repair:
    """A ``RepairDraft`` where the booking flow's helpers take a ``Repair`` (they only read
    and set its columns)."""
    unknown = columns.keys() - set(_REPAIR_COLUMNS)
    if unknown:
        raise TypeError(f"not columns of repairs: {sorted(unknown)}")
    return cast(Repair, RepairDraft(**columns))


def _row_values(r: Repair) -> dict[str, Any]:
    """The columns of an in-memory repair, for its INSERT."""
    values = r.__dict__
    return {key: values[key] for key in _REPAIR_COLUMNS}


def _outbox_values(
    council: str, kind: str, payload: dict[str, Any], at: datetime, delay_seconds: float
) -> dict[str, Any]:
    return {
        "council": council,
        "kind": kind,
        "payload": payload,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": at + timedelta(seconds=delay_seconds),
        "locked_until": None,
        "locked_by": None,
        "last_error": None,
        "created_at": at,
        "done_at": None,
    }

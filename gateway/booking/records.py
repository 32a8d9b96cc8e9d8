"""What the booking flow reads and writes: the request, the public view of a repair, and the
row, idempotency and outbox helpers every part of the flow shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from gateway.api.schemas import NewRepair as NewRepair  # the request, route to flow
from gateway.councils import Council
from gateway.outbox import enqueue
from gateway.storage.database import rowcount
from gateway.storage.models import IdempotencyRecord, OutboxItem, Repair, table_of
from gateway.storage.prepared import run
from repairs_gateway_sdk.model import (
    BookingHandle,
    JobSize,
    JobSpec,
    Priority,
    RepairStatus,
    Trade,
)

log = structlog.get_logger("gateway.booking")
RECONCILE_AFTER_SECONDS = 120
TERMINAL = {RepairStatus.CANCELLED, RepairStatus.FAILED, RepairStatus.COMPLETED}
SHOWS_APPOINTMENT = {RepairStatus.BOOKED, RepairStatus.COMPLETED, RepairStatus.IN_PROGRESS}


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


# The booking's own statements, on the tables (Core, not the ORM: no unit of work, no identity
# map; each compiles once into SQLAlchemy's statement cache).
REPAIRS = table_of(Repair)
KEYS = table_of(IdempotencyRecord)
OUTBOX = table_of(OutboxItem)
_INSERT_REPAIR = insert(REPAIRS)
_INSERT_RECONCILE = insert(OUTBOX).returning(OUTBOX.c.id)
_INSERT_OUTBOX = insert(OUTBOX)
_CONFIRM = update(REPAIRS).where(
    REPAIRS.c.council == bindparam("w_council"),
    REPAIRS.c.reference == bindparam("w_reference"),
    REPAIRS.c.status == RepairStatus.BOOKING.value,
)
_ANSWER_KEY = update(KEYS).where(
    KEYS.c.council == bindparam("w_council"),
    KEYS.c.client_id == bindparam("w_client_id"),
    KEYS.c.key == bindparam("w_key"),
)
_DROP_RECONCILE = delete(OUTBOX).where(
    OUTBOX.c.id == bindparam("w_id"),
    OUTBOX.c.kind == "booking.reconcile",
    OUTBOX.c.state == "pending",
    OUTBOX.c.locked_until.is_(None),
)


def _claim_key_statement(dialect: str) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    module = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(KEYS)
        .on_conflict_do_nothing(index_elements=["council", "client_id", "key"])
        .returning(KEYS.c.id)
    )


_CLAIM_KEY = {d: _claim_key_statement(d) for d in ("sqlite", "postgresql")}


async def _claim_key(s: Any, values: dict[str, Any]) -> bool:
    """Write the idempotency record unless the key has one (one statement, no look-up
    first): False when the key was used before, and the caller answers as a replay."""
    stmt = _CLAIM_KEY[s.bind.dialect.name]
    return (await s.execute(stmt, values)).first() is not None


def _claim_and_insert(
    record: dict[str, Any], repair: dict[str, Any], reconcile: dict[str, Any]
) -> Callable[[Connection], int | None]:
    """The booking's first transaction (``Database.write``): the idempotency record claimed,
    then the repair row and its reconcile item; the item's id, or None when the key was used
    before (nothing written: the caller answers as a replay)."""

    def statements(conn: Connection) -> int | None:
        if run(conn, _CLAIM_KEY[conn.dialect.name], record).first() is None:
            return None
        run(conn, _INSERT_REPAIR, repair)
        item_id: int = run(conn, _INSERT_RECONCILE, reconcile).scalar_one()
        return item_id

    return statements


def _confirm_statements(
    repair: dict[str, Any],
    answer: dict[str, Any],
    reconcile_id: int,
    follow_on: list[dict[str, Any]],
) -> Callable[[Connection], bool]:
    """The confirmation's transaction (``Database.write``): the repair updated while it is
    still ``booking`` and, only if it was, the kept answer, the reconcile item dropped by its
    id and the follow-on outbox items written. False: the repair was no longer being booked
    (nothing written)."""

    def statements(conn: Connection) -> bool:
        if rowcount(run(conn, _CONFIRM, repair)) != 1:
            return False
        run(conn, _ANSWER_KEY, answer)
        run(conn, _DROP_RECONCILE, {"w_id": reconcile_id})
        for row in follow_on:
            run(conn, _INSERT_OUTBOX, row)
        return True

    return statements


class FollowOn:
    """Stands in for the session while what a confirmed booking sets off is worked out ahead
    of its transaction (``_after_confirmed``: ``enqueue`` only adds outbox items); the items
    are then written by ``_confirm_statements``. Anything but ``add`` is refused."""

    def __init__(self) -> None:
        self.items: list[OutboxItem] = []

    def add(self, item: Any) -> None:
        if not isinstance(item, OutboxItem):
            raise TypeError(f"only outbox items follow a confirmation, not {type(item).__name__}")
        self.items.append(item)

    def rows(self) -> list[dict[str, Any]]:
        """Each item's columns as set (read now: a caller may change an item after adding
        it); unset ones take the table's defaults."""
        rows = []
        for item in self.items:
            row = {}
            for c in OUTBOX.columns:
                value = getattr(item, c.key)
                if value is not None or (c.key != "id" and c.default is None):
                    row[c.key] = value
            rows.append(row)
        return rows


async def _drop_reconcile(s: Any, item_id: int) -> None:
    """The booking's outcome is now recorded: its crash-reconcile item (written with the
    repair, ``item_id``) is not needed. One the worker has claimed is left to it: it finds the
    repair settled and backs off."""
    await s.execute(_DROP_RECONCILE, {"w_id": item_id})


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

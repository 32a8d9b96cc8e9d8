"""Tables. Personal data (contact, description) lives only in ``repairs``; nothing here is
logged. Times are stored in UTC."""

from __future__ import annotations

from datetime import UTC as _UTC
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from repairs_gateway_sdk.timeutil import now


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(_UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC)


class Base(DeclarativeBase):
    pass


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements (``Database.write`` functions)."""
    return cast(Table, model.__table__)


class Repair(Base):
    __tablename__ = "repairs"
    __table_args__ = (UniqueConstraint("council", "reference", name="uq_repairs_reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64), index=True)
    reference: Mapped[str] = mapped_column(String(32))
    property_id: Mapped[str] = mapped_column(String(64))
    postcode: Mapped[str | None] = mapped_column(String(16))  # for routing follow-on work
    sor_code: Mapped[str | None] = mapped_column(String(32))
    trade: Mapped[str] = mapped_column(String(32))
    size: Mapped[str] = mapped_column(String(16))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    priority: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    contact: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    communal: Mapped[bool] = mapped_column(default=False)
    # booking | booked | awaiting_appointment | cancelled | failed | completed | in_progress
    status: Mapped[str] = mapped_column(String(32), index=True)
    scheduler: Mapped[str | None] = mapped_column(String(64))  # adaptor that owns the booking
    vendor_order_ref: Mapped[str | None] = mapped_column(String(64))
    vendor_booking_ref: Mapped[str | None] = mapped_column(String(64))
    vendor_slot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    slot_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    slot_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    slot_label: Mapped[str | None] = mapped_column(String(32))
    works_order_adaptor: Mapped[str | None] = mapped_column(String(64))
    works_order_ref: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("council", "client_id", "key", name="uq_idempotency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(64), default="")
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_progress | done
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    repair_reference: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class OutboxItem(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # the worker's poll (due pending items in order) and a booking's reconcile clean-up
        # (in-flight items of one kind and council): migration 0007
        Index("ix_outbox_state_due", "state", "next_attempt_at", "id"),
        Index("ix_outbox_state_kind", "state", "kind", "council"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(
        String(16), index=True, default="pending"
    )  # pending|done|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ShadowComparison(Base):
    """One primary-vs-shadow comparison (strangler migration evidence). No personal data."""

    __tablename__ = "shadow_comparisons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64), index=True)
    capability: Mapped[str] = mapped_column(String(32))
    primary: Mapped[str] = mapped_column(String(64))
    shadow: Mapped[str] = mapped_column(String(64))
    agreed: Mapped[bool] = mapped_column()
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class AdaptorCallStat(Base):
    """Calls per council, capability and adaptor, aggregated per hour."""

    __tablename__ = "adaptor_call_stats"
    __table_args__ = (
        UniqueConstraint("council", "capability", "adaptor", "hour", name="uq_call_stat"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64))
    capability: Mapped[str] = mapped_column(String(32))
    adaptor: Mapped[str] = mapped_column(String(64))
    hour: Mapped[str] = mapped_column(String(16))  # 2026-11-25T10
    calls: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    total_ms: Mapped[float] = mapped_column(default=0.0)
    max_ms: Mapped[float] = mapped_column(default=0.0)
    buckets: Mapped[list[int]] = mapped_column(JSON, default=list)  # resilience.LATENCY_BUCKETS_MS


class ApiKey(Base):
    """API keys are stored as SHA-256 hashes; the clear key is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    councils: Mapped[list[str]] = mapped_column(JSON)
    role: Mapped[str] = mapped_column(String(16))  # frontend | admin
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=600)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # refused from this time on (rotation phases a key out by setting it); None: never
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # to the minute
    replaces: Mapped[str | None] = mapped_column(String(32))  # key_id this one rotated


class RateWindow(Base):
    """Requests per API key and minute, summed over every replica (gateway/ratelimit.py)."""

    __tablename__ = "rate_windows"
    __table_args__ = (UniqueConstraint("key_id", "window", name="uq_rate_window"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(64))
    window: Mapped[int] = mapped_column(Integer)  # minutes since the epoch
    count: Mapped[int] = mapped_column(Integer, default=0)


class HroRepair(Base):
    """What the Housing Repairs Online facade needs to answer about a repair it booked: the
    repair type and the front end's own triage values and display texts (gateway/hro/). The
    repair itself (contact, description, slot) is the ``repairs`` row."""

    __tablename__ = "hro_repairs"
    __table_args__ = (UniqueConstraint("council", "reference", name="uq_hro_repair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(32))
    repair_type: Mapped[str] = mapped_column(String(16))  # tenant | communal | leasehold
    property_id: Mapped[str] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class RepairPhoto(Base):
    """A resident's photo of a repair (JPEG or PNG), kept in the database so every replica
    sees it, never logged, purged after the council's retention (``purge_after``)."""

    __tablename__ = "repair_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(32), index=True)
    content_type: Mapped[str] = mapped_column(String(32))  # image/jpeg | image/png
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    purge_after: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    attached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # sent to the HMS


class NotificationRecord(Base):
    """One message to a resident (one channel of one event): what was sent, when, and what
    GOV.UK Notify said about its delivery. The recipient (phone or email) is kept here and in
    ``repairs`` only, never logged. ``snapshot`` is the repair as it was at the event (status,
    appointment), which is what the message said."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("outbox_item", "channel", name="uq_notification_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(32), index=True)
    outbox_item: Mapped[int] = mapped_column(Integer)  # the notification.send item it came from
    event: Mapped[str] = mapped_column(String(32))  # booked | rescheduled | cancelled | reminder
    channel: Mapped[str] = mapped_column(String(8))  # sms | email
    language: Mapped[str] = mapped_column(String(4))  # en | cy
    template_id: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(320))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # sent (Notify accepted it) | delivered | failed (refused by Notify, or a failure receipt)
    status: Mapped[str] = mapped_column(String(16), index=True)
    notify_id: Mapped[str | None] = mapped_column(String(64), index=True)
    notify_status: Mapped[str | None] = mapped_column(String(32))  # Notify's word, as received
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    receipt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NotificationReceipt(Base):
    """A delivery receipt as GOV.UK Notify posted it to the callback (without ``to``). Kept on
    its own so a receipt that arrives before the send is recorded still counts."""

    __tablename__ = "notification_receipts"
    __table_args__ = (UniqueConstraint("council", "notify_id", name="uq_notification_receipt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64))
    notify_id: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(64))
    notification_type: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class AuditEvent(Base):
    """One write or admin action (gateway/audit.py): who (key id), where (council), what
    (action, reference, outcome). Never personal data."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, index=True)
    action: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32))
    council: Mapped[str | None] = mapped_column(String(64), index=True)
    reference: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32), default="ok")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

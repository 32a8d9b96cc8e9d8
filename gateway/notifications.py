"""Messages to residents over GOV.UK Notify: queued with the event, sent from the outbox, one
record per message, delivery receipts back from Notify.

- Each event (booked, rescheduled, cancelled, awaiting_appointment) queues one
  ``notification.send`` item in the transaction that records the event, carrying the event's
  snapshot (status and appointment at that moment): the message says what was booked then,
  whatever happened since.
- A booking (or a move) also queues a ``reminder`` item due at ``reminder_at`` (London) the day
  before the appointment. A move or a cancel deletes the pending reminder in its own
  transaction (a move queues a new one), and a reminder about to be sent checks that the
  repair is still booked for the same appointment, so a reminder in flight during a move or a
  cancel is dropped too. When the reminder time has already passed at booking, there is none.
- Each channel (SMS, email) of an item is a ``notifications`` row: a retry after one channel
  went out sends only the other. Notify's 400 (a message that can never be sent: a bad number,
  a missing template) fails the row with Notify's reason and sends the item to ``dead``.
- Receipts: Notify posts each message's final status to
  ``/v1/councils/{council}/notifications/receipts`` with the council's bearer token; the row
  becomes ``delivered`` or ``failed``. Receipts are also kept on their own
  (``notification_receipts``), so one that arrives before its row is written still counts.

No phone number or email address is logged or counted; they stay in ``repairs`` and in the
``notifications`` rows.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, delete, insert, select, update

from gateway.messages import Language, personalisation, snapshot, snapshot_times
from gateway.metrics import notification
from gateway.notify import Channel, Notifier, NotifyConfig
from gateway.outbox import OutboxWorker, enqueue
from gateway.storage.models import (
    NotificationReceipt,
    NotificationRecord,
    OutboxItem,
    Repair,
    table_of,
)
from repairs_gateway_sdk.errors import BackendRejected, GatewayError
from repairs_gateway_sdk.timeutil import LONDON, london, now

if TYPE_CHECKING:
    from gateway.councils import Council
    from gateway.service import Gateway

log = structlog.get_logger("gateway.notifications")
KIND = "notification.send"
CHANNELS: tuple[tuple[Channel, str], ...] = (("sms", "phone"), ("email", "email"))
FAILED_RECEIPTS = {
    "permanent-failure": "the phone number or email address does not exist or cannot take messages",
    "temporary-failure": "the phone was off or the inbox full for 72 hours",
    "technical-failure": "a problem between GOV.UK Notify and the network",
    "validation-failed": "GOV.UK Notify could not send it as written",
}


def reminder_due(start: datetime, config: NotifyConfig) -> datetime:
    """``reminder_at`` (London) on the day before the appointment starts."""
    day_before = london(start).date() - timedelta(days=1)
    return datetime.combine(day_before, config.reminder_at, tzinfo=LONDON)


def still_booked(r: Repair, snap: dict[str, Any]) -> bool:
    """A reminder goes out only for the appointment it was queued for."""
    start, _ = snapshot_times(snap)
    return r.status == "booked" and start is not None and r.slot_start == start


class Notifications:
    def __init__(self, gateway: Gateway, worker: OutboxWorker) -> None:
        self.gw = gateway
        self.db = gateway.database
        self.notifiers = {
            cid: Notifier(c.config.notifications)
            for cid, c in gateway.councils.items()
            if c.config.notifications is not None
        }
        worker.register(KIND, self.deliver)

    # -- in the event's transaction -------------------------------------------------------
    async def on_event(self, s: Any, council: Council, r: Repair, event: str) -> None:
        """Queue what ``event`` sends, as the repair is now (called inside the transaction
        that records the event)."""
        if event in ("rescheduled", "cancelled"):
            await drop_reminders(s, council.id, r.reference)
        notifier = self.notifiers.get(council.id)
        if notifier is None:
            return
        snap = snapshot(r.status, r.slot_start, r.slot_end)
        if notifier.wants(event):
            enqueue(
                s, council.id, KIND, {"reference": r.reference, "event": event, "snapshot": snap}
            )
        if (
            event in ("booked", "rescheduled")
            and r.status == "booked"
            and r.slot_start is not None
            and notifier.wants("reminder")
        ):
            due = reminder_due(r.slot_start, notifier.config)
            if due > now():  # booked after the reminder time: the confirmation is enough
                item = enqueue(
                    s,
                    council.id,
                    KIND,
                    {"reference": r.reference, "event": "reminder", "snapshot": snap},
                )
                item.next_attempt_at = due

    # -- the outbox handler ---------------------------------------------------------------
    async def deliver(self, item: OutboxItem) -> None:
        notifier = self.notifiers.get(item.council)
        if notifier is None:
            return
        async with self.db.session() as s:
            r = (
                await s.execute(
                    select(Repair).where(
                        Repair.council == item.council,
                        Repair.reference == item.payload["reference"],
                    )
                )
            ).scalar_one_or_none()
            done = {
                rec.channel: rec
                for rec in (
                    await s.execute(
                        select(NotificationRecord).where(NotificationRecord.outbox_item == item.id)
                    )
                ).scalars()
            }
        if r is None:
            return
        event = str(item.payload["event"])
        # items queued before the snapshot existed fall back to the repair as it is now
        snap = item.payload.get("snapshot") or snapshot(r.status, r.slot_start, r.slot_end)
        if event == "reminder" and not still_booked(r, snap):
            notification(item.council, "skipped")
            return
        contact = dict(r.contact or {})
        wanted: Language = contact.get("language") or notifier.config.default_language
        refused: list[GatewayError] = []
        sent = 0
        for channel, field in CHANNELS:
            to = contact.get(field)
            template, language = notifier.config.template(channel, event, wanted)
            if not to or not template:
                continue
            if channel in done and done[channel].status != "failed":
                continue  # went out on an earlier attempt
            values = personalisation(r.reference, event, snap, language)  # type: ignore[arg-type]
            try:
                notify_id = await notifier.send_one(channel, to, template, values)
            except BackendRejected as exc:  # refused (400 included): record why, go on
                notification(item.council, exc.slug)
                refused.append(exc)
                await self._record(
                    item, r, event, channel, language, template, to, snap, "failed", None, str(exc)
                )
                continue
            except GatewayError as exc:  # Notify down or slow: the outbox retries
                notification(item.council, exc.slug)
                raise
            sent += 1
            await self._record(
                item, r, event, channel, language, template, to, snap, "sent", notify_id, None
            )
        notification(item.council, "sent", sent)
        if refused:
            raise refused[0]  # 400: dead with Notify's reason; others retried, then dead

    async def _record(
        self,
        item: OutboxItem,
        r: Repair,
        event: str,
        channel: str,
        language: str,
        template: str,
        to: str,
        snap: dict[str, Any],
        status: str,
        notify_id: str | None,
        reason: str | None,
    ) -> None:
        at = now()
        fields = {
            "event": event,
            "language": language,
            "template_id": template,
            "recipient": to,
            "snapshot": snap,
            "status": status,
            "notify_id": notify_id or None,
            "reason": reason,
            "notify_status": None,
            "receipt_at": None,
            "sent_at": at if status == "sent" else None,
        }
        records, receipts = table_of(NotificationRecord), table_of(NotificationReceipt)

        def statements(conn: Connection) -> None:  # one go (Database.write)
            values = SimpleNamespace(**fields)
            if notify_id:  # a receipt may have come before this row
                early = conn.execute(
                    select(receipts.c.status, receipts.c.received_at).where(
                        receipts.c.council == item.council, receipts.c.notify_id == notify_id
                    )
                ).first()
                if early is not None:
                    _apply_receipt(values, early.status, early.received_at)
            existing = conn.execute(
                select(records.c.id).where(
                    records.c.outbox_item == item.id, records.c.channel == channel
                )
            ).scalar_one_or_none()
            if existing is None:
                conn.execute(
                    insert(records).values(
                        council=item.council,
                        reference=r.reference,
                        outbox_item=item.id,
                        channel=channel,
                        created_at=at,
                        **vars(values),
                    )
                )
            else:
                conn.execute(update(records).where(records.c.id == existing).values(**vars(values)))

        # the worker's bookkeeping: on SQLite never a block on the loop nor the lock held
        # across a hop per statement (a booking's writes would wait for it)
        await self.db.write(statements, background=True)

    # -- receipts -------------------------------------------------------------------------
    def receipts_token_ok(self, council: str, presented: str | None) -> bool:
        notifier = self.notifiers.get(council)
        token = notifier.config.callback_bearer_token if notifier else None
        if token is None or not presented:
            return False
        return hmac.compare_digest(token.get_secret_value().encode(), presented.encode())

    async def receive(
        self,
        council: str,
        notify_id: str,
        status: str,
        *,
        reference: str | None = None,
        notification_type: str | None = None,
        completed_at: datetime | None = None,
    ) -> bool:
        """Record a delivery receipt; True when it matched a message the gateway sent."""
        at = now()
        async with self.db.transaction() as s:
            receipt = (
                await s.execute(
                    select(NotificationReceipt).where(
                        NotificationReceipt.council == council,
                        NotificationReceipt.notify_id == notify_id,
                    )
                )
            ).scalar_one_or_none()
            if receipt is None:
                receipt = NotificationReceipt(council=council, notify_id=notify_id)
                s.add(receipt)
            receipt.status, receipt.reference = status, reference
            receipt.notification_type, receipt.completed_at = notification_type, completed_at
            receipt.received_at = at
            rows = list(
                (
                    await s.execute(
                        select(NotificationRecord).where(
                            NotificationRecord.council == council,
                            NotificationRecord.notify_id == notify_id,
                        )
                    )
                ).scalars()
            )
            for rec in rows:
                _apply_receipt(rec, status, at)
        notification(council, f"receipt_{_public_status(status)}")
        return bool(rows)

    # -- reading --------------------------------------------------------------------------
    async def records(self, council: str, reference: str) -> list[NotificationRecord]:
        async with self.db.session() as s:
            return list(
                (
                    await s.execute(
                        select(NotificationRecord)
                        .where(
                            NotificationRecord.council == council,
                            NotificationRecord.reference == reference,
                        )
                        .order_by(NotificationRecord.created_at, NotificationRecord.id)
                    )
                ).scalars()
            )

    async def for_repair(self, council: str, reference: str) -> list[dict[str, Any]]:
        """The messages sent about a repair, as the standard API shows them."""
        return [public_view(rec) for rec in await self.records(council, reference)]

    async def pending(self, council: str, reference: str) -> list[OutboxItem]:
        async with self.db.session() as s:
            items = (
                await s.execute(
                    select(OutboxItem)
                    .where(
                        OutboxItem.council == council,
                        OutboxItem.kind == KIND,
                        OutboxItem.state != "done",
                    )
                    .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
                )
            ).scalars()
            return [i for i in items if i.payload.get("reference") == reference]


def _public_status(notify_status: str) -> str:
    if notify_status == "delivered":
        return "delivered"
    if notify_status in FAILED_RECEIPTS:
        return "failed"
    return "sent"


def _apply_receipt(rec: Any, notify_status: str, at: datetime) -> None:
    """A receipt's word on a record (a ``NotificationRecord``, or its values to write)."""
    rec.notify_status, rec.receipt_at = notify_status, at
    rec.status = _public_status(notify_status)
    if rec.status == "failed":
        rec.reason = FAILED_RECEIPTS[notify_status]


def _iso(dt: datetime | None) -> str | None:
    return london(dt).isoformat() if dt else None


def public_view(rec: NotificationRecord) -> dict[str, Any]:
    return {
        "event": rec.event,
        "channel": rec.channel,
        "status": rec.status,
        "sent_at": _iso(rec.sent_at),
        "status_at": _iso(rec.receipt_at or rec.sent_at or rec.created_at),
    }


def admin_view(rec: NotificationRecord) -> dict[str, Any]:
    """Everything but the recipient."""
    return {
        **public_view(rec),
        "language": rec.language,
        "template_id": rec.template_id,
        "notify_id": rec.notify_id,
        "notify_status": rec.notify_status,
        "reason": rec.reason,
        "outbox_item": rec.outbox_item,
        "appointment": {"start": rec.snapshot.get("start"), "end": rec.snapshot.get("end")},
    }


async def drop_reminders(s: Any, council: str, reference: str) -> None:
    """The appointment moved or was cancelled: its reminder (not yet being sent) goes too."""
    await s.execute(
        delete(OutboxItem).where(
            OutboxItem.kind == KIND,
            OutboxItem.council == council,
            OutboxItem.state == "pending",
            OutboxItem.locked_until.is_(None),
            OutboxItem.payload["reference"].as_string() == reference,
            OutboxItem.payload["event"].as_string() == "reminder",
        )
    )

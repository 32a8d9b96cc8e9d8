"""Transactional outbox. Side effects of a booking (works order in the HMS, compensations,
notifications, crash reconciliation) are written in the same transaction as the booking and
delivered by a worker with bounded exponential backoff. Items that keep failing go to ``dead``
(listed by ``repairs-gateway outbox list``, replayed by ``outbox replay``).

Claiming is a conditional UPDATE on the lock columns, so several gateway processes on one
PostgreSQL database never deliver the same item concurrently. See docs/decisions/0002-outbox.md.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.database import Database, rowcount
from gateway.storage.models import OutboxItem, table_of
from repairs_gateway_sdk.errors import BackendCannotAccept, BackendRejected, GatewayError
from repairs_gateway_sdk.timeutil import now

log = structlog.get_logger("gateway.outbox")
_ITEMS = table_of(OutboxItem)
Handler = Callable[[OutboxItem], Awaitable[None]]
LOCK_SECONDS = 120  # > a delivery (one or two adaptor calls, each bounded by its timeout)


class Retry(Exception):
    """Raised by a handler that wants to be called again later (not a failure)."""

    def __init__(self, after_seconds: float) -> None:
        super().__init__(f"retry in {after_seconds}s")
        self.after_seconds = after_seconds


def enqueue(
    session: AsyncSession,
    council: str,
    kind: str,
    payload: dict[str, Any],
    *,
    delay_seconds: float = 0,
) -> OutboxItem:
    item = OutboxItem(
        council=council,
        kind=kind,
        payload=payload,
        state="pending",
        attempts=0,
        next_attempt_at=now() + timedelta(seconds=delay_seconds),
    )
    session.add(item)
    return item


def backoff(attempts: int, base: float = 2.0, cap: float = 600.0) -> float:
    """Exponential backoff with full jitter, bounded."""
    return random.uniform(0, min(cap, base * (2 ** min(attempts, 20))))


class OutboxWorker:
    def __init__(
        self,
        database: Database,
        *,
        max_attempts: int = 12,
        poll_seconds: float = 1.0,
        batch: int = 20,
    ) -> None:
        self.database = database
        self.handlers: dict[str, Handler] = {}
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def wake(self) -> None:
        self._wake.set()

    async def _claim(self, item_id: int) -> bool:
        """Lock one item for this worker. The time is read now, not when the batch was listed:
        an item is claimed only if it is still due and unlocked at this moment (another
        process may have just delivered it, failed and backed it off)."""
        at = now()
        claim = (
            update(_ITEMS)
            .where(
                _ITEMS.c.id == item_id,
                _ITEMS.c.state == "pending",
                _ITEMS.c.next_attempt_at <= at,
                or_(_ITEMS.c.locked_until.is_(None), _ITEMS.c.locked_until < at),
            )
            .values(locked_until=at + timedelta(seconds=LOCK_SECONDS), locked_by=self.worker_id)
        )
        # one go (Database.write): on SQLite the write lock is held for one hand-off only
        return await self.database.write(
            lambda conn: rowcount(conn.execute(claim)) == 1, background=True
        )

    async def run_once(self) -> int:
        """Deliver the items that are due; returns how many were attempted."""
        at = now()
        async with self.database.session() as s:
            ids = list(
                (
                    await s.execute(
                        select(OutboxItem.id)
                        .where(
                            OutboxItem.state == "pending",
                            OutboxItem.next_attempt_at <= at,
                            or_(OutboxItem.locked_until.is_(None), OutboxItem.locked_until < at),
                        )
                        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
                        .limit(self.batch)
                    )
                ).scalars()
            )
        attempted = 0
        for item_id in ids:
            if not await self._claim(item_id):
                continue
            attempted += 1
            await self._deliver(item_id)
        return attempted

    async def _deliver(self, item_id: int) -> None:
        async with self.database.session() as s:
            item = await s.get(OutboxItem, item_id)
        if item is None:
            return
        handler = self.handlers.get(item.kind)
        state, error, delay = "done", None, 0.0
        try:
            if handler is None:
                raise BackendRejected(f"no handler for outbox kind {item.kind!r}")
            await handler(item)
        except Retry as r:
            state, delay = "pending", r.after_seconds
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the item
            error = f"{type(exc).__name__}: {exc}"[:1000]
            permanent = isinstance(exc, BackendRejected) or not isinstance(
                exc, GatewayError | OSError | TimeoutError
            )
            attempts = item.attempts + 1
            if (
                attempts >= self.max_attempts
                or (permanent and attempts >= 3)
                or isinstance(exc, BackendCannotAccept)  # it can never succeed: a person's job
            ):
                state = "dead"
            else:
                state, delay = "pending", backoff(attempts)
            log.warning(
                "outbox.delivery_failed",
                item=item.id,
                kind=item.kind,
                attempts=attempts,
                state=state,
                error_type=type(exc).__name__,
            )
        values: dict[str, Any] = {
            "state": state,
            "locked_until": None,
            "locked_by": None,
            "last_error": error,
        }
        if error is not None:
            values["attempts"] = _ITEMS.c.attempts + 1
        if state == "pending":
            values["next_attempt_at"] = now() + timedelta(seconds=delay)
        if state == "done":
            values["done_at"] = now()
        # only while the claim is still this worker's: a delivery that outlived its claim
        # (LOCK_SECONDS) may have been claimed again by another worker, or the item dropped
        # by an operator meanwhile; their outcome stands
        outcome = (
            update(_ITEMS)
            .where(_ITEMS.c.id == item_id, _ITEMS.c.locked_by == self.worker_id)
            .values(**values)
        )
        if not await self.database.write(
            lambda conn: rowcount(conn.execute(outcome)) == 1, background=True
        ):
            log.warning("outbox.claim_lost", item=item.id, kind=item.kind, outcome=state)

    async def drain(self, timeout: float = 30.0) -> None:
        """Deliver until nothing is due (tests, CLI)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if await self.run_once() == 0:
                return

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - the worker must survive a DB hiccup
                log.error("outbox.loop_error", error_type=type(exc).__name__)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                pass

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


STATES = ("pending", "retrying", "done", "dead", "dropped")  # retrying: pending, failed before


async def list_items(
    database: Database, state: str | None = None, limit: int = 100, council: str | None = None
) -> list[OutboxItem]:
    async with database.session() as s:
        q = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
        if state == "retrying":
            q = q.where(OutboxItem.state == "pending", OutboxItem.attempts > 0)
        elif state:
            q = q.where(OutboxItem.state == state)
        if council:
            q = q.where(OutboxItem.council == council)
        return list((await s.execute(q)).scalars())


async def replay(
    database: Database, item_ids: list[int] | None = None, *, council: str | None = None
) -> int:
    """Put dead items (all, or the given ones) back to pending with a fresh attempt count."""
    async with database.transaction() as s:
        q = update(OutboxItem).where(OutboxItem.state == "dead")
        if item_ids:
            q = q.where(OutboxItem.id.in_(item_ids))
        if council:
            q = q.where(OutboxItem.council == council)
        result = await s.execute(
            q.values(
                state="pending",
                attempts=0,
                next_attempt_at=now(),
                locked_until=None,
                locked_by=None,
            )
        )
        return rowcount(result)


async def drop(database: Database, item_ids: list[int], *, council: str | None = None) -> int:
    """Give up on dead items for good (state ``dropped``; the row stays, for the record)."""
    if not item_ids:
        return 0
    async with database.transaction() as s:
        q = update(OutboxItem).where(OutboxItem.state == "dead", OutboxItem.id.in_(item_ids))
        if council:
            q = q.where(OutboxItem.council == council)
        result = await s.execute(q.values(state="dropped", locked_until=None, locked_by=None))
        return rowcount(result)

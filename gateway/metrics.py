"""Metrics for operating the gateway (Prometheus, on /metrics and ``GATEWAY_METRICS_PORT``).

Labels come from closed sets only: council ids (configured), adaptor names (configured),
results (the gateway's own error slugs, or a few fixed words), outbox states and kinds (the
gateway's own). Never a reference, postcode, property id or key id. Counters are looked up
once per label combination (as in gateway/api/middleware.py), so the hot path costs a dict
lookup and an increment.

- ``gateway_bookings_total{council,result}``: answers to "book a repair" (``booked``, or the
  slug of the refusal: ``slot-unavailable``, ``backend-unavailable``, ``invalid-input``...).
- ``gateway_notifications_total{council,result}``: messages sent to GOV.UK Notify (``sent``),
  and failed attempts (``backend-unavailable`` is retried, ``backend-rejected`` is not).
- ``gateway_rate_limited_total{council}``: requests refused 429 for a key's rate.
- ``gateway_outbox_items{state}``, ``gateway_outbox_dead_items{kind}``,
  ``gateway_outbox_oldest_pending_age_seconds``, ``gateway_outbox_oldest_due_wait_seconds``:
  read from the shared database by every process every ``OUTBOX_REFRESH_SECONDS`` (so every
  replica reports the same figures: aggregate with ``max``, not ``sum``).
- ``gateway_adaptor_probe_up{council,adaptor}`` and
  ``gateway_adaptor_probe_last_success_age_seconds{council,adaptor}``: see gateway/probes.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select

from gateway.storage.database import Database
from gateway.storage.models import OutboxItem
from repairs_gateway_sdk.errors import GatewayError
from repairs_gateway_sdk.timeutil import now

log = structlog.get_logger("gateway.metrics")

BOOKINGS = Counter("gateway_bookings_total", "Answers to booking requests", ["council", "result"])
NOTIFICATIONS = Counter(
    "gateway_notifications_total", "Resident notifications: sent, or failed", ["council", "result"]
)
RATE_LIMITED = Counter(
    "gateway_rate_limited_total", "Requests refused for an API key's rate", ["council"]
)
OUTBOX_ITEMS = Gauge("gateway_outbox_items", "Outbox items not yet done, by state", ["state"])
OUTBOX_DEAD = Gauge("gateway_outbox_dead_items", "Outbox items given up on, by kind", ["kind"])
OUTBOX_OLDEST_PENDING = Gauge(
    "gateway_outbox_oldest_pending_age_seconds",
    "Age of the oldest pending outbox item (delayed ones included), 0 when none",
)
OUTBOX_DUE_WAIT = Gauge(
    "gateway_outbox_oldest_due_wait_seconds",
    "How long the longest-waiting due outbox item has waited past its due time (a stalled "
    "worker shows here), 0 when none",
)
OUTBOX_STATES = ("pending", "dead")
PROBE_UP = Gauge(
    "gateway_adaptor_probe_up",
    "1 when the adaptor's last health probe of its backend passed",
    ["council", "adaptor"],
)
PROBE_SUCCESS_AGE = Gauge(
    "gateway_adaptor_probe_last_success_age_seconds",
    "Seconds since the adaptor's backend last passed a health probe (-1: never)",
    ["council", "adaptor"],
)

OUTBOX_REFRESH_SECONDS = 15.0

# results are the gateway's own error slugs (a closed set), anything else is "other"
_SLUGS: frozenset[str] = frozenset()


def _known_slugs() -> frozenset[str]:
    global _SLUGS
    if not _SLUGS:
        found: set[str] = set()
        todo: list[type[GatewayError]] = [GatewayError]
        while todo:
            cls = todo.pop()
            found.add(cls.slug)
            todo.extend(cls.__subclasses__())
        _SLUGS = frozenset(found)
    return _SLUGS


def result_of(exc: BaseException) -> str:
    if isinstance(exc, GatewayError):
        return exc.slug if exc.slug in _known_slugs() else "other"
    return "error"


_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def booking(council: str, result: str) -> None:
    _child(BOOKINGS, council, result).inc()


def notification(council: str, result: str, n: int = 1) -> None:
    if n > 0:
        _child(NOTIFICATIONS, council, result).inc(n)


def rate_limited(council: str) -> None:
    _child(RATE_LIMITED, council).inc()


def _answer_result(status: int, body: dict[str, Any]) -> str:
    if status < 300:
        return "booked" if status == 201 else "accepted"
    slug = str(body.get("type", "")).rsplit("/", 1)[-1]
    return slug if slug in _known_slugs() else "other"


F = TypeVar("F", bound=Callable[..., Awaitable[tuple[int, dict[str, Any]]]])


def counts_bookings(fn: F) -> F:
    """Decorate ``Bookings.create(self, council, ...)``: count each answer by council and
    result (a replayed answer counts again: it is an answer the caller got)."""

    @wraps(fn)
    async def counted(self: Any, council: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            status, body = await fn(self, council, *args, **kwargs)
        except Exception as exc:
            booking(council.id, result_of(exc))
            raise
        booking(council.id, _answer_result(status, body))
        return status, body

    return counted  # type: ignore[return-value]


# -- the outbox, from the shared database --------------------------------------------------
@dataclass
class OutboxSnapshot:
    by_state: dict[str, int] = field(default_factory=dict)
    dead_by_kind: dict[str, int] = field(default_factory=dict)
    oldest_pending_age: float | None = None  # seconds since the oldest pending was queued
    oldest_due_wait: float | None = None  # seconds the longest-waiting due item is overdue
    taken_at: float = 0.0  # time.monotonic()

    def public(self) -> dict[str, Any]:
        """For /health: counts and ages only (no references, payloads or errors)."""
        return {
            "items": {s: self.by_state.get(s, 0) for s in OUTBOX_STATES},
            "dead": self.by_state.get("dead", 0),
            "dead_by_kind": dict(sorted(self.dead_by_kind.items())),
            "oldest_pending_age_seconds": _whole(self.oldest_pending_age),
            "oldest_due_wait_seconds": _whole(self.oldest_due_wait),
            "age_seconds": _whole(time.monotonic() - self.taken_at),
        }


def _whole(x: float | None) -> int | None:
    return None if x is None else max(0, int(x))


async def read_outbox(database: Database) -> OutboxSnapshot:
    """One grouped read of the items not done (the ``state`` index keeps it off the done
    rows, which grow for ever)."""
    q = (
        select(
            OutboxItem.state,
            OutboxItem.kind,
            func.count(),
            func.min(OutboxItem.created_at),
            func.min(OutboxItem.next_attempt_at),
        )
        .where(OutboxItem.state.in_(OUTBOX_STATES))
        .group_by(OutboxItem.state, OutboxItem.kind)
    )
    async with database.session() as s:
        rows = (await s.execute(q)).all()
    at = now()
    snap = OutboxSnapshot(taken_at=time.monotonic())
    oldest_created: datetime | None = None
    oldest_due: datetime | None = None
    for state, kind, n, created, due in rows:
        snap.by_state[state] = snap.by_state.get(state, 0) + int(n)
        if state == "dead":
            snap.dead_by_kind[kind] = snap.dead_by_kind.get(kind, 0) + int(n)
        elif state == "pending":
            if created is not None and (oldest_created is None or created < oldest_created):
                oldest_created = created
            if due is not None and (oldest_due is None or due < oldest_due):
                oldest_due = due
    if oldest_created is not None:
        snap.oldest_pending_age = (at - _aware(oldest_created, at)).total_seconds()
    if oldest_due is not None:
        snap.oldest_due_wait = max(0.0, (at - _aware(oldest_due, at)).total_seconds())
    return snap


def _aware(dt: datetime, like: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=like.tzinfo)


class OutboxMonitor:
    """The outbox's figures, refreshed in the background and on demand (at most once per
    ``max_age``), exported as gauges and shown in /health."""

    def __init__(self, database: Database, interval: float = OUTBOX_REFRESH_SECONDS) -> None:
        self.database = database
        self.interval = interval
        self.snapshot: OutboxSnapshot | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._kinds: set[str] = set()

    async def current(self, max_age: float | None = None) -> OutboxSnapshot:
        limit = self.interval if max_age is None else max_age
        snap = self.snapshot
        if snap is not None and time.monotonic() - snap.taken_at <= limit:
            return snap
        async with self._lock:
            snap = self.snapshot
            if snap is not None and time.monotonic() - snap.taken_at <= limit:
                return snap
            snap = self.snapshot = await read_outbox(self.database)
            self._export(snap)
            return snap

    def _export(self, snap: OutboxSnapshot) -> None:
        for state in OUTBOX_STATES:
            OUTBOX_ITEMS.labels(state).set(snap.by_state.get(state, 0))
        self._kinds |= set(snap.dead_by_kind)
        for kind in self._kinds:  # a kind replayed to zero shows 0, not its last count
            OUTBOX_DEAD.labels(kind).set(snap.dead_by_kind.get(kind, 0))
        OUTBOX_OLDEST_PENDING.set(snap.oldest_pending_age or 0)
        OUTBOX_DUE_WAIT.set(snap.oldest_due_wait or 0)

    async def _loop(self) -> None:
        while True:
            try:
                await self.current(max_age=self.interval / 2)
            except Exception as exc:  # noqa: BLE001 - metrics must never break serving
                log.warning("metrics.outbox_read_failed", error_type=type(exc).__name__)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="metrics:outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

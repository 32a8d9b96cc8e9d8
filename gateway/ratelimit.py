"""Per-key rate limits that hold across replicas.

Each API key may make ``rate_per_minute`` requests per calendar minute, counted over every
replica in the shared database (``rate_windows``: key, minute, requests granted). A replica does
not go to the database for every request: it *leases* a small share of the minute's allowance
(1% of it, at least one request) with one short transaction that never grants past the limit,
and serves requests from its lease until it is used up. So:

- the replicas together never let through more than the allowance (no overshoot, however many
  replicas and however fast the requests come);
- the most a key can be refused early by is what the other replicas still hold in their
  leases: under 1% of the allowance per replica;
- a front-end key at 600 requests a minute costs one small transaction per six requests; a key
  with a large allowance, almost none.

If the database cannot be reached, each replica goes on counting on its own (the allowance per
replica) until it can; a warning is logged. Refusals answer 429 with Retry-After: the seconds
until the next minute.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, delete, select, update

from gateway.storage.database import Database, insert_ignoring
from gateway.storage.models import RateWindow, table_of
from gateway.storage.prepared import run
from repairs_gateway_sdk.errors import RateLimited

log = structlog.get_logger("gateway.ratelimit")
WINDOW_SECONDS = 60
LEASE_SHARE = 0.01  # of a key's allowance per lease

# Filled per request with (limit, remaining, seconds until reset) for the RateLimit headers;
# the HTTP layer sets a fresh list at the start of each request (gateway/api/middleware.py).
current_allowance: ContextVar[list[tuple[int, int, int]] | None] = ContextVar(
    "current_allowance", default=None
)


def _publish(limit: int, remaining: int, t: float) -> None:
    holder = current_allowance.get()
    if holder is not None:
        holder.append((limit, max(0, remaining), max(1, math.ceil(WINDOW_SECONDS - t % 60))))


class SharedRateLimiter:
    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.clock = clock
        self._leases: dict[str, tuple[int, int]] = {}  # key -> (minute, requests left)
        self._used: dict[str, tuple[int, int]] = {}  # key -> (minute, granted overall, as seen)
        self._exhausted: dict[str, int] = {}  # key -> minute in which the database said no
        self._local: dict[str, tuple[int, int]] = {}  # key -> (minute, used) while DB is down
        self._locks: dict[str, asyncio.Lock] = {}
        self._pruned = 0
        self.refused = 0

    async def take(self, key_id: str, limit: int) -> None:
        """Count one request for ``key_id``, or raise ``RateLimited`` (with Retry-After)."""
        t = self.clock()
        minute = int(t // WINDOW_SECONDS)
        if self._use_lease(key_id, minute):
            self._report(key_id, minute, limit, t)
            return
        if self._exhausted.get(key_id) == minute:
            self._refuse(t, limit)
        lock = self._locks.get(key_id)
        if lock is None:
            if len(self._locks) > 10_000:  # keys seen long ago; only known keys reach here
                self._locks.clear()
            lock = self._locks[key_id] = asyncio.Lock()
        async with lock:  # one lease at a time per key in this process
            if self._use_lease(key_id, minute):
                self._report(key_id, minute, limit, t)
                return
            if self._exhausted.get(key_id) == minute:
                self._refuse(t, limit)
            want = max(1, math.floor(limit * LEASE_SHARE))
            try:
                granted, used = await self._lease(key_id, minute, want, limit)
            except Exception as exc:  # noqa: BLE001 - the database is down: count here alone
                log.warning("ratelimit.lease_failed", error_type=type(exc).__name__)
                self._take_locally(key_id, minute, limit, t)
                return
        if granted == 0:
            self._exhausted[key_id] = minute
            self._refuse(t, limit)
        self._leases[key_id] = (minute, granted - 1)
        self._used[key_id] = (minute, used)
        self._report(key_id, minute, limit, t)

    def _report(self, key_id: str, minute: int, limit: int, t: float) -> None:
        """The allowance left as this replica knows it: what the database had granted at the
        last lease (every replica's), less what this replica has used of its own lease."""
        lease = self._leases.get(key_id)
        used = self._used.get(key_id)
        if lease is None or used is None or used[0] != minute or lease[0] != minute:
            _publish(limit, limit, t)
        else:
            _publish(limit, limit - used[1] + lease[1], t)

    def _use_lease(self, key_id: str, minute: int) -> bool:
        lease = self._leases.get(key_id)
        if lease is not None and lease[0] == minute and lease[1] > 0:
            self._leases[key_id] = (minute, lease[1] - 1)
            return True
        return False

    def _refuse(self, t: float, limit: int) -> None:
        self.refused += 1
        _publish(limit, 0, t)
        retry = max(1, math.ceil(WINDOW_SECONDS - t % WINDOW_SECONDS))
        raise RateLimited("rate limit for this API key reached", retry_after=retry)

    def _take_locally(self, key_id: str, minute: int, limit: int, t: float) -> None:
        m, used = self._local.get(key_id, (minute, 0))
        if m != minute:
            used = 0
        if used + 1 > limit:
            self._refuse(t, limit)
        self._local[key_id] = (minute, used + 1)
        _publish(limit, limit - used - 1, t)

    async def _lease(self, key_id: str, minute: int, want: int, limit: int) -> tuple[int, int]:
        """Grant up to ``want`` requests of ``key_id``'s allowance for ``minute`` (0 if none
        is left), and the total granted so far over every replica. One transaction
        (``Database.write``: on SQLite one go on the kept writer, no hop per statement), with
        the row locked, so replicas never grant past the allowance."""
        prune = minute != self._pruned  # once a minute per process: forget old minutes
        granted, used = await self.database.write(
            _lease_statements(key_id, minute, want, limit, prune)
        )
        if prune:
            self._pruned = minute
        return granted, used + granted


def _lease_statements(
    key_id: str, minute: int, want: int, limit: int, prune: bool
) -> Callable[[Connection], tuple[int, int]]:
    """The lease's transaction: the minute's row made if missing, read with its row locked
    (PostgreSQL; SQLite's write lock is the database's), up to ``want`` granted; (granted,
    granted before). Its statements are made once (``_LEASE``)."""

    def statements(conn: Connection) -> tuple[int, int]:
        add, read, grant, forget = _LEASE[conn.dialect.name]
        this = {"k": key_id, "w": minute}
        run(conn, add, this)
        used = conn.execute(read, this).scalar_one()
        granted = max(0, min(want, limit - used))
        if granted:
            run(conn, grant, {**this, "n": granted})
        if prune:
            run(conn, forget, {"before": minute - 1})
        return int(granted), int(used)

    return statements


def _lease_statement_set(dialect: str) -> tuple[Any, Any, Any, Any]:
    c = _WINDOWS.c
    this_minute = (c.key_id == bindparam("k"), c.window == bindparam("w"))
    row = {"key_id": bindparam("k"), "window": bindparam("w"), "count": 0}
    return (
        insert_ignoring(dialect, _WINDOWS, row),
        select(c.count).where(*this_minute).with_for_update(),
        update(_WINDOWS).where(*this_minute).values(count=c.count + bindparam("n")),
        delete(_WINDOWS).where(c.window < bindparam("before")),
    )


_WINDOWS = table_of(RateWindow)
_LEASE = {d: _lease_statement_set(d) for d in ("sqlite", "postgresql")}
